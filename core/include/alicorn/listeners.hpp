// The listening sockets, opened by the arbiter before any worker is forked and inherited by
// every worker. Each failing system call is reported with its argument.
#pragma once

#include <string>
#include <vector>

#include "alicorn/bind.hpp"
#include "alicorn/unique_fd.hpp"

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

  std::vector<Listener>& items() { return items_; }
  const std::vector<Listener>& items() const { return items_; }
  std::vector<int> fds() const;
  // Close the sockets; `unlink_paths` also removes unix socket files this process created.
  void close(bool unlink_paths);

 private:
  std::vector<Listener> items_;
};

}  // namespace alicorn
