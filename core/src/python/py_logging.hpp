// logconfig, logconfig_dict, logconfig_json: the error and access logs through Python's logging
// (python/py/alicorn_logging.py), on the loggers gunicorn.error and gunicorn.access.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace alicorn::python {

// True when one of the logconfig settings is set.
bool wants_python_logging(const Config& config);

// Start the interpreter when needed, configure logging from the setting and route the error
// and access logs through it. Nothing when no logconfig setting is set. Throws
// std::runtime_error with the Python error ("logconfig: log config 'x' not found").
// Call in the master (holding the GIL) after the config file was read; workers inherit it.
void setup_python_logging(const Config& config, const std::vector<std::string>& argv);

}  // namespace alicorn::python
