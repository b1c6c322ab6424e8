#include "master/arbiter.hpp"
#include "master/config_stage.hpp"
#include "master/reloader.hpp"
#include "util/clock.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <new>

#include "log/access_log.hpp"
#include "net/tls.hpp"
#include "python/hooks.hpp"
#include "log/log.hpp"
#include "master/proctitle.hpp"
#include "python/py_logging.hpp"
#include "python/python_runtime.hpp"
#include "master/systemd.hpp"
#include "control/ops_server.hpp"  // ops: complete type for ops_

extern char** environ;

namespace alicorn {
namespace {

constexpr size_t kMaxWorkers = 1024;
constexpr int64_t kAbortGraceMs = 2000;  // SIGABRT, then SIGKILL this much later
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

// "SIGSEGV", as Gunicorn names signals in its log.
std::string full_signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

bool is_log_file(const std::string& target) {
  return !target.empty() && target != "-" && target != "stdout" && target != "stderr";
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::vector<std::string> bind_texts(const std::vector<BindAddress>& binds) {
  std::vector<std::string> out;
  for (const auto& b : binds) out.push_back(b.to_string());
  return out;
}

ListenOptions listen_options(const Config& c) {
  ListenOptions o;
  o.backlog = c.backlog;
  o.reuse_port = c.reuse_port;
  o.umask = c.umask;
  return o;
}

}  // namespace

Arbiter::Arbiter(Config config, Plugin plugin, StartContext start)
    : config_(std::move(config)),
      plugin_(std::move(plugin)),
      start_(std::move(start)),
      num_workers_(config_.workers),
      pid_(::getpid()) {
  identity_ = resolve_identity(config_);
  parent_master_ = start_.parent_master;
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

std::string Arbiter::proc_name() const {
  if (config_.proc_name) return *config_.proc_name;
  if (!config_.default_proc_name.empty()) return config_.default_proc_name;
  if (config_.wsgi_app) return *config_.wsgi_app;
  if (config_.app) return config_.app->spec;
  return "alicorn";
}

void Arbiter::set_title() { proctitle::set("alicorn: master [" + proc_name() + "]"); }

// The environment the master was started with, as it is now but without what raw_env added:
// what a HUP re-reads the configuration from and what USR2 hands the new binary.
Environment Arbiter::base_environment() const {
  Environment env = current_environment();
  for (const auto& [key, value] : config_.raw_env) {
    auto it = start_.env.find(key);
    if (it != start_.env.end()) env[key] = it->second;
    else env.erase(key);
  }
  return env;
}

// ---- pidfile ------------------------------------------------------------------------------

void Arbiter::write_pidfile(const std::string& path) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << pid_ << "\n";
    if (!out) throw std::runtime_error("cannot write pidfile " + path);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("rename(\"" + tmp + "\") failed: " + std::strerror(errno));
  pidfile_path_ = path;
}

void Arbiter::remove_pidfile() {
  if (pidfile_path_.empty()) return;
  std::ifstream in(pidfile_path_);
  pid_t pid = 0;
  if (in >> pid && pid == pid_) ::unlink(pidfile_path_.c_str());
  pidfile_path_.clear();
}

// Workers running as --user must be able to use the unix sockets and reopen the log files.
void Arbiter::chown_paths() {
  if (!identity_changes(identity_)) return;
  for (const auto& l : listeners_.items())
    if (l.is_unix && l.owns_path && !chown_for(identity_, l.server_name))
      log::error().warn("chown({}) failed: {}", l.server_name, std::strerror(errno));
  for (const std::string* target : {&config_.errorlog, config_.accesslog ? &*config_.accesslog : nullptr})
    if (target != nullptr && is_log_file(*target) && !chown_for(identity_, *target))
      log::error().warn("chown({}) failed: {}", *target, std::strerror(errno));
}

// ---- hooks --------------------------------------------------------------------------------

void Arbiter::update_hook_server() {
  if (!hooks::loaded()) return;
  hooks::ServerState s;
  s.pid = pid_;
  s.num_workers = num_workers_;
  s.proc_name = proc_name();
  s.worker_class = plugin_.name();
  s.cfg_json = to_json(config_);
  for (const auto& l : listeners_.items()) s.addresses.push_back(l.url);
  hooks::update_server(s);
}

void Arbiter::set_num_workers(int n) {
  if (n == num_workers_) return;
  int old = num_workers_;
  num_workers_ = n;
  if (hooks::loaded()) {
    update_hook_server();
    hooks::call_nworkers_changed(n, old);
  }
}

// ---- workers ------------------------------------------------------------------------------

void Arbiter::spawn_worker() {
  size_t index = 0;
  while (index < slot_count_ && slots_[index].pid.load() != 0) ++index;
  if (index == slot_count_) {
    log::error().error("Cannot start more than {} workers", slot_count_);
    return;
  }
  WorkerSlot& slot = slots_[index];
  slot.heartbeat_ms.store(clock::mono_ms());
  slot.requests.store(0);
  slot.booted.store(0);
  slot.boot_error[0] = '\0';
  slot.pid.store(-1);  // reserved until the child writes its pid

  uint32_t age = ++worker_age_;
  PyObject* hook = nullptr;
  if (hooks::loaded()) {
    hook = hooks::new_worker(age, static_cast<uint32_t>(index), pid_);
    update_hook_server();
    hooks::call_server_worker("pre_fork", hook);
  }

  WorkerSetup setup;
  setup.config = &config_;
  setup.listeners = &listeners_;
  setup.plugin = &plugin_;
  setup.slot = &slot;
  setup.index = static_cast<uint32_t>(index);
  setup.master_pid = pid_;
  setup.preloaded_app = preloaded_app_;
  setup.argv = start_.argv;
  setup.identity = &identity_;
  setup.title = "alicorn: worker [" + proc_name() + "]";
  setup.hook_worker = hook;

  bool python = python::is_initialized();
  if (python) python::before_fork();
  // The child runs with every signal blocked until it has its own handlers (see
  // install_worker_signals): a TERM sent right after fork must not hit the master's handler.
  sigset_t all, previous;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, &previous);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(g_signal_pipe[0]);
    ::close(g_signal_pipe[1]);
    if (reloader_ && reloader_->fd() >= 0) ::close(reloader_->fd());  // the master's watch
    run_worker_process(setup);  // never returns
  }
  ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  if (python) python::after_fork_parent();
  if (pid < 0) {
    slot.pid.store(0);
    hooks::release_worker(hook);
    log::error().error("fork() failed: {}", std::strerror(errno));
    return;
  }
  slot.pid.store(pid);
  WorkerState state;
  state.index = static_cast<uint32_t>(index);
  state.age = age;
  state.hook = hook;
  hooks::set_worker_pid(hook, pid);
  workers_[pid] = state;
  log::error().info("Booting worker with pid: {}", pid);
}

