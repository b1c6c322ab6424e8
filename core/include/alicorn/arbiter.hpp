// The arbiter (master process): owns the listeners, forks the workers, watches their heartbeats
// and exit statuses, and turns signals into actions. It never talks to a client.
//
// Signals (Gunicorn's contract): TERM graceful stop; INT / QUIT fast stop; TTIN / TTOU one
// worker more / less; USR1 reopen log files (here and in every worker); CHLD reap. Handlers
// only record the signal; all work happens in the arbiter's loop.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "alicorn/config.hpp"
#include "alicorn/listeners.hpp"
#include "alicorn/plugin_host.hpp"
#include "alicorn/worker_runtime.hpp"

namespace alicorn {

class Arbiter {
 public:
  // `preloaded_app` is the app object when --preload loaded it in this process (GIL held).
  Arbiter(Config config, Plugin plugin, ListenerSet listeners, std::vector<std::string> argv,
          PyObject* preloaded_app);
  ~Arbiter();
  Arbiter(const Arbiter&) = delete;
  Arbiter& operator=(const Arbiter&) = delete;

  // Serve until stopped; returns the process exit code (an ExitCode).
  int run();

 private:
  struct WorkerState {
    uint32_t index;
    int64_t abort_sent_ms = 0;  // when SIGABRT went out for a timeout
    bool retiring = false;      // sent TERM on purpose (TTOU, recycling)
  };

  void spawn_worker();
  void spawn_missing();
  void reap();
  void check_timeouts();
  bool handle_signal(int sig);  // false: leave the loop
  void stop(bool graceful);
  void kill_workers(int sig);
  void write_pidfile();
  void remove_pidfile();
  int wait_signal(int timeout_ms);

  Config config_;
  Plugin plugin_;
  ListenerSet listeners_;
  std::vector<std::string> argv_;
  PyObject* preloaded_app_;
  WorkerSlot* slots_ = nullptr;
  size_t slot_count_ = 0;
  std::map<pid_t, WorkerState> workers_;
  int num_workers_;
  pid_t pid_;
  int exit_code_ = kExitOk;
  std::string halt_reason_;
};

}  // namespace alicorn
