// The error log: spdlog with Gunicorn's line shape,
//   [2026-11-21 12:00:00 +0000] [1234] [INFO] Starting alicorn 0.1.0
// written to stderr ("-") or a file, reopened on USR1. The access log is a second logger that
// writes bare lines (its format is the access_log_format setting).
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace alicorn::log {

// Configure the error log. Throws std::runtime_error naming the file if it cannot be opened.
void setup_error_log(const std::string& target, const std::string& level);
// Configure the access log; an empty target disables it.
void setup_access_log(const std::string& target);
// Reopen both log files (after logrotate moved them), then run the reopen hook (the files of
// Python's logging handlers). Safe to call when logging to a terminal.
void reopen();
// Called by reopen() after the native files (python/py_logging.cpp sets it). Must not throw.
void set_reopen_hook(void (*hook)());

// logconfig (python/py_logging.cpp): the error log writes to `error_sink` only (the native
// sink stays as its fallback), at `error_level`; the access log to `access_sink` (created when
// accesslog is unset, as Gunicorn logs access lines whenever a logconfig is given).
void route_to(std::shared_ptr<spdlog::sinks::sink> error_sink,
              std::shared_ptr<spdlog::sinks::sink> access_sink,
              spdlog::level::level_enum error_level);
// logger_class (python/py_logging.cpp): the error log writes to `error_sink` only, and the
// native access log is off (the Python logger's access() writes the access lines).
void route_errors_only(std::shared_ptr<spdlog::sinks::sink> error_sink,
                       spdlog::level::level_enum error_level);
// The error log's own (file or stderr) sink, for lines that cannot reach Python.
std::shared_ptr<spdlog::sinks::sink> native_error_sink();

spdlog::logger& error();
// Null when the access log is off.
spdlog::logger* access();

}  // namespace alicorn::log
