#include "log/syslog_sink.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include <spdlog/sinks/base_sink.h>

#include "config/config.hpp"
#include "log/log.hpp"
#include "util/unique_fd.hpp"

namespace alicorn::log {
namespace {

struct Facility {
  const char* name;
  int code;
};
const Facility kFacilities[] = {
    {"auth", 4},    {"authpriv", 10}, {"cron", 9},    {"daemon", 3},  {"ftp", 11},
    {"kern", 0},    {"lpr", 6},       {"mail", 2},    {"news", 7},    {"security", 4},
    {"syslog", 5},  {"user", 1},      {"uucp", 8},    {"local0", 16}, {"local1", 17},
    {"local2", 18}, {"local3", 19},   {"local4", 20}, {"local5", 21}, {"local6", 22},
    {"local7", 23}};

int severity(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::critical: return 2;
    case spdlog::level::err: return 3;
    case spdlog::level::warn: return 4;
    case spdlog::level::info: return 6;
    default: return 7;
  }
}

UniqueFd connect_target(const SyslogTarget& t, std::string& why) {
  if (t.kind == SyslogTarget::Kind::Unix) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, t.host.c_str(), std::min(t.host.size(), sizeof sun.sun_path - 1));
    for (int type : {SOCK_DGRAM, SOCK_STREAM}) {  // /dev/log is a datagram socket, mostly
      UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (fd && ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0) return fd;
      why = "connect(\"unix://" + t.host + "\") failed: " + std::strerror(errno);
    }
    return {};
  }
  addrinfo hints{};
  hints.ai_socktype = t.kind == SyslogTarget::Kind::Tcp ? SOCK_STREAM : SOCK_DGRAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(t.host.c_str(), t.port.c_str(), &hints, &res);
  if (rc != 0) {
    why = "cannot resolve " + t.host + ":" + t.port + ": " + ::gai_strerror(rc);
    return {};
  }
  UniqueFd out;
  for (addrinfo* ai = res; ai != nullptr && !out; ai = ai->ai_next) {
    // TCP connects blocking (once, at start), then sends without blocking.
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0));
    if (fd && ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) {
      ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
      out = std::move(fd);
    } else {
      why = "connect(" + t.host + ":" + t.port + ") failed: " + std::strerror(errno);
    }
  }
  ::freeaddrinfo(res);
  return out;
}

class SyslogSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  SyslogSink(UniqueFd fd, bool stream, int facility, std::string tag)
      : fd_(std::move(fd)), stream_(stream), facility_(facility), tag_(std::move(tag)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    buf_.clear();
    buf_ += '<';
    buf_ += std::to_string(facility_ * 8 + severity(msg.level));
    buf_ += '>';
    buf_ += tag_;
    buf_ += ": [";
    buf_ += std::to_string(::getpid());
    buf_ += "] ";
    buf_.append(msg.payload.data(), msg.payload.size());
    buf_ += stream_ ? '\n' : '\0';  // Python's SysLogHandler appends a NUL to datagrams
    ssize_t ignored = ::send(fd_.get(), buf_.data(), buf_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)ignored;
  }
  void flush_() override {}

 private:
  UniqueFd fd_;
  bool stream_;
  int facility_;
  std::string tag_;
  std::string buf_;
};

void replace_sink(spdlog::logger* logger, std::shared_ptr<SyslogSink> sink) {
  if (logger == nullptr) return;
  auto& sinks = logger->sinks();
  std::erase_if(sinks, [](const auto& s) { return dynamic_cast<SyslogSink*>(s.get()) != nullptr; });
  if (sink) sinks.push_back(std::move(sink));
}

}  // namespace