void Arbiter::spawn_missing() {
  int active = 0;
  for (const auto& [pid, state] : workers_) active += (state.retiring || state.replaced) ? 0 : 1;
  for (; active < num_workers_; ++active) spawn_worker();
}

void Arbiter::retire(pid_t pid, WorkerState& state) {
  state.retiring = true;
  state.replaced = false;
  ::kill(pid, SIGTERM);
}

void Arbiter::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    if (pid == reexec_pid_) {
      reexec_pid_ = 0;
      if (WIFEXITED(status))
        log::error().error("The new master (pid:{}) exited with code {}", pid, WEXITSTATUS(status));
      else if (WIFSIGNALED(status))
        log::error().error("The new master (pid:{}) was sent {}", pid,
                           full_signal_name(WTERMSIG(status)));
      // The upgrade is over: this master is the one again.
      if (config_.pidfile && pidfile_path_ != *config_.pidfile) {
        std::string old = pidfile_path_;
        try {
          write_pidfile(*config_.pidfile);
          ::unlink(old.c_str());
        } catch (const std::exception& e) {
          log::error().error("{}", e.what());
        }
      }
      systemd::notify("MAINPID=" + std::to_string(pid_));
      continue;
    }
    auto it = workers_.find(pid);
    if (it == workers_.end()) continue;
    WorkerState state = it->second;
    workers_.erase(it);
    WorkerSlot& slot = slots_[state.index];
    std::string boot_error = slot.boot_error;
    slot.pid.store(0);
    ops_worker_exited(pid, state, status);  // ops: restart reasons, metric totals
    if (WIFEXITED(status)) {
      int code = WEXITSTATUS(status);
      bool serving = false;  // --reload: workers being replaced still serve the old code
      for (const auto& [p, st] : workers_) serving = serving || st.replaced;
      if (code == kExitAppLoad && reloader_ && (serving || state.retiring)) {
        log::error().error("Worker (pid:{}) failed to load the application: {}", pid,
                           boot_error.empty() ? "see the traceback above" : boot_error);
        if (serving)
          log::error().error("Reload failed: keeping the current workers until the next change");
        for (auto& [p, st] : workers_)
          if (st.replaced) st.replaced = false;
        // Its siblings of the same replacement would fail the same way.
        for (auto& [p, st] : workers_)
          if (!st.retiring && !slots_[st.index].booted.load()) retire(p, st);
      } else if (code == kExitAppLoad) {
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
        log::error().error("Worker (pid:{}) exited with code {}{}", pid, code,
                           state.abort_sent_ms ? " after WORKER TIMEOUT" : "");
      } else {
        log::error().info("Worker (pid:{}) exited with code 0", pid);
      }
    } else if (WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      if (sig == SIGKILL && state.killed)
        log::error().error("Worker (pid:{}) was sent SIGKILL by the master{}", pid,
                           state.abort_sent_ms ? " after WORKER TIMEOUT" : "");
      else if (sig == SIGKILL)
        log::error().error("Worker (pid:{}) was sent SIGKILL! Perhaps out of memory?", pid);
      else if (state.retiring && sig == SIGTERM)
        log::error().info("Worker (pid:{}) was sent SIGTERM", pid);
      else
        log::error().error("Worker (pid:{}) was sent {}!", pid, full_signal_name(sig));
    }
    if (state.hook != nullptr) {
      update_hook_server();
      hooks::set_worker_pid(state.hook, pid);
      hooks::call_server_worker("child_exit", state.hook);
      hooks::release_worker(state.hook);
    }
  }
}

