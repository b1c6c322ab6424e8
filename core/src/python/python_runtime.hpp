// The embedded CPython: interpreter start-up, app loading, the GIL, fork safety.
// Python is initialised in each worker after fork, or in the master with --preload.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/app_spec.hpp"

typedef struct _object PyObject;  // NOLINT: forward declaration of CPython's object

namespace alicorn::python {

struct InitOptions {
  std::vector<std::string> argv;             // sys.argv
  std::optional<std::string> virtualenv;     // a PEP 405 environment to run in
  std::vector<std::string> path_prepend;     // put first on sys.path, in this order
};

// Start the interpreter; the calling thread holds the GIL afterwards. Already started (a Python
// config file ran first): only puts path_prepend on sys.path (entries not there yet). Throws std::runtime_error
// with CPython's own message.
void initialize(const InitOptions& options);
bool is_initialized();

class AppLoadError : public std::runtime_error {
 public:
  AppLoadError(const std::string& summary, std::string traceback)
      : std::runtime_error(summary), traceback_(std::move(traceback)) {}
  const std::string& traceback() const { return traceback_; }

 private:
  std::string traceback_;
};

// Import spec.module and resolve the app (calling a factory with literal arguments). Needs the
// GIL. Returns a new reference to a callable. Throws AppLoadError ("ModuleNotFoundError: No
// module named 'x'") with the formatted traceback.
PyObject* load_app(const AppSpec& spec);

// Fetch and clear the current Python exception. Returns the formatted traceback; `summary` gets
// "Type: message". Needs the GIL.
std::string take_exception(std::string* summary = nullptr);

// The calling thread gives up the GIL for good (until it takes it back with Gil).
void release_gil();
// True once release_gil ran in this process (a worker): any thread may then take the GIL. In
// the master the main thread keeps it, so other threads must not wait for it.
bool gil_released();

// RAII: hold the GIL in this scope (any thread).
class Gil {
 public:
  Gil();
  ~Gil();
  Gil(const Gil&) = delete;
  Gil& operator=(const Gil&) = delete;

 private:
  int state_;
};

// fork() around a live interpreter (--preload): call with the GIL held.
void before_fork();
void after_fork_parent();
void after_fork_child();

// Set (or, with nullptr, remove) an environment variable through os.environ, so both the C
// environment and Python's copy of it change. Needs the GIL.
void set_environ(const std::string& key, const char* value);

// Compile a Python source file (without running it): "" when it compiles, else the formatted
// traceback (SyntaxError with the line and caret). Needs the GIL. Used by --reload.
std::string compile_error(const std::string& path);

// Flush sys.stdout and sys.stderr (before a worker exits).
void flush_std_streams();

}  // namespace alicorn::python
