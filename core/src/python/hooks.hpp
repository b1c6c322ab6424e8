// Server hooks: a Python module (the `hooks` setting, --hooks MODULE) whose functions named like
// Gunicorn's server hooks are called when present:
//
//   master: on_starting(server), when_ready(server), on_reload(server), pre_fork(server, worker),
//           child_exit(server, worker), nworkers_changed(server, new_value, old_value),
//           pre_exec(server) (in the child about to exec the new binary), on_exit(server),
//           ssl_context(config, default_ssl_context_factory) (with certfile, at startup)
//   worker: post_fork(server, worker), post_worker_init(worker), worker_int(worker),
//           worker_abort(worker), pre_request(worker, req),
//           post_request(worker, req, environ, resp), worker_exit(server, worker)
//
// Hooks need Python in the master, so the master starts the interpreter when `hooks` is set
// (and holds the GIL for good, as with --preload); workers inherit it through fork. An exception
// in a hook is logged with its traceback and the server goes on, except on_starting (startup is
// aborted, exit 1) and post_fork / post_worker_init (the worker fails to boot, as in Gunicorn).
//
// Objects passed: `server` (pid, cfg: a dict of every setting, num_workers, proc_name, address,
// worker_class, log), `worker` (pid, ppid, age, index, cfg, log, booted), `req` (method, path,
// query, uri, version, headers as [(NAME, value)], remote_addr, scheme, environ), `resp`
// (status, status_code, headers, sent). `log` has debug/info/warning/error/critical/exception
// and writes to alicorn's error log.
//
// Every function here needs the GIL unless it says otherwise, and does nothing when no hooks
// module is loaded.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

typedef struct _object PyObject;  // NOLINT

namespace alicorn::hooks {

// Import the hooks module: a dotted module name (found on sys.path: --pythonpath, the working
// directory) or a path to a .py file. Throws std::runtime_error carrying the traceback.
void load(const std::string& spec);
// Import it again after a HUP (importlib.reload for a module name, a fresh load for a file).
// On failure the old module stays and the traceback is logged; returns false.
bool reload(const std::string& spec);
// Forget the module (hooks turned off by a HUP).
void unload();
// The hooks a Python config file defines (an object with the hook functions as attributes, made
// by python/config_file.cpp), or nullptr for none. A --hooks module's function of the same name
// wins over the file's.
void set_file_hooks(PyObject* hooks);
bool loaded();  // a --hooks module or a config file's hooks
// The module has a callable of this name.
bool defined(const char* name);

// The arbiter as hooks see it. Refresh before calling a master hook.
struct ServerState {
  pid_t pid = 0;
  int num_workers = 0;
  std::string proc_name;
  std::string worker_class;
  std::string cfg_json;                // to_json(config)
  std::vector<std::string> addresses;  // "http://127.0.0.1:8000", "unix:/run/x.sock"
};
void update_server(const ServerState& state);

// A worker object (master side: made before fork for pre_fork, kept until child_exit). Returns a
// new reference, or nullptr when no hooks module is loaded. `pid` may be 0 (not forked yet).
PyObject* new_worker(uint32_t age, uint32_t index, pid_t ppid);
void set_worker_pid(PyObject* worker, pid_t pid);
void set_worker_booted(PyObject* worker);
void release_worker(PyObject* worker);  // Py_XDECREF

// Hook calls. They return false when the hook raised (the traceback is logged at ERROR), true
// when it returned or is not defined.
bool call_server(const char* name);                           // (server)
bool call_server_worker(const char* name, PyObject* worker);  // (server, worker)
bool call_worker(const char* name, PyObject* worker);         // (worker)
bool call_nworkers_changed(int new_value, int old_value);     // (server, new, old)
// ssl_context(config, default_ssl_context_factory), in the master at startup: the SSL_CTX of the
// ssl.SSLContext the hook returns (kept alive for the process), or nullptr when no such hook is
// defined. Throws std::runtime_error with the traceback when the hook raises or returns
// something else.
struct TlsFiles {
  std::string certfile, keyfile, ca_certs, ciphers;
  int cert_reqs = 0;
};
void* call_ssl_context(const TlsFiles& files);

// ---- in the worker process ----

// This process's worker object (set after fork; a reference is kept).
void set_current_worker(PyObject* worker);
PyObject* current_worker();

// True when the hooks module defines pre_request or post_request. No GIL needed: a flag fixed
// before the worker starts serving.
bool has_request_hooks();

// Run a per-request hook in a worker, with the GIL held, never throwing.
//   "pre_request":  just before the app is called; `environ` is the WSGI environ dict the app
//                   will receive; status/headers/body_bytes are ignored.
//   "post_request": once the response is complete (or abandoned); `environ` is the same dict,
//                   `status` the status line ("200 OK"; nullptr if none), `headers` the response
//                   headers, `body_bytes` the body bytes sent (-1 unknown).
// The `req` object is made on the first call and stored in environ["alicorn.hook_request"], so a
// hook can keep state on it from pre_request to post_request (req.start = time.time()).
// Returns false when the hook raised (logged with its traceback; the request goes on).
bool run_request_hook(const char* name, PyObject* environ, const char* status = nullptr,
                      const std::vector<std::pair<std::string, std::string>>* headers = nullptr,
                      int64_t body_bytes = -1);

}  // namespace alicorn::hooks
