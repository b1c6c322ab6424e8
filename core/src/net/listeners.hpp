// The listening sockets, opened by the arbiter before any worker is forked and inherited by
// every worker. Each failing system call is reported with its argument.
#pragma once

#include <string>
#include <vector>

#include "net/bind.hpp"
#include "util/unique_fd.hpp"

namespace alicorn {

struct Listener {
  BindAddress address;
  UniqueFd fd;
  bool is_unix = false;
  bool owns_path = false;   // a unix socket file we created and unlink on close
  std::string server_name;  // SERVER_NAME default for requests on this socket
  std::string server_port;  // SERVER_PORT default ("" for unix sockets)
  std::string url;          // "http://127.0.0.1:8000" or "unix:/run/app.sock", for the log
};

struct ListenOptions {
  int backlog = 2048;
  bool reuse_port = false;
  int umask = -1;  // the umask while creating unix sockets (-1: the process's own)
};

// What ListenerSet::update changed, as the URLs the log shows.
struct ListenerChanges {
  std::vector<std::string> opened;
  std::vector<std::string> closed;
};

class ListenerSet {
 public:
  ListenerSet() = default;
  ListenerSet(ListenerSet&&) = default;
  ListenerSet& operator=(ListenerSet&&) = default;
  ~ListenerSet();

  // Bind and listen on every address. Throws std::runtime_error naming the address and the
  // failing call, e.g. `bind(127.0.0.1:80) failed: Permission denied`.
  static ListenerSet open(const std::vector<BindAddress>& addresses, int backlog,
                          bool reuse_port);
  static ListenerSet open(const std::vector<BindAddress>& addresses, const ListenOptions& opts);

  // Adopt listening sockets inherited over exec (USR2's ALICORN_FDS, systemd's LISTEN_FDS).
  // `owns_unix_paths`: this process may unlink their unix socket files when it closes them
  // (false for systemd's sockets). Throws std::runtime_error for an fd that is not a listening
  // stream socket.
  static ListenerSet inherit(const std::vector<int>& fds, bool owns_unix_paths);

  // Listen on exactly `addresses`: a socket already open whose local address is one of them is
  // kept (TCP by resolved address and port, unix by path, fd://N by number); the others are
  // opened; sockets no address asks for any more are closed (their unix socket files removed
  // when this process owns them and `unlink_paths`). All or nothing: if one address cannot be
  // opened, the set is left as it was and std::runtime_error is thrown.
  ListenerChanges update(const std::vector<BindAddress>& addresses, const ListenOptions& opts,
                         bool unlink_paths = true);

  std::vector<Listener>& items() { return items_; }
  const std::vector<Listener>& items() const { return items_; }
  std::vector<int> fds() const;
  // Close the sockets; `unlink_paths` also removes unix socket files this process created.
  void close(bool unlink_paths);

 private:
  std::vector<Listener> items_;
};

}  // namespace alicorn
