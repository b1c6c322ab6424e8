// Python config files (gunicorn.conf.py, python:MODULE) run in the master's interpreter: the
// reader load_config calls (set_python_config_reader), and the commit of the file's hooks.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace alicorn::python {

// Start the interpreter when needed (argv, virtualenv), run the file, check its hooks and give
// its module-level names. The hooks are kept as staged until commit_config_file. Throws
// ConfigError: "<file>: <why>", with the traceback when the file raised.
FileNames read_config_file(const std::string& spec, const std::optional<std::string>& virtualenv,
                           const std::vector<std::string>& argv);

// Make the hooks of the last file read the server hooks (a Python config file is in use), or
// drop the file's hooks (std::nullopt: the configuration has no Python file now).
void commit_config_file(const std::optional<std::string>& spec);

// Register read_config_file with load_config.
void install_config_reader();

}  // namespace alicorn::python
