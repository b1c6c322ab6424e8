// The core's Python helpers (core/src/python/py/*.py), embedded at build time by
// cmake/EmbedPython.cmake. Each is importable by its name once the interpreter runs:
// embedded_module("alicorn_hooks_support") compiles it with its own file name (so tracebacks
// point at the .py file) and registers it in sys.modules.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

typedef struct _object PyObject;  // NOLINT

namespace alicorn::python {

struct EmbeddedSource {
  const char* module;    // "alicorn_hooks_support"
  const char* filename;  // "alicorn_hooks_support.py"
  const char* data;      // the file's bytes, NUL-terminated
  size_t size;           // without the NUL
};

// Every embedded file (the generated table).
std::span<const EmbeddedSource> embedded_sources();
const EmbeddedSource* find_embedded(std::string_view module);

// Import an embedded module (sys.modules first). Needs the GIL. Returns a new reference, or
// nullptr with a Python exception set.
PyObject* embedded_module(const char* module);

// Make the `alicorn` package (alicorn.glogging) importable: a meta path finder over the
// embedded modules (alicorn_package.py). Needs the GIL; never fails (errors are cleared).
void install_alicorn_package();

// Run an embedded file's code in `globals` (as PyRun_String would). New reference or nullptr.
PyObject* run_embedded(const char* module, PyObject* globals);

}  // namespace alicorn::python
