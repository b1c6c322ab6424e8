// The settings cycle shared by startup and HUP (see config_stage.hpp).
#include "master/config_stage.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "log/access_log.hpp"
#include "log/log.hpp"
#include "python/config_file.hpp"
#include "python/python_runtime.hpp"
#include "plugin/worker_runtime.hpp"

namespace alicorn {

LoadedConfig read_settings(const std::vector<std::string>& argv, const Environment& env) {
  std::vector<const char*> args;
  for (const auto& a : argv) args.push_back(a.c_str());
  args.push_back(nullptr);
  return load_config(static_cast<int>(argv.size()), args.data(), env);
}

StagedConfig validate_and_stage(LoadedConfig loaded, const Config* current) {
  StagedConfig staged;
  Config& next = loaded.config;
  if (!next.app) throw StageError("No application module specified (APP_MODULE or wsgi_app).");
  if (auto it = loaded.sources.find("virtualenv"); next.config_is_python &&
                                                  it != loaded.sources.end() &&
                                                  it->second.rfind("file ", 0) == 0)
    throw StageError(it->second.substr(5) + ": virtualenv: give it on the command line or in "
                     "$VIRTUAL_ENV: the interpreter that runs a Python config file starts "
                     "before the file does");
  if (next.virtualenv) {
    struct stat st {};
    if (::stat((*next.virtualenv + "/pyvenv.cfg").c_str(), &st) != 0)
      throw StageError("virtualenv: " + *next.virtualenv +
                       " is not a virtual environment (no pyvenv.cfg)");
  }
  // worker_tmp_dir is a no-op (the heartbeat is shared memory, not a file), yet a folder that
  // would have broken Gunicorn is refused all the same.
  for (const auto& [name, dir] : {std::pair{"worker_tmp_dir", next.worker_tmp_dir},
                                  std::pair{"tmp_upload_dir", next.tmp_upload_dir}}) {
    if (!dir) continue;
    std::string where;  // the file it came from, as load_config's own messages say
    if (auto it = loaded.sources.find(name);
        it != loaded.sources.end() && it->second.rfind("file ", 0) == 0)
      where = it->second.substr(5) + ": ";
    std::error_code ec;
    if (!std::filesystem::is_directory(*dir, ec))
      throw StageError(where + name + ": '" + *dir + "' is not a directory");
    if (::access(dir->c_str(), W_OK | X_OK) != 0)
      throw StageError(where + name + ": '" + *dir + "' is not writable: " +
                       std::strerror(errno));
  }
  try {
    staged.identity = resolve_identity(next);
  } catch (const ConfigError& e) {
    throw StageError(e.what());
  }
  if (identity_changes(staged.identity) && ::geteuid() != 0)
    throw StageError("user/group: switching the workers to another user or group needs the "
                     "master to run as root");
  if (current == nullptr || next.worker_class != current->worker_class) {
    try {
      const char* path = std::getenv("ALICORN_PLUGIN_PATH");
      staged.plugin = load_plugin(next.worker_class, path ? path : "");
    } catch (const PluginError& e) {
      throw StageError(e.what(), kExitFailure);
    }
  }
  staged.loaded = std::move(loaded);
  return staged;
}

void stage_logs(const Config& next, const Config* fallback) {
  try {
    log::setup_error_log(next.errorlog, next.loglevel);
    log::setup_access_log(next.accesslog.value_or(""));
    set_access_log_format(next.access_log_format);
  } catch (const std::exception& e) {
    if (fallback != nullptr) {
      try {
        log::setup_error_log(fallback->errorlog, fallback->loglevel);
        log::setup_access_log(fallback->accesslog.value_or(""));
        set_access_log_format(fallback->access_log_format);
      } catch (...) {
      }
    }
    throw StageError(std::string("errorlog/accesslog: ") + e.what());
  }
}

void commit_settings(const Config& next, const Config* previous, const Environment& start_env,
                     const std::vector<std::string>& argv) {
  // With Python running here (a config file), through os.environ so the app sees it too.
  bool python = python::is_initialized();
  auto set = [&](const std::string& key, const char* value) {
    if (python) python::set_environ(key, value);
    else if (value != nullptr) ::setenv(key.c_str(), value, 1);
    else ::unsetenv(key.c_str());
  };
  if (previous != nullptr) {
    for (const auto& [key, value] : previous->raw_env) {
      auto it = start_env.find(key);
      set(key, it != start_env.end() ? it->second.c_str() : nullptr);
    }
  }
  for (const auto& [key, value] : next.raw_env) set(key, value.c_str());
  if (next.chdir && ::chdir(next.chdir->c_str()) != 0)
    throw StageError("chdir: chdir(\"" + *next.chdir + "\") failed: " + std::strerror(errno));
  // A Python config file started the interpreter here: its sys.path gets pythonpath and the
  // working directory now (workers inherit it), and the file's hooks become the hooks.
  if (python::is_initialized()) {
    python::initialize(python_init_options(next, argv));
    python::commit_config_file(next.config_is_python ? next.config : std::nullopt);
  }
}

}  // namespace alicorn
