// The spdlog sink that hands each line to Python's logging (see py_logging.hpp).
//
// Locking: the sink has no mutex of its own (the GIL serialises the calls and the logging
// module locks its handlers); with one, a thread holding the sink's mutex while waiting for the
// GIL and a thread holding the GIL (a hook, the app) logging would wait for each other.
// A thread that may not take the GIL (the master's threads other than its main one, which keeps
// it; a worker's threads before the worker released it) writes error lines to the native sink.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "python/py_logging.hpp"

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include <stdexcept>

#include "log/log.hpp"
#include "plugin/worker_runtime.hpp"
#include "python/embedded.hpp"
#include "python/python_runtime.hpp"

namespace alicorn::python {
namespace {

PyObject* g_emit = nullptr;  // alicorn_logging.emit

int python_level(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return 10;
    case spdlog::level::info: return 20;
    case spdlog::level::warn: return 30;
    case spdlog::level::err: return 40;
    default: return 50;
  }
}

spdlog::level::level_enum spdlog_level(long level) {
  if (level <= 10) return spdlog::level::debug;
  if (level <= 20) return spdlog::level::info;
  if (level <= 30) return spdlog::level::warn;
  if (level <= 40) return spdlog::level::err;
  return spdlog::level::critical;
}

class PythonSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  PythonSink(bool access, std::shared_ptr<spdlog::sinks::sink> fallback)
      : access_(access), fallback_(std::move(fallback)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (!Py_IsInitialized() || g_emit == nullptr) return native(msg);
    if (PyGILState_Check()) {
      PyGILState_STATE state = PyGILState_Ensure();
      bool ok = call(msg);
      PyGILState_Release(state);
      if (!ok) native(msg);
    } else if (gil_released()) {
      bool ok;
      {
        Gil gil;
        ok = call(msg);
      }
      if (!ok) native(msg);
    } else {
      native(msg);
    }
  }
  void flush_() override {}

 private:
  bool call(const spdlog::details::log_msg& msg) {
    PyObject* text = PyUnicode_DecodeUTF8(msg.payload.data(),
                                          static_cast<Py_ssize_t>(msg.payload.size()),
                                          "backslashreplace");
    PyObject* r = text ? PyObject_CallFunction(g_emit, "iiO", access_ ? 1 : 0,
                                               python_level(msg.level), text)
                       : nullptr;
    Py_XDECREF(text);
    if (r == nullptr) {
      PyErr_Clear();
      return false;
    }
    Py_DECREF(r);
    return true;
  }
  void native(const spdlog::details::log_msg& msg) {
    if (!access_ && fallback_) fallback_->log(msg);
  }
  bool access_;
  std::shared_ptr<spdlog::sinks::sink> fallback_;
};

}  // namespace

bool wants_python_logging(const Config& config) {
  return config.logconfig || config.logconfig_dict.has_value() || config.logconfig_json;
}

void setup_python_logging(const Config& config, const std::vector<std::string>& argv) {
  if (!wants_python_logging(config)) return;
  // Gunicorn's precedence: logconfig_dict, then logconfig_json, then logconfig.
  bool dict = config.logconfig_dict.has_value();
  const char* kind = dict ? "dict" : config.logconfig_json ? "json" : "ini";
  const std::string& value = dict                    ? *config.logconfig_dict
                             : config.logconfig_json ? *config.logconfig_json
                                                     : *config.logconfig;
  initialize(python_init_options(config, argv));
  PyObject* module = embedded_module("alicorn_logging");
  PyObject* levels = module ? PyObject_CallMethod(module, "configure", "sss", kind, value.c_str(),
                                                  config.loglevel.c_str())
                            : nullptr;
  if (levels == nullptr) {
    std::string summary;
    std::string tb = take_exception(&summary);
    Py_XDECREF(module);
    // The module's own errors name the setting; anything else gets its name here.
    if (summary.find("logconfig") == std::string::npos)
      summary = std::string(dict ? "logconfig_dict" : config.logconfig_json ? "logconfig_json"
                                                                            : "logconfig") +
                ": " + summary;
    throw std::runtime_error(summary);
  }
  long error_level = 20;
  if (PyTuple_Check(levels) && PyTuple_Size(levels) == 2)
    error_level = PyLong_AsLong(PyTuple_GetItem(levels, 0));
  PyErr_Clear();
  Py_DECREF(levels);
  Py_XDECREF(g_emit);
  g_emit = PyObject_GetAttrString(module, "emit");
  Py_DECREF(module);
  if (g_emit == nullptr) throw std::runtime_error("logconfig: " + take_exception());
  auto fallback = log::native_error_sink();
  log::route_to(std::make_shared<PythonSink>(false, fallback),
                std::make_shared<PythonSink>(true, nullptr), spdlog_level(error_level));
}

}  // namespace alicorn::python
