// Server hooks (see hooks.hpp): the Python side is python/py/alicorn_hooks_support.py (embedded
// at build time); this file imports the user's module and calls its functions.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "python/hooks.hpp"

#include <atomic>
#include <cstring>
#include <stdexcept>

#include "log/log.hpp"
#include "python/embedded.hpp"
#include "python/python_runtime.hpp"

namespace alicorn::hooks {
namespace {


PyObject* g_support = nullptr;  // the support module's globals (dict)
PyObject* g_module = nullptr;   // the user's hooks module (--hooks)
PyObject* g_file = nullptr;     // the hooks a Python config file defines (checked namespace)
PyObject* g_server = nullptr;   // Server instance
PyObject* g_worker = nullptr;   // this process's Worker (in a worker)
std::string g_spec;
std::string g_cfg_json;
std::atomic<bool> g_request_hooks{false};
bool g_has_pre_request = false;
bool g_has_post_request = false;

PyObject* emit_log(PyObject*, PyObject* args) {
  int level = 20;
  const char* text = nullptr;
  if (!PyArg_ParseTuple(args, "is", &level, &text)) return nullptr;
  try {
    auto lvl = level <= 10   ? spdlog::level::debug
               : level <= 20 ? spdlog::level::info
               : level <= 30 ? spdlog::level::warn
               : level <= 40 ? spdlog::level::err
                             : spdlog::level::critical;
    log::error().log(lvl, "{}", text);
  } catch (...) {
  }
  Py_RETURN_NONE;
}

PyMethodDef kEmitDef = {"emit", emit_log, METH_VARARGS, "Write one line to alicorn's error log."};

PyObject* support(const char* name) {
  return g_support ? PyDict_GetItemString(g_support, name) : nullptr;  // borrowed
}

void ensure_support() {
  if (g_support != nullptr) return;
  PyObject* module = python::embedded_module("alicorn_hooks_support");
  if (module == nullptr) throw std::runtime_error(python::take_exception());
  g_support = PyModule_GetDict(module);  // borrowed; the module stays in sys.modules
  Py_INCREF(g_support);
  Py_DECREF(module);
  PyObject* emit = PyCFunction_New(&kEmitDef, nullptr);
  PyObject* server = emit ? PyObject_CallFunctionObjArgs(support("make_server"), emit, nullptr)
                          : nullptr;
  Py_XDECREF(emit);
  if (server == nullptr) throw std::runtime_error(python::take_exception());
  g_server = server;
}

void refresh_flags() {
  g_has_pre_request = defined("pre_request");
  g_has_post_request = defined("post_request");
  g_request_hooks.store(g_has_pre_request || g_has_post_request);
}

// The hook named `name`: from the --hooks module first, else from the config file. New
// reference or nullptr (no exception left set).
PyObject* find_hook(const char* name) {
  for (PyObject* source : {g_module, g_file}) {
    if (source == nullptr) continue;
    PyObject* fn = PyObject_GetAttrString(source, name);
    if (fn != nullptr && PyCallable_Check(fn)) return fn;
    Py_XDECREF(fn);
    PyErr_Clear();
  }
  return nullptr;
}

bool any_source() { return g_module != nullptr || g_file != nullptr; }

bool call(const char* name, PyObject* args) {
  if (!any_source() || args == nullptr) {
    if (args == nullptr) PyErr_Clear();
    return true;
  }
  PyObject* fn = find_hook(name);
  if (fn == nullptr) return true;
  PyObject* result = PyObject_Call(fn, args, nullptr);
  Py_DECREF(fn);
  if (result == nullptr) {
    std::string tb = python::take_exception();
    try {
      log::error().error("Exception in {} hook:\n{}", name, tb);
    } catch (...) {
    }
    return false;
  }
  Py_DECREF(result);
  return true;
}

PyObject* none_if_null(PyObject* o) { return o != nullptr ? o : Py_None; }

}  // namespace

void load(const std::string& spec) {
  ensure_support();
  PyObject* spec_obj = PyUnicode_FromString(spec.c_str());
  PyObject* module =
      spec_obj ? PyObject_CallFunctionObjArgs(support("load"), spec_obj, nullptr) : nullptr;
  Py_XDECREF(spec_obj);
  if (module == nullptr) throw std::runtime_error(python::take_exception());
  Py_XDECREF(g_module);
  g_module = module;
  g_spec = spec;
  refresh_flags();
}

bool reload(const std::string& spec) {
  try {
    ensure_support();
  } catch (const std::exception& e) {
    log::error().error("Cannot reload the hooks module {}:\n{}", spec, e.what());
    return false;
  }
  PyObject* spec_obj = PyUnicode_FromString(spec.c_str());
  PyObject* module = spec_obj ? PyObject_CallFunctionObjArgs(support("reload"), spec_obj,
                                                             none_if_null(g_module), nullptr)
                              : nullptr;
  Py_XDECREF(spec_obj);
  if (module == nullptr) {
    std::string tb = python::take_exception();
    log::error().error("Cannot reload the hooks module {}; keeping the previous hooks:\n{}", spec,
                       tb);
    return false;
  }
  Py_XDECREF(g_module);
  g_module = module;
  g_spec = spec;
  refresh_flags();
  return true;
}

void unload() {
  Py_CLEAR(g_module);
  g_spec.clear();
  refresh_flags();
}

bool loaded() { return any_source(); }

void set_file_hooks(PyObject* hooks) {
  if (hooks != nullptr) {
    try {
      ensure_support();
    } catch (const std::exception& e) {
      log::error().error("Cannot set up the config file's hooks:\n{}", e.what());
      return;
    }
  }
  Py_XINCREF(hooks);
  Py_XSETREF(g_file, hooks);
  refresh_flags();
}

bool defined(const char* name) {
  PyObject* fn = find_hook(name);
  Py_XDECREF(fn);
  return fn != nullptr;
}

void update_server(const ServerState& state) {
  if (g_server == nullptr || !any_source()) return;
  auto set = [](const char* attr, PyObject* value) {
    if (value == nullptr) {
      PyErr_Clear();
      return;
    }
    PyObject_SetAttrString(g_server, attr, value);
    Py_DECREF(value);
    PyErr_Clear();
  };
  set("pid", PyLong_FromLong(static_cast<long>(state.pid)));
  set("num_workers", PyLong_FromLong(state.num_workers));
  set("proc_name", PyUnicode_FromString(state.proc_name.c_str()));
  set("worker_class", PyUnicode_FromString(state.worker_class.c_str()));
  PyObject* addresses = PyList_New(0);
  for (const auto& a : state.addresses) {
    PyObject* s = PyUnicode_FromString(a.c_str());
    if (addresses && s) PyList_Append(addresses, s);
    Py_XDECREF(s);
  }
  set("address", addresses);
  if (state.cfg_json != g_cfg_json) {
    PyObject* text = PyUnicode_FromString(state.cfg_json.c_str());
    PyObject* cfg = text ? PyObject_CallFunctionObjArgs(support("parse_cfg"), text, nullptr)
                         : nullptr;
    Py_XDECREF(text);
    if (cfg != nullptr) {
      // Update the dict in place, so worker objects that share it see the new values.
      PyObject* current = PyObject_GetAttrString(g_server, "cfg");
      if (current != nullptr && PyDict_Check(current)) {
        PyDict_Clear(current);
        PyDict_Update(current, cfg);
      } else {
        PyObject_SetAttrString(g_server, "cfg", cfg);
      }
      Py_XDECREF(current);
      Py_DECREF(cfg);
      g_cfg_json = state.cfg_json;
    }
    PyErr_Clear();
  }
}

PyObject* new_worker(uint32_t age, uint32_t index, pid_t ppid) {
  if (!any_source() || g_server == nullptr) return nullptr;
  PyObject* w = PyObject_CallFunction(support("make_worker"), "OIIl", g_server, age, index,
                                      static_cast<long>(ppid));
  if (w == nullptr) {
    log::error().error("Cannot make the hooks' worker object:\n{}", python::take_exception());
    return nullptr;
  }
  return w;
}

void set_worker_pid(PyObject* worker, pid_t pid) {
  if (worker == nullptr) return;
  PyObject* v = PyLong_FromLong(static_cast<long>(pid));
  if (v != nullptr) PyObject_SetAttrString(worker, "pid", v);
  Py_XDECREF(v);
  PyErr_Clear();
}

void set_worker_booted(PyObject* worker) {
  if (worker == nullptr) return;
  PyObject_SetAttrString(worker, "booted", Py_True);
  PyErr_Clear();
}

void release_worker(PyObject* worker) { Py_XDECREF(worker); }

bool call_server(const char* name) {
  if (!any_source()) return true;
  PyObject* args = PyTuple_Pack(1, g_server);
  bool ok = call(name, args);
  Py_XDECREF(args);
  return ok;
}

bool call_server_worker(const char* name, PyObject* worker) {
  if (!any_source()) return true;
  PyObject* args = PyTuple_Pack(2, g_server, none_if_null(worker));
  bool ok = call(name, args);
  Py_XDECREF(args);
  return ok;
}

bool call_worker(const char* name, PyObject* worker) {
  if (!any_source()) return true;
  PyObject* args = PyTuple_Pack(1, none_if_null(worker));
  bool ok = call(name, args);
  Py_XDECREF(args);
  return ok;
}

void* call_ssl_context(const TlsFiles& files) {
  if (!any_source()) return nullptr;
  PyObject* fn = find_hook("ssl_context");
  if (fn == nullptr) return nullptr;
  PyObject* cfg = PyObject_GetAttrString(g_server, "cfg");
  PyObject* context = cfg == nullptr ? nullptr
      : PyObject_CallFunction(support("ssl_context"), "OOssssi", fn, cfg, files.certfile.c_str(),
                              files.keyfile.c_str(), files.ca_certs.c_str(),
                              files.ciphers.c_str(), files.cert_reqs);
  Py_DECREF(fn);
  Py_XDECREF(cfg);
  if (context == nullptr) throw std::runtime_error(python::take_exception());
  // CPython's _ssl.c: typedef struct { PyObject_HEAD SSL_CTX *ctx; ... } PySSLContext; the
  // object (and so its SSL_CTX) is kept for the life of the process.
  struct SslContextLayout {
    PyObject_HEAD
    void* ctx;
  };
  return reinterpret_cast<SslContextLayout*>(context)->ctx;
}

bool call_nworkers_changed(int new_value, int old_value) {
  if (!any_source()) return true;
  PyObject* args = Py_BuildValue("(Oii)", g_server, new_value, old_value);
  bool ok = call("nworkers_changed", args);
  Py_XDECREF(args);
  return ok;
}

void set_current_worker(PyObject* worker) {
  Py_XINCREF(worker);
  Py_XSETREF(g_worker, worker);
}

PyObject* current_worker() { return g_worker; }

bool has_request_hooks() { return g_request_hooks.load(std::memory_order_relaxed); }

bool run_request_hook(const char* name, PyObject* environ, const char* status,
                      const std::vector<std::pair<std::string, std::string>>* headers,
                      int64_t body_bytes) {
  if (!any_source() || name == nullptr) return true;
  bool pre = std::strcmp(name, "pre_request") == 0;
  bool post = std::strcmp(name, "post_request") == 0;
  if ((pre && !g_has_pre_request) || (post && !g_has_post_request) || (!pre && !post))
    return true;
  // Leave any exception the caller has pending untouched.
  PyObject *saved_type = nullptr, *saved_value = nullptr, *saved_tb = nullptr;
  PyErr_Fetch(&saved_type, &saved_value, &saved_tb);
  struct Restore {
    PyObject *&t, *&v, *&tb;
    ~Restore() { PyErr_Restore(t, v, tb); }
  } restore{saved_type, saved_value, saved_tb};
  constexpr const char* kKey = "alicorn.hook_request";
  PyObject* env = environ;
  if (env == nullptr || !PyDict_Check(env)) env = nullptr;
  PyObject* owned_env = nullptr;
  if (env == nullptr) env = owned_env = PyDict_New();
  if (env == nullptr) {
    PyErr_Clear();
    return false;
  }
  PyObject* req = PyDict_GetItemString(env, kKey);  // borrowed
  Py_XINCREF(req);
  if (req == nullptr) {
    req = PyObject_CallFunctionObjArgs(support("Request"), env, nullptr);
    if (req == nullptr) {
      log::error().error("Cannot make the request object for {}:\n{}", name,
                         python::take_exception());
      Py_XDECREF(owned_env);
      return false;
    }
    PyDict_SetItemString(env, kKey, req);
  }
  PyObject* args = nullptr;
  if (pre) {
    args = PyTuple_Pack(2, none_if_null(g_worker), req);
  } else {
    PyObject* hlist = PyList_New(0);
    if (hlist != nullptr && headers != nullptr) {
      for (const auto& [k, v] : *headers) {
        PyObject* pair = Py_BuildValue("(s#s#)", k.data(), static_cast<Py_ssize_t>(k.size()),
                                       v.data(), static_cast<Py_ssize_t>(v.size()));
        if (pair != nullptr) PyList_Append(hlist, pair);
        Py_XDECREF(pair);
      }
    }
    PyObject* st = status ? PyUnicode_FromString(status) : Py_NewRef(Py_None);
    PyObject* sent = body_bytes >= 0 ? PyLong_FromLongLong(body_bytes) : Py_NewRef(Py_None);
    PyObject* resp = (hlist && st && sent) ? PyObject_CallFunctionObjArgs(
                                                 support("Response"), st, hlist, sent, nullptr)
                                           : nullptr;
    Py_XDECREF(hlist);
    Py_XDECREF(st);
    Py_XDECREF(sent);
    if (resp != nullptr) args = PyTuple_Pack(4, none_if_null(g_worker), req, env, resp);
    Py_XDECREF(resp);
  }
  bool ok = call(name, args);
  Py_XDECREF(args);
  Py_DECREF(req);
  Py_XDECREF(owned_env);
  PyErr_Clear();
  return ok;
}

}  // namespace alicorn::hooks
