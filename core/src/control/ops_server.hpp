// The master's operations endpoints, served by one thread of the master so that a scrape or a
// `alicorn ctl` never waits for the arbiter's loop:
//   - the Prometheus endpoint (metrics_bind): GET /metrics, the totals of every worker;
//   - the control socket (control_socket, mode control_socket_mode): one command line in, one
//     answer out (see docs/operations.md for the verbs).
// The arbiter thread feeds it (publish, worker_exited) and drains the worker changes it asks
// for; commands that map onto a signal (reload, reopen, shutdown) are sent to the master as
// that signal, so they take exactly the path an operator's `kill` would.
// Fork safety: the thread never logs and never touches Python; a forked child (a worker)
// closes the thread's sockets at once (pthread_atfork) and never uses this object.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "metrics/prometheus.hpp"
#include "metrics/statsd.hpp"
#include "net/listeners.hpp"
#include "util/unique_fd.hpp"

namespace alicorn {
struct WorkerSlot;
}

namespace alicorn::control {

class OpsServer {
 public:
  OpsServer(pid_t master_pid, WorkerSlot* slots, size_t slot_count);
  ~OpsServer();
  OpsServer(const OpsServer&) = delete;
  OpsServer& operator=(const OpsServer&) = delete;

  // Open the metrics listener, the control socket and the statsd client. Throws
  // std::runtime_error with the message for the operator when an explicitly configured
  // endpoint cannot be opened. `upgrading`: a USR2 master whose parent still holds the
  // endpoints (the control socket is taken over, the metrics bind retried until it is free).
  void open(const Config& config, bool upgrading);
  void start();  // the serving thread

  // Arbiter thread: the current picture (totals are filled in here), about once a second.
  void publish(metrics::ServerSnapshot snapshot, std::string config_json);
  // Arbiter thread: a worker was reaped; fold its counters into the totals, zero its slot's.
  void worker_exited(pid_t pid, const std::string& reason, size_t slot_index);
  // Arbiter thread: +1 / -1 per worker `alicorn ctl worker add/remove` asked for.
  std::vector<int> take_worker_changes();
  // Arbiter thread: retry a metrics bind that was busy during an upgrade.
  void retry_metrics_bind();

  // Per-worker bookkeeping the arbiter does not keep.
  int64_t first_seen_ms(pid_t pid, int64_t now_ms);
  void mark_recycled(pid_t pid) { recycled_.insert(pid); }
  bool recycled(pid_t pid) const { return recycled_.count(pid) != 0; }
  int64_t last_sample_ms = 0;
  uint64_t last_signature = 0;
  const metrics::Statsd* statsd() const { return statsd_.get(); }

  // The sockets, for the fork handler.
  void close_in_child();

 private:
  void run();
  void serve_metrics(int fd);
  void serve_control(int fd);
  std::string command(const std::string& line);
  metrics::ServerSnapshot aggregate();
  void open_metrics();
  void open_control(const Config& config, bool upgrading);

  pid_t master_pid_;
  WorkerSlot* slots_;
  size_t slot_count_;
  std::optional<BindAddress> metrics_addr_;
  ListenerSet metrics_;
  bool metrics_pending_ = false;
  dev_t metrics_dev_ = 0;
  ino_t metrics_ino_ = 0;
  UniqueFd control_;
  std::string control_path_;   // absolute
  dev_t control_dev_ = 0;
  ino_t control_ino_ = 0;
  std::unique_ptr<metrics::Statsd> statsd_;
  UniqueFd stop_read_, stop_write_;
  std::thread thread_;
  std::atomic<bool> started_{false};  // the thread holds the fork gate (see start())
  std::atomic<int> serving_fd_{-1};  // the connection being answered, for the fork handler

  std::mutex mu_;  // guards everything below
  metrics::ServerSnapshot snapshot_;
  metrics::CounterTotals gone_;       // counters of workers that ended
  std::map<std::string, uint64_t> restarts_;
  std::string config_json_ = "{}";
  std::vector<int> worker_changes_;
  int pending_target_delta_ = 0;

  std::map<pid_t, int64_t> first_seen_;  // arbiter thread only
  std::set<pid_t> recycled_;             // arbiter thread only
};

// Resident set size of a process from /proc/<pid>/statm, in bytes (0 when unreadable).
uint64_t read_rss_bytes(pid_t pid);
// Connections waiting in the accept queue of a listening TCP socket (-1 when unknown).
int64_t accept_queue_length(int fd);

}  // namespace alicorn::control
