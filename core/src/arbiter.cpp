#include "alicorn/arbiter.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <new>

#include "alicorn/log.hpp"
#include "alicorn/python_runtime.hpp"

namespace alicorn {
namespace {

constexpr size_t kMaxWorkers = 1024;
int g_signal_pipe[2] = {-1, -1};

void record_signal(int sig) {
  int saved = errno;
  unsigned char b = static_cast<unsigned char>(sig);
  ssize_t ignored = ::write(g_signal_pipe[1], &b, 1);
  (void)ignored;
  errno = saved;
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "term";
    case SIGINT: return "int";
    case SIGQUIT: return "quit";
    case SIGHUP: return "hup";
    case SIGTTIN: return "ttin";
    case SIGTTOU: return "ttou";
    case SIGUSR1: return "usr1";
    case SIGUSR2: return "usr2";
    case SIGWINCH: return "winch";
    case SIGCHLD: return "chld";
    default: return "unknown";
  }
}

}  // namespace

Arbiter::Arbiter(Config config, Plugin plugin, ListenerSet listeners,
                 std::vector<std::string> argv, PyObject* preloaded_app)
    : config_(std::move(config)),
      plugin_(std::move(plugin)),
      listeners_(std::move(listeners)),
      argv_(std::move(argv)),
      preloaded_app_(preloaded_app),
      num_workers_(config_.workers),
      pid_(::getpid()) {
  slot_count_ = kMaxWorkers;
  void* mem = ::mmap(nullptr, sizeof(WorkerSlot) * slot_count_, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED)
    throw std::runtime_error(std::string("mmap(worker slots) failed: ") + std::strerror(errno));
  slots_ = static_cast<WorkerSlot*>(mem);
  for (size_t i = 0; i < slot_count_; ++i) new (&slots_[i]) WorkerSlot{};
}

Arbiter::~Arbiter() {
  if (slots_ != nullptr) ::munmap(slots_, sizeof(WorkerSlot) * slot_count_);
}

void Arbiter::write_pidfile() {
  if (!config_.pidfile) return;
  std::string tmp = *config_.pidfile + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << pid_ << "\n";
    if (!out) throw std::runtime_error("cannot write pidfile " + *config_.pidfile);
  }
  if (::rename(tmp.c_str(), config_.pidfile->c_str()) != 0)
    throw std::runtime_error("rename(\"" + tmp + "\") failed: " + std::strerror(errno));
}

void Arbiter::remove_pidfile() {
  if (!config_.pidfile) return;
  std::ifstream in(*config_.pidfile);
  pid_t pid = 0;
  if (in >> pid && pid == pid_) ::unlink(config_.pidfile->c_str());
}

void Arbiter::spawn_worker() {
  size_t index = 0;
  while (index < slot_count_ && slots_[index].pid.load() != 0) ++index;
  if (index == slot_count_) {
    log::error().error("Cannot start more than {} workers", slot_count_);
    return;
  }
  WorkerSlot& slot = slots_[index];
  slot.heartbeat_ms.store(monotonic_ms());
  slot.requests.store(0);
  slot.boot_error[0] = '\0';
  slot.pid.store(-1);  // reserved until the child writes its pid

  WorkerSetup setup;
  setup.config = &config_;
  setup.listeners = &listeners_;
  setup.plugin = &plugin_;
  setup.slot = &slot;
  setup.index = static_cast<uint32_t>(index);
  setup.master_pid = pid_;
  setup.preloaded_app = preloaded_app_;
  setup.argv = argv_;

  if (preloaded_app_ != nullptr) python::before_fork();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(g_signal_pipe[0]);
    ::close(g_signal_pipe[1]);
    run_worker_process(setup);  // never returns
  }
  if (preloaded_app_ != nullptr) python::after_fork_parent();
  if (pid < 0) {
    slot.pid.store(0);
    log::error().error("fork() failed: {}", std::strerror(errno));
    return;
  }
  slot.pid.store(pid);
  workers_[pid] = WorkerState{static_cast<uint32_t>(index)};
  log::error().info("Booting worker with pid: {}", pid);
}

void Arbiter::spawn_missing() {
  int active = 0;
  for (const auto& [pid, state] : workers_) active += state.retiring ? 0 : 1;
  for (; active < num_workers_; ++active) spawn_worker();
}

void Arbiter::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    auto it = workers_.find(pid);
    if (it == workers_.end()) continue;
    WorkerState state = it->second;
    workers_.erase(it);
    WorkerSlot& slot = slots_[state.index];
    std::string boot_error = slot.boot_error;
    slot.pid.store(0);
    if (WIFEXITED(status)) {
      int code = WEXITSTATUS(status);
      if (code == kExitAppLoad) {
        log::error().error("Worker (pid:{}) failed to load the application: {}", pid,
                           boot_error.empty() ? "see the traceback above" : boot_error);
        if (halt_reason_.empty()) {
          halt_reason_ = "App failed to load.";
          exit_code_ = kExitAppLoad;
        }
      } else if (code == kExitWorkerBoot) {
        log::error().error("Worker (pid:{}) failed to boot: {}", pid,
                           boot_error.empty() ? "see the log above" : boot_error);
        if (halt_reason_.empty()) {
          halt_reason_ = "Worker failed to boot.";
          exit_code_ = kExitWorkerBoot;
        }
      } else if (code != 0) {
        log::error().error("Worker (pid:{}) exited with code {}", pid, code);
      } else {
        log::error().debug("Worker (pid:{}) exited", pid);
      }
    } else if (WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      if (sig == SIGKILL)
        log::error().error("Worker (pid:{}) was sent SIGKILL! Perhaps out of memory?", pid);
      else if (!(state.retiring && sig == SIGTERM))
        log::error().error("Worker (pid:{}) was sent {}!", pid, strsignal(sig));
    }
  }
}

