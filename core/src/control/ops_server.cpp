#include "control/ops_server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "plugin/worker_runtime.hpp"
#include "util/clock.hpp"

namespace alicorn::control {
namespace {

constexpr int kIoTimeoutMs = 2000;
constexpr size_t kMaxRequest = 8192;
OpsServer* g_current = nullptr;  // for the fork handler

// The fork gate. The serving thread holds it at all times except while it waits in poll(), and
// fork() takes it first (pthread_atfork's prepare), so the master forks only while that thread
// sits in a system call holding no lock of anyone's: not malloc's, not the sanitizer
// allocator's (which has no fork handlers of its own), not a logger's mutex. Without this, a
// fork that lands while the thread allocates leaves the child a copy of a lock nobody will
// release, and the worker hangs at its first malloc (seen under ASan: the worker stuck in
// SizeClassAllocator64::GetFromAllocator during Py_Initialize, answering nothing).
std::mutex g_fork_gate;

void lock_before_fork() { g_fork_gate.lock(); }
void unlock_in_parent() { g_fork_gate.unlock(); }

void close_in_forked_child() {
  g_fork_gate.unlock();  // locked by this (the forking) thread in lock_before_fork
  if (g_current != nullptr) g_current->close_in_child();
}

// poll() with the fork gate open (serving thread only).
int gated_poll(pollfd* fds, nfds_t n, int timeout_ms) {
  g_fork_gate.unlock();
  int rc = ::poll(fds, n, timeout_ms);
  int saved = errno;
  g_fork_gate.lock();
  errno = saved;
  return rc;
}

std::string errno_text() { return std::strerror(errno); }

// Read until `done(buffer)` or kMaxRequest bytes or the timeout; false on error/timeout.
template <class Done>
bool read_request(int fd, std::string& buf, Done done) {
  int64_t deadline = clock::mono_ms() + kIoTimeoutMs;
  char chunk[2048];
  while (!done(buf)) {
    if (buf.size() >= kMaxRequest) return false;
    int left = static_cast<int>(deadline - clock::mono_ms());
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (gated_poll(&p, 1, left) <= 0) return false;
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return done(buf) || (n == 0 && !buf.empty());
    buf.append(chunk, static_cast<size_t>(n));
  }
  return true;
}

void write_all(int fd, const std::string& data) {
  size_t off = 0;
  int64_t deadline = clock::mono_ms() + kIoTimeoutMs;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return;
    int left = static_cast<int>(deadline - clock::mono_ms());
    if (left <= 0) return;
    pollfd p{fd, POLLOUT, 0};
    gated_poll(&p, 1, left);
  }
}

std::string json_str(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c < 0x20) out += fmt::format("\\u{:04x}", c);
    else out += ch;
  }
  return out + "\"";
}

std::string mib(uint64_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0)); }

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

constexpr const char* kHelp =
    "show workers              pid, slot, serial, age, requests, RSS and state of each worker\n"
    "show stats                request totals, latency, in-flight, restarts\n"
    "show config               every resolved setting\n"
    "show listeners            listening sockets and their accept queues\n"
    "worker add [N]            N more workers (as TTIN)\n"
    "worker remove [N]         N fewer workers, oldest first (as TTOU)\n"
    "reload                    re-read the configuration, replace workers gracefully (as HUP)\n"
    "reopen                    reopen the log files (as USR1)\n"
    "shutdown [graceful|quick] stop the server (as TERM, or INT)\n"
    "help                      this list\n";

}  // namespace

uint64_t read_rss_bytes(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/statm", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  unsigned long long size = 0, resident = 0;
  if (std::sscanf(buf, "%llu %llu", &size, &resident) != 2) return 0;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

int64_t accept_queue_length(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) return -1;
  tcp_info info{};
  socklen_t ilen = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &ilen) != 0) return -1;
  return info.tcpi_unacked;  // on a listening socket: the current accept queue
}

