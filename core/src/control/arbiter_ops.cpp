// The arbiter's operations hooks (declared in master/arbiter.hpp, called from small marked
// call sites there): the metrics and control endpoints, memory recycling, the master's statsd
// gauges. Kept here so the arbiter's own file stays about processes and signals.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>

#include "control/ops_server.hpp"
#include "log/log.hpp"
#include "log/syslog_sink.hpp"
#include "master/arbiter.hpp"
#include "util/clock.hpp"

namespace alicorn {

namespace {
constexpr int64_t kSampleEveryMs = 500;
}

int Arbiter::ops_open() {
  try {
    log::check_syslog_settings(config_);
  } catch (const std::exception& e) {
    log::error().error("{}", e.what());
    return kExitConfig;
  }
  log::attach_syslog(config_);
  log::capture_output(config_);
  try {
    ops_ = std::make_unique<control::OpsServer>(pid_, slots_, slot_count_);
    ops_->open(config_, parent_master_ != 0);
    ops_->start();
  } catch (const std::exception& e) {
    log::error().error("{}", e.what());
    ops_.reset();
    return kExitConfig;
  }
  ops_tick();
  return 0;
}

void Arbiter::ops_tick() {
  if (!ops_) return;
  for (int delta : ops_->take_worker_changes()) {
    log::error().info("Control socket: worker {}", delta > 0 ? "add" : "remove");
    handle_signal(delta > 0 ? SIGTTIN : SIGTTOU);
  }
  int64_t now = clock::mono_ms();
  uint64_t signature = workers_.size();  // sample at once when the set of workers changed
  for (const auto& [pid, state] : workers_)
    signature = signature * 1000003 + static_cast<uint64_t>(pid) * 2 + (state.retiring ? 1 : 0);
  if (now - ops_->last_sample_ms < kSampleEveryMs && signature == ops_->last_signature) return;
  ops_->last_signature = signature;
  ops_->last_sample_ms = now;
  ops_->retry_metrics_bind();
  if (config_.syslog && !log::syslog_attached()) log::attach_syslog(config_);  // after a HUP
  log::capture_output(config_);  // after a USR1 reopen made a new file

  const uint64_t limit = static_cast<uint64_t>(config_.max_worker_memory) * 1024 * 1024;
  metrics::ServerSnapshot snap;
  snap.workers_target = num_workers_;
  bool replaced_any = false;
  for (auto& [pid, state] : workers_) {
    const WorkerSlot& slot = slots_[state.index];
    metrics::WorkerInfo w;
    w.pid = pid;
    w.index = state.index;
    w.serial = state.age;
    w.rss_bytes = control::read_rss_bytes(pid);
    w.started_ms = ops_->first_seen_ms(pid, now);
    bool booted = slot.booted.load() != 0;
    w.state = state.killed || state.abort_sent_ms ? "timeout"
              : state.retiring                    ? "retiring"
              : state.replaced                    ? "replacing"
              : booted                            ? "running"
                                                  : "booting";
    // Memory recycling: a new worker first (spawn_missing does not count a replaced one),
    // then this one is sent TERM once the new one has booted (check_booted) and finishes
    // its in-flight requests, as for a HUP.
    if (limit > 0 && booted && !state.retiring && !state.replaced && w.rss_bytes > limit) {
      log::error().warn(
          "Worker (pid:{}) uses {} MiB, more than max_worker_memory ({} MiB): replacing it "
          "after its in-flight requests",
          pid, w.rss_bytes / (1024 * 1024), config_.max_worker_memory);
      state.replaced = true;
      ops_->mark_recycled(pid);
      replaced_any = true;
      w.state = "replacing";
    }
    snap.workers.push_back(std::move(w));
  }
  if (replaced_any) {
    int64_t wait_ms = config_.timeout > 0 ? static_cast<int64_t>(config_.timeout * 1000) : 30000;
    replace_deadline_ms_ = std::max(replace_deadline_ms_, now + std::max<int64_t>(wait_ms, 5000));
    spawn_missing();
  }
  int64_t backlog_total = -1;
  for (const auto& l : listeners_.items()) {
    int64_t q = control::accept_queue_length(l.fd.get());
    snap.backlog.push_back({l.url, q});
    if (q >= 0) backlog_total = std::max<int64_t>(backlog_total, 0) + q;
  }
  if (const metrics::Statsd* sd = ops_->statsd()) {
    if (!metrics::Statsd::log_counter_attached())  // at start, and after a HUP's new logger
      metrics::Statsd::attach_log_counter(sd);
    sd->send("gunicorn.workers", std::to_string(workers_.size()), "g");
    if (config_.enable_backlog_metric && backlog_total >= 0)
      sd->send("gunicorn.backlog", std::to_string(backlog_total), "ms");
  }
  ops_->publish(std::move(snap), to_json(config_));
}

void Arbiter::ops_worker_exited(pid_t pid, const WorkerState& state, int status) {
  if (!ops_) return;
  std::string reason = ops_->recycled(pid)                 ? "memory"
                       : state.abort_sent_ms != 0          ? "timeout"
                       : state.retiring || state.replaced  ? "retired"
                       : WIFSIGNALED(status)               ? "signal"
                       : WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "max_requests"
                                                                       : "error";
  if (reason == "memory")
    log::error().info("Worker (pid:{}) recycled for memory (max_worker_memory {} MiB)", pid,
                      config_.max_worker_memory);
  ops_->worker_exited(pid, reason, state.index);
}

}  // namespace alicorn
