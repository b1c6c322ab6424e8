#include "plugin/worker_runtime.hpp"

#include "python/python_runtime.hpp"
#include "wsgi/wsgi.hpp"

#include <cxxabi.h>
#include <fmt/format.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>

#include <thread>

#include "python/hooks.hpp"
#include "http/http_connection.hpp"
#include "util/clock.hpp"
#include "http/http_session.hpp"
#include "log/log.hpp"
#include "master/proctitle.hpp"
#include "python/python_runtime.hpp"
#include "metrics/request_metrics.hpp"

namespace alicorn {
namespace {

alicorn_worker_ctx* g_ctx = nullptr;  // the one worker of this process, for signal handlers
volatile sig_atomic_t g_reopen_logs = 0;
// When the hooks define worker_int / worker_abort, the signal handlers hand INT/QUIT/ABRT to a
// thread that can take the GIL and call them (a handler cannot run Python).
int g_hook_pipe[2] = {-1, -1};
std::atomic<bool> g_int_hook_done{false};

// Set with every wake-up byte: poll_signals only reads the pipe when something was written.
std::atomic<bool> g_wake_pending{false};
// The last time poll_signals asked whether the arbiter is still our parent.
std::atomic<int64_t> g_parent_checked_ms{0};

void wake(alicorn_worker_ctx* ctx) {
  g_wake_pending.store(true);
  char c = 1;
  ssize_t ignored = ::write(ctx->wake_write, &c, 1);
  (void)ignored;
}

// Signal handlers only record; the plugin's loop acts when wake_fd turns readable.
void on_signal(int sig) {
  int saved = errno;
  if (g_ctx != nullptr) {
    switch (sig) {
      case SIGTERM: {
        int expected = ALICORN_RUNNING;
        g_ctx->run_state.compare_exchange_strong(expected, ALICORN_STOP_GRACEFUL);
        break;
      }
      case SIGINT:
      case SIGQUIT:
        g_ctx->run_state.store(ALICORN_STOP_FAST);
        if (g_hook_pipe[1] >= 0) {
          char c = 'I';
          ssize_t ignored = ::write(g_hook_pipe[1], &c, 1);
          (void)ignored;
          break;
        }
        // A fast stop does not wait for the app to return from a request.
        if (g_ctx->in_app.load() > 0) ::_exit(kExitOk);
        break;
      case SIGUSR1: g_reopen_logs = 1; break;
      default: break;
    }
    wake(g_ctx);
  }
  errno = saved;
}

// A hung worker is sent SIGABRT by the arbiter: leave at once, no core dump (after the
// worker_abort hook, when there is one).
void on_abort(int) {
  if (g_hook_pipe[1] >= 0) {
    char c = 'A';
    ssize_t ignored = ::write(g_hook_pipe[1], &c, 1);
    (void)ignored;
    return;
  }
  ::_exit(kExitFailure);
}

void hook_thread_main() {
  for (;;) {
    char c = 0;
    ssize_t n = ::read(g_hook_pipe[0], &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    if (c == 'A') {
      {
        python::Gil gil;
        hooks::call_worker("worker_abort", hooks::current_worker());
        python::flush_std_streams();
      }
      ::_exit(kExitFailure);
    }
    if (c == 'I' && !g_int_hook_done.load()) {
      {
        python::Gil gil;
        hooks::call_worker("worker_int", hooks::current_worker());
        python::flush_std_streams();
      }
      // A fast stop does not wait for the app to return from a request.
      if (g_ctx != nullptr && g_ctx->in_app.load() > 0) ::_exit(kExitOk);
      g_int_hook_done.store(true);
    }
  }
}

// Start the hook thread when worker_int or worker_abort is defined (GIL held).
void start_hook_thread() {
  if (!hooks::defined("worker_int") && !hooks::defined("worker_abort")) return;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return;
  g_hook_pipe[0] = fds[0];
  try {
    std::thread(hook_thread_main).detach();
  } catch (...) {
    ::close(fds[0]);
    ::close(fds[1]);
    g_hook_pipe[0] = -1;
    return;
  }
  g_hook_pipe[1] = fds[1];  // published last: the handlers write only once a reader exists
}

// The arbiter forks with every signal blocked, so a signal sent to a worker that has not yet
// installed its handlers (a TERM right after a HUP) waits here instead of reaching the
// master's handler inherited through fork and being lost. Handlers first, then unblock.
void install_worker_signals() {
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sa.sa_handler = on_signal;
  for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGUSR1}) ::sigaction(sig, &sa, nullptr);
  sa.sa_handler = on_abort;
  ::sigaction(SIGABRT, &sa, nullptr);
  sa.sa_handler = SIG_IGN;
  for (int sig : {SIGHUP, SIGWINCH, SIGPIPE, SIGTTIN, SIGTTOU, SIGUSR2}) ::sigaction(sig, &sa, nullptr);
  sa.sa_handler = SIG_DFL;
  ::sigaction(SIGCHLD, &sa, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// ---- host API entries that are not about sessions ----
// Every entry is noexcept: what could throw inside is caught and logged where it happens, and
// anything missed ends the worker (std::terminate) instead of unwinding into plugin C code.

void host_log(alicorn_worker_ctx*, int level, const char* message) noexcept {
  if (message == nullptr) return;
  try {
    auto lvl = level <= ALICORN_LOG_DEBUG     ? spdlog::level::debug
               : level == ALICORN_LOG_INFO    ? spdlog::level::info
               : level == ALICORN_LOG_WARNING ? spdlog::level::warn
               : level == ALICORN_LOG_ERROR   ? spdlog::level::err
                                              : spdlog::level::critical;
    log::error().log(lvl, "{}", message);
  } catch (...) {
    // The log itself failed (out of memory, a broken sink): say so where it can still be seen.
    std::fprintf(stderr, "alicorn: worker %d: cannot write to the error log: %s\n",
                 static_cast<int>(::getpid()), message);
  }
}

const alicorn_worker_config* host_config(alicorn_worker_ctx* ctx) noexcept {
  return ctx ? &ctx->worker_config : nullptr;
}

void host_heartbeat(alicorn_worker_ctx* ctx) noexcept {
  if (ctx && ctx->slot) ctx->slot->heartbeat_ms.store(clock::mono_ms(), std::memory_order_relaxed);
}

int host_wake_fd(alicorn_worker_ctx* ctx) noexcept { return ctx ? ctx->wake_read : -1; }

int host_poll_signals(alicorn_worker_ctx* ctx) noexcept {
  if (ctx == nullptr) return ALICORN_STOP_FAST;
  // Cheap enough to call after every request: no system call unless a signal came, and the
  // parent check (getppid) at most once a second.
  if (g_wake_pending.exchange(false)) {
    char buf[64];
    while (::read(ctx->wake_read, buf, sizeof buf) > 0) {
    }
  }
  if (g_reopen_logs) {
    g_reopen_logs = 0;
    try {
      log::reopen();
    } catch (const std::exception& e) {
      host_log(ctx, ALICORN_LOG_ERROR,
               (std::string("worker ") + std::to_string(::getpid()) +
                ": reopening the log files failed: " + e.what()).c_str());
    } catch (...) {
      host_log(ctx, ALICORN_LOG_ERROR, "reopening the log files failed: unknown error");
    }
  }
  int64_t now = clock::mono_ms();
  bool orphaned = false;
  if (ctx->run_state.load() == ALICORN_RUNNING && now - g_parent_checked_ms.load() >= 1000) {
    g_parent_checked_ms.store(now);
    orphaned = ::getppid() != ctx->master_pid;
  }
  if (orphaned) {
    int expected = ALICORN_RUNNING;
    if (ctx->run_state.compare_exchange_strong(expected, ALICORN_STOP_GRACEFUL))
      host_log(ctx, ALICORN_LOG_INFO, "Parent changed, shutting down");
  }
  return ctx->run_state.load();
}

// One error line naming the worker and the client a failed host call concerns.
void log_request_failure(alicorn_worker_ctx* ctx, alicorn_session* s, const char* what,
                         const char* cause) noexcept {
  try {
    host_log(ctx, ALICORN_LOG_ERROR,
             fmt::format("Worker (pid: {}): {} from {} failed: {}", ::getpid(), what,
                         s != nullptr ? s->remote_addr : std::string("?"), cause)
                 .c_str());
  } catch (...) {
    host_log(ctx, ALICORN_LOG_ERROR, cause);
  }
}

// session_run as the plugin sees it: when this request is the one that reaches max_requests
// (the session moved the state from RUNNING to STOP_GRACEFUL), make wake_fd readable, so the
// plugin's loop learns of the stop without polling after every response (ABI 1.2).
int host_session_run(alicorn_session* s) noexcept {
  alicorn_worker_ctx* ctx = s != nullptr ? s->ctx : nullptr;
  bool running = ctx != nullptr && ctx->max_requests > 0 &&
                 ctx->run_state.load(std::memory_order_relaxed) == ALICORN_RUNNING;
  int rc;
  try {
    rc = session_run(s);
  } catch (const std::exception& e) {
    log_request_failure(ctx, s, "running the request", e.what());
    rc = ALICORN_EINTERNAL;
  } catch (...) {
    log_request_failure(ctx, s, "running the request", "an exception of unknown type");
    rc = ALICORN_EINTERNAL;
  }
  if (running && ctx->run_state.load(std::memory_order_relaxed) != ALICORN_RUNNING) wake(ctx);
  return rc;
}

// What the finished response told the client: 1 unless it said `Connection: close`. A stop
// that began after the response was framed does not turn it into a close: that client was
// promised keep-alive and may have its next request on the wire already, so the plugin must
// treat the connection as idle (and close it after its stop linger, or answer the next
// request, which then says close) instead of closing under a request in flight.
int host_session_keep_alive(alicorn_session* s) noexcept {
  return s != nullptr && s->state == alicorn_session::State::Done && s->ex().out.keep_alive ? 1 : 0;
}

// The client may still be sending after the response that ends its connection (ABI 1.2):
// bytes held past the request, a refused request (what followed its head was never read), or
// a streamed body the app did not read to its end.
int host_session_unread_input(alicorn_session* s) noexcept {
  if (s == nullptr) return 0;
  if (!s->pending.empty() || s->parse_error) return 1;
  return s->streaming && !s->parser.message_complete() ? 1 : 0;
}

const alicorn_host_api kHostApi = {
    sizeof(alicorn_host_api),
    ALICORN_ABI_MAJOR,
    ALICORN_ABI_MINOR,
    ALICORN_VERSION,
    host_log,
    host_config,
    host_heartbeat,
    host_wake_fd,
    host_poll_signals,
    session_new,
    session_feed,
    host_session_run,
    session_pull,
    host_session_keep_alive,
    session_abort,
    session_free,
    host_session_unread_input,
};

[[noreturn]] void boot_failure(WorkerSlot* slot, int code, const std::string& message) {
  if (slot != nullptr) {
    std::strncpy(slot->boot_error, message.c_str(), sizeof slot->boot_error - 1);
    slot->boot_error[sizeof slot->boot_error - 1] = '\0';
  }
  ::_exit(code);
}

// Call a plugin entry (create, run, destroy). The ABI says nothing throws across it, but a C++
// plugin might break that rule: the exception stops here, is logged with the worker class, the
// entry and this worker's pid, and becomes kExitFailure (what a failed run returns).
template <typename F>
int plugin_call(const alicorn_worker_vtable& vt, const char* entry, F&& f,
                char* err = nullptr, size_t err_size = 0) {
  std::string what;
  try {
    return f();
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation must keep unwinding
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "an exception of unknown type";
  }
  try {
    log::error().critical("Worker (pid: {}): worker class '{}' threw out of {}(): {}",
                          ::getpid(), vt.name, entry, what);
  } catch (...) {
  }
  if (err != nullptr) std::snprintf(err, err_size, "%s() threw: %s", entry, what.c_str());
  return entry[0] == 'c' ? ALICORN_EINVAL : kExitFailure;  // create: a negative error
}

}  // namespace

const alicorn_host_api* host_api() { return &kHostApi; }

python::InitOptions python_init_options(const Config& config, std::vector<std::string> argv) {
  python::InitOptions opts;
  opts.argv = std::move(argv);
  opts.virtualenv = config.virtualenv;
  opts.path_prepend = config.pythonpath;
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) != nullptr) opts.path_prepend.emplace_back(cwd);
  return opts;
}