OpsServer::OpsServer(pid_t master_pid, WorkerSlot* slots, size_t slot_count)
    : master_pid_(master_pid), slots_(slots), slot_count_(slot_count) {
  static bool registered = false;
  if (!registered) {
    registered = true;
    ::pthread_atfork(lock_before_fork, unlock_in_parent, close_in_forked_child);
  }
  g_current = this;
}

OpsServer::~OpsServer() {
  if (thread_.joinable()) {
    char b = 1;
    ssize_t ignored = ::write(stop_write_.get(), &b, 1);
    (void)ignored;
    thread_.join();
  }
  if (g_current == this) g_current = nullptr;
  // Unix socket files are removed only while still ours (a USR2 successor binds the same path).
  metrics_.close(false);
  if (metrics_addr_ && metrics_addr_->kind == BindAddress::Kind::Unix && metrics_ino_ != 0) {
    struct stat st {};
    if (::stat(metrics_addr_->path.c_str(), &st) == 0 && st.st_dev == metrics_dev_ &&
        st.st_ino == metrics_ino_)
      ::unlink(metrics_addr_->path.c_str());
  }
  if (control_) {
    // Remove the socket file only if it is still ours: after a USR2 upgrade the new master
    // serves on the same path.
    struct stat st {};
    if (::stat(control_path_.c_str(), &st) == 0 && st.st_dev == control_dev_ &&
        st.st_ino == control_ino_)
      ::unlink(control_path_.c_str());
  }
}

void OpsServer::close_in_child() {
  // Raw closes: the child must neither join the (absent) thread nor unlink anything.
  for (int fd : metrics_.fds()) ::close(fd);
  for (int fd : {control_.get(), stop_read_.get(), stop_write_.get(), serving_fd_.load()})
    if (fd >= 0) ::close(fd);
  g_current = nullptr;
}

void OpsServer::open(const Config& config, bool upgrading) {
  if (config.metrics_bind) {
    try {
      metrics_addr_ = parse_bind(*config.metrics_bind);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("metrics_bind: ") + e.what());
    }
    if (metrics_addr_->kind == BindAddress::Kind::Fd)
      throw std::runtime_error("metrics_bind: '" + *config.metrics_bind +
                               "' is an fd:// address (expected HOST:PORT or unix:PATH)");
    try {
      open_metrics();
    } catch (const std::exception& e) {
      if (!upgrading) throw std::runtime_error(std::string("metrics_bind: ") + e.what());
      metrics_pending_ = true;  // the old master still holds it
    }
  }
  if (!config.control_socket_disable) open_control(config, upgrading);
  if (config.statsd_host) {
    try {
      metrics::parse_statsd_host(*config.statsd_host);  // a typo is refused; DNS may fail later
    } catch (const std::exception& e) {
      throw std::runtime_error(e.what());
    }
    statsd_ = std::make_unique<metrics::Statsd>(*config.statsd_host,
                                                config.statsd_prefix.value_or(""),
                                                config.dogstatsd_tags.value_or(""));
    if (!statsd_->ok()) statsd_.reset();
  }
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
    throw std::runtime_error("pipe2() failed: " + errno_text());
  stop_read_.reset(p[0]);
  stop_write_.reset(p[1]);
}

void OpsServer::open_metrics() {
  ListenOptions o;
  o.backlog = 64;
  metrics_ = ListenerSet::open({*metrics_addr_}, o);
  for (int fd : metrics_.fds()) {
    int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  }
  metrics_pending_ = false;
  struct stat st {};
  if (metrics_addr_->kind == BindAddress::Kind::Unix && ::stat(metrics_addr_->path.c_str(), &st) == 0) {
    metrics_dev_ = st.st_dev;
    metrics_ino_ = st.st_ino;
  }
}

void OpsServer::retry_metrics_bind() {
  if (!metrics_pending_) return;
  try {
    open_metrics();
    char b = 2;  // the thread polls the new socket from its next round
    ssize_t ignored = ::write(stop_write_.get(), &b, 1);
    (void)ignored;
  } catch (...) {
  }
}

