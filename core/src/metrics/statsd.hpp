// A statsd client with Gunicorn's metric names and types:
//   gunicorn.requests:1|c, gunicorn.request.status.NNN:1|c, gunicorn.request.duration:MS|ms
//   (sent by each worker per request), gunicorn.workers:N|g and gunicorn.backlog:N|ms (by the
//   master, about once a second), gunicorn.log.{critical,error,warning}:1|c (every process).
// statsd_prefix is prepended with a dot; dogstatsd_tags are appended as "|#tags".
// Sending never blocks: a non-blocking UDP (or unix datagram) socket, errors ignored, so an
// unreachable statsd costs nothing but a dropped datagram.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "util/unique_fd.hpp"

namespace spdlog::sinks {
class sink;
}

namespace alicorn::metrics {

struct StatsdTarget {
  bool unix_socket = false;
  std::string host;  // or the path for unix
  std::string port;
};

// "HOST:PORT", "[v6]:PORT" or "unix:PATH". Throws std::invalid_argument naming the problem.
StatsdTarget parse_statsd_host(const std::string& text);

// "prefix" -> "prefix.", "prefix." and "prefix..." -> "prefix.", "" -> "" (as Gunicorn).
std::string normalize_prefix(const std::string& prefix);

class Statsd {
 public:
  // Resolves and connects; on failure logs a warning and stays disabled (the server serves).
  Statsd(const std::string& host, const std::string& prefix, const std::string& tags);
  bool ok() const { return static_cast<bool>(fd_); }

  // One datagram; type is "c", "g" or "ms".
  void send(std::string_view name, std::string_view value, std::string_view type) const;
  // The three per-request metrics as one multi-metric datagram.
  void request(int status, int64_t duration_us) const;

  // Make the error logger count its warning, error and critical lines into `statsd` (null:
  // stop counting). Replaces a counter inherited from the master across fork.
  static void attach_log_counter(const Statsd* statsd);
  static bool log_counter_attached();

  // Appends "<prefix><name>:<value>|<type>[|#tags]" to out.
  void format(std::string& out, std::string_view name, std::string_view value,
              std::string_view type) const;

 private:
  void send_raw(const std::string& datagram) const;
  UniqueFd fd_;
  std::string prefix_;
  std::string tags_;
};

}  // namespace alicorn::metrics
