// logconfig, logconfig_dict, logconfig_json: the error and access logs through Python's logging
// (python/py/alicorn_logging.py), on the loggers gunicorn.error and gunicorn.access; logger_class:
// a Python glogging.Logger (python/py/alicorn_glogging.py is alicorn.glogging) takes both; USR1
// reopens the logging handlers' files.
#pragma once

#include <string>

typedef struct _object PyObject;  // NOLINT
#include <vector>

#include "config/config.hpp"

namespace alicorn::python {

// Make log::reopen() (USR1) also reopen the streams of every logging.FileHandler of every
// Python logger (logger_class's reopen_files() when one is set), in this process. Called once
// the interpreter runs.
void install_log_reopen();

// logger_class: the instance's bound access(resp, req, environ, request_time), borrowed, or
// nullptr when the native logger is in use. Needs the GIL.
PyObject* logger_access();
// alicorn_logging.call_access, which builds resp/req/request_time and calls it (borrowed).
PyObject* logger_call_access();

// True when one of the logconfig settings is set.
bool wants_python_logging(const Config& config);

// Start the interpreter when needed, configure logging from the setting and route the error
// and access logs through it. Nothing when no logconfig setting is set. Throws
// std::runtime_error with the Python error ("logconfig: log config 'x' not found").
// Call in the master (holding the GIL) after the config file was read; workers inherit it.
// With logger_class set (uses_logger_class): import and instantiate the class instead, route
// the error log through its methods, turn the native access log off (the WSGI adapter calls
// access() after close()); a class that cannot be imported or instantiated throws (the
// traceback is logged first).
void setup_python_logging(const Config& config, const std::vector<std::string>& argv);

}  // namespace alicorn::python