void OpsServer::open_control(const Config& config, bool upgrading) {
  namespace fs = std::filesystem;
  bool is_default = config.control_socket == Config{}.control_socket;
  std::error_code ec;
  fs::path path = fs::absolute(config.control_socket, ec);
  if (ec) path = config.control_socket;
  auto fail = [&](const std::string& why) {
    if (is_default) return false;  // the default path is best effort
    throw std::runtime_error("control_socket: " + why);
  };
  std::string p = path.string();
  if (p.size() >= sizeof(sockaddr_un::sun_path)) {
    fail("'" + p + "' is too long for a unix socket path");
    return;
  }
  fs::path dir = path.parent_path();
  if (!fs::is_directory(dir, ec)) {
    fail("cannot create '" + p + "': the folder '" + dir.string() + "' does not exist");
    return;
  }
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, p.c_str(), p.size());
  struct stat st {};
  if (::lstat(p.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      fail("'" + p + "' exists and is not a socket");
      return;
    }
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    bool live = probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0;
    if (live && !upgrading) {
      fail("'" + p + "' is in use by another running server");
      return;
    }
    ::unlink(p.c_str());  // stale, or the old master's during an upgrade
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) {
    fail("socket() failed: " + errno_text());
    return;
  }
  mode_t old = ::umask(0777 & ~static_cast<mode_t>(config.control_socket_mode));
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun);
  int saved = errno;
  ::umask(old);
  if (rc != 0) {
    fail("bind(\"" + p + "\") failed: " + std::strerror(saved));
    return;
  }
  ::chmod(p.c_str(), static_cast<mode_t>(config.control_socket_mode));
  if (::listen(fd.get(), 16) != 0) {
    ::unlink(p.c_str());
    fail("listen(\"" + p + "\") failed: " + errno_text());
    return;
  }
  if (::stat(p.c_str(), &st) == 0) {
    control_dev_ = st.st_dev;
    control_ino_ = st.st_ino;
  }
  control_path_ = p;
  control_ = std::move(fd);
}

void OpsServer::start() {
  if (!metrics_addr_ && !control_) return;
  // Return once the thread runs inside the gate: its start-up (the thread library's and the
  // sanitizers' bookkeeping, which take their own locks) is then over before any fork.
  thread_ = std::thread([this] {
    std::lock_guard gate(g_fork_gate);
    started_.store(true);
    started_.notify_one();
    run();
  });
  started_.wait(false);
}

int64_t OpsServer::first_seen_ms(pid_t pid, int64_t now_ms) {
  return first_seen_.emplace(pid, now_ms).first->second;
}

void OpsServer::publish(metrics::ServerSnapshot snapshot, std::string config_json) {
  std::lock_guard lock(mu_);
  snapshot.restarts = restarts_;
  snapshot_ = std::move(snapshot);
  config_json_ = std::move(config_json);
  pending_target_delta_ = 0;
}

void OpsServer::worker_exited(pid_t pid, const std::string& reason, size_t slot_index) {
  first_seen_.erase(pid);
  recycled_.erase(pid);
  std::lock_guard lock(mu_);
  ++restarts_[reason];
  if (slot_index < slot_count_) {
    gone_.add(slots_[slot_index].counters, false);
    metrics::reset(slots_[slot_index].counters);
  }
}

std::vector<int> OpsServer::take_worker_changes() {
  std::lock_guard lock(mu_);
  return std::exchange(worker_changes_, {});
}

