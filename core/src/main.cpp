// alicorn: the command-line entry. Everything that can be refused is refused here, before a
// single worker is forked, with a message naming the cause and a non-zero exit code.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <set>
#include <vector>
#include <iostream>

#include "control/ctl.hpp"
#include "log/access_log.hpp"
#include "master/arbiter.hpp"
#include "config/config.hpp"
#include "python/hooks.hpp"
#include "net/listeners.hpp"
#include "log/log.hpp"
#include "plugin/plugin_host.hpp"
#include "master/process.hpp"
#include "master/proctitle.hpp"
#include "python/config_file.hpp"
#include "python/py_logging.hpp"
#include "python/python_runtime.hpp"
#include "master/config_stage.hpp"
#include "plugin/worker_runtime.hpp"

namespace {

using namespace alicorn;

int fail(int code, const std::string& message) {
  std::fprintf(stderr, "Error: %s\n", message.c_str());
  return code;
}

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Every plugin file in the search path, in lookup order: `-k NAME` takes the first NAME.so, so
// a later one of the same name is marked shadowed.
int list_workers() {
  struct Row {
    std::string name, version, abi, path, note;
  };
  std::vector<Row> rows;
  std::set<std::string> seen;
  for (const auto& dir : plugin_search_path(env_or_empty("ALICORN_PLUGIN_PATH"))) {
    std::error_code ec;
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
      if (entry.path().extension() == ".so") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      std::string stem = file.stem().string();
      std::string shadowed = seen.insert(stem).second ? "" : "shadowed by an earlier " + stem + ".so; ";
      try {
        Plugin p = load_plugin_file(file);
        const char* description = p.vtable().description;
        rows.push_back({p.vtable().name, p.vtable().version,
                        std::to_string(p.abi_major()) + "." + std::to_string(p.abi_minor()),
                        file.string(), shadowed + (description ? description : "")});
      } catch (const PluginError& e) {
        rows.push_back({stem, "-", "-", file.string(), shadowed + "refused: " + e.what()});
      }
    }
  }
  size_t width = 4;
  for (const auto& r : rows) width = std::max(width, r.name.size());
  std::printf("%-*s  %-8s  %-4s  %s\n", static_cast<int>(width), "NAME", "VERSION", "ABI", "PATH");
  for (const auto& r : rows) {
    std::printf("%-*s  %-8s  %-4s  %s\n", static_cast<int>(width), r.name.c_str(), r.version.c_str(),
                r.abi.c_str(), r.path.c_str());
    if (!r.note.empty()) std::printf("%-*s  %s\n", static_cast<int>(width), "", r.note.c_str());
  }
  return 0;
}

// The listening sockets an old master handed over on USR2 (ALICORN_FDS=3,4) and its pid
// (ALICORN_PID); both variables are removed so neither the workers nor the app see them.
void take_upgrade_environment(StartContext& start) {
  if (const char* fds = std::getenv("ALICORN_FDS")) {
    std::string text = fds;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t comma = text.find(',', pos);
      std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      if (!item.empty()) {
        char* end = nullptr;
        long fd = std::strtol(item.c_str(), &end, 10);
        if (end != nullptr && *end == '\0' && fd >= 0) start.inherited_fds.push_back(static_cast<int>(fd));
      }
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
    ::unsetenv("ALICORN_FDS");
  }
  if (const char* pid = std::getenv("ALICORN_PID")) {
    start.parent_master = static_cast<pid_t>(std::strtol(pid, nullptr, 10));
    ::unsetenv("ALICORN_PID");
  }
}