[[noreturn]] void run_worker_process(const WorkerSetup& setup) {
  static alicorn_worker_ctx ctx;
  WorkerSlot* slot = setup.slot;
  try {
    const Config& config = *setup.config;
    ctx.config = &config;
    ctx.listeners = setup.listeners;
    ctx.slot = slot;
    ctx.master_pid = setup.master_pid;
    ctx.capabilities = setup.plugin->vtable().capabilities &
                       (config.sendfile ? ~0u : ~static_cast<unsigned>(ALICORN_CAP_SENDFILE));
    ctx.listener_fds = setup.listeners->fds();
    int pipefd[2];
    if (::pipe2(pipefd, O_NONBLOCK | O_CLOEXEC) != 0)
      boot_failure(slot, kExitWorkerBoot, std::string("pipe2() failed: ") + std::strerror(errno));
    ctx.wake_read = pipefd[0];
    ctx.wake_write = pipefd[1];
    auto& wc = ctx.worker_config;
    wc.struct_size = sizeof wc;
    wc.listener_count = static_cast<uint32_t>(ctx.listener_fds.size());
    wc.listener_fds = ctx.listener_fds.data();
    for (const Listener& l : setup.listeners->items()) {
      uint32_t flags = 0;
      if (l.is_unix) flags |= ALICORN_LISTENER_UNIX;
      sockaddr_storage addr{};
      socklen_t alen = sizeof addr;
      if (!l.is_unix && ::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&addr), &alen) == 0 &&
          addr.ss_family == AF_INET6)
        flags |= ALICORN_LISTENER_INET6;
      ctx.listener_flags.push_back(flags);
    }
    ctx.listener_flags.resize(ctx.listener_fds.size(), 0);
    wc.listener_flags = ctx.listener_flags.data();
    wc.threads = static_cast<uint32_t>(config.threads);
    wc.worker_connections = static_cast<uint32_t>(config.worker_connections);
    wc.timeout = config.timeout;
    wc.graceful_timeout = config.graceful_timeout;
    wc.keepalive = config.keepalive;
    wc.worker_index = setup.index;
    if (config.max_requests > 0) {
      std::mt19937 rng(static_cast<unsigned>(::getpid()) ^ static_cast<unsigned>(clock::mono_ms()));
      int jitter = config.max_requests_jitter > 0
                       ? std::uniform_int_distribution<int>(0, config.max_requests_jitter)(rng)
                       : 0;
      ctx.max_requests = static_cast<uint64_t>(config.max_requests + jitter);
    }
    g_ctx = &ctx;
    install_worker_signals();
    slot->pid.store(::getpid());
    metrics::init_worker(config, &slot->counters);  // metrics/statsd (core/src/metrics)
    host_heartbeat(&ctx);
    if (!setup.title.empty()) proctitle::set(setup.title);

    // Python may already run here: inherited from a master that started it for --preload or
    // for the hooks. Then fix up its state after fork before anything else touches it.
    bool inherited = python::is_initialized();
    if (inherited) python::after_fork_child();
    PyObject* hook_worker = setup.hook_worker;
    if (inherited && hook_worker != nullptr) {
      hooks::set_worker_pid(hook_worker, ::getpid());
      hooks::set_current_worker(hook_worker);
      // As in Gunicorn: post_fork runs before privileges are dropped, and failing it fails
      // the boot.
      if (!hooks::call_server_worker("post_fork", hook_worker))
        boot_failure(slot, kExitWorkerBoot, "the post_fork hook raised an exception");
    }
    if (setup.identity != nullptr) {
      try {
        drop_privileges(*setup.identity);
      } catch (const std::exception& e) {
        log::error().error("Cannot switch user/group: {}", e.what());
        boot_failure(slot, kExitWorkerBoot, std::string("cannot switch user/group: ") + e.what());
      }
    }

    PyObject* app = setup.preloaded_app;
    if (!inherited) {
      try {
        python::initialize(python_init_options(config, setup.argv));
      } catch (const std::exception& e) {
        log::error().critical("{}", e.what());
        boot_failure(slot, kExitWorkerBoot, e.what());
      }
    }
    if (app == nullptr) {
      try {
        app = python::load_app(*config.app);
      } catch (const python::AppLoadError& e) {
        log::error().error("Exception in worker process\n{}", e.traceback());
        boot_failure(slot, kExitAppLoad, e.what());
      }
    }
    ctx.wsgi = wsgi_globals_create(&ctx, app);
    if (ctx.wsgi == nullptr) boot_failure(slot, kExitWorkerBoot, "cannot set up the WSGI bridge");
    if (hook_worker != nullptr) {
      if (!hooks::call_worker("post_worker_init", hook_worker))
        boot_failure(slot, kExitWorkerBoot, "the post_worker_init hook raised an exception");
      hooks::set_worker_booted(hook_worker);
      start_hook_thread();
    }
    python::release_gil();
    host_heartbeat(&ctx);
    slot->booted.store(1);

    const alicorn_worker_vtable& vt = setup.plugin->vtable();
    void* worker = nullptr;
    char err[512] = "";
    int rc = plugin_call(vt, "create", [&] {
      return vt.create(host_api(), &ctx, &worker, err, sizeof err);
    }, err, sizeof err);
    if (rc != 0) {
      std::string msg = std::string("worker class '") + vt.name + "' failed to start: " +
                        (err[0] ? err : std::strerror(rc < 0 ? -rc : rc));
      log::error().error("{}", msg);
      boot_failure(slot, kExitWorkerBoot, msg);
    }
    int code = plugin_call(vt, "run", [&] { return vt.run(worker); });
    plugin_call(vt, "destroy", [&] {
      vt.destroy(worker);
      return 0;
    });
    if (g_hook_pipe[1] >= 0 && ctx.run_state.load() == ALICORN_STOP_FAST) {
      // Let worker_int finish (bounded: the arbiter kills a worker that lingers anyway).
      for (int i = 0; i < 500 && !g_int_hook_done.load(); ++i) ::usleep(10000);
    }
    log::error().info("Worker exiting (pid: {})", ::getpid());
    {
      python::Gil gil;
      if (hook_worker != nullptr) hooks::call_server_worker("worker_exit", hook_worker);
      python::flush_std_streams();
    }
    ::_exit(code);
  } catch (const std::exception& e) {
    try {
      log::error().critical("Worker failed: {}", e.what());
    } catch (...) {
    }
    boot_failure(slot, kExitWorkerBoot, e.what());
  } catch (...) {
    boot_failure(slot, kExitWorkerBoot, "unknown error");
  }
}

}  // namespace alicorn
