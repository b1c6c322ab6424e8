// Internal to the WSGI adapter: the per-process globals (the worker's app::AppAdapter), the
// per-connection WsgiSession (an app::AppSession) with its per-request WsgiRequest, and the
// Python types behind start_response and the streaming wsgi.input. Shared by wsgi_session.cpp
// (run, body iteration, close()), start_response.cpp, wsgi_input.cpp and wsgi_environ.cpp.
// Everything here needs the GIL unless said otherwise.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <strings.h>

#include <array>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "app/app_adapter.hpp"
#include "http/http_parser.hpp"
#include "wsgi/wsgi.hpp"

struct alicorn_worker_ctx;

namespace alicorn {

// ---------------------------------------------------------------------------------------------
// Per-process WSGI state

struct WsgiGlobals final : app::AppAdapter {
  app::AppSession* open_session() override;  // no GIL needed

  alicorn_worker_ctx* ctx = nullptr;
  PyObject* app = nullptr;
  PyObject* template_env = nullptr;  // the constant part of every environ
  PyObject* bytesio = nullptr;       // io.BytesIO
  PyObject* io_open = nullptr;       // io.open, for spooled bodies
  PyObject* file_wrapper = nullptr;  // wsgi.file_wrapper (a class)
  PyObject* start_response_type = nullptr;
  PyObject* input_type = nullptr;
  PyObject* protocol_11 = nullptr;
  PyObject* protocol_10 = nullptr;
  std::string script_name;
  bool underscore_headers = false;  // header_map = dangerous: names with '_' are passed on
  // logger_class: the instance's access() and alicorn_logging.call_access (borrowed; both
  // null with the native logger).
  PyObject* access_logger = nullptr;
  PyObject* call_access = nullptr;
#define ALICORN_KEYS(X)                                                                        \
  X(REQUEST_METHOD) X(SCRIPT_NAME) X(PATH_INFO) X(QUERY_STRING) X(RAW_URI) X(SERVER_PROTOCOL) \
  X(SERVER_NAME) X(SERVER_PORT) X(REMOTE_ADDR) X(REMOTE_PORT) X(CONTENT_TYPE) X(CONTENT_LENGTH)
#define ALICORN_DECLARE_KEY(name) PyObject* k_##name = nullptr;
  ALICORN_KEYS(ALICORN_DECLARE_KEY)
#undef ALICORN_DECLARE_KEY
  PyObject* k_wsgi_input = nullptr;
  PyObject* k_wsgi_url_scheme = nullptr;
  PyObject* str_close = nullptr;
  PyObject* empty_str = nullptr;
  std::array<PyObject*, 64> methods{};  // by llhttp method id
  // Raw header name -> environ key (nullptr: dropped). Names arrive in few spellings.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view v) const { return std::hash<std::string_view>{}(v); }
  };
  std::unordered_map<std::string, PyObject*, Hash, std::equal_to<>> header_keys;
};

// ---------------------------------------------------------------------------------------------
// Per connection

// What one request holds while its response is produced and sent.
struct WsgiRequest {
  app::Request* req = nullptr;   // the connection's, valid until the response ends
  app::Reply* reply = nullptr;   // start_response and write() fill it
  PyObject* result = nullptr;    // the app's iterable (owned) until closed
  PyObject* iter = nullptr;      // iterator over it while streaming
  PyObject* input = nullptr;     // this request's streaming wsgi.input
  PyObject* hook_env = nullptr;  // the environ pre_request saw, for post_request
  PyObject* access_env = nullptr;  // logger_class: the environ, for access() in end()
  int64_t start_us = 0;            // logger_class: when run() began (request_time)
  bool app_active = false;       // inside the app call or its iterable: start_response ok
};

class WsgiSession final : public app::AppSession {
 public:
  explicit WsgiSession(WsgiGlobals* g) : g(g) {}
  ~WsgiSession() override;
  Result run(app::Request& req, app::Reply& reply) override;
  Next next(app::Reply& reply) override;
  void end(const app::Reply& reply, int64_t body_sent) override;

  // A body chunk: kept alive here, seen by the connection as a view.
  void add_chunk(PyObject* bytes) {  // steals the reference
    owned.push_back(bytes);
    cur.reply->chunks.emplace_back(PyBytes_AS_STRING(bytes),
                                   static_cast<size_t>(PyBytes_GET_SIZE(bytes)));
  }
  void drop_owned();
  void close_result();  // PEP 3333 close(), whatever happened
  // logger_class: access(resp, req, environ, request_time), after close(). Never raises.
  void python_access(const app::Reply& reply, int64_t body_sent);

  WsgiGlobals* g;
  WsgiRequest cur;
  // Reused for every request on this connection (dropped with the GIL in the destructor).
  std::vector<PyObject*> owned;        // chunks handed to the connection: dropped on the next call
  PyObject* start_response = nullptr;  // this connection's start_response object
  PyObject* write_callable = nullptr;  // start_response's return value
  std::string remote_addr, remote_port;  // what py_remote_* were made from
  PyObject* py_remote_addr = nullptr;
  PyObject* py_remote_port = nullptr;
  std::string cached_host;             // Host of the previous request, and what it gave
  PyObject* py_server_name = nullptr;
  PyObject* py_server_port = nullptr;
};

// start_response (start_response.cpp)
struct StartResponseObject {
  PyObject_HEAD vectorcallfunc vectorcall;
  WsgiSession* session;
};
extern PyType_Spec start_response_spec;
extern PyMethodDef write_def;
PyObject* start_response_call(PyObject* self, PyObject* const* args, size_t nargsf,
                              PyObject* kwnames);
// Latin-1 bytes of a str; false with a Python exception set.
bool latin1(PyObject* s, const char* what, std::string& out);

// wsgi.input over the connection (wsgi_input.cpp)
struct InputObject {
  PyObject_HEAD app::BodyStream* stream;  // nullptr once the request ended
};
extern PyType_Spec input_spec;

// environ and wsgi.file_wrapper (wsgi_environ.cpp)
PyObject* build_environ(WsgiSession* s);  // new reference, or nullptr with an exception
PyObject* make_file_wrapper_class();

}  // namespace alicorn
