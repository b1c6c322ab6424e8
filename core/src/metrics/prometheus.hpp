// The Prometheus text exposition format (version 0.0.4) for what the master knows: request
// totals by status class, the latency histogram, in-flight requests, workers, restarts by
// reason, listen backlog and resident memory per worker. Pure: unit-tested on its own.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "metrics/worker_counters.hpp"

namespace alicorn::metrics {

struct WorkerInfo {
  pid_t pid = 0;
  uint32_t index = 0;        // slot number
  uint32_t serial = 0;       // Gunicorn's worker "age": the n-th worker this master started
  uint64_t requests = 0;     // requests it has handled
  uint64_t rss_bytes = 0;    // resident set size at the last sample (0 unknown)
  double uptime_s = 0;       // seconds since it was started
  int64_t started_ms = 0;    // CLOCK_MONOTONIC ms when the master first saw it
  std::string state;         // booting, running, replacing, retiring, timeout
};

struct ListenerBacklog {
  std::string listener;  // its URL, e.g. http://127.0.0.1:8000
  int64_t queued = -1;   // connections waiting for accept (-1 unknown: unix sockets)
};

struct ServerSnapshot {
  CounterTotals totals;                         // every worker, living and gone
  std::vector<WorkerInfo> workers;
  int workers_target = 0;                       // the number the master keeps running
  std::map<std::string, uint64_t> restarts;     // worker exits by reason
  std::vector<ListenerBacklog> backlog;
};

std::string render_prometheus(const ServerSnapshot& s);

}  // namespace alicorn::metrics
