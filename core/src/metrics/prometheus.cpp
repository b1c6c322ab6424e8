#include "metrics/prometheus.hpp"

#include <fmt/format.h>

namespace alicorn::metrics {
namespace {

// Label values escape backslash, double quote and newline.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

const char* const kClassNames[kStatusClasses] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};

}  // namespace

std::string render_prometheus(const ServerSnapshot& s) {
  std::string out;
  out.reserve(4096);
  header(out, "alicorn_requests_total", "counter", "HTTP requests answered, by status class.");
  for (size_t i = 0; i < kStatusClasses; ++i)
    out += fmt::format("alicorn_requests_total{{status=\"{}\"}} {}\n", kClassNames[i],
                       s.totals.by_class[i]);

  header(out, "alicorn_request_duration_seconds", "histogram",
         "Time from the request's arrival at the app to the end of its response.");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    cumulative += s.totals.buckets[i];
    std::string le = i + 1 < kBuckets ? fmt::format("{}", kBucketBoundsUs[i] / 1e6) : "+Inf";
    out += fmt::format("alicorn_request_duration_seconds_bucket{{le=\"{}\"}} {}\n", le, cumulative);
  }
  out += fmt::format("alicorn_request_duration_seconds_sum {}\n", s.totals.duration_sum_us / 1e6);
  out += fmt::format("alicorn_request_duration_seconds_count {}\n", cumulative);

  header(out, "alicorn_requests_in_flight", "gauge", "Requests being handled right now.");
  out += fmt::format("alicorn_requests_in_flight {}\n", s.totals.in_flight);

  header(out, "alicorn_workers", "gauge", "Worker processes alive.");
  out += fmt::format("alicorn_workers {}\n", s.workers.size());
  header(out, "alicorn_workers_target", "gauge", "Worker processes the master keeps running.");
  out += fmt::format("alicorn_workers_target {}\n", s.workers_target);

  header(out, "alicorn_worker_restarts_total", "counter",
         "Worker processes that ended, by reason (memory, max_requests, timeout, signal, error, "
         "retired).");
  for (const auto& [reason, n] : s.restarts)
    out += fmt::format("alicorn_worker_restarts_total{{reason=\"{}\"}} {}\n", label(reason), n);

  header(out, "alicorn_listen_backlog", "gauge",
         "Connections waiting in a listening socket's accept queue.");
  for (const auto& b : s.backlog)
    if (b.queued >= 0)
      out += fmt::format("alicorn_listen_backlog{{listener=\"{}\"}} {}\n", label(b.listener),
                         b.queued);

  header(out, "alicorn_worker_rss_bytes", "gauge", "Resident memory of each worker process.");
  for (const auto& w : s.workers)
    out += fmt::format("alicorn_worker_rss_bytes{{pid=\"{}\",slot=\"{}\"}} {}\n", w.pid, w.index,
                       w.rss_bytes);
  header(out, "alicorn_worker_requests_total", "counter", "Requests each living worker handled.");
  for (const auto& w : s.workers)
    out += fmt::format("alicorn_worker_requests_total{{pid=\"{}\",slot=\"{}\"}} {}\n", w.pid,
                       w.index, w.requests);
  return out;
}

}  // namespace alicorn::metrics
