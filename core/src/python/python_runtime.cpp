#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "python/python_runtime.hpp"

#include <atomic>

#include <sys/stat.h>

#include <cstdio>

#include <fmt/format.h>

#include "python/embedded.hpp"
#include "python/py_logging.hpp"

namespace alicorn::python {
namespace {

[[noreturn]] void fail_status(const char* step, PyStatus status) {
  throw std::runtime_error(fmt::format("Python initialisation failed at {}: {}", step,
                                       status.err_msg ? status.err_msg : "unknown error"));
}

void check(PyStatus status, const char* step, PyConfig* config) {
  if (PyStatus_Exception(status)) {
    PyConfig_Clear(config);
    fail_status(step, status);
  }
}


}  // namespace

namespace {

// Put `paths` first on sys.path, in order (with `once`, only those not there yet).
void prepend_paths(const std::vector<std::string>& paths, bool once) {
  PyObject* sys_path = PySys_GetObject("path");  // borrowed
  if (sys_path == nullptr) return;
  for (auto it = paths.rbegin(); it != paths.rend(); ++it) {
    PyObject* entry = PyUnicode_DecodeFSDefault(it->c_str());
    if (entry == nullptr) continue;
    if (!once || PySequence_Contains(sys_path, entry) == 0) PyList_Insert(sys_path, 0, entry);
    Py_DECREF(entry);
  }
  PyErr_Clear();
}

}  // namespace

void initialize(const InitOptions& options) {
  if (is_initialized()) {  // started earlier (for a Python config file): only sys.path
    prepend_paths(options.path_prepend, true);
    return;
  }
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  config.install_signal_handlers = 0;  // the worker owns its signals
  config.parse_argv = 0;
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  check(PyConfig_SetBytesArgv(&config, static_cast<Py_ssize_t>(argv.size()), argv.data()),
        "argv", &config);
  if (options.virtualenv) {
    // PEP 405: the interpreter finds pyvenv.cfg next to (or above) its executable, so point the
    // program name at the environment's python instead of setting home.
    std::string exe = *options.virtualenv + "/bin/python3";
    struct stat st {};
    if (::stat(exe.c_str(), &st) != 0) exe = *options.virtualenv + "/bin/python";
    check(PyConfig_SetBytesString(&config, &config.program_name, exe.c_str()), "program_name",
          &config);
  }
  check(Py_InitializeFromConfig(&config), "start-up", &config);
  PyConfig_Clear(&config);
  install_log_reopen();  // USR1 reopens the logging module's files too (py_logging.cpp)
  install_alicorn_package();  // `from alicorn.glogging import Logger`

  prepend_paths(options.path_prepend, false);
}

bool is_initialized() { return Py_IsInitialized() != 0; }

std::string take_exception(std::string* summary) {
  PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
  PyErr_Fetch(&type, &value, &tb);
  if (type == nullptr) {
    if (summary) *summary = "unknown error";
    return {};
  }
  PyErr_NormalizeException(&type, &value, &tb);
  if (tb != nullptr && value != nullptr) PyException_SetTraceback(value, tb);
  std::string text, line;
  if (PyObject* name = PyObject_GetAttrString(type, "__name__")) {
    line = PyUnicode_AsUTF8(name) ? PyUnicode_AsUTF8(name) : "Exception";
    Py_DECREF(name);
  }
  if (value != nullptr) {
    if (PyObject* s = PyObject_Str(value)) {
      const char* msg = PyUnicode_AsUTF8(s);
      if (msg && *msg) line += std::string(": ") + msg;
      Py_DECREF(s);
    }
  }
  PyErr_Clear();
  if (PyObject* tbmod = PyImport_ImportModule("traceback")) {
    PyObject* lines = PyObject_CallMethod(tbmod, "format_exception", "OOO", type,
                                          value ? value : Py_None, tb ? tb : Py_None);
    if (lines != nullptr) {
      PyObject* empty = PyUnicode_FromString("");
      PyObject* joined = empty ? PyUnicode_Join(empty, lines) : nullptr;
      if (joined && PyUnicode_AsUTF8(joined)) text = PyUnicode_AsUTF8(joined);
      Py_XDECREF(joined);
      Py_XDECREF(empty);
      Py_DECREF(lines);
    }
    Py_DECREF(tbmod);
  }
  PyErr_Clear();
  if (text.empty()) text = line + "\n";
  while (!text.empty() && text.back() == '\n') text.pop_back();
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  if (summary) *summary = line;
  return text;
}

PyObject* load_app(const AppSpec& spec) {
  // alicorn_loader.py: importlib, getattr along the dotted path, and literal-only factory
  // arguments parsed with ast, as Gunicorn does.
  PyObject* loader = embedded_module("alicorn_loader");
  PyObject* app = nullptr;
  if (loader != nullptr && !spec.paste_file.empty()) {
    PyObject* conf = PyDict_New();
    for (const auto& [k, v] : spec.paste_global_conf) {
      PyObject* value = conf ? PyUnicode_FromString(v.c_str()) : nullptr;
      if (value != nullptr) PyDict_SetItemString(conf, k.c_str(), value);
      Py_XDECREF(value);
    }
    if (conf != nullptr)
      app = PyObject_CallMethod(loader, "load_paste", "sO", spec.paste_file.c_str(), conf);
    Py_XDECREF(conf);
  } else if (loader != nullptr) {
    app = PyObject_CallMethod(loader, "load_app", "ssis", spec.module.c_str(),
                              spec.attribute.c_str(), spec.call ? 1 : 0, spec.call_args.c_str());
  }
  Py_XDECREF(loader);
  if (app == nullptr) {
    std::string summary;
    std::string tb = take_exception(&summary);
    throw AppLoadError(summary, tb);
  }
  return app;
}

namespace {
std::atomic<bool> g_gil_released{false};
}  // namespace

void release_gil() {
  g_gil_released.store(true);
  PyEval_SaveThread();
}
bool gil_released() { return g_gil_released.load(); }

Gil::Gil() {
  // Give each thread one Python thread state for its whole life: without this pin,
  // PyGILState_Release would destroy a pool thread's state after every call, costing time and
  // losing thread-locals and contextvars between the app call and the iteration of its result.
  thread_local bool pinned = false;
  if (!pinned) {
    PyGILState_Ensure();
    PyEval_SaveThread();
    pinned = true;
  }
  state_ = static_cast<int>(PyGILState_Ensure());
}
Gil::~Gil() { PyGILState_Release(static_cast<PyGILState_STATE>(state_)); }

void before_fork() { PyOS_BeforeFork(); }
void after_fork_parent() { PyOS_AfterFork_Parent(); }
void after_fork_child() { PyOS_AfterFork_Child(); }

void set_environ(const std::string& key, const char* value) {
  PyObject* os = PyImport_ImportModule("os");
  PyObject* environ = os ? PyObject_GetAttrString(os, "environ") : nullptr;
  PyObject* k = environ ? PyUnicode_DecodeFSDefault(key.c_str()) : nullptr;
  if (k != nullptr) {
    if (value != nullptr) {
      PyObject* v = PyUnicode_DecodeFSDefault(value);
      if (v != nullptr) PyObject_SetItem(environ, k, v);
      Py_XDECREF(v);
    } else if (PyMapping_HasKey(environ, k)) {
      PyObject_DelItem(environ, k);
    }
  }
  Py_XDECREF(k);
  Py_XDECREF(environ);
  Py_XDECREF(os);
  PyErr_Clear();
}

void flush_std_streams() {
  for (const char* name : {"stdout", "stderr"}) {
    PyObject* stream = PySys_GetObject(name);
    if (stream != nullptr && stream != Py_None) {
      PyObject* r = PyObject_CallMethod(stream, "flush", nullptr);
      Py_XDECREF(r);
    }
  }
  PyErr_Clear();
}

std::string compile_error(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return {};  // gone: nothing to compile; the import will say so
  std::string source;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) source.append(buf, n);
  std::fclose(f);
  PyObject* code = Py_CompileString(source.c_str(), path.c_str(), Py_file_input);
  if (code != nullptr) {
    Py_DECREF(code);
    return {};
  }
  std::string tb = take_exception();
  return tb.empty() ? "SyntaxError in " + path : tb;
}

}  // namespace alicorn::python
