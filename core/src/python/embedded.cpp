#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "python/embedded.hpp"

#include <string>

namespace alicorn::python {

const EmbeddedSource* find_embedded(std::string_view module) {
  for (const auto& e : embedded_sources())
    if (module == e.module) return &e;
  return nullptr;
}

namespace {

PyObject* compile(const char* module) {
  const EmbeddedSource* src = find_embedded(module);
  if (src == nullptr) {
    PyErr_Format(PyExc_ImportError, "alicorn has no embedded module %s", module);
    return nullptr;
  }
  std::string filename = std::string("<alicorn>/") + src->filename;
  return Py_CompileString(src->data, filename.c_str(), Py_file_input);
}

}  // namespace

PyObject* embedded_module(const char* module) {
  PyObject* modules = PyImport_GetModuleDict();  // borrowed
  if (PyObject* found = PyDict_GetItemString(modules, module)) return Py_NewRef(found);
  PyObject* code = compile(module);
  if (code == nullptr) return nullptr;
  std::string filename = std::string("<alicorn>/") + find_embedded(module)->filename;
  PyObject* mod = PyImport_ExecCodeModuleEx(module, code, filename.c_str());
  Py_DECREF(code);
  return mod;
}

namespace {

PyObject* load_embedded(PyObject*, PyObject* name) {
  const char* text = PyUnicode_AsUTF8(name);
  return text ? embedded_module(text) : nullptr;
}

PyMethodDef load_def = {"load_embedded", load_embedded, METH_O,
                        "Import one of alicorn's embedded modules by its name."};

}  // namespace

void install_alicorn_package() {
  PyObject* module = embedded_module("alicorn_package");
  PyObject* load = module ? PyCFunction_New(&load_def, nullptr) : nullptr;
  PyObject* r = load ? PyObject_CallMethod(module, "install", "O", load) : nullptr;
  Py_XDECREF(r);
  Py_XDECREF(load);
  Py_XDECREF(module);
  PyErr_Clear();  // without it only `import alicorn.glogging` fails, with its own error
}

PyObject* run_embedded(const char* module, PyObject* globals) {
  PyObject* code = compile(module);
  if (code == nullptr) return nullptr;
  PyObject* result = PyEval_EvalCode(code, globals, globals);
  Py_DECREF(code);
  return result;
}

}  // namespace alicorn::python