void Arbiter::check_timeouts() {
  if (config_.timeout <= 0) return;
  int64_t now = clock::mono_ms();
  int64_t limit = static_cast<int64_t>(config_.timeout * 1000);
  for (auto& [pid, state] : workers_) {
    int64_t beat = slots_[state.index].heartbeat_ms.load();
    if (now - beat <= limit) continue;
    if (state.abort_sent_ms == 0) {
      log::error().critical("WORKER TIMEOUT (pid:{})", pid);
      state.abort_sent_ms = now;
      ::kill(pid, SIGABRT);
    } else if (now - state.abort_sent_ms > kAbortGraceMs && !state.killed) {
      state.killed = true;
      ::kill(pid, SIGKILL);
    }
  }
}

// Workers replaced by a HUP leave once their successors have booted (so there is never a moment
// without a worker ready to accept), and READY=1 goes to systemd once the workers are up.
void Arbiter::check_booted() {
  int active = 0, booted = 0;
  bool any_replaced = false;
  for (const auto& [pid, state] : workers_) {
    if (state.replaced) any_replaced = true;
    if (state.retiring || state.replaced) continue;
    ++active;
    booted += slots_[state.index].booted.load() ? 1 : 0;
  }
  bool all_up = booted == active && active >= num_workers_;
  if (any_replaced && (all_up || clock::mono_ms() > replace_deadline_ms_)) {
    for (auto& [pid, state] : workers_)
      if (state.replaced) retire(pid, state);
  }
  if (ready_pending_ && all_up) {
    ready_pending_ = false;
    std::string status = "STATUS=alicorn master [" + proc_name() + "] with " +
                         std::to_string(active) + " workers";
    if (start_.parent_master != 0 && !announced_ready_)
      systemd::notify("MAINPID=" + std::to_string(pid_) + "\nREADY=1\n" + status);
    else
      systemd::notify("READY=1\n" + status);
    announced_ready_ = true;
  }
}

