// Per-worker request counters, in the shared-memory WorkerSlot the arbiter and its workers
// share (plugin/worker_runtime.hpp). The worker only ever adds (relaxed atomics, no lock, no
// system call); the master reads them to serve /metrics and folds a dead worker's totals into
// its own so that Prometheus counters never go down.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace alicorn::metrics {

// Latency histogram bucket upper bounds, in microseconds (Prometheus' `le` in seconds).
inline constexpr int64_t kBucketBoundsUs[] = {1000,   2500,   5000,    10000,   25000,
                                              50000,  100000, 250000,  500000,  1000000,
                                              2500000, 5000000, 10000000};
inline constexpr size_t kBuckets = std::size(kBucketBoundsUs) + 1;  // the last one is +Inf
// Status classes: 1xx..5xx, and index 0 for anything else (a response that never started).
inline constexpr size_t kStatusClasses = 6;

struct WorkerCounters {
  std::atomic<uint64_t> by_class[kStatusClasses];
  std::atomic<uint64_t> buckets[kBuckets];  // not cumulative: each request lands in one
  std::atomic<uint64_t> duration_sum_us;
  std::atomic<int64_t> in_flight;
};

// Plain totals, summed over workers.
struct CounterTotals {
  uint64_t by_class[kStatusClasses] = {};
  uint64_t buckets[kBuckets] = {};
  uint64_t duration_sum_us = 0;
  int64_t in_flight = 0;

  void add(const WorkerCounters& c, bool with_in_flight);
  void add(const CounterTotals& t);
  uint64_t count() const;
};

void reset(WorkerCounters& c);

inline size_t status_class(int status) {
  return status >= 100 && status < 600 ? static_cast<size_t>(status / 100) : 0;
}

inline size_t bucket_for(int64_t duration_us) {
  size_t i = 0;
  while (i < std::size(kBucketBoundsUs) && duration_us > kBucketBoundsUs[i]) ++i;
  return i;
}

}  // namespace alicorn::metrics
