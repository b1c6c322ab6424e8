#include "metrics/statsd.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>

#include "log/log.hpp"

namespace alicorn::metrics {

StatsdTarget parse_statsd_host(const std::string& text) {
  StatsdTarget t;
  if (text.rfind("unix:", 0) == 0) {
    t.unix_socket = true;
    t.host = text.substr(5);
    if (t.host.empty()) throw std::invalid_argument("statsd_host: 'unix:' has no path");
    if (t.host.size() >= sizeof(sockaddr_un::sun_path))
      throw std::invalid_argument("statsd_host: unix socket path is too long");
    return t;
  }
  std::string host = text, port;
  if (!host.empty() && host[0] == '[') {
    auto close = host.find(']');
    if (close == std::string::npos)
      throw std::invalid_argument("statsd_host: '" + text + "' has an unclosed '['");
    if (close + 1 < host.size() && host[close + 1] == ':') port = host.substr(close + 2);
    host = host.substr(1, close - 1);
  } else {
    auto colon = host.rfind(':');
    if (colon != std::string::npos) {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
    }
  }
  if (host.empty()) host = "localhost";
  if (port.empty()) port = "8125";
  char* end = nullptr;
  long n = std::strtol(port.c_str(), &end, 10);
  if (*end != '\0' || n < 1 || n > 65535)
    throw std::invalid_argument("statsd_host: '" + text +
                                "' has no valid port (expected HOST:PORT or unix:PATH)");
  t.host = host;
  t.port = port;
  return t;
}

std::string normalize_prefix(const std::string& prefix) {
  size_t end = prefix.find_last_not_of('.');
  if (end == std::string::npos) return "";
  return prefix.substr(0, end + 1) + ".";
}

Statsd::Statsd(const std::string& host, const std::string& prefix, const std::string& tags)
    : prefix_(normalize_prefix(prefix)), tags_(tags) {
  StatsdTarget t;
  try {
    t = parse_statsd_host(host);
  } catch (const std::exception& e) {
    log::error().warn("{}; not sending statsd metrics", e.what());
    return;
  }
  if (t.unix_socket) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, t.host.c_str(), t.host.size());
    if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
      log::error().warn("statsd: connect(\"unix:{}\") failed: {}; not sending statsd metrics",
                        t.host, std::strerror(errno));
      return;
    }
    fd_ = std::move(fd);
    return;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(t.host.c_str(), t.port.c_str(), &hints, &res);
  if (rc != 0) {
    log::error().warn("statsd: cannot resolve {}:{}: {}; not sending statsd metrics", t.host,
                      t.port, ::gai_strerror(rc));
    return;
  }
  std::string why = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd && ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) {
      fd_ = std::move(fd);
      break;
    }
    why = std::strerror(errno);
  }
  ::freeaddrinfo(res);
  if (!fd_)
    log::error().warn("statsd: connect({}:{}) failed: {}; not sending statsd metrics", t.host,
                      t.port, why);
}

void Statsd::format(std::string& out, std::string_view name, std::string_view value,
                    std::string_view type) const {
  if (!out.empty()) out += '\n';
  out += prefix_;
  out += name;
  out += ':';
  out += value;
  out += '|';
  out += type;
  if (!tags_.empty()) {
    out += "|#";
    out += tags_;
  }
}

void Statsd::send_raw(const std::string& datagram) const {
  if (!fd_) return;
  ssize_t ignored = ::send(fd_.get(), datagram.data(), datagram.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  (void)ignored;  // a full buffer or an absent listener only drops the metric
}

void Statsd::send(std::string_view name, std::string_view value, std::string_view type) const {
  if (!fd_) return;
  std::string d;
  format(d, name, value, type);
  send_raw(d);
}

void Statsd::request(int status, int64_t duration_us) const {
  if (!fd_) return;
  thread_local std::string d;
  d.clear();
  char ms[32];
  auto n = fmt::format_to_n(ms, sizeof ms, "{:.3f}", static_cast<double>(duration_us) / 1000.0);
  format(d, "gunicorn.request.duration", std::string_view(ms, n.size), "ms");
  format(d, "gunicorn.requests", "1", "c");
  char name[40];
  auto m = fmt::format_to_n(name, sizeof name, "gunicorn.request.status.{}", status);
  format(d, std::string_view(name, m.size), "1", "c");
  send_raw(d);
}

namespace {

class LogCounterSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit LogCounterSink(const Statsd* statsd) : statsd_(statsd) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    switch (msg.level) {
      case spdlog::level::critical: statsd_->send("gunicorn.log.critical", "1", "c"); break;
      case spdlog::level::err: statsd_->send("gunicorn.log.error", "1", "c"); break;
      case spdlog::level::warn: statsd_->send("gunicorn.log.warning", "1", "c"); break;
      default: break;
    }
  }
  void flush_() override {}

 private:
  const Statsd* statsd_;
};

}  // namespace

bool Statsd::log_counter_attached() {
  for (const auto& s : log::error().sinks())
    if (dynamic_cast<LogCounterSink*>(s.get()) != nullptr) return true;
  return false;
}

void Statsd::attach_log_counter(const Statsd* statsd) {
  auto& sinks = log::error().sinks();
  std::erase_if(sinks, [](const auto& s) { return dynamic_cast<LogCounterSink*>(s.get()) != nullptr; });
  if (statsd == nullptr || !statsd->ok()) return;
  auto sink = std::make_shared<LogCounterSink>(statsd);
  sink->set_level(spdlog::level::warn);
  sinks.push_back(std::move(sink));
}

}  // namespace alicorn::metrics