void Arbiter::maybe_promote() {
  if (parent_master_ == 0 || ::getppid() == parent_master_) return;
  log::error().info("Master has been promoted.");
  parent_master_ = 0;
  set_title();
}

void Arbiter::kill_workers(int sig) {
  for (auto& [pid, state] : workers_) {
    if (sig == SIGKILL) state.killed = true;
    ::kill(pid, sig);
  }
}

int Arbiter::wait_signal(int timeout_ms) {
  pollfd pfd{g_signal_pipe[0], POLLIN, 0};
  int rc = ::poll(&pfd, 1, timeout_ms);
  if (rc <= 0) return 0;
  unsigned char b = 0;
  if (::read(g_signal_pipe[0], &b, 1) == 1) return b;
  return 0;
}

// ---- stop ---------------------------------------------------------------------------------

void Arbiter::stop(bool graceful) {
  // An old master leaving after an upgrade must not tell systemd the service stops, nor remove
  // the unix socket files the new master now serves on.
  bool upgrading = reexec_pid_ != 0 || parent_master_ != 0;
  if (!upgrading) systemd::notify("STOPPING=1");
  bool unlink_paths = !upgrading && !systemd_ && !config_.reuse_port;
  listeners_.close(unlink_paths);
  int sig = graceful ? SIGTERM : SIGQUIT;
  for (auto& [pid, state] : workers_) state.retiring = true;
  kill_workers(sig);
  int64_t limit = clock::mono_ms() + static_cast<int64_t>(config_.graceful_timeout * 1000);
  while (!workers_.empty() && clock::mono_ms() < limit) {
    int s = wait_signal(100);
    if ((s == SIGINT || s == SIGQUIT) && graceful) {
      log::error().info("Handling signal: {}", signal_name(s));
      graceful = false;
      kill_workers(SIGQUIT);
    }
    reap();
  }
  if (!workers_.empty()) {
    for (const auto& [pid, state] : workers_)
      log::error().warn("Worker (pid:{}) still running after graceful_timeout ({}s): killing it",
                           pid, config_.graceful_timeout);
    kill_workers(SIGKILL);
    int64_t hard_limit = clock::mono_ms() + 10000;
    while (!workers_.empty() && clock::mono_ms() < hard_limit) {
      wait_signal(50);
      reap();
    }
  }
}

// ---- HUP ----------------------------------------------------------------------------------

