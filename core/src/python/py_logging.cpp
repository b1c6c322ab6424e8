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

PyObject* g_emit = nullptr;         // alicorn_logging.emit (or emit_logger)
PyObject* g_access = nullptr;       // logger_class: the instance's bound access()
PyObject* g_call_access = nullptr;  // alicorn_logging.call_access
std::string g_logger_class;         // the class g_access belongs to

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

long g_error_level = 20;  // logger_class: the instance's error level, kept across a HUP

// USR1: runs in the master's main thread (which holds the GIL) and in a worker's threads
// (which may take it once the worker released it). Never throws.
void reopen_python_logs() {
  if (!Py_IsInitialized()) return;
  auto run = [] {
    // A process that never imported logging has no handler to reopen (and needs no import).
    if (PyDict_GetItemString(PyImport_GetModuleDict(), "logging") == nullptr) return;
    PyObject* module = embedded_module("alicorn_logging");
    PyObject* r = module ? PyObject_CallMethod(module, "reopen_files", nullptr) : nullptr;
    Py_XDECREF(module);
    if (r == nullptr) {
      std::string tb = take_exception();
      log::error().error("Reopening the Python logging files failed:\n{}", tb);
    }
    Py_XDECREF(r);
  };
  try {
    if (PyGILState_Check()) {
      PyGILState_STATE state = PyGILState_Ensure();
      run();
      PyGILState_Release(state);
    } else if (gil_released()) {
      Gil gil;
      run();
    }
  } catch (...) {
  }
}

std::string logger_class_error(const std::string& cls, std::string summary) {
  if (summary.rfind("logger_class", 0) == 0) return summary;
  return "logger_class: cannot use '" + cls + "': " + summary;
}

void setup_logger_class(const Config& config, const std::vector<std::string>& argv) {
  const std::string& cls = config.logger_class;
  initialize(python_init_options(config, argv));
  if (g_access != nullptr && cls == g_logger_class) {
    // HUP with the same class: Gunicorn keeps its logger instance too. Only the routing (the
    // staged native logs replaced it) is done again.
  } else {
    PyObject* module = embedded_module("alicorn_logging");
    // `from alicorn.glogging import Logger` works without gunicorn installed (the finder of
    // alicorn_package.py, installed with the interpreter).
    PyObject* glogging = module ? PyImport_ImportModule("alicorn.glogging") : nullptr;
    std::string settings = to_json(config);
    PyObject* made = glogging ? PyObject_CallMethod(module, "make_logger", "ss", cls.c_str(),
                                                    settings.c_str())
                              : nullptr;
    Py_XDECREF(glogging);
    if (made == nullptr || !PyTuple_Check(made) || PyTuple_Size(made) != 2) {
      std::string summary;
      std::string tb = made ? std::string() : take_exception(&summary);
      Py_XDECREF(made);
      Py_XDECREF(module);
      if (!tb.empty())
        log::error().error("logger_class: cannot use '{}':\n{}", cls, tb);
      throw std::runtime_error(logger_class_error(cls, made ? "make_logger failed" : summary));
    }
    Py_XDECREF(g_access);
    g_access = Py_NewRef(PyTuple_GetItem(made, 0));
    long level = PyLong_AsLong(PyTuple_GetItem(made, 1));
    PyErr_Clear();
    Py_DECREF(made);
    Py_XDECREF(g_emit);
    g_emit = PyObject_GetAttrString(module, "emit_logger");
    Py_XDECREF(g_call_access);
    g_call_access = PyObject_GetAttrString(module, "call_access");
    Py_DECREF(module);
    if (g_emit == nullptr || g_call_access == nullptr)
      throw std::runtime_error("logger_class: " + take_exception());
    g_logger_class = cls;
    g_error_level = level;
  }
  log::route_errors_only(std::make_shared<PythonSink>(false, log::native_error_sink()),
                         spdlog_level(g_error_level));
}

void drop_logger_class() {
  if (g_access == nullptr) return;
  Py_CLEAR(g_access);
  g_logger_class.clear();
  if (PyObject* module = embedded_module("alicorn_logging")) {
    PyObject* r = PyObject_CallMethod(module, "clear_logger", nullptr);
    Py_XDECREF(r);
    Py_DECREF(module);
  }
  PyErr_Clear();
}

}  // namespace

void install_log_reopen() { log::set_reopen_hook(&reopen_python_logs); }

PyObject* logger_access() { return g_access; }
PyObject* logger_call_access() { return g_call_access; }

bool wants_python_logging(const Config& config) {
  return config.logconfig || config.logconfig_dict.has_value() || config.logconfig_json;
}

void setup_python_logging(const Config& config, const std::vector<std::string>& argv) {
  if (uses_logger_class(config)) return setup_logger_class(config, argv);
  if (Py_IsInitialized()) drop_logger_class();  // a HUP back to the native logger
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
