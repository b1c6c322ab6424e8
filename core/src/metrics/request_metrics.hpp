// The per-request increment point, called by the HTTP session where the access-log record is
// produced. Off (one predictable branch) unless metrics_bind or statsd_host is set; on, it
// adds to the worker's shared-memory counters (read by the master's /metrics) and sends the
// statsd request metrics.
#pragma once

#include <cstdint>

namespace alicorn {
struct Config;
}

namespace alicorn::metrics {

struct WorkerCounters;

extern bool g_enabled;
inline bool enabled() { return g_enabled; }

// In the worker, once, before it serves: `counters` is its slot's (may be null).
void init_worker(const Config& config, WorkerCounters* counters);

// A request reached the app / got its response (status 0 when none was sent).
void request_started();
void record_request(int status, int64_t duration_us);

}  // namespace alicorn::metrics