void Arbiter::check_timeouts() {
  if (config_.timeout <= 0) return;
  int64_t now = monotonic_ms();
  int64_t limit = static_cast<int64_t>(config_.timeout * 1000);
  for (auto& [pid, state] : workers_) {
    int64_t beat = slots_[state.index].heartbeat_ms.load();
    if (now - beat <= limit) continue;
    if (state.abort_sent_ms == 0) {
      log::error().critical("WORKER TIMEOUT (pid:{})", pid);
      state.abort_sent_ms = now;
      ::kill(pid, SIGABRT);
    } else if (now - state.abort_sent_ms > 2000) {
      ::kill(pid, SIGKILL);
    }
  }
}

void Arbiter::kill_workers(int sig) {
  for (auto& [pid, state] : workers_) ::kill(pid, sig);
}

int Arbiter::wait_signal(int timeout_ms) {
  pollfd pfd{g_signal_pipe[0], POLLIN, 0};
  int rc = ::poll(&pfd, 1, timeout_ms);
  if (rc <= 0) return 0;
  unsigned char b = 0;
  if (::read(g_signal_pipe[0], &b, 1) == 1) return b;
  return 0;
}

void Arbiter::stop(bool graceful) {
  // Close the listeners first so nothing new queues up for workers that are leaving.
  bool unlink_paths = true;
  listeners_.close(unlink_paths);
  int sig = graceful ? SIGTERM : SIGQUIT;
  kill_workers(sig);
  int64_t limit = monotonic_ms() + static_cast<int64_t>(config_.graceful_timeout * 1000);
  while (!workers_.empty() && monotonic_ms() < limit) {
    int s = wait_signal(100);
    if (s == SIGINT || s == SIGQUIT) {
      if (graceful) {
        log::error().info("Handling signal: {}", signal_name(s));
        graceful = false;
        kill_workers(SIGQUIT);
      }
    }
    reap();
  }
  if (!workers_.empty()) {
    kill_workers(SIGKILL);
    while (!workers_.empty()) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, 0);
      if (pid < 0 && errno != EINTR) break;
      if (pid > 0) {
        auto it = workers_.find(pid);
        if (it != workers_.end()) {
          slots_[it->second.index].pid.store(0);
          workers_.erase(it);
        }
      }
    }
  }
}

bool Arbiter::handle_signal(int sig) {
  if (sig == SIGCHLD) {
    reap();
    return true;
  }
  log::error().info("Handling signal: {}", signal_name(sig));
  switch (sig) {
    case SIGTERM: stop(true); return false;
    case SIGINT:
    case SIGQUIT: stop(false); return false;
    case SIGTTIN:
      if (num_workers_ < static_cast<int>(slot_count_)) ++num_workers_;
      spawn_missing();
      return true;
    case SIGTTOU:
      if (num_workers_ > 1) {
        --num_workers_;
        // Retire the oldest worker (lowest slot index).
        auto oldest = workers_.end();
        for (auto it = workers_.begin(); it != workers_.end(); ++it)
          if (!it->second.retiring &&
              (oldest == workers_.end() || it->second.index < oldest->second.index))
            oldest = it;
        if (oldest != workers_.end()) {
          oldest->second.retiring = true;
          ::kill(oldest->first, SIGTERM);
        }
      }
      return true;
    case SIGHUP: {
      // Start fresh workers (they import the app anew unless it was preloaded), then retire
      // the old ones gracefully, so there is never a moment without a worker.
      log::reopen();
      std::vector<pid_t> old;
      for (auto& [pid, state] : workers_) {
        if (!state.retiring) old.push_back(pid);
        state.retiring = true;
      }
      spawn_missing();
      for (pid_t pid : old) ::kill(pid, SIGTERM);
      return true;
    }
    case SIGUSR1:
      log::reopen();
      kill_workers(SIGUSR1);
      return true;
    default:
      return true;
  }
}

int Arbiter::run() {
  if (::pipe2(g_signal_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe2() failed: ") + std::strerror(errno));
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sa.sa_handler = record_signal;
  for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2,
                  SIGWINCH, SIGCHLD})
    ::sigaction(sig, &sa, nullptr);
  sa.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &sa, nullptr);

  write_pidfile();
  spawn_missing();
  bool running = true;
  while (running) {
    int sig = wait_signal(1000);
    if (sig != 0) running = handle_signal(sig);
    if (!running) break;
    reap();
    if (!halt_reason_.empty()) {
      stop(true);
      break;
    }
    check_timeouts();
    spawn_missing();
  }
  log::error().info("Shutting down: Master");
  if (!halt_reason_.empty()) log::error().info("Reason: {}", halt_reason_);
  remove_pidfile();
  return exit_code_;
}

}  // namespace alicorn
