// Internal to the core: the state behind an alicorn_session and the per-process WSGI globals,
// shared by the files that implement the session (http_session.cpp), start_response
// (start_response.cpp), the streaming wsgi.input (wsgi_input.cpp) and the environ
// (wsgi_environ.cpp). Everything here needs the GIL unless said otherwise.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <strings.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "http/forwarded.hpp"
#include "http/http_parser.hpp"
#include "net/proxy_protocol.hpp"
#include "plugin/worker_runtime.hpp"

namespace alicorn {


// ---------------------------------------------------------------------------------------------
// Per-process WSGI state

struct WsgiGlobals {
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
#define ALICORN_KEYS(X)                                                                        \
  X(REQUEST_METHOD) X(SCRIPT_NAME) X(PATH_INFO) X(QUERY_STRING) X(RAW_URI) X(SERVER_PROTOCOL) \
  X(SERVER_NAME) X(SERVER_PORT) X(REMOTE_ADDR) X(REMOTE_PORT) X(CONTENT_TYPE) X(CONTENT_LENGTH)
#define ALICORN_DECLARE_KEY(name) PyObject* k_##name = nullptr;
  ALICORN_KEYS(ALICORN_DECLARE_KEY)
#undef ALICORN_DECLARE_KEY
  PyObject* k_wsgi_input = nullptr;
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

struct Response {
  std::string status;  // "200 OK"
  int code = 0;
  bool started = false;  // start_response was called
  std::vector<std::pair<std::string, std::string>> headers;
  bool app_close = false;   // the app said Connection: close
  int64_t app_length = -1;  // the app's Content-Length

  std::string buf;                 // head (+ a small body copied in)
  std::vector<PyObject*> chunks;   // bytes objects waiting to be sent (owned refs)
  size_t next_chunk = 0;
  PyObject* result = nullptr;      // the app's iterable (owned) until closed
  PyObject* iter = nullptr;        // iterator over it while streaming
  int64_t content_length = -1;     // framing length, -1 when chunked / close-delimited
  int64_t body_sent = 0;
  bool chunked = false;
  bool no_body = false;
  bool head_out = false;
  bool keep_alive = false;
  bool finished = false;
  int file_fd = -1;  // wsgi.file_wrapper over a real file: sent with sendfile by the plugin
  int64_t file_offset = 0;
  int64_t file_length = 0;
  int64_t file_in_flight = 0;  // handed to the plugin, not yet known to be written
  bool file_pending = false;
  char frames[ALICORN_OUTPUT_IOV_MAX][24];
};

}  // namespace alicorn

struct alicorn_session {
  alicorn_worker_ctx* ctx = nullptr;
  alicorn::WsgiGlobals* g = nullptr;
  uint32_t listener_index = 0;
  std::string remote_addr;
  std::string remote_port;
  alicorn::RequestParser parser;
  std::string pending;  // bytes received but not parsed yet (pipelining)
  enum class State { Reading, Interim, Ready, Responding, Done } state = State::Reading;
  bool continue_sent = false;
  bool parse_error = false;
  alicorn::Response r;
  std::vector<PyObject*> held;  // references to drop next time the GIL is held
  PyObject* start_response = nullptr;  // this request's start_response object
  int64_t start_unix_us = 0;           // when the request became ready (access log)
  int64_t start_mono_us = 0;
  bool logged = false;                 // access log line written for this request
  // Streaming request bodies (blocking plugins that gave recv/send, ABI 1.1).
  void* io = nullptr;
  ssize_t (*io_recv)(void*, void*, size_t) = nullptr;
  ssize_t (*io_send)(void*, const void*, size_t) = nullptr;
  bool streaming = false;
  bool input_broken = false;
  bool input_timed_out = false;        // ... because it stopped sending (408, not 400)           // the client vanished mid-body: never reuse
  size_t input_offset = 0;             // consumed prefix of parser.body_buffer()
  std::string recv_buf;
  PyObject* input = nullptr;           // this request's wsgi.input when streaming
  // Python objects reused for every request on this connection (dropped with the GIL in free).
  bool app_active = false;             // inside the app call or its iterable: start_response ok
  PyObject* write_callable = nullptr;  // start_response's return value
  PyObject* py_remote_addr = nullptr;
  PyObject* py_remote_port = nullptr;
  std::string cached_host;             // Host of the previous request, and what it gave
  PyObject* py_server_name = nullptr;
  PyObject* py_server_port = nullptr;
  PyObject* hook_env = nullptr;        // the environ pre_request saw, for post_request
  // At the edge (http/session_edge.cpp): forwarded headers and the PROXY protocol header.
  bool forwarded_trusted = false;                     // the peer may set forwarded headers
  std::unique_ptr<alicorn::ProxyHeaderParser> proxy;  // while the PROXY header is awaited
  alicorn::ForwardedView fwd;                         // what this request's headers said

  explicit alicorn_session(alicorn::HttpLimits limits) : parser(limits) {}
};

namespace alicorn {

constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

// start_response (start_response.cpp)
struct StartResponseObject {
  PyObject_HEAD vectorcallfunc vectorcall;
  alicorn_session* session;
};
extern PyType_Spec start_response_spec;
extern PyMethodDef write_def;
PyObject* start_response_call(PyObject* self, PyObject* const* args, size_t nargsf,
                              PyObject* kwnames);
// Latin-1 bytes of a str; false with a Python exception set.
bool latin1(PyObject* s, const char* what, std::string& out);

// wsgi.input over the connection (wsgi_input.cpp)
struct InputObject {
  PyObject_HEAD alicorn_session* session;
};
extern PyType_Spec input_spec;

// environ and wsgi.file_wrapper (wsgi_environ.cpp)
PyObject* build_environ(alicorn_session* s);  // new reference, or nullptr with an exception
PyObject* make_file_wrapper_class();

}  // namespace alicorn
