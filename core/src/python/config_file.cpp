// Python config files: python/py/alicorn_config_file.py runs the file; this converts its
// module-level values to FileValue for the settings table (config/config.cpp).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "python/config_file.hpp"

#include <fmt/format.h>

#include "python/embedded.hpp"
#include "python/hooks.hpp"
#include "python/python_runtime.hpp"

namespace alicorn::python {
namespace {

PyObject* g_staged_hooks = nullptr;  // the last file's hooks namespace (or None)

std::string str_of(PyObject* o, bool use_repr) {
  PyObject* s = use_repr ? PyObject_Repr(o) : PyObject_Str(o);
  std::string out;
  if (s != nullptr) {
    Py_ssize_t n = 0;
    const char* text = PyUnicode_AsUTF8AndSize(s, &n);
    if (text != nullptr) out.assign(text, static_cast<size_t>(n));
    Py_DECREF(s);
  }
  PyErr_Clear();
  return out;
}

FileValue convert(PyObject* o, int depth = 0) {
  FileValue v;
  v.type_name = Py_TYPE(o)->tp_name;
  using K = FileValue::Kind;
  if (o == Py_None) {
    v.kind = K::None;
  } else if (PyBool_Check(o)) {
    v.kind = K::Bool;
    v.b = o == Py_True;
  } else if (PyLong_Check(o)) {
    int overflow = 0;
    v.i = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow != 0) {
      v.kind = K::Other;
      v.text = str_of(o, true);
    } else {
      v.kind = K::Int;
    }
  } else if (PyFloat_Check(o)) {
    v.kind = K::Float;
    v.f = PyFloat_AsDouble(o);
  } else if (PyUnicode_Check(o)) {
    v.kind = K::Str;
    v.text = str_of(o, false);
  } else if (depth < 4 && (PyList_Check(o) || PyTuple_Check(o) || PyAnySet_Check(o))) {
    v.kind = K::List;
    PyObject* seq = PySequence_Fast(o, "a sequence");
    if (seq != nullptr) {
      for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); ++i)
        v.items.push_back(convert(PySequence_Fast_GET_ITEM(seq, i), depth + 1));
      Py_DECREF(seq);
    }
  } else if (depth < 4 && PyMapping_Check(o) && !PyCallable_Check(o) &&
             PyObject_HasAttrString(o, "items")) {
    v.kind = K::Dict;
    PyObject* items = PyMapping_Items(o);
    if (items != nullptr) {
      for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); ++i) {
        PyObject* pair = PyList_GET_ITEM(items, i);
        v.entries.emplace_back(str_of(PyTuple_GET_ITEM(pair, 0), false),
                               convert(PyTuple_GET_ITEM(pair, 1), depth + 1));
      }
      Py_DECREF(items);
    }
  } else if (PyCallable_Check(o)) {
    v.kind = K::Callable;
    v.text = str_of(o, true);
  } else {
    v.kind = K::Other;
    v.text = str_of(o, true);
  }
  PyErr_Clear();
  return v;
}

// The pending Python exception as a ConfigError: the file's own errors (ConfigFileError) as one
// line, anything the file raised with its traceback.
[[noreturn]] void raise_config_error(const std::string& spec) {
  bool own = false;
  PyObject *type = nullptr, *value = nullptr, *trace = nullptr;
  PyErr_Fetch(&type, &value, &trace);
  if (PyObject* module = embedded_module("alicorn_config_file")) {
    PyObject* cls = PyObject_GetAttrString(module, "ConfigFileError");
    own = cls != nullptr && type != nullptr && PyErr_GivenExceptionMatches(type, cls);
    Py_XDECREF(cls);
    Py_DECREF(module);
  }
  PyErr_Clear();
  PyErr_Restore(type, value, trace);
  std::string summary;
  std::string tb = take_exception(&summary);
  if (own) {
    auto colon = summary.find(": ");
    throw ConfigError(spec + ": " + (colon == std::string::npos ? summary : summary.substr(colon + 2)));
  }
  throw ConfigError(fmt::format("{}: failed to read config file: {}\n{}", spec, summary, tb));
}

}  // namespace

FileNames read_config_file(const std::string& spec, const std::optional<std::string>& virtualenv,
                           const std::vector<std::string>& argv) {
  if (!is_initialized()) {
    InitOptions options;
    options.argv = argv;
    options.virtualenv = virtualenv;
    try {
      initialize(options);
    } catch (const std::exception& e) {
      throw ConfigError(spec + ": cannot start Python to read it: " + e.what());
    }
  }
  PyObject* module = embedded_module("alicorn_config_file");
  if (module == nullptr) raise_config_error(spec);
  PyObject* ns = PyObject_CallMethod(module, "run", "s", spec.c_str());
  PyObject* hooks = ns ? PyObject_CallMethod(module, "make_hooks", "O", ns) : nullptr;
  PyObject* names = hooks ? PyObject_CallMethod(module, "public_names", "O", ns) : nullptr;
  Py_DECREF(module);
  Py_XDECREF(ns);
  if (names == nullptr) {
    Py_XDECREF(hooks);
    raise_config_error(spec);
  }
  FileNames out;
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(names); ++i) {
    PyObject* pair = PyList_GET_ITEM(names, i);
    std::string name = str_of(PyTuple_GET_ITEM(pair, 0), false);
    PyObject* value = PyTuple_GET_ITEM(pair, 1);
    if (name == "logger_class" && PyType_Check(value)) {
      // Gunicorn takes the class itself: by its import path (a class defined in the file
      // itself is found in sys.modules as __config__).
      FileValue v;
      v.kind = FileValue::Kind::Str;
      v.type_name = "str";
      PyObject* mod = PyObject_GetAttrString(value, "__module__");
      PyObject* qualname = PyObject_GetAttrString(value, "__qualname__");
      v.text = (mod ? str_of(mod, false) : std::string()) + "." +
               (qualname ? str_of(qualname, false) : std::string());
      Py_XDECREF(mod);
      Py_XDECREF(qualname);
      PyErr_Clear();
      out.emplace_back(std::move(name), std::move(v));
      continue;
    }
    out.emplace_back(std::move(name), convert(value));
  }
  Py_DECREF(names);
  Py_XSETREF(g_staged_hooks, hooks);
  return out;
}

void commit_config_file(const std::optional<std::string>& spec) {
  if (!spec) {
    hooks::set_file_hooks(nullptr);
    return;
  }
  hooks::set_file_hooks(g_staged_hooks == Py_None ? nullptr : g_staged_hooks);
}

void install_config_reader() { set_python_config_reader(read_config_file); }

}  // namespace alicorn::python
