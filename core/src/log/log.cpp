#include "log/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <stdexcept>

namespace alicorn::log {
namespace {

// A sink writing whole lines to an fd opened O_APPEND, so lines from the master and every worker
// interleave cleanly in one file, and that can be reopened after logrotate renamed the file.
class FdSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit FdSink(std::string target) : target_(std::move(target)) { open_target(); }
  ~FdSink() override {
    if (owned_ && fd_ >= 0) ::close(fd_);
  }
  void reopen() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!owned_) return;
    int old = fd_;
    open_target();
    if (old >= 0 && old != fd_) ::close(old);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // nowhere to report a failing log write
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  void flush_() override {}

 private:
  void open_target() {
    if (target_ == "-" || target_ == "stderr") {
      fd_ = STDERR_FILENO;
      owned_ = false;
    } else if (target_ == "stdout") {
      fd_ = STDOUT_FILENO;
      owned_ = false;
    } else {
      int fd = ::open(target_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0)
        throw std::runtime_error("open(\"" + target_ + "\") failed: " + std::strerror(errno));
      fd_ = fd;
      owned_ = true;
    }
  }
  std::string target_;
  int fd_ = -1;
  bool owned_ = false;
};

// %* prints the level as Gunicorn does: INFO, WARNING, ERROR, DEBUG, CRITICAL.
class LevelFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static constexpr std::string_view names[] = {"TRACE", "DEBUG", "INFO", "WARNING",
                                                 "ERROR", "CRITICAL", "OFF"};
    auto name = names[static_cast<int>(msg.level)];
    dest.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LevelFlag>();
  }
};

// %# prints the UTC offset as Gunicorn does: +0000.
class OffsetFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm& tm,
              spdlog::memory_buf_t& dest) override {
    char buf[16];
    size_t n = std::strftime(buf, sizeof buf, "%z", &tm);
    dest.append(buf, buf + n);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<OffsetFlag>();
  }
};

std::shared_ptr<spdlog::logger> g_error;
std::shared_ptr<FdSink> g_error_sink;
std::shared_ptr<spdlog::logger> g_access;
std::shared_ptr<FdSink> g_access_sink;
void (*g_reopen_hook)() = nullptr;

spdlog::level::level_enum parse_level(const std::string& level) {
  if (level == "debug") return spdlog::level::debug;
  if (level == "warning") return spdlog::level::warn;
  if (level == "error") return spdlog::level::err;
  if (level == "critical") return spdlog::level::critical;
  return spdlog::level::info;
}

}  // namespace

void setup_error_log(const std::string& target, const std::string& level) {
  auto sink = std::make_shared<FdSink>(target);
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<LevelFlag>('*').add_flag<OffsetFlag>('#').set_pattern(
      "[%Y-%m-%d %H:%M:%S %#] [%P] [%*] %v");
  sink->set_formatter(std::move(formatter));
  auto logger = std::make_shared<spdlog::logger>("error", sink);
  logger->set_level(parse_level(level));
  logger->flush_on(spdlog::level::trace);
  g_error_sink = sink;
  g_error = logger;
}

void setup_access_log(const std::string& target) {
  if (target.empty()) {
    g_access.reset();
    g_access_sink.reset();
    return;
  }
  auto sink = std::make_shared<FdSink>(target == "-" ? "stdout" : target);
  sink->set_formatter(std::make_unique<spdlog::pattern_formatter>("%v"));
  g_access_sink = sink;
  g_access = std::make_shared<spdlog::logger>("access", sink);
  g_access->set_level(spdlog::level::info);
}

void reopen() {
  if (g_error_sink) g_error_sink->reopen();
  if (g_access_sink) g_access_sink->reopen();
  if (g_reopen_hook) g_reopen_hook();
}

void set_reopen_hook(void (*hook)()) { g_reopen_hook = hook; }

void route_errors_only(std::shared_ptr<spdlog::sinks::sink> error_sink,
                       spdlog::level::level_enum error_level) {
  if (!g_error) setup_error_log("-", "info");
  g_error->sinks() = {std::move(error_sink)};
  g_error->set_level(error_level);
  g_access.reset();
}

void route_to(std::shared_ptr<spdlog::sinks::sink> error_sink,
              std::shared_ptr<spdlog::sinks::sink> access_sink,
              spdlog::level::level_enum error_level) {
  if (!g_error) setup_error_log("-", "info");
  g_error->sinks() = {std::move(error_sink)};
  g_error->set_level(error_level);
  g_access = std::make_shared<spdlog::logger>("access", std::move(access_sink));
  g_access->set_level(spdlog::level::info);
}

std::shared_ptr<spdlog::sinks::sink> native_error_sink() { return g_error_sink; }

spdlog::logger& error() {
  if (!g_error) setup_error_log("-", "info");
  return *g_error;
}

spdlog::logger* access() { return g_access.get(); }

}  // namespace alicorn::log
