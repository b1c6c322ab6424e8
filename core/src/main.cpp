// alicorn: the command-line entry. Everything that can be refused is refused here, before a
// single worker is forked, with a message naming the cause and a non-zero exit code.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "alicorn/access_log.hpp"
#include "alicorn/arbiter.hpp"
#include "alicorn/config.hpp"
#include "alicorn/listeners.hpp"
#include "alicorn/log.hpp"
#include "alicorn/plugin_host.hpp"
#include "alicorn/python_runtime.hpp"
#include "alicorn/worker_runtime.hpp"

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

int list_workers() {
  auto dirs = plugin_search_path(env_or_empty("ALICORN_PLUGIN_PATH"));
  std::printf("%-10s %-10s %-6s %s\n", "NAME", "VERSION", "ABI", "PATH");
  for (const auto& dir : dirs) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.path().extension() != ".so") continue;
      try {
        Plugin p = load_plugin_file(entry.path());
        std::printf("%-10s %-10s %u.%u    %s\n", p.vtable().name, p.vtable().version,
                    p.abi_major(), p.abi_minor(), entry.path().c_str());
      } catch (const PluginError& e) {
        std::printf("%-10s %-10s %-6s %s (refused: %s)\n", entry.path().stem().c_str(), "-", "-",
                    entry.path().c_str(), e.what());
      }
    }
  }
  return 0;
}

int serve(LoadedConfig& loaded, int argc, char** argv) {
  Config& config = loaded.config;
  if (!config.app) return fail(kExitConfig, "No application module specified (APP_MODULE or wsgi_app).");
  try {
    log::setup_error_log(config.errorlog, config.loglevel);
    log::setup_access_log(config.accesslog.value_or(""));
    set_access_log_format(config.access_log_format);
  } catch (const std::exception& e) {
    return fail(kExitConfig, std::string("errorlog/accesslog: ") + e.what());
  }
  for (const auto& [key, value] : config.raw_env) ::setenv(key.c_str(), value.c_str(), 1);
  if (config.chdir && ::chdir(config.chdir->c_str()) != 0)
    return fail(kExitConfig, "chdir: chdir(\"" + *config.chdir + "\") failed: " + std::strerror(errno));
  if (config.virtualenv) {
    struct stat st {};
    if (::stat((*config.virtualenv + "/pyvenv.cfg").c_str(), &st) != 0)
      return fail(kExitConfig, "virtualenv: " + *config.virtualenv +
                                   " is not a virtual environment (no pyvenv.cfg)");
  }

  Plugin plugin;
  try {
    plugin = load_plugin(config.worker_class, env_or_empty("ALICORN_PLUGIN_PATH"));
  } catch (const PluginError& e) {
    log::error().error("{}", e.what());
    return fail(kExitFailure, e.what());
  }

  std::vector<std::string> args(argv, argv + argc);
  if (loaded.action == Action::CheckConfig) {
    try {
      python::initialize(python_init_options(config, args));
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

  log::error().info("Starting alicorn {}", ALICORN_VERSION);
  ListenerSet listeners;
  try {
    listeners = ListenerSet::open(config.bind, config.backlog, config.reuse_port);
  } catch (const std::exception& e) {
    log::error().error("{}", e.what());
    log::error().error("Can't listen; shutting down");
    return kExitFailure;
  }
  for (const auto& l : listeners.items())
    log::error().info("Listening at: {} ({})", l.url, ::getpid());
  log::error().info("Using worker: {}", plugin.name());

  PyObject* preloaded = nullptr;
  if (config.preload_app) {
    try {
      python::initialize(python_init_options(config, args));
      preloaded = python::load_app(*config.app);
    } catch (const python::AppLoadError& e) {
      log::error().error("Exception while preloading the application\n{}", e.traceback());
      log::error().error("Failed to load the application: {}", e.what());
      log::error().info("Shutting down: Master");
      log::error().info("Reason: App failed to load.");
      listeners.close(true);
      return kExitAppLoad;
    } catch (const std::exception& e) {
      log::error().critical("{}", e.what());
      listeners.close(true);
      return kExitWorkerBoot;
    }
  }

  try {
    Arbiter arbiter(std::move(config), std::move(plugin), std::move(listeners), args, preloaded);
    return arbiter.run();
  } catch (const std::exception& e) {
    log::error().critical("{}", e.what());
    return kExitFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  LoadedConfig loaded;
  try {
    loaded = load_config(argc, argv, current_environment());
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
      std::fputs(to_yaml(loaded.config).c_str(), stdout);
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