void Arbiter::reload() {
  log::error().info("Hang up: Master");
  systemd::notify("RELOADING=1");
  auto keep = [&](const std::string& why) {
    log::error().error("Reloading the configuration failed: {}; keeping the current one", why);
  };

  // The settings cycle of startup (config_stage.hpp): read, validate, stage; then commit.
  StagedConfig staged;
  try {
    staged = validate_and_stage(read_settings(start_.argv, base_environment()), &config_);
    stage_logs(staged.loaded.config, &config_);
    try {
      python::setup_python_logging(staged.loaded.config, start_.argv);
    } catch (const std::exception&) {
      try {  // back to the current configuration's logs
        stage_logs(config_, nullptr);
        python::setup_python_logging(config_, start_.argv);
      } catch (...) {
      }
      throw;
    }
  } catch (const std::exception& e) {  // ConfigError or StageError
    keep(e.what());
    ready_pending_ = true;
    return;
  }
  Config next = std::move(staged.loaded.config);
  Identity next_identity = staged.identity;
  bool new_plugin = staged.plugin.has_value();
  for (const auto& warning : staged.loaded.warnings) log::error().warn("{}", warning);
  if (systemd_) {
    if (bind_texts(next.bind) != bind_texts(config_.bind))
      log::error().info("Listening on the sockets systemd passed; bind is ignored");
  } else {
    try {
      // During an upgrade the other master serves on the same unix socket files: keep them.
      bool unlink_paths = reexec_pid_ == 0 && parent_master_ == 0;
      ListenerChanges changes = listeners_.update(next.bind, listen_options(next), unlink_paths);
      for (const auto& url : changes.opened)
        log::error().info("Listening at: {} ({})", url, pid_);
      for (const auto& url : changes.closed) log::error().info("Stopped listening at: {}", url);
    } catch (const std::exception& e) {
      keep(e.what());
      ready_pending_ = true;
      return;
    }
  }

  // Committed from here on.
  try {
    commit_settings(next, &config_, start_.env, start_.argv);
  } catch (const StageError& e) {
    log::error().error("{}", e.what());
  }
  if (next.pidfile != config_.pidfile && reexec_pid_ == 0) {
    remove_pidfile();
    if (next.pidfile) {
      try {
        write_pidfile(*next.pidfile);
      } catch (const std::exception& e) {
        log::error().error("{}", e.what());
      }
    }
  }
  if (new_plugin) {
    plugin_ = std::move(*staged.plugin);
    log::error().info("Using worker: {}", plugin_.name());
  }
  bool hooks_changed = next.hooks != config_.hooks;
  config_ = std::move(next);
  identity_ = next_identity;
  chown_paths();
  set_title();

  if (config_.hooks) {
    if (!python::is_initialized()) {
      try {
        python::initialize(python_init_options(config_, start_.argv));
      } catch (const std::exception& e) {
        log::error().error("Cannot start Python for the hooks: {}", e.what());
      }
    }
    if (python::is_initialized()) {
      if (hooks::loaded() || !hooks_changed) hooks::reload(*config_.hooks);
      else {
        try {
          hooks::load(*config_.hooks);
        } catch (const std::exception& e) {
          log::error().error("Cannot import the hooks module {}:\n{}", *config_.hooks, e.what());
        }
      }
    }
  } else if (hooks::loaded()) {
    hooks::unload();
  }
  update_hook_server();
  hooks::call_server("on_reload");
  set_num_workers(config_.workers);

  if (!reload_setup()) log::error().error("reload: the source is not watched");
  replace_workers();
}

// New workers (they import the app anew unless it was preloaded); the current ones leave once
// the new ones have booted.
void Arbiter::replace_workers() {
  for (auto& [pid, state] : workers_)
    if (!state.retiring) state.replaced = true;
  int64_t wait_ms = config_.timeout > 0 ? static_cast<int64_t>(config_.timeout * 1000) : 30000;
  replace_deadline_ms_ = clock::mono_ms() + std::max<int64_t>(wait_ms, 5000);
  ready_pending_ = true;
  spawn_missing();
}

// ---- --reload -----------------------------------------------------------------------------

bool Arbiter::reload_setup() {
  reloader_.reset();
  if (!config_.reload) return true;
  std::vector<std::string> roots;
  std::error_code ec;
  roots.push_back(std::filesystem::current_path(ec).string());  // after --chdir
  for (const auto& p : config_.pythonpath) roots.push_back(p);
  try {
    reloader_ = std::make_unique<Reloader>(roots, config_.reload_extra_files,
                                           config_.reload_engine != "poll");
  } catch (const std::exception& e) {
    log::error().error("{}", e.what());
    return false;
  }
  if (config_.preload_app)
    log::error().warn("reload: with --preload the app is imported once, in the master; new "
                      "workers reuse it, so changes to it are not picked up");
  log::error().info("Reloading on changes to the app's source ({}, {} {} watched)",
                    reloader_->engine(), reloader_->watched(),
                    reloader_->engine() == std::string("poll") ? "files" : "folders");
  return true;
}

