// syslog output for the error and access logs (Gunicorn's `syslog`, `syslog_addr`,
// `syslog_prefix`, `syslog_facility`, `disable_redirect_access_to_syslog`), and
// `capture_output` (the processes' stdout/stderr into the error log file).
// Messages are Gunicorn's: "<PRI>gunicorn.<prefix>.<error|access>: [<pid>] <message>", sent
// without blocking (a datagram that cannot be sent is dropped, never waited for).
#pragma once

#include <string>

namespace alicorn {
struct Config;
}

namespace alicorn::log {

struct SyslogTarget {
  enum class Kind { Udp, Tcp, Unix } kind = Kind::Udp;
  std::string host;  // or the path for unix
  std::string port;
};

// "udp://HOST:PORT", "tcp://HOST:PORT", "unix://PATH" (or "unix:PATH"). Throws
// std::invalid_argument naming syslog_addr.
SyslogTarget parse_syslog_addr(const std::string& text);
// "user", "local0".."local7", ... -> the facility number; -1 when unknown.
int syslog_facility(const std::string& name);

// Validate the settings (throws std::invalid_argument), for startup.
void check_syslog_settings(const Config& config);

// Add (or replace) the syslog sinks on the error and access loggers of this process, per
// `config` (nothing when syslog is off). Never throws: a target that cannot be reached logs a
// warning.
void attach_syslog(const Config& config);
bool syslog_attached();

// capture_output with a file error log: fds 1 and 2 point at it (again after a reopen).
void capture_output(const Config& config);

}  // namespace alicorn::log
