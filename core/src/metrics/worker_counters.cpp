#include "metrics/worker_counters.hpp"

namespace alicorn::metrics {

void CounterTotals::add(const WorkerCounters& c, bool with_in_flight) {
  for (size_t i = 0; i < kStatusClasses; ++i) by_class[i] += c.by_class[i].load(std::memory_order_relaxed);
  for (size_t i = 0; i < kBuckets; ++i) buckets[i] += c.buckets[i].load(std::memory_order_relaxed);
  duration_sum_us += c.duration_sum_us.load(std::memory_order_relaxed);
  if (with_in_flight) {
    int64_t n = c.in_flight.load(std::memory_order_relaxed);
    in_flight += n > 0 ? n : 0;
  }
}

void CounterTotals::add(const CounterTotals& t) {
  for (size_t i = 0; i < kStatusClasses; ++i) by_class[i] += t.by_class[i];
  for (size_t i = 0; i < kBuckets; ++i) buckets[i] += t.buckets[i];
  duration_sum_us += t.duration_sum_us;
  in_flight += t.in_flight;
}

uint64_t CounterTotals::count() const {
  uint64_t n = 0;
  for (uint64_t b : buckets) n += b;
  return n;
}

void reset(WorkerCounters& c) {
  for (auto& a : c.by_class) a.store(0, std::memory_order_relaxed);
  for (auto& a : c.buckets) a.store(0, std::memory_order_relaxed);
  c.duration_sum_us.store(0, std::memory_order_relaxed);
  c.in_flight.store(0, std::memory_order_relaxed);
}

}  // namespace alicorn::metrics