// Compile the changed *.py files in a child process (the master may run no Python, and an
// interpreter started here would be inherited by every worker): the tracebacks, "" if none.
std::string Arbiter::reload_compile_errors(const std::vector<std::string>& files) {
  std::vector<std::string> sources;
  for (const auto& f : files)
    if (f.size() > 3 && f.compare(f.size() - 3, 3, ".py") == 0 && ::access(f.c_str(), R_OK) == 0)
      sources.push_back(f);
  if (sources.empty()) return {};
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  bool python = python::is_initialized();
  if (python) python::before_fork();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::close(g_signal_pipe[0]);
    ::close(g_signal_pipe[1]);
    std::string out;
    try {
      if (python) python::after_fork_child();
      else python::initialize(python_init_options(config_, start_.argv));
      for (const auto& f : sources) out += python::compile_error(f);
    } catch (const std::exception& e) {
      out.clear();  // cannot check: let the new workers try
    }
    for (size_t off = 0; off < out.size();) {
      ssize_t n = ::write(fds[1], out.data() + off, out.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::_exit(0);
  }
  if (python) python::after_fork_parent();
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    return {};
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return out;
}

void Arbiter::reload_tick() {
  if (!reloader_) return;
  std::vector<std::string> changed = reloader_->poll(clock::mono_ms());
  if (changed.empty()) return;
  std::string names = join(changed, ", ");
  std::string errors = reload_compile_errors(changed);
  if (!errors.empty()) {
    while (!errors.empty() && errors.back() == '\n') errors.pop_back();
    log::error().error("Reload: {} changed but does not compile; the current workers keep "
                       "serving:\n{}", names, errors);
    return;
  }
  log::error().info("Reload: {} changed; replacing the workers", names);
  replace_workers();
}

// ---- USR2 ---------------------------------------------------------------------------------

void Arbiter::reexec() {
  if (reexec_pid_ != 0) {
    log::error().warn("USR2 signal ignored. Child exists.");
    return;
  }
  if (parent_master_ != 0) {
    log::error().warn("USR2 signal ignored. Parent exists.");
    return;
  }
  if (start_.exe.empty()) {
    log::error().error("USR2 signal ignored: the path of the running binary is unknown");
    return;
  }
  // The environment for the new binary, built before fork.
  Environment env = base_environment();
  env["ALICORN_PID"] = std::to_string(pid_);
  std::vector<int> fds = listeners_.fds();
  std::string fd_list;
  for (int fd : fds) fd_list += (fd_list.empty() ? "" : ",") + std::to_string(fd);
  if (systemd_) env["LISTEN_FDS"] = std::to_string(fds.size());
  else env["ALICORN_FDS"] = fd_list;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);

  std::string oldbin;
  if (!pidfile_path_.empty() && config_.pidfile && pidfile_path_ == *config_.pidfile) {
    oldbin = *config_.pidfile + ".oldbin";
    std::string previous = pidfile_path_;
    try {
      write_pidfile(oldbin);
      ::unlink(previous.c_str());
    } catch (const std::exception& e) {
      log::error().error("{}", e.what());
    }
  }

  bool python = python::is_initialized();
  if (python) python::before_fork();
  pid_t pid = ::fork();
  if (pid == 0) {
    if (python) {
      python::after_fork_child();
      hooks::call_server("pre_exec");
      python::flush_std_streams();
    }
    if (systemd_) env_strings.push_back("LISTEN_PID=" + std::to_string(::getpid()));
    for (int fd : fds) {
      int flags = ::fcntl(fd, F_GETFD);
      if (flags >= 0) ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    std::vector<char*> argv;
    for (const auto& a : start_.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    if (!start_.cwd.empty() && ::chdir(start_.cwd.c_str()) != 0) {
      // Stay where we are: the new master chdirs by itself when --chdir is set.
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(start_.exe.c_str(), argv.data(), envp.data());
    log::error().error("execve(\"{}\") failed: {}", start_.exe, std::strerror(errno));
    ::_exit(kExitFailure);
  }
  if (python) python::after_fork_parent();
  if (pid < 0) {
    log::error().error("fork() failed: {}", std::strerror(errno));
    if (!oldbin.empty() && config_.pidfile) {
      try {
        write_pidfile(*config_.pidfile);
        ::unlink(oldbin.c_str());
      } catch (...) {
      }
    }
    return;
  }
  reexec_pid_ = pid;
  log::error().info("Re-executing {} as the new master (pid: {}), sockets {}", start_.exe, pid,
                    fd_list.empty() ? "none" : fd_list);
}

// ---- signals ------------------------------------------------------------------------------

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
      if (num_workers_ < static_cast<int>(slot_count_)) set_num_workers(num_workers_ + 1);
      spawn_missing();
      ready_pending_ = true;
      return true;
    case SIGTTOU:
      if (num_workers_ > 1) {
        set_num_workers(num_workers_ - 1);
        // Retire the oldest worker still serving.
        auto oldest = workers_.end();
        for (auto it = workers_.begin(); it != workers_.end(); ++it)
          if (!it->second.retiring && !it->second.replaced &&
              (oldest == workers_.end() || it->second.age < oldest->second.age))
            oldest = it;
        if (oldest != workers_.end()) retire(oldest->first, oldest->second);
      }
      return true;
    case SIGHUP:
      reload();
      return true;
    case SIGUSR1:
      log::reopen();
      chown_paths();
      kill_workers(SIGUSR1);
      return true;
    case SIGUSR2:
      reexec();
      return true;
    case SIGWINCH:
      if (start_.daemonized) {
        log::error().info("graceful stop of workers");
        set_num_workers(0);
        for (auto& [pid, state] : workers_)
          if (!state.retiring) retire(pid, state);
      } else {
        log::error().debug("SIGWINCH ignored. Not daemonized");
      }
      return true;
    default:
      return true;
  }
}

// ---- start --------------------------------------------------------------------------------

bool Arbiter::open_listeners() {
  std::vector<int> sd_fds = systemd::listen_fds();
  try {
    if (!sd_fds.empty()) {
      systemd_ = true;
      listeners_ = ListenerSet::inherit(sd_fds, false);
      log::error().info("Using {} socket(s) from systemd socket activation; bind is ignored",
                        sd_fds.size());
    } else if (!start_.inherited_fds.empty()) {
      listeners_ = ListenerSet::inherit(start_.inherited_fds, true);
      log::error().info("Inherited sockets {} from the old master (pid: {})",
                        join([&] {
                          std::vector<std::string> v;
                          for (int fd : start_.inherited_fds) v.push_back(std::to_string(fd));
                          return v;
                        }(), ","),
                        start_.parent_master);
      ListenerChanges changes = listeners_.update(config_.bind, listen_options(config_), false);
      for (const auto& url : changes.closed)
        log::error().info("Closed inherited socket {} (not in bind)", url);
    } else {
      listeners_ = ListenerSet::open(config_.bind, listen_options(config_));
    }
  } catch (const std::exception& e) {
    log::error().error("{}", e.what());
    log::error().error("Can't listen; shutting down");
    return false;
  }
  return true;
}

int Arbiter::start() {
  log::error().info("Starting alicorn {}", ALICORN_VERSION);
  if (identity_changes(identity_) && ::geteuid() != 0) {
    log::error().error("user/group: switching the workers to uid {} gid {} needs root",
                       identity_.uid ? std::to_string(*identity_.uid) : "-",
                       identity_.gid ? std::to_string(*identity_.gid) : "-");
    return kExitConfig;
  }
  // Python runs in the master only for the hooks or --preload; workers then inherit it.
  if (config_.hooks || config_.preload_app) {
    try {
      python::initialize(python_init_options(config_, start_.argv));
    } catch (const std::exception& e) {
      log::error().critical("{}", e.what());
      return kExitWorkerBoot;
    }
  }
  if (config_.hooks) {
    try {
      hooks::load(*config_.hooks);
    } catch (const std::exception& e) {
      log::error().error("Cannot import the hooks module {}:\n{}", *config_.hooks, e.what());
      return kExitFailure;
    }
  }
  if (hooks::loaded()) {  // --hooks, or hooks defined in a Python config file
    update_hook_server();
    if (!hooks::call_server("on_starting")) {
      log::error().error("The on_starting hook failed; not starting");
      return kExitFailure;
    }
    if (config_.certfile) {  // ssl_context(config, default_ssl_context_factory)
      try {
        hooks::TlsFiles f{*config_.certfile, config_.keyfile.value_or(""),
                          config_.ca_certs.value_or(""), config_.ciphers.value_or(""),
                          config_.cert_reqs};
        if (void* ctx = hooks::call_ssl_context(f)) {
          tls_adopt_context(static_cast<ssl_ctx_st*>(ctx));
          log::error().info("TLS: serving with the context of the ssl_context hook");
        }
      } catch (const std::exception& e) {
        log::error().error("Exception in ssl_context hook:\n{}", e.what());
        return kExitConfig;
      }
    }
  }
  if (config_.preload_app) {
    try {
      preloaded_app_ = python::load_app(*config_.app);
    } catch (const python::AppLoadError& e) {
      log::error().error("Exception while preloading the application\n{}", e.traceback());
      log::error().error("Failed to load the application: {}", e.what());
      log::error().info("Shutting down: Master");
      log::error().info("Reason: App failed to load.");
      return kExitAppLoad;
    }
  }
  if (!open_listeners()) return kExitFailure;
  if (int code = ops_open(); code != 0) return code;  // ops: metrics, control socket
  if (!reload_setup()) return kExitConfig;  // --reload
  chown_paths();
  if (config_.pidfile) write_pidfile(*config_.pidfile);
  for (const auto& l : listeners_.items()) log::error().info("Listening at: {} ({})", l.url, pid_);
  log::error().info("Using worker: {}", plugin_.name());
  set_title();
  update_hook_server();
  hooks::call_server("when_ready");
  return 0;
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

  if (int code = start(); code != 0) {
    listeners_.close(parent_master_ == 0 && !systemd_);
    remove_pidfile();
    return code;
  }
  spawn_missing();
  ops_tick();  // the control socket knows the first workers (serials) at once, not a second later
  bool running = true;
  while (running) {
    bool busy = ready_pending_ || reloader_ || std::any_of(workers_.begin(), workers_.end(),
                                              [](const auto& w) { return w.second.replaced; });
    int sig = wait_signal(busy ? 100 : 1000);
    if (sig != 0) running = handle_signal(sig);
    if (!running) break;
    reap();
    if (!halt_reason_.empty()) {
      stop(true);
      break;
    }
    maybe_promote();
    check_timeouts();
    spawn_missing();
    check_booted();
    reload_tick();  // --reload
    ops_tick();  // ops: control commands, RSS, memory recycling, metrics
  }
  log::error().info("Shutting down: Master");
  if (!halt_reason_.empty()) log::error().info("Reason: {}", halt_reason_);
  remove_pidfile();
  update_hook_server();
  hooks::call_server("on_exit");
  if (python::is_initialized()) python::flush_std_streams();
  return exit_code_;
}

}  // namespace alicorn
