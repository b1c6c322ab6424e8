// Startup and HUP reload share one sequence of four steps:
//
//   read      load_config: defaults < config file (YAML, or Python run in the master) <
//             GUNICORN_CMD_ARGS / ALICORN_CMD_ARGS < command line
//   validate  an app is named, user/group resolve (and root when they change), the virtualenv
//             and worker_tmp_dir exist, the worker class is one alicorn has
//   stage     the worker plugin (when it is new) and the log files are opened; nothing the old
//             configuration uses is touched yet, so a failure leaves it running
//   commit    raw_env and chdir take effect, pythonpath reaches sys.path, the config file's
//             server hooks become the hooks
//
// main() runs the four for the first configuration (a failure exits non-zero before any fork);
// Arbiter::reload runs them on HUP (a failure logs why and keeps the current configuration).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "master/process.hpp"
#include "plugin/plugin_host.hpp"

namespace alicorn {

// Thrown by each step: what() is the reason, naming the setting.
class StageError : public std::runtime_error {
 public:
  explicit StageError(const std::string& what, int exit_code = 2)
      : std::runtime_error(what), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }  // for startup: an ExitCode

 private:
  int exit_code_;
};

struct StagedConfig {
  LoadedConfig loaded;
  Identity identity;
  std::optional<Plugin> plugin;  // set when the worker class is new (always at startup)
};

// read: the settings from argv (argv[0] included) and `env`. Runs a Python config file in this
// process's interpreter (started for it when needed). Throws ConfigError.
LoadedConfig read_settings(const std::vector<std::string>& argv, const Environment& env);

// validate + stage. `current` is the running configuration (nullptr at startup): the plugin is
// only loaded when the worker class differs from it. Throws StageError.
StagedConfig validate_and_stage(LoadedConfig loaded, const Config* current);

// stage the logs of `next`. On failure the logs of `fallback` (when given) are set up again and
// StageError is thrown.
void stage_logs(const Config& next, const Config* fallback);

// commit: the process-wide effects of `next`. `previous` (nullptr at startup) has its raw_env
// undone first, back to `start_env`. Throws StageError when chdir fails.
void commit_settings(const Config& next, const Config* previous, const Environment& start_env,
                     const std::vector<std::string>& argv);

}  // namespace alicorn
