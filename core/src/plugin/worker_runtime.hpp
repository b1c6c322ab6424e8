// A worker process: what runs in the child after fork. It sets up signals, starts Python and
// loads the app (unless preloaded), hands the plugin its host API, runs it, and exits with a
// code the arbiter understands.
#pragma once

#include <alicorn/worker.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "net/listeners.hpp"
#include "plugin/plugin_host.hpp"
#include "master/process.hpp"
#include "metrics/worker_counters.hpp"

typedef struct _object PyObject;  // NOLINT

namespace alicorn {

// Exit codes shared by the arbiter and its workers (Gunicorn's 3 and 4).
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,      // runtime failure in the master (bind, plugin refused, ...)
  kExitConfig = 2,       // invalid configuration
  kExitWorkerBoot = 3,   // a worker could not start
  kExitAppLoad = 4       // the application could not be imported
};

// One slot per worker in memory shared between the arbiter and its workers: the heartbeat
// lives here, not in a file, so a slow /tmp can never stall a worker.
struct WorkerSlot {
  std::atomic<int64_t> heartbeat_ms;  // CLOCK_MONOTONIC milliseconds of the last beat
  std::atomic<uint64_t> requests;     // requests handled
  std::atomic<int32_t> pid;
  std::atomic<int32_t> booted;        // 1 once the app is loaded and the plugin is about to run
  char boot_error[1024];              // one line naming why the worker could not boot
  metrics::WorkerCounters counters;   // requests by status, latency (core/src/metrics)
};

struct WorkerSetup {
  const Config* config = nullptr;
  const ListenerSet* listeners = nullptr;
  const Plugin* plugin = nullptr;
  WorkerSlot* slot = nullptr;
  uint32_t index = 0;
  pid_t master_pid = 0;
  PyObject* preloaded_app = nullptr;  // set when --preload loaded it in the master
  std::vector<std::string> argv;      // for sys.argv
  const Identity* identity = nullptr; // --user / --group: switch to it after fork
  std::string title;                  // process title, "alicorn: worker [app]"
  PyObject* hook_worker = nullptr;    // the hooks' worker object (when hooks are loaded)
};

// Runs in the forked child; never returns (calls _exit with an ExitCode).
[[noreturn]] void run_worker_process(const WorkerSetup& setup);


namespace python {
struct InitOptions;
}
// Interpreter options for this configuration: virtualenv, sys.path (--pythonpath, then the
// working directory), sys.argv.
python::InitOptions python_init_options(const Config& config, std::vector<std::string> argv);

}  // namespace alicorn

// The host-side state behind the opaque handle plugins receive.
struct alicorn_worker_ctx {
  const alicorn::Config* config = nullptr;
  const alicorn::ListenerSet* listeners = nullptr;
  alicorn::WorkerSlot* slot = nullptr;
  alicorn_worker_config worker_config{};
  std::vector<int> listener_fds;
  std::vector<uint32_t> listener_flags;  // alicorn_listener_flags, one per fd (ABI 1.2)
  uint64_t capabilities = 0;
  int wake_read = -1;
  int wake_write = -1;
  pid_t master_pid = 0;
  std::atomic<int> run_state{ALICORN_RUNNING};
  uint64_t max_requests = 0;  // 0 = unlimited; jitter already applied
  std::atomic<uint64_t> requests{0};
  std::atomic<int> in_app{0};  // threads inside the WSGI app right now (fast stop exits at once)
  PyObject* app = nullptr;
  void* wsgi = nullptr;  // WsgiGlobals, owned by the worker runtime
};