// Startup runs the settings cycle of config_stage.hpp (read -> validate -> stage -> commit),
// the one HUP runs too; any failure exits non-zero before a worker is forked.
int serve(LoadedConfig& loaded_in, int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  StartContext start;
  start.argv = args;
  take_upgrade_environment(start);
  {
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) start.exe = exe.string();
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) != nullptr) start.cwd = cwd;
    start.env = current_environment();
  }
  StagedConfig staged;
  try {
    stage_logs(loaded_in.config, nullptr);
    for (const auto& warning : loaded_in.warnings) log::error().warn("{}", warning);
    staged = validate_and_stage(std::move(loaded_in), nullptr);
    commit_settings(staged.loaded.config, nullptr, start.env, args);
  } catch (const StageError& e) {
    if (e.exit_code() == kExitFailure) log::error().error("{}", e.what());
    return fail(e.exit_code(), e.what());
  }
  // logconfig*: Python's logging takes the error and access logs from here on (workers inherit
  // the configured interpreter).
  try {
    python::setup_python_logging(staged.loaded.config, args);
  } catch (const std::exception& e) {
    return fail(kExitConfig, e.what());
  }
  LoadedConfig& loaded = staged.loaded;
  Config& config = loaded.config;
  Plugin plugin = std::move(*staged.plugin);

  if (loaded.action == Action::CheckConfig) {
    try {
      python::initialize(python_init_options(config, args));
      if (config.hooks) {
        try {
          hooks::load(*config.hooks);
        } catch (const std::exception& e) {
          log::error().error("Cannot import the hooks module {}:\n{}", *config.hooks, e.what());
          return fail(kExitFailure, "hooks: cannot import " + *config.hooks);
        }
      }
      PyObject* app = python::load_app(*config.app);
      (void)app;
    } catch (const python::AppLoadError& e) {
      log::error().error("Failed to load the application:\n{}", e.traceback());
      return fail(kExitAppLoad, std::string("wsgi_app: failed to load the application: ") + e.what());
    } catch (const std::exception& e) {
      return fail(kExitWorkerBoot, e.what());
    }
    std::printf("Configuration OK: %s with worker class %s\n", config.app->spec.c_str(),
                plugin.name().c_str());
    return kExitOk;
  }

  // A master started by USR2 is already detached when the old one was.
  if (config.daemon) {
    if (start.inherited_fds.empty() && start.parent_master == 0) {
      bool keep_stdout = config.errorlog == "stdout" || config.accesslog == "-" ||
                         config.accesslog == "stdout";
      bool keep_stderr = config.errorlog == "-" || config.errorlog == "stderr";
      try {
        daemonize(keep_stdout, keep_stderr);
      } catch (const std::exception& e) {
        return fail(kExitFailure, std::string("daemon: ") + e.what());
      }
    }
    start.daemonized = true;
  }
  // From here on argv's memory holds the process title.
  proctitle::init(argc, argv);

  try {
    Arbiter arbiter(std::move(config), std::move(plugin), std::move(start));
    return arbiter.run();
  } catch (const std::exception& e) {
    log::error().critical("{}", e.what());
    return kExitFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "ctl") == 0)  // `alicorn ctl ...` (core/src/control)
    return alicorn::control::ctl_main(argc - 1, argv + 1);
  python::install_config_reader();
  LoadedConfig loaded;
  try {
    loaded = read_settings(std::vector<std::string>(argv, argv + argc), current_environment());
  } catch (const ConfigError& e) {
    return fail(kExitConfig, e.what());
  }
  switch (loaded.action) {
    case Action::Version:
      std::printf("alicorn %s\n", ALICORN_VERSION);
      return 0;
    case Action::Help:
      std::fputs(loaded.help_text.c_str(), stdout);
      return 0;
    case Action::PrintConfig:
      for (const auto& warning : loaded.warnings) std::fprintf(stderr, "Warning: %s\n", warning.c_str());
      std::fputs(to_yaml(loaded.config, &loaded.sources).c_str(), stdout);
      std::fputc('\n', stdout);
      return 0;
    case Action::ListWorkers:
      return list_workers();
    case Action::Serve:
    case Action::CheckConfig:
      return serve(loaded, argc, argv);
  }
  return 0;
}
