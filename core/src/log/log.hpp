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
// Reopen both log files (after logrotate moved them). Safe to call when logging to a terminal.
void reopen();

spdlog::logger& error();
// Null when the access log is off.
spdlog::logger* access();

}  // namespace alicorn::log
