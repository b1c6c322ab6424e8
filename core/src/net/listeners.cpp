#include "net/listeners.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <stdexcept>

namespace alicorn {
namespace {

[[noreturn]] void fail(const std::string& call, const std::string& what, int err) {
  throw std::runtime_error(fmt::format("{}({}) failed: {}", call, what, std::strerror(err)));
}

void set_nonblocking(int fd, const std::string& what) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) fail("fcntl", what, errno);
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

// Fill server_name/server_port/url from the socket's actual local address (port 0 resolved).
void describe(Listener& l) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return;
  char host[INET6_ADDRSTRLEN] = "";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    port = ntohs(sin->sin_port);
    l.url = fmt::format("http://{}:{}", host, port);
  } else if (ss.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
    port = ntohs(sin6->sin6_port);
    l.url = fmt::format("http://[{}]:{}", host, port);
  } else if (ss.ss_family == AF_UNIX) {
    auto* sun = reinterpret_cast<sockaddr_un*>(&ss);
    l.is_unix = true;
    l.server_name = sun->sun_path;
    l.server_port = "";
    l.url = fmt::format("unix:{}", sun->sun_path);
    return;
  }
  l.server_name = host;
  l.server_port = std::to_string(port);
}

Listener open_tcp(const BindAddress& addr, int backlog, bool reuse_port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(addr.port);
  const char* host = addr.host.empty() ? "0.0.0.0" : addr.host.c_str();
  int rc = ::getaddrinfo(host, port.c_str(), &hints, &res);
  if (rc != 0)
    throw std::runtime_error(
        fmt::format("getaddrinfo({}) failed: {}", addr.to_string(), ::gai_strerror(rc)));
  Listener l;
  l.address = addr;
  int last_err = 0;
  std::string last_call = "socket";
  // Like Gunicorn, bind the first address the name resolves to that works.
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) {
      last_err = errno;
      last_call = "socket";
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      last_err = errno;
      last_call = "bind";
      continue;
    }
    if (::listen(fd.get(), backlog) != 0) {
      last_err = errno;
      last_call = "listen";
      continue;
    }
    l.fd = std::move(fd);
    break;
  }
  ::freeaddrinfo(res);
  if (!l.fd) fail(last_call, addr.to_string(), last_err);
  set_nonblocking(l.fd.get(), addr.to_string());
  describe(l);
  return l;
}

Listener open_unix(const BindAddress& addr, int backlog, int mask) {
  Listener l;
  l.address = addr;
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (addr.path.size() >= sizeof sun.sun_path)
    throw std::runtime_error(fmt::format("bind({}) failed: path longer than {} bytes",
                                         addr.to_string(), sizeof sun.sun_path - 1));
  std::memcpy(sun.sun_path, addr.path.c_str(), addr.path.size() + 1);
  // A socket file left behind by a previous run is replaced; any other file is not touched.
  struct stat st {};
  if (::lstat(addr.path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      throw std::runtime_error(
          fmt::format("bind({}) failed: the path exists and is not a socket", addr.to_string()));
    ::unlink(addr.path.c_str());
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) fail("socket", addr.to_string(), errno);
  mode_t old_mask = mask >= 0 ? ::umask(static_cast<mode_t>(mask)) : 0;
  int bound = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun);
  int bind_errno = errno;
  if (mask >= 0) ::umask(old_mask);
  if (bound != 0) fail("bind", addr.to_string(), bind_errno);
  if (::listen(fd.get(), backlog) != 0) fail("listen", addr.to_string(), errno);
  l.fd = std::move(fd);
  l.owns_path = true;
  set_nonblocking(l.fd.get(), addr.to_string());
  describe(l);
  return l;
}