SyslogTarget parse_syslog_addr(const std::string& text) {
  SyslogTarget t;
  std::string rest;
  if (text.rfind("unix://", 0) == 0 || text.rfind("unix:", 0) == 0) {
    t.kind = SyslogTarget::Kind::Unix;
    t.host = text.substr(text.rfind("unix://", 0) == 0 ? 7 : 5);
    if (t.host.empty() || t.host.size() >= sizeof(sockaddr_un::sun_path))
      throw std::invalid_argument("syslog_addr: '" + text + "' has no usable socket path");
    return t;
  }
  if (text.rfind("udp://", 0) == 0) rest = text.substr(6);
  else if (text.rfind("tcp://", 0) == 0) {
    t.kind = SyslogTarget::Kind::Tcp;
    rest = text.substr(6);
  } else {
    throw std::invalid_argument("syslog_addr: '" + text +
                                "' is not udp://HOST:PORT, tcp://HOST:PORT or unix://PATH");
  }
  auto colon = rest.rfind(':');
  t.host = colon == std::string::npos ? rest : rest.substr(0, colon);
  t.port = colon == std::string::npos ? "514" : rest.substr(colon + 1);
  if (!t.host.empty() && t.host.front() == '[' && t.host.back() == ']')
    t.host = t.host.substr(1, t.host.size() - 2);
  char* end = nullptr;
  long port = std::strtol(t.port.c_str(), &end, 10);
  if (t.host.empty() || *end != '\0' || port < 1 || port > 65535)
    throw std::invalid_argument("syslog_addr: '" + text + "' has no valid HOST:PORT");
  return t;
}

int syslog_facility(const std::string& name) {
  std::string n;
  for (char c : name) n += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& f : kFacilities)
    if (n == f.name) return f.code;
  return -1;
}

void check_syslog_settings(const Config& config) {
  parse_syslog_addr(config.syslog_addr);
  if (syslog_facility(config.syslog_facility) < 0)
    throw std::invalid_argument("syslog_facility: '" + config.syslog_facility +
                                "' is not a facility (expected user, daemon, local0..local7, ...)");
}

void attach_syslog(const Config& config) {
  // logger_class: the Python logger sends to syslog itself (cfg.syslog), as Gunicorn's does.
  if (!config.syslog || uses_logger_class(config)) {
    replace_sink(&error(), nullptr);
    replace_sink(access(), nullptr);
    return;
  }
  SyslogTarget t;
  try {
    t = parse_syslog_addr(config.syslog_addr);
  } catch (const std::exception& e) {
    error().warn("{}; not logging to syslog", e.what());
    return;
  }
  int facility = std::max(0, syslog_facility(config.syslog_facility));
  std::string prefix = config.syslog_prefix ? *config.syslog_prefix
                       : config.proc_name  ? *config.proc_name
                       : config.wsgi_app   ? *config.wsgi_app
                                           : "alicorn";
  for (char& c : prefix)
    if (c == ':') c = '.';
  bool stream = t.kind != SyslogTarget::Kind::Udp && t.kind != SyslogTarget::Kind::Unix;
  auto make = [&](const char* name) -> std::shared_ptr<SyslogSink> {
    std::string why;
    UniqueFd fd = connect_target(t, why);
    if (!fd) {
      error().warn("syslog: {}; not logging to syslog", why);
      return nullptr;
    }
    return std::make_shared<SyslogSink>(std::move(fd), stream, facility,
                                        "gunicorn." + prefix + "." + name);
  };
  replace_sink(&error(), make("error"));
  if (access() != nullptr && !config.disable_redirect_access_to_syslog)
    replace_sink(access(), make("access"));
}

bool syslog_attached() {
  for (const auto& s : error().sinks())
    if (dynamic_cast<SyslogSink*>(s.get()) != nullptr) return true;
  return false;
}

void capture_output(const Config& config) {
  if (!config.capture_output) return;
  const std::string& target = config.errorlog;
  if (target.empty() || target == "-" || target == "stderr" || target == "stdout") return;
  struct stat at_path {}, at_fd {};
  if (::stat(target.c_str(), &at_path) == 0 && ::fstat(1, &at_fd) == 0 &&
      at_path.st_dev == at_fd.st_dev && at_path.st_ino == at_fd.st_ino)
    return;  // already there (checked again after each USR1 reopen)
  int fd = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    error().warn("capture_output: open(\"{}\") failed: {}", target, std::strerror(errno));
    return;
  }
  ::fflush(stdout);
  ::fflush(stderr);
  ::dup2(fd, 1);
  ::dup2(fd, 2);
  ::close(fd);
}

}  // namespace alicorn::log
