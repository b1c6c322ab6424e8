#include "metrics/request_metrics.hpp"

#include <memory>

#include "config/config.hpp"
#include "log/log.hpp"
#include "log/syslog_sink.hpp"
#include "metrics/statsd.hpp"
#include "metrics/worker_counters.hpp"

namespace alicorn::metrics {

bool g_enabled = false;

namespace {
WorkerCounters* g_counters = nullptr;
std::unique_ptr<Statsd> g_statsd;  // lives until _exit
}  // namespace

void init_worker(const Config& config, WorkerCounters* counters) {
  log::attach_syslog(config);  // its own sockets, not the master's
  g_counters = config.metrics_bind ? counters : nullptr;
  g_statsd.reset();
  if (config.statsd_host) {
    g_statsd = std::make_unique<Statsd>(*config.statsd_host, config.statsd_prefix.value_or(""),
                                        config.dogstatsd_tags.value_or(""));
    if (!g_statsd->ok()) g_statsd.reset();
  }
  Statsd::attach_log_counter(g_statsd.get());
  g_enabled = g_counters != nullptr || g_statsd != nullptr;
}

void request_started() {
  if (g_counters) g_counters->in_flight.fetch_add(1, std::memory_order_relaxed);
}

void record_request(int status, int64_t duration_us) {
  if (duration_us < 0) duration_us = 0;
  if (WorkerCounters* c = g_counters) {
    c->by_class[status_class(status)].fetch_add(1, std::memory_order_relaxed);
    c->buckets[bucket_for(duration_us)].fetch_add(1, std::memory_order_relaxed);
    c->duration_sum_us.fetch_add(static_cast<uint64_t>(duration_us), std::memory_order_relaxed);
    c->in_flight.fetch_sub(1, std::memory_order_relaxed);
  }
  if (g_statsd) g_statsd->request(status, duration_us);
}

}  // namespace alicorn::metrics