Listener adopt_fd(const BindAddress& addr) {
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(addr.fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
    fail("getsockopt", addr.to_string(), errno);
  if (type != SOCK_STREAM)
    throw std::runtime_error(fmt::format("{}: not a stream socket", addr.to_string()));
  int listening = 0;
  len = sizeof listening;
  if (::getsockopt(addr.fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && !listening)
    throw std::runtime_error(fmt::format("{}: the socket is not listening", addr.to_string()));
  Listener l;
  l.address = addr;
  l.fd.reset(addr.fd);
  set_nonblocking(l.fd.get(), addr.to_string());
  describe(l);
  return l;
}

Listener open_one(const BindAddress& a, const ListenOptions& opts) {
  switch (a.kind) {
    case BindAddress::Kind::Tcp: return open_tcp(a, opts.backlog, opts.reuse_port);
    case BindAddress::Kind::Unix: return open_unix(a, opts.backlog, opts.umask);
    case BindAddress::Kind::Fd: break;
  }
  return adopt_fd(a);
}

bool same_endpoint(const sockaddr_storage& ss, const sockaddr* sa) {
  if (ss.ss_family != sa->sa_family) return false;
  if (sa->sa_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    auto* b = reinterpret_cast<const sockaddr_in*>(sa);
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  if (sa->sa_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    auto* b = reinterpret_cast<const sockaddr_in6*>(sa);
    return a->sin6_port == b->sin6_port &&
           std::memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
  }
  return false;
}

// Is `l` the socket that `a` asks for?
bool matches(const Listener& l, const BindAddress& a) {
  // The very address it was opened for (also covers port 0, which resolves to another port).
  if (a.kind != BindAddress::Kind::Fd && l.address.kind == a.kind &&
      l.address.to_string() == a.to_string())
    return true;
  switch (a.kind) {
    case BindAddress::Kind::Fd:
      return l.fd.get() == a.fd;
    case BindAddress::Kind::Unix:
      return l.is_unix && l.server_name == a.path;
    case BindAddress::Kind::Tcp: break;
  }
  if (l.is_unix || a.port == 0) return false;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(a.port);
  const char* host = a.host.empty() ? "0.0.0.0" : a.host.c_str();
  if (::getaddrinfo(host, port.c_str(), &hints, &res) != 0) return false;
  bool found = false;
  for (addrinfo* ai = res; ai != nullptr && !found; ai = ai->ai_next)
    found = same_endpoint(ss, ai->ai_addr);
  ::freeaddrinfo(res);
  return found;
}

}  // namespace

ListenerSet::~ListenerSet() { close(false); }

ListenerSet ListenerSet::open(const std::vector<BindAddress>& addresses, int backlog,
                              bool reuse_port) {
  ListenOptions opts;
  opts.backlog = backlog;
  opts.reuse_port = reuse_port;
  return open(addresses, opts);
}

ListenerSet ListenerSet::open(const std::vector<BindAddress>& addresses,
                              const ListenOptions& opts) {
  ListenerSet set;
  try {
    for (const auto& a : addresses) set.items_.push_back(open_one(a, opts));
  } catch (...) {
    set.close(true);
    throw;
  }
  return set;
}

ListenerSet ListenerSet::inherit(const std::vector<int>& fds, bool owns_unix_paths) {
  ListenerSet set;
  for (int fd : fds) {
    BindAddress a;
    a.kind = BindAddress::Kind::Fd;
    a.fd = fd;
    a.spec = "fd://" + std::to_string(fd);
    Listener l = adopt_fd(a);
    if (l.is_unix) {
      l.owns_path = owns_unix_paths;
      l.address.path = l.server_name;
    }
    set.items_.push_back(std::move(l));
  }
  return set;
}

ListenerChanges ListenerSet::update(const std::vector<BindAddress>& addresses,
                                    const ListenOptions& opts, bool unlink_paths) {
  std::vector<bool> used(items_.size(), false);
  std::vector<int> pick(addresses.size(), -1);  // index into items_, or -1: open anew
  for (size_t i = 0; i < addresses.size(); ++i) {
    for (size_t j = 0; j < items_.size(); ++j) {
      if (!used[j] && matches(items_[j], addresses[i])) {
        used[j] = true;
        pick[i] = static_cast<int>(j);
        break;
      }
    }
  }
  std::vector<Listener> opened;
  try {
    for (size_t i = 0; i < addresses.size(); ++i)
      if (pick[i] < 0) opened.push_back(open_one(addresses[i], opts));
  } catch (...) {
    for (auto& l : opened)
      if (l.owns_path && !l.address.path.empty()) ::unlink(l.address.path.c_str());
    throw;
  }
  ListenerChanges changes;
  std::vector<Listener> next;
  size_t next_opened = 0;
  for (size_t i = 0; i < addresses.size(); ++i) {
    if (pick[i] >= 0) {
      Listener& kept = items_[static_cast<size_t>(pick[i])];
      bool owns = kept.owns_path;
      BindAddress wanted = addresses[i];
      if (wanted.kind == BindAddress::Kind::Fd) wanted = kept.address;
      kept.address = wanted;
      kept.owns_path = owns;
      next.push_back(std::move(kept));
    } else {
      changes.opened.push_back(opened[next_opened].url);
      next.push_back(std::move(opened[next_opened++]));
    }
  }
  for (size_t j = 0; j < items_.size(); ++j) {
    if (used[j]) continue;
    Listener& l = items_[j];
    changes.closed.push_back(l.url);
    if (unlink_paths && l.owns_path && !l.address.path.empty()) ::unlink(l.address.path.c_str());
    l.fd.reset();
  }
  items_ = std::move(next);
  return changes;
}

std::vector<int> ListenerSet::fds() const {
  std::vector<int> out;
  for (const auto& l : items_) out.push_back(l.fd.get());
  return out;
}

void ListenerSet::close(bool unlink_paths) {
  for (auto& l : items_) {
    if (unlink_paths && l.owns_path && !l.address.path.empty()) ::unlink(l.address.path.c_str());
    l.fd.reset();
  }
  items_.clear();
}

}  // namespace alicorn