metrics::ServerSnapshot OpsServer::aggregate() {
  std::lock_guard lock(mu_);
  metrics::ServerSnapshot s = snapshot_;
  s.restarts = restarts_;
  s.totals = gone_;
  for (size_t i = 0; i < slot_count_; ++i) s.totals.add(slots_[i].counters, true);
  // The living workers as the slots say now (the arbiter's picture may be up to a second
  // old), with what only the arbiter knows (serial, retiring, ...) from its last snapshot.
  int64_t now = clock::mono_ms();
  std::vector<metrics::WorkerInfo> live;
  for (size_t i = 0; i < slot_count_; ++i) {
    pid_t pid = slots_[i].pid.load(std::memory_order_relaxed);
    if (pid <= 0) continue;
    metrics::WorkerInfo w;
    auto known = std::find_if(s.workers.begin(), s.workers.end(),
                              [&](const metrics::WorkerInfo& k) { return k.pid == pid; });
    if (known != s.workers.end()) {
      w = *known;
      w.uptime_s = static_cast<double>(now - w.started_ms) / 1000.0;
    } else {
      w.pid = pid;
      w.index = static_cast<uint32_t>(i);
      w.rss_bytes = read_rss_bytes(pid);
      w.state = "booting";
    }
    w.requests = slots_[i].requests.load(std::memory_order_relaxed);
    if (w.state == "booting" && slots_[i].booted.load() != 0) w.state = "running";
    live.push_back(std::move(w));
  }
  s.workers = std::move(live);
  return s;
}

// ---- the thread ---------------------------------------------------------------------------

void OpsServer::run() {
  sigset_t all;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals are the arbiter thread's
  for (;;) {
    std::vector<pollfd> fds;
    fds.push_back({stop_read_.get(), POLLIN, 0});
    if (control_) fds.push_back({control_.get(), POLLIN, 0});
    std::vector<int> metric_fds = metrics_pending_ ? std::vector<int>{} : metrics_.fds();
    for (int fd : metric_fds) fds.push_back({fd, POLLIN, 0});
    if (gated_poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents) {
      char b = 0;
      bool stop = false;
      while (::read(stop_read_.get(), &b, 1) == 1) stop = stop || b == 1;
      if (stop) return;
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      UniqueFd conn(::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!conn) {
        // Out of descriptors or memory: the listener stays readable; do not spin on it.
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
          gated_poll(nullptr, 0, 100);
        continue;
      }
      serving_fd_.store(conn.get());
      if (control_ && fds[i].fd == control_.get()) serve_control(conn.get());
      else serve_metrics(conn.get());
      // A worker forked meanwhile holds a copy of this fd (the fork handler closes it, but
      // may have run before the accept): shutdown ends the connection whoever holds it.
      ::shutdown(conn.get(), SHUT_RDWR);
      serving_fd_.store(-1);
    }
  }
}

void OpsServer::serve_metrics(int fd) {
  std::string req;
  if (!read_request(fd, req, [](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos || b.find("\n\n") != std::string::npos; }))
    return;
  std::string line = req.substr(0, req.find_first_of("\r\n"));
  auto w = words(line);
  std::string status = "200 OK", type = "text/plain; version=0.0.4; charset=utf-8", body;
  if (w.size() != 3 || w[2].rfind("HTTP/1.", 0) != 0) {
    status = "400 Bad Request";
    type = "text/plain";
    body = "Bad Request\n";
  } else if (w[0] != "GET" && w[0] != "HEAD") {
    status = "405 Method Not Allowed";
    type = "text/plain";
    body = "Method Not Allowed\n";
  } else if (std::string path = w[1].substr(0, w[1].find('?')); path != "/metrics" && path != "/") {
    status = "404 Not Found";
    type = "text/plain";
    body = "Not Found: the metrics are at /metrics\n";
  } else {
    body = metrics::render_prometheus(aggregate());
  }
  std::string head = fmt::format(
      "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
      status, type, body.size());
  write_all(fd, w.size() == 3 && w[0] == "HEAD" ? head : head + body);
}

