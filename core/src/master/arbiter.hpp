// The arbiter (master process): owns the listeners, forks the workers, watches their heartbeats
// and exit statuses, and turns signals into actions. It never talks to a client.
//
// Signals (Gunicorn's contract; docs/operations.md has the operator's view):
//   TERM          graceful stop: workers finish in-flight requests within graceful_timeout,
//                 then are killed; the pidfile is removed
//   INT, QUIT     fast stop
//   HUP           re-read the configuration (same argv, current environment; on error the old
//                 one stays), apply it (workers, timeouts, logs, worker settings, bind addresses,
//                 hooks), reopen the logs, start new workers, then stop the old ones gracefully
//                 once the new ones have booted
//   TTIN / TTOU   one worker more / less
//   USR1          reopen log files (here and in every worker)
//   USR2          re-exec the binary on disk with the listening sockets inherited (ALICORN_FDS,
//                 or LISTEN_FDS under systemd); the pidfile becomes <pidfile>.oldbin and the new
//                 master writes <pidfile>
//   WINCH         stop all workers gracefully, keeping the master (only when daemonised, as
//                 Gunicorn; otherwise ignored with a debug line)
//   CHLD          reap, log how each worker ended, replace it
// Handlers only record the signal; all work happens in the arbiter's loop.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "net/listeners.hpp"
#include "plugin/plugin_host.hpp"
#include "master/process.hpp"
#include "plugin/worker_runtime.hpp"

namespace alicorn {

class Reloader;  // core/src/master/reloader.hpp

namespace control {
class OpsServer;  // core/src/control/ops_server.hpp
}

// What the master was started with, kept for HUP (re-read the config) and USR2 (re-exec).
struct StartContext {
  std::vector<std::string> argv;   // as given (argv[0] included)
  std::string exe;                 // the binary on disk: /proc/self/exe resolved at start
  std::string cwd;                 // the working directory at start, before --chdir
  Environment env;                 // the environment at start, before raw_env was applied
  std::vector<int> inherited_fds;  // ALICORN_FDS: listening sockets from the old master
  pid_t parent_master = 0;         // ALICORN_PID: the old master, during a USR2 upgrade
  bool daemonized = false;         // --daemon took effect
};

class Arbiter {
 public:
  Arbiter(Config config, Plugin plugin, StartContext start);
  ~Arbiter();
  Arbiter(const Arbiter&) = delete;
  Arbiter& operator=(const Arbiter&) = delete;

  // Start (Python and hooks when needed, preload, listeners, pidfile), serve until stopped;
  // returns the process exit code (an ExitCode).
  int run();

 private:
  struct WorkerState {
    uint32_t index = 0;
    uint32_t age = 0;
    int64_t abort_sent_ms = 0;   // when SIGABRT went out for a timeout
    bool killed = false;         // SIGKILL sent by us
    bool retiring = false;       // sent TERM on purpose (TTOU, HUP, WINCH)
    bool replaced = false;       // a HUP replaces it: TERM once the new workers have booted
    PyObject* hook = nullptr;    // the hooks' worker object
  };

  int start();  // 0, or an exit code
  bool open_listeners();
  void spawn_worker();
  void spawn_missing();
  void retire(pid_t pid, WorkerState& state);
  void reap();
  void check_timeouts();
  void check_booted();
  void maybe_promote();
  bool handle_signal(int sig);  // false: leave the loop
  void reload();
  void reexec();
  void stop(bool graceful);
  void kill_workers(int sig);
  void set_num_workers(int n);
  void write_pidfile(const std::string& path);
  void remove_pidfile();
  void chown_paths();
  void update_hook_server();
  void set_title();
  std::string proc_name() const;
  Environment base_environment() const;
  int wait_signal(int timeout_ms);

  // ---- operations: metrics, control socket, memory recycling (core/src/control/arbiter_ops.cpp)
  int ops_open();   // in start(): 0, or an exit code
  void ops_tick();  // each round of the loop
  void ops_worker_exited(pid_t pid, const WorkerState& state, int status);  // in reap()
  std::unique_ptr<control::OpsServer> ops_;

  // ---- --reload: watch the app's source, replace the workers on a change (reloader.hpp)
  bool reload_setup();   // (re)create the watcher from config_; false: it cannot be set up
  void reload_tick();    // each round of the loop
  std::string reload_compile_errors(const std::vector<std::string>& files);  // "" all compile
  void replace_workers();  // HUP's graceful replacement, without re-reading the configuration
  std::unique_ptr<Reloader> reloader_;

  Config config_;
  Plugin plugin_;
  StartContext start_;
  ListenerSet listeners_;
  Identity identity_;
  PyObject* preloaded_app_ = nullptr;
  WorkerSlot* slots_ = nullptr;
  size_t slot_count_ = 0;
  std::map<pid_t, WorkerState> workers_;
  uint32_t worker_age_ = 0;
  int num_workers_;
  pid_t pid_;
  pid_t reexec_pid_ = 0;       // the new master forked by USR2, while it runs
  pid_t parent_master_ = 0;    // the old master, while this one is the upgrade
  bool systemd_ = false;       // listeners came from systemd socket activation
  bool ready_pending_ = true;  // READY=1 not sent yet for the current set of workers
  bool announced_ready_ = false;
  int64_t replace_deadline_ms_ = 0;
  std::string pidfile_path_;   // the pidfile this process wrote ("" none)
  int exit_code_ = kExitOk;
  std::string halt_reason_;
};

}  // namespace alicorn