void OpsServer::serve_control(int fd) {
  // Only the socket's owner (and root) may steer the server, whatever the file mode says.
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
      (cred.uid != ::geteuid() && cred.uid != 0)) {
    write_all(fd, "error\n{\"error\": \"permission denied: not the server's user\"}\n");
    return;
  }
  std::string req;
  if (!read_request(fd, req, [](const std::string& b) { return b.find('\n') != std::string::npos; }))
    return;
  write_all(fd, command(req.substr(0, req.find('\n'))));
}

// One command line -> "ok\n" or "error\n", then the payload (JSON when the line starts with
// --json, else text for a person).
std::string OpsServer::command(const std::string& line) {
  auto w = words(line);
  bool json = !w.empty() && w[0] == "--json";
  if (json) w.erase(w.begin());
  auto ok = [&](const std::string& j, const std::string& text) {
    return "ok\n" + (json ? j + "\n" : text);
  };
  auto err = [&](const std::string& msg) {
    return "error\n" + (json ? "{\"error\": " + json_str(msg) + "}\n" : msg + "\n");
  };
  auto count_arg = [&](size_t i, int& n) {
    n = 1;
    if (w.size() <= i) return true;
    if (w.size() > i + 1) return false;
    char* end = nullptr;
    long v = std::strtol(w[i].c_str(), &end, 10);
    if (*end != '\0' || v < 1 || v > 1024) return false;
    n = static_cast<int>(v);
    return true;
  };
  if (w.empty()) return err("empty command (try: help)");
  const std::string& verb = w[0];
  std::string sub = w.size() > 1 ? w[1] : "";

  if (verb == "help") return ok("{\"commands\": " + json_str(kHelp) + "}", kHelp);

  if (verb == "show" && sub == "workers" && w.size() == 2) {
    metrics::ServerSnapshot s = aggregate();
    std::string j = "{\"workers\": [", t;
    t += fmt::format("{:<8} {:>4} {:>6} {:>9} {:>9} {:>11}  {}\n", "PID", "SLOT", "SERIAL", "AGE",
                     "REQUESTS", "RSS", "STATE");
    for (size_t i = 0; i < s.workers.size(); ++i) {
      const auto& x = s.workers[i];
      j += fmt::format("{}{{\"pid\": {}, \"slot\": {}, \"serial\": {}, \"age\": {:.1f}, "
                       "\"requests\": {}, \"rss_bytes\": {}, \"state\": {}}}",
                       i ? ", " : "", x.pid, x.index, x.serial, x.uptime_s, x.requests,
                       x.rss_bytes, json_str(x.state));
      t += fmt::format("{:<8} {:>4} {:>6} {:>8.1f}s {:>9} {:>11}  {}\n", x.pid, x.index, x.serial,
                       x.uptime_s, x.requests, mib(x.rss_bytes), x.state);
    }
    j += fmt::format("], \"target\": {}}}", s.workers_target);
    t += fmt::format("{} workers (target {})\n", s.workers.size(), s.workers_target);
    return ok(j, t);
  }
  if (verb == "show" && sub == "stats" && w.size() == 2) {
    metrics::ServerSnapshot s = aggregate();
    uint64_t n = s.totals.count();
    double mean_ms = n ? static_cast<double>(s.totals.duration_sum_us) / 1000.0 / static_cast<double>(n) : 0;
    std::string restarts = "{", rt;
    for (const auto& [reason, c] : s.restarts) {
      restarts += (restarts.size() > 1 ? ", " : "") + json_str(reason) + ": " + std::to_string(c);
      rt += fmt::format(" {}={}", reason, c);
    }
    restarts += "}";
    const auto& b = s.totals.by_class;
    std::string j = fmt::format(
        "{{\"requests\": {}, \"by_status\": {{\"1xx\": {}, \"2xx\": {}, \"3xx\": {}, \"4xx\": {}, "
        "\"5xx\": {}, \"other\": {}}}, \"mean_duration_ms\": {:.3f}, \"in_flight\": {}, "
        "\"workers\": {}, \"target\": {}, \"restarts\": {}}}",
        n, b[1], b[2], b[3], b[4], b[5], b[0], mean_ms, s.totals.in_flight, s.workers.size(),
        s.workers_target, restarts);
    std::string t = fmt::format(
        "requests: {} (1xx {}, 2xx {}, 3xx {}, 4xx {}, 5xx {}, other {})\nmean duration: {:.3f} ms\n"
        "in flight: {}\nworkers: {} (target {})\nrestarts:{}\n",
        n, b[1], b[2], b[3], b[4], b[5], b[0], mean_ms, s.totals.in_flight, s.workers.size(),
        s.workers_target, rt.empty() ? " none" : rt);
    if (!metrics_addr_) t += "(request counters are kept only when metrics_bind is set)\n";
    return ok(j, t);
  }
  if (verb == "show" && sub == "config" && w.size() == 2) {
    std::string cfg;
    {
      std::lock_guard lock(mu_);
      cfg = config_json_;
    }
    std::string t = cfg;  // one setting a line for a person
    std::string pretty;
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < t.size(); ++i) {
      char c = t[i];
      if (c == '"' && (i == 0 || t[i - 1] != '\\')) in_str = !in_str;
      if (!in_str && c == '[') ++depth;
      if (!in_str && c == ']') --depth;
      if (!in_str && depth == 0 && (c == '{' || c == '}')) continue;
      if (!in_str && depth == 0 && c == ',') {
        pretty += '\n';
        if (i + 1 < t.size() && t[i + 1] == ' ') ++i;
        continue;
      }
      pretty += c;
    }
    return ok(cfg, pretty + "\n");
  }
  if (verb == "show" && sub == "listeners" && w.size() == 2) {
    metrics::ServerSnapshot s = aggregate();
    std::string j = "{\"listeners\": [", t;
    for (size_t i = 0; i < s.backlog.size(); ++i) {
      j += fmt::format("{}{{\"address\": {}, \"backlog\": {}}}", i ? ", " : "",
                       json_str(s.backlog[i].listener), s.backlog[i].queued);
      t += s.backlog[i].listener +
           (s.backlog[i].queued >= 0 ? fmt::format("  (accept queue {})", s.backlog[i].queued) : "") +
           "\n";
    }
    return ok(j + "]}", t);
  }
  if (verb == "worker" && (sub == "add" || sub == "remove")) {
    int n = 1;
    if (!count_arg(2, n)) return err("worker " + sub + ": expected a count from 1 to 1024");
    int target;
    {
      std::lock_guard lock(mu_);
      target = snapshot_.workers_target + pending_target_delta_;
      if (sub == "remove" && target - n < 1)
        return err(fmt::format("worker remove: the server runs {} worker(s) and keeps at least 1", target));
      int delta = sub == "add" ? n : -n;
      for (int i = 0; i < n; ++i) worker_changes_.push_back(delta > 0 ? 1 : -1);
      pending_target_delta_ += delta;
      target += delta;
    }
    ::kill(master_pid_, SIGCHLD);  // wake the arbiter's loop
    return ok(fmt::format("{{\"target\": {}}}", target), fmt::format("workers target: {}\n", target));
  }
  auto signal_verb = [&](int sig, const char* what) {
    if (::kill(master_pid_, sig) != 0) return err(std::string("kill() failed: ") + errno_text());
    return ok(fmt::format("{{\"done\": {}}}", json_str(what)), std::string(what) + "\n");
  };
  if (verb == "reload" && w.size() == 1) return signal_verb(SIGHUP, "reloading");
  if (verb == "reopen" && w.size() == 1) return signal_verb(SIGUSR1, "reopening the log files");
  if (verb == "shutdown" && (w.size() == 1 || (w.size() == 2 && sub == "graceful")))
    return signal_verb(SIGTERM, "shutting down gracefully");
  if (verb == "shutdown" && w.size() == 2 && sub == "quick") return signal_verb(SIGINT, "shutting down now");
  return err("unknown command '" + line + "' (try: help)");
}

}  // namespace alicorn::control
