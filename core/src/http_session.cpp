#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "alicorn/http_session.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <ctime>
#include <unordered_map>
#include <fmt/format.h>
#include <string_view>
#include <vector>

#include "alicorn/access_log.hpp"
#include "alicorn/http_parser.hpp"
#include "alicorn/log.hpp"
#include "alicorn/python_runtime.hpp"
#include "alicorn/worker_runtime.hpp"

namespace alicorn {
namespace {

constexpr size_t kCopyBodyLimit = 16 * 1024;  // bodies up to this size ride in the head buffer
constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

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

}  // namespace
}  // namespace alicorn

// ---------------------------------------------------------------------------------------------
// The session

using alicorn::RequestParser;

namespace {

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
  bool file_pending = false;
  char frames[ALICORN_OUTPUT_IOV_MAX][24];
};

}  // namespace

struct alicorn_session {
  alicorn_worker_ctx* ctx = nullptr;
  alicorn::WsgiGlobals* g = nullptr;
  uint32_t listener_index = 0;
  std::string remote_addr;
  std::string remote_port;
  RequestParser parser;
  std::string pending;  // bytes received but not parsed yet (pipelining)
  enum class State { Reading, Interim, Ready, Responding, Done } state = State::Reading;
  bool continue_sent = false;
  bool parse_error = false;
  Response r;
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
  bool input_broken = false;           // the client vanished mid-body: never reuse
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

  explicit alicorn_session(alicorn::HttpLimits limits) : parser(limits) {}
};

namespace alicorn {
namespace {

// ---------------------------------------------------------------------------------------------
// start_response

struct StartResponseObject {
  PyObject_HEAD vectorcallfunc vectorcall;
  alicorn_session* session;
};

// RFC 9110 tchar: what a header name may be made of.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> t{};
  constexpr std::string_view separators = "()<>@,;:\\\"/[]?={}";
  for (int c = 33; c < 127; ++c) t[static_cast<size_t>(c)] = separators.find(static_cast<char>(c)) == std::string_view::npos;
  return t;
}();

bool valid_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name)
    if (!kTokenChars[c]) return false;
  return true;
}

bool valid_header_value(std::string_view value) {
  for (unsigned char c : value) {
    if ((c < 32 && c != '\t') || c == 127) return false;
  }
  return true;
}

// Latin-1 bytes of a str, or nullopt with a Python exception set.
bool latin1(PyObject* s, const char* what, std::string& out) {
  if (!PyUnicode_Check(s)) {
    PyErr_Format(PyExc_TypeError, "%s must be a str, not %.100s", what, Py_TYPE(s)->tp_name);
    return false;
  }
  PyObject* b = PyUnicode_AsLatin1String(s);
  if (b == nullptr) return false;
  out.assign(PyBytes_AS_STRING(b), static_cast<size_t>(PyBytes_GET_SIZE(b)));
  Py_DECREF(b);
  return true;
}

bool is_hop_by_hop(std::string_view name) {
  for (std::string_view h : {"connection", "keep-alive", "proxy-authenticate",
                             "proxy-authorization", "te", "trailers", "transfer-encoding",
                             "upgrade"}) {
    if (iequals(name, h)) return true;
  }
  return false;
}

PyObject* start_response_call(PyObject* self, PyObject* const* args, size_t nargsf,
                              PyObject* kwnames) {
  // start_response(status, headers, exc_info=None), positional or by keyword.
  PyObject* params[3] = {nullptr, nullptr, Py_None};
  Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  if (nargs > 3) {
    PyErr_SetString(PyExc_TypeError, "start_response() takes at most 3 arguments");
    return nullptr;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) params[i] = args[i];
  for (Py_ssize_t i = 0; i < nkw; ++i) {
    const char* name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, i));
    int slot = name == nullptr                       ? -1
               : std::strcmp(name, "status") == 0   ? 0
               : std::strcmp(name, "headers") == 0  ? 1
               : std::strcmp(name, "exc_info") == 0 ? 2
                                                     : -1;
    if (slot < 0 || slot < nargs) {
      PyErr_Format(PyExc_TypeError, "start_response() got an unexpected keyword argument %R",
                   PyTuple_GET_ITEM(kwnames, i));
      return nullptr;
    }
    params[slot] = args[nargs + i];
  }
  if (params[0] == nullptr || params[1] == nullptr) {
    PyErr_SetString(PyExc_TypeError, "start_response() needs status and headers");
    return nullptr;
  }
  PyObject *status = params[0], *headers = params[1], *exc_info = params[2];
  alicorn_session* s = reinterpret_cast<StartResponseObject*>(self)->session;
  if (s == nullptr || !s->app_active) {
    PyErr_SetString(PyExc_RuntimeError, "start_response called after the response ended");
    return nullptr;
  }
  Response& r = s->r;
  if (exc_info != Py_None) {
    if (r.head_out) {
      // PEP 3333: too late to change the response; re-raise the app's exception.
      if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
        PyErr_SetString(PyExc_TypeError, "exc_info must be a 3-tuple");
        return nullptr;
      }
      PyObject* t = PyTuple_GET_ITEM(exc_info, 0);
      PyObject* v = PyTuple_GET_ITEM(exc_info, 1);
      PyObject* tb = PyTuple_GET_ITEM(exc_info, 2);
      Py_INCREF(t);
      Py_INCREF(v);
      Py_INCREF(tb);
      PyErr_Restore(t, v, tb);
      return nullptr;
    }
  } else if (r.started) {
    PyErr_SetString(PyExc_AssertionError,
                    "start_response called a second time without exc_info");
    return nullptr;
  }
  std::string status_text;
  if (!latin1(status, "status", status_text)) return nullptr;
  if (status_text.size() < 4 || !std::isdigit(static_cast<unsigned char>(status_text[0])) ||
      !std::isdigit(static_cast<unsigned char>(status_text[1])) ||
      !std::isdigit(static_cast<unsigned char>(status_text[2])) || status_text[3] != ' ' ||
      !valid_header_value(status_text)) {
    PyErr_Format(PyExc_ValueError, "invalid status %R: expected '<3 digits> <reason>'", status);
    return nullptr;
  }
  if (!PyList_Check(headers)) {
    PyErr_Format(PyExc_TypeError, "headers must be a list, not %.100s",
                 Py_TYPE(headers)->tp_name);
    return nullptr;
  }
  std::vector<std::pair<std::string, std::string>> parsed;
  bool app_close = false;
  int64_t app_length = -1;
  Py_ssize_t n = PyList_GET_SIZE(headers);
  parsed.reserve(static_cast<size_t>(n));
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* item = PyList_GET_ITEM(headers, i);
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
      PyErr_Format(PyExc_TypeError, "header %R is not a (name, value) tuple", item);
      return nullptr;
    }
    std::string name, value;
    if (!latin1(PyTuple_GET_ITEM(item, 0), "header name", name) ||
        !latin1(PyTuple_GET_ITEM(item, 1), "header value", value))
      return nullptr;
    if (!valid_header_name(name)) {
      PyErr_Format(PyExc_ValueError, "invalid header name %R", PyTuple_GET_ITEM(item, 0));
      return nullptr;
    }
    if (!valid_header_value(value)) {
      PyErr_Format(PyExc_ValueError, "invalid header value %R (control characters)",
                   PyTuple_GET_ITEM(item, 1));
      return nullptr;
    }
    if (iequals(name, "content-length")) {
      char* end = nullptr;
      errno = 0;
      long long v = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || v < 0 || errno == ERANGE) {
        PyErr_Format(PyExc_ValueError, "invalid Content-Length %R", PyTuple_GET_ITEM(item, 1));
        return nullptr;
      }
      app_length = v;
      continue;  // re-emitted by the framing code, once
    } else if (is_hop_by_hop(name)) {
      // The server frames the message and decides about the connection itself.
      if (iequals(name, "connection") && value.find("close") != std::string::npos)
        app_close = true;
      continue;
    }
    parsed.emplace_back(std::move(name), std::move(value));
  }
  r.status = std::move(status_text);
  r.code = (r.status[0] - '0') * 100 + (r.status[1] - '0') * 10 + (r.status[2] - '0');
  r.headers = std::move(parsed);
  r.app_close = app_close;
  r.app_length = app_length;
  r.started = true;
  Py_INCREF(s->write_callable);
  return s->write_callable;
}

PyObject* start_response_write(PyObject* self, PyObject* data) {
  alicorn_session* s = reinterpret_cast<StartResponseObject*>(self)->session;
  if (s == nullptr || !s->app_active || !s->r.started) {
    PyErr_SetString(PyExc_RuntimeError, "write() called before start_response");
    return nullptr;
  }
  if (!PyBytes_Check(data)) {
    PyErr_Format(PyExc_TypeError, "write() argument must be bytes, not %.100s",
                 Py_TYPE(data)->tp_name);
    return nullptr;
  }
  Py_INCREF(data);
  s->r.chunks.push_back(data);
  Py_RETURN_NONE;
}

PyMethodDef write_def = {"write", start_response_write, METH_O,
                         "Write body bytes (the legacy PEP 3333 write callable)."};

PyMemberDef start_response_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET,
     static_cast<Py_ssize_t>(offsetof(StartResponseObject, vectorcall)), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr}};

PyType_Slot start_response_slots[] = {
    {Py_tp_call, reinterpret_cast<void*>(PyVectorcall_Call)},
    {Py_tp_members, start_response_members},
    {Py_tp_doc, const_cast<char*>("alicorn start_response callable")},
    {0, nullptr}};

PyType_Spec start_response_spec = {"alicorn.StartResponse", sizeof(StartResponseObject), 0,
                                   Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
                                   start_response_slots};

// ---------------------------------------------------------------------------------------------
// wsgi.input that reads the request body from the connection as the app asks for it.

struct InputObject {
  PyObject_HEAD alicorn_session* session;
};

alicorn_session* input_session(PyObject* self) {
  alicorn_session* s = reinterpret_cast<InputObject*>(self)->session;
  if (s == nullptr) PyErr_SetString(PyExc_ValueError, "wsgi.input used after the request ended");
  return s;
}

std::string_view input_buffered(alicorn_session* s) {
  return std::string_view(s->parser.body_buffer()).substr(s->input_offset);
}

void input_consume(alicorn_session* s, size_t n) {
  s->input_offset += n;
  if (s->input_offset >= s->parser.body_buffer().size()) {
    s->parser.body_buffer().clear();
    s->input_offset = 0;
  }
}

// Get more body bytes into the buffer. Returns 1 when some arrived, 0 at the end of the body,
// -1 with a Python exception set. Holds the GIL on entry and exit, not while waiting.
int input_fill(alicorn_session* s) {
  RequestParser& p = s->parser;
  for (;;) {
    if (p.message_complete()) return 0;
    if (p.error_status() != 0) {
      PyErr_Format(PyExc_OSError, "invalid request body: %s", p.error_reason().c_str());
      return -1;
    }
    size_t before = p.body_buffer().size();
    size_t used = 0;
    RequestParser::Status st;
    if (!s->pending.empty()) {
      st = p.feed(s->pending.data(), s->pending.size(), used);
      s->pending.erase(0, used);
    } else {
      if (p.expect_continue() && !s->continue_sent) {
        // The app wants the body: now the client may send it.
        s->continue_sent = true;
        ssize_t n;
        Py_BEGIN_ALLOW_THREADS n = s->io_send(s->io, kContinue, sizeof kContinue - 1);
        Py_END_ALLOW_THREADS if (n < 0) {
          s->input_broken = true;
          errno = static_cast<int>(-n);
          PyErr_SetFromErrno(PyExc_OSError);
          return -1;
        }
      }
      if (s->recv_buf.empty()) s->recv_buf.resize(64 * 1024);
      ssize_t n;
      Py_BEGIN_ALLOW_THREADS n = s->io_recv(s->io, s->recv_buf.data(), s->recv_buf.size());
      Py_END_ALLOW_THREADS if (n <= 0) {
        s->input_broken = true;
        if (n == 0) {
          PyErr_SetString(PyExc_OSError, "client closed the connection before the end of the "
                                         "request body");
        } else {
          errno = static_cast<int>(-n);
          PyErr_SetFromErrno(PyExc_OSError);
        }
        return -1;
      }
      st = p.feed(s->recv_buf.data(), static_cast<size_t>(n), used);
      if (used < static_cast<size_t>(n)) s->pending.append(s->recv_buf.data() + used, static_cast<size_t>(n) - used);
    }
    if (st == RequestParser::Status::Error) continue;  // reported at the top
    if (p.body_buffer().size() > before) return 1;
  }
}

PyObject* input_bytes(alicorn_session* s, size_t n) {
  std::string_view b = input_buffered(s);
  n = std::min(n, b.size());
  PyObject* out = PyBytes_FromStringAndSize(b.data(), static_cast<Py_ssize_t>(n));
  if (out != nullptr) input_consume(s, n);
  return out;
}

bool size_arg(PyObject* const* args, Py_ssize_t nargs, Py_ssize_t& size) {
  size = -1;
  if (nargs > 1) {
    PyErr_SetString(PyExc_TypeError, "expected at most one argument");
    return false;
  }
  if (nargs == 1 && args[0] != Py_None) {
    size = PyLong_AsSsize_t(args[0]);
    if (size == -1 && PyErr_Occurred()) return false;
  }
  return true;
}

PyObject* input_read(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  alicorn_session* s = input_session(self);
  Py_ssize_t size;
  if (s == nullptr || !size_arg(args, nargs, size)) return nullptr;
  size_t want = size < 0 ? SIZE_MAX : static_cast<size_t>(size);
  while (input_buffered(s).size() < want) {
    int rc = input_fill(s);
    if (rc < 0) return nullptr;
    if (rc == 0) break;
  }
  return input_bytes(s, want);
}

PyObject* input_readline(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  alicorn_session* s = input_session(self);
  Py_ssize_t size;
  if (s == nullptr || !size_arg(args, nargs, size)) return nullptr;
  size_t limit = size < 0 ? SIZE_MAX : static_cast<size_t>(size);
  size_t scanned = 0;
  for (;;) {
    std::string_view b = input_buffered(s);
    size_t nl = b.find('\n', scanned);
    if (nl != std::string_view::npos) return input_bytes(s, std::min(nl + 1, limit));
    if (b.size() >= limit) return input_bytes(s, limit);
    scanned = b.size();
    int rc = input_fill(s);
    if (rc < 0) return nullptr;
    if (rc == 0) return input_bytes(s, limit);
  }
}

PyObject* input_readlines(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  Py_ssize_t hint;
  if (!size_arg(args, nargs, hint)) return nullptr;
  PyObject* lines = PyList_New(0);
  Py_ssize_t total = 0;
  while (lines != nullptr) {
    PyObject* line = input_readline(self, nullptr, 0);
    if (line == nullptr) {
      Py_CLEAR(lines);
      break;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(line);
    if (n == 0) {
      Py_DECREF(line);
      break;
    }
    PyList_Append(lines, line);
    Py_DECREF(line);
    total += n;
    if (hint > 0 && total >= hint) break;
  }
  return lines;
}

PyObject* input_iter(PyObject* self) {
  Py_INCREF(self);
  return self;
}

PyObject* input_next(PyObject* self) {
  PyObject* line = input_readline(self, nullptr, 0);
  if (line != nullptr && PyBytes_GET_SIZE(line) == 0) {
    Py_DECREF(line);
    return nullptr;  // StopIteration
  }
  return line;
}

PyMethodDef input_methods[] = {
    {"read", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(input_read)),
     METH_FASTCALL, "read([size]) -> bytes of the request body"},
    {"readline", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(input_readline)),
     METH_FASTCALL, "readline([size]) -> one line of the request body"},
    {"readlines", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(input_readlines)),
     METH_FASTCALL, "readlines([hint]) -> list of lines"},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot input_slots[] = {{Py_tp_methods, input_methods},
                             {Py_tp_iter, reinterpret_cast<void*>(input_iter)},
                             {Py_tp_iternext, reinterpret_cast<void*>(input_next)},
                             {Py_tp_doc, const_cast<char*>("alicorn streaming wsgi.input")},
                             {0, nullptr}};

PyType_Spec input_spec = {"alicorn.Input", sizeof(InputObject), 0, Py_TPFLAGS_DEFAULT,
                          input_slots};

// ---------------------------------------------------------------------------------------------
// wsgi.file_wrapper: iterates a file-like in blocks; over a real file the session sends it with
// sendfile(2) instead (when the plugin can), never iterating at all.

constexpr const char* kFileWrapperSource = R"PY(
class FileWrapper:
    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration
)PY";

PyObject* make_file_wrapper_class() {
  PyObject* globals = PyDict_New();
  if (globals == nullptr) return nullptr;
  PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
  if (PyObject* name = PyUnicode_FromString("alicorn")) {
    PyDict_SetItemString(globals, "__name__", name);
    Py_DECREF(name);
  }
  PyObject* ran = PyRun_String(kFileWrapperSource, Py_file_input, globals, globals);
  Py_XDECREF(ran);
  PyObject* cls = ran ? PyDict_GetItemString(globals, "FileWrapper") : nullptr;
  Py_XINCREF(cls);
  Py_DECREF(globals);
  return cls;
}

// ---------------------------------------------------------------------------------------------
// environ

void set_item(PyObject* env, PyObject* key, PyObject* value) {
  if (value == nullptr) return;
  PyDict_SetItem(env, key, value);
  Py_DECREF(value);
}

PyObject* latin1_str(std::string_view s) {
  return PyUnicode_DecodeLatin1(s.data(), static_cast<Py_ssize_t>(s.size()), nullptr);
}

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() + 0 && i + 2 <= in.size() - 1 + 0) {
      int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(in[i]);
  }
  return out;
}

PyObject* finish_environ(alicorn_session* s, PyObject* env);

PyObject* build_environ(alicorn_session* s) {
  WsgiGlobals* g = s->g;
  const RequestParser& p = s->parser;
  PyObject* env = PyDict_Copy(g->template_env);
  if (env == nullptr) return nullptr;

  {
    auto id = static_cast<size_t>(p.method_id());
    PyObject* method = id < g->methods.size() ? g->methods[id] : nullptr;
    if (method == nullptr) {
      method = PyUnicode_InternFromString(std::string(p.method()).c_str());
      if (id < g->methods.size()) g->methods[id] = method;
    }
    if (id < g->methods.size()) Py_XINCREF(method);
    set_item(env, g->k_REQUEST_METHOD, method);
  }
  std::string_view target = p.target();
  set_item(env, g->k_RAW_URI, latin1_str(target));
  std::string_view path = target;
  // absolute-form: http://host/path?q
  if (auto scheme = path.find("://"); scheme != std::string_view::npos && path[0] != '/') {
    auto slash = path.find('/', scheme + 3);
    path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
  }
  std::string_view query;
  if (auto hash = path.find('#'); hash != std::string_view::npos) path = path.substr(0, hash);
  if (auto q = path.find('?'); q != std::string_view::npos) {
    query = path.substr(q + 1);
    path = path.substr(0, q);
  }
  std::string decoded;
  std::string_view path_info = path;
  if (path.find('%') != std::string_view::npos) {
    decoded = percent_decode(path);
    path_info = decoded;
  }
  if (!g->script_name.empty() && path_info.starts_with(g->script_name))
    path_info.remove_prefix(g->script_name.size());
  set_item(env, g->k_PATH_INFO, latin1_str(path_info));
  if (query.empty()) {
    Py_INCREF(g->empty_str);
    set_item(env, g->k_QUERY_STRING, g->empty_str);
  } else {
    set_item(env, g->k_QUERY_STRING, latin1_str(query));
  }
  PyObject* proto = p.http_minor() == 0 ? g->protocol_10 : g->protocol_11;
  Py_INCREF(proto);
  set_item(env, g->k_SERVER_PROTOCOL, proto);
  if (s->py_remote_addr == nullptr) {
    s->py_remote_addr = latin1_str(s->remote_addr);
    s->py_remote_port = latin1_str(s->remote_port);
  }
  Py_XINCREF(s->py_remote_addr);
  set_item(env, g->k_REMOTE_ADDR, s->py_remote_addr);
  Py_XINCREF(s->py_remote_port);
  set_item(env, g->k_REMOTE_PORT, s->py_remote_port);

  std::string_view host;
  for (const auto& h : p.headers()) {
    if (h.name.size() == 4 && iequals(h.name, "host")) host = h.value;
    PyObject* k;
    if (auto it = g->header_keys.find(h.name); it != g->header_keys.end()) {
      k = it->second;
    } else {
      if (iequals(h.name, "content-type")) {
        k = g->k_CONTENT_TYPE;
        Py_INCREF(k);
      } else if (iequals(h.name, "content-length")) {
        k = g->k_CONTENT_LENGTH;
        Py_INCREF(k);
      } else if (h.name.find('_') != std::string_view::npos) {
        // A name with '_' could pose as one with '-' once both become '_': drop it.
        k = nullptr;
      } else {
        std::string key("HTTP_");
        for (char c : h.name)
          key.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
        k = PyUnicode_InternFromString(key.c_str());
      }
      if (g->header_keys.size() < 1024) g->header_keys.emplace(std::string(h.name), k);
      else if (k == nullptr) continue;
      else {
        // The cache is full (a client inventing names): use the key once.
        PyObject* existing = PyDict_GetItem(env, k);
        set_item(env, k, existing ? nullptr : latin1_str(h.value));
        Py_DECREF(k);
        continue;
      }
    }
    if (k == nullptr) continue;
    PyObject* existing = PyDict_GetItem(env, k);  // borrowed
    if (existing != nullptr && PyUnicode_Check(existing)) {
      std::string joined;
      latin1(existing, "header", joined);
      joined.push_back(',');
      joined.append(h.value);
      set_item(env, k, latin1_str(joined));
    } else {
      set_item(env, k, latin1_str(h.value));
    }
  }
  // SERVER_NAME / SERVER_PORT come from Host when the client sent it, as in Gunicorn.
  if (s->py_server_name != nullptr && host == s->cached_host) {
    Py_INCREF(s->py_server_name);
    set_item(env, g->k_SERVER_NAME, s->py_server_name);
    Py_INCREF(s->py_server_port);
    set_item(env, g->k_SERVER_PORT, s->py_server_port);
    return finish_environ(s, env);
  }
  std::string_view server_name, server_port;
  const auto& l = s->ctx->listeners->items()[s->listener_index];
  if (!host.empty()) {
    if (host.front() == '[') {
      auto close = host.find(']');
      server_name = host.substr(0, close == std::string_view::npos ? host.size() : close + 1);
      if (close != std::string_view::npos && close + 1 < host.size() && host[close + 1] == ':')
        server_port = host.substr(close + 2);
    } else if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
      server_name = host.substr(0, colon);
      server_port = host.substr(colon + 1);
    } else {
      server_name = host;
    }
    if (server_port.empty()) server_port = "80";
  } else {
    server_name = l.server_name;
    server_port = l.server_port;
  }
  Py_XDECREF(s->py_server_name);
  Py_XDECREF(s->py_server_port);
  s->cached_host.assign(host);
  s->py_server_name = latin1_str(server_name);
  s->py_server_port = latin1_str(server_port);
  Py_XINCREF(s->py_server_name);
  set_item(env, g->k_SERVER_NAME, s->py_server_name);
  Py_XINCREF(s->py_server_port);
  set_item(env, g->k_SERVER_PORT, s->py_server_port);
  return finish_environ(s, env);
}

// wsgi.input, and the final error check.
PyObject* finish_environ(alicorn_session* s, PyObject* env) {
  WsgiGlobals* g = s->g;
  const RequestParser& p = s->parser;
  std::string_view body = p.body();
  PyObject* input = nullptr;
  if (s->streaming && !s->parser.message_complete()) {
    auto* in = PyObject_New(InputObject, reinterpret_cast<PyTypeObject*>(g->input_type));
    if (in != nullptr) {
      in->session = s;
      s->input_offset = 0;
      Py_INCREF(in);
      s->input = reinterpret_cast<PyObject*>(in);
      input = s->input;
    }
  } else if (int fd = s->parser.take_body_fd(); fd >= 0) {
    // A spooled body: the app reads the temporary file, which closes (and vanishes) with it.
    ::lseek(fd, 0, SEEK_SET);
    input = PyObject_CallFunction(g->io_open, "isi", fd, "rb", -1);
    if (input == nullptr) ::close(fd);
  } else if (body.empty()) {
    input = PyObject_CallNoArgs(g->bytesio);
  } else {
    input = PyObject_CallFunction(g->bytesio, "y#", body.data(),
                                  static_cast<Py_ssize_t>(body.size()));
  }
  if (input == nullptr) {
    Py_DECREF(env);
    return nullptr;
  }
  set_item(env, g->k_wsgi_input, input);
  if (PyErr_Occurred()) {
    Py_DECREF(env);
    return nullptr;
  }
  return env;
}

// ---------------------------------------------------------------------------------------------
// Response helpers (GIL held unless noted)

void drop_held(alicorn_session* s) {
  for (PyObject* o : s->held) Py_DECREF(o);
  s->held.clear();
}

// Call the iterable's close() (PEP 3333: always, whatever happened) and drop it.
void close_result(alicorn_session* s) {
  Response& r = s->r;
  Py_CLEAR(r.iter);
  if (r.result != nullptr) {
    PyObject* close = nullptr;
    if (!PyList_CheckExact(r.result) && !PyTuple_CheckExact(r.result) &&
        _PyObject_LookupAttr(r.result, s->g->str_close, &close) > 0) {
      PyObject* ret = PyObject_CallNoArgs(close);
      Py_DECREF(close);
      if (ret == nullptr) {
        std::string tb = python::take_exception();
        log::error().error("Error closing the response iterable:\n{}", tb);
      }
      Py_XDECREF(ret);
    }
    PyErr_Clear();
    Py_CLEAR(r.result);
  }
  s->app_active = false;
  if (s->input != nullptr) {
    reinterpret_cast<InputObject*>(s->input)->session = nullptr;
    Py_CLEAR(s->input);
  }
}

// Move every owned reference of the response to `held` (no GIL needed).
void retire_chunks(alicorn_session* s) {
  Response& r = s->r;
  for (size_t i = r.next_chunk; i < r.chunks.size(); ++i) s->held.push_back(r.chunks[i]);
  for (size_t i = 0; i < r.next_chunk; ++i) s->held.push_back(r.chunks[i]);
  r.chunks.clear();
  r.next_chunk = 0;
}

void append_head(alicorn_session* s, std::string& out) {
  Response& r = s->r;
  out.append("HTTP/1.1 ").append(r.status).append("\r\nServer: alicorn\r\nDate: ");
  out.append(http_date()).append("\r\n");
  for (const auto& [name, value] : r.headers) out.append(name).append(": ").append(value).append("\r\n");
  if (r.content_length >= 0 && r.code >= 200 && r.code != 204)
    out.append("Content-Length: ").append(std::to_string(r.content_length)).append("\r\n");
  if (r.chunked) out.append("Transfer-Encoding: chunked\r\n");
  if (!r.keep_alive)
    out.append("Connection: close\r\n");
  else if (s->parser.http_minor() == 0)
    out.append("Connection: keep-alive\r\n");
  out.append("\r\n");
}

bool connection_may_persist(alicorn_session* s) {
  auto* ctx = s->ctx;
  return (ctx->capabilities & ALICORN_CAP_KEEPALIVE) != 0 &&
         s->parser.keep_alive() && ctx->worker_config.keepalive > 0 &&
         ctx->run_state.load(std::memory_order_relaxed) == ALICORN_RUNNING;
}

// Decide framing once the status, headers and the known part of the body are in.
void frame_response(alicorn_session* s, bool body_complete) {
  Response& r = s->r;
  bool head = s->parser.method() == "HEAD";
  r.no_body = head || r.code < 200 || r.code == 204 || r.code == 304;
  // A streamed body the app left unread (or that broke off) makes the connection unusable.
  r.keep_alive = connection_may_persist(s) && !r.app_close && s->parser.message_complete() &&
                 !s->input_broken;
  if (r.app_length >= 0) {
    r.content_length = r.app_length;
  } else if (body_complete) {
    int64_t total = 0;
    for (PyObject* c : r.chunks) total += PyBytes_GET_SIZE(c);
    if (!(r.code < 200 || r.code == 204 || r.code == 304)) r.content_length = total;
  } else if (r.no_body) {
    // nothing to frame
  } else if (s->parser.http_minor() >= 1) {
    r.chunked = true;
  } else {
    r.keep_alive = false;  // close-delimited body
  }
  r.buf.clear();
  append_head(s, r.buf);
  if (r.no_body) return;
  // Small complete bodies are copied behind the head so the response is one buffer.
  if (body_complete && !r.chunked) {
    int64_t total = 0;
    for (PyObject* c : r.chunks) total += PyBytes_GET_SIZE(c);
    if (total <= static_cast<int64_t>(kCopyBodyLimit)) {
      int64_t left = r.content_length >= 0 ? r.content_length : total;
      for (PyObject* c : r.chunks) {
        int64_t n = std::min<int64_t>(PyBytes_GET_SIZE(c), left);
        r.buf.append(PyBytes_AS_STRING(c), static_cast<size_t>(n));
        left -= n;
        r.body_sent += n;
      }
      retire_chunks(s);
    }
  }
}

void error_response(alicorn_session* s, int code, std::string_view detail) {
  Response& r = s->r;
  retire_chunks(s);
  r.status = fmt::format("{} {}", code, reason_phrase(code));
  r.code = code;
  r.headers.clear();
  r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  std::string body = fmt::format("{} {}\n{}{}", code, reason_phrase(code), detail,
                                 detail.empty() ? "" : "\n");
  r.app_length = static_cast<int64_t>(body.size());
  r.content_length = r.app_length;
  r.keep_alive = false;
  r.chunked = false;
  r.no_body = s->parser.method() == "HEAD";
  r.buf.clear();
  append_head(s, r.buf);
  if (!r.no_body) r.buf.append(body);
  r.body_sent = r.content_length;
}

void reset_response(alicorn_session* s) {
  retire_chunks(s);
  Response& r = s->r;
  r.status.clear();
  r.code = 0;
  r.started = false;
  r.headers.clear();
  r.app_close = false;
  r.app_length = -1;
  r.buf.clear();
  r.content_length = -1;
  r.body_sent = 0;
  r.chunked = r.no_body = r.head_out = r.keep_alive = r.finished = false;
  r.file_fd = -1;
  r.file_offset = r.file_length = 0;
  r.file_pending = false;
}

int64_t mono_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

void log_access(alicorn_session* s) {
  if (s->logged || log::access() == nullptr) return;
  s->logged = true;
  AccessRecord rec;
  rec.remote_addr = s->remote_addr;
  rec.request = &s->parser;
  rec.status = s->r.code;
  rec.body_bytes = s->r.body_sent;
  rec.response_headers = &s->r.headers;
  rec.start_unix_us = s->start_unix_us;
  rec.duration_us = mono_us() - s->start_mono_us;
  write_access_log(rec);
}

void finish(alicorn_session* s) {
  Response& r = s->r;
  r.finished = true;
  log_access(s);
  if (r.content_length >= 0 && !r.no_body && r.body_sent < r.content_length) {
    // Fewer bytes than promised: the client must not reuse this connection.
    log::error().warn("Response for \"{}\" ended after {} of {} bytes; closing the connection",
                         s->parser.request_line(), r.body_sent, r.content_length);
    r.keep_alive = false;
  }
  s->state = alicorn_session::State::Done;
}

// A wsgi.file_wrapper over a regular file, for a plugin that can sendfile: describe the file
// segment instead of iterating. False (and no Python error) when it is not such a file.
bool prepare_sendfile(alicorn_session* s) {
  Response& r = s->r;
  PyObject* filelike = PyObject_GetAttrString(r.result, "filelike");
  PyObject* fileno = filelike ? PyObject_CallMethod(filelike, "fileno", nullptr) : nullptr;
  long fd = fileno ? PyLong_AsLong(fileno) : -1;
  PyObject* tell = fd >= 0 ? PyObject_CallMethod(filelike, "tell", nullptr) : nullptr;
  long long offset = tell ? PyLong_AsLongLong(tell) : -1;
  Py_XDECREF(tell);
  Py_XDECREF(fileno);
  Py_XDECREF(filelike);
  PyErr_Clear();
  struct stat st {};
  if (fd < 0 || ::fstat(static_cast<int>(fd), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  if (offset < 0) offset = ::lseek(static_cast<int>(fd), 0, SEEK_CUR);
  if (offset < 0) return false;
  int64_t remaining = std::max<int64_t>(0, static_cast<int64_t>(st.st_size) - offset);
  r.file_fd = static_cast<int>(fd);
  r.file_offset = offset;
  r.file_length = r.app_length >= 0 ? std::min(r.app_length, remaining) : remaining;
  r.file_pending = true;
  if (r.app_length < 0) r.app_length = remaining;
  return true;
}

// The run entry, GIL held.
void run_app(alicorn_session* s) {
  WsgiGlobals* g = s->g;
  Response& r = s->r;
  PyObject* env = build_environ(s);
  if (env == nullptr) {
    std::string tb = python::take_exception();
    log::error().error("Error building the environ for \"{}\":\n{}", s->parser.request_line(), tb);
    error_response(s, 500, "");
    return;
  }
  if (s->start_response == nullptr) {
    auto* sr = PyObject_New(StartResponseObject,
                            reinterpret_cast<PyTypeObject*>(g->start_response_type));
    if (sr != nullptr) {
      sr->vectorcall = start_response_call;
      sr->session = s;
      s->start_response = reinterpret_cast<PyObject*>(sr);
      s->write_callable = PyCFunction_New(&write_def, s->start_response);
    }
    if (s->write_callable == nullptr) {
      Py_DECREF(env);
      python::take_exception();
      error_response(s, 500, "");
      return;
    }
  }
  s->app_active = true;
  PyObject* args[2] = {env, s->start_response};
  r.result = PyObject_Vectorcall(g->app, args, 2, nullptr);
  Py_DECREF(env);
  bool complete = false;
  if (r.result != nullptr && r.started && Py_TYPE(r.result) == reinterpret_cast<PyTypeObject*>(g->file_wrapper) &&
      (s->ctx->capabilities & ALICORN_CAP_SENDFILE) && prepare_sendfile(s)) {
    frame_response(s, false);
    if (r.no_body) {
      r.file_pending = false;
      close_result(s);
    }
    return;
  }
  if (r.result != nullptr) {
    if (PyList_CheckExact(r.result) || PyTuple_CheckExact(r.result)) {
      // The common case: a list of bytes, all known now.
      PyObject* seq = r.result;
      Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
      for (Py_ssize_t i = 0; i < n; ++i) {
        PyObject* item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyBytes_Check(item)) {
          PyErr_Format(PyExc_TypeError, "response body item must be bytes, not %.100s",
                       Py_TYPE(item)->tp_name);
          break;
        }
        Py_INCREF(item);
        r.chunks.push_back(item);
      }
      complete = true;
    } else {
      r.iter = PyObject_GetIter(r.result);
      // Pull until the first non-empty chunk: start_response may be called that late.
      while (r.iter != nullptr) {
        PyObject* item = PyIter_Next(r.iter);
        if (item == nullptr) {
          if (!PyErr_Occurred()) {
            complete = true;
            Py_CLEAR(r.iter);
          }
          break;
        }
        if (!PyBytes_Check(item)) {
          PyErr_Format(PyExc_TypeError, "response body item must be bytes, not %.100s",
                       Py_TYPE(item)->tp_name);
          Py_DECREF(item);
          break;
        }
        if (PyBytes_GET_SIZE(item) == 0) {
          Py_DECREF(item);
          continue;
        }
        r.chunks.push_back(item);
        break;
      }
    }
  }
  if (PyErr_Occurred() || r.result == nullptr) {
    std::string tb = python::take_exception();
    close_result(s);
    if (int status = s->parser.error_status(); status != 0) {
      // The body turned out malformed or too large while the app was reading it.
      log::error().info("Invalid request from ip={}: {} ({})", s->remote_addr,
                        s->parser.error_reason(), status);
      error_response(s, status, s->parser.error_reason());
      return;
    }
    if (s->input_broken) {
      log::error().info("Client {} went away while sending the body of \"{}\"", s->remote_addr,
                        s->parser.request_line());
    } else {
      log::error().error("Error handling request {}\n{}", s->parser.target(), tb);
    }
    error_response(s, 500, "");
    return;
  }
  if (!r.started) {
    log::error().error("Error handling request {}: the application returned without calling "
                       "start_response", s->parser.target());
    close_result(s);
    error_response(s, 500, "");
    return;
  }
  frame_response(s, complete);
  if (complete || r.no_body) close_result(s);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Host API entries

void* wsgi_globals_create(alicorn_worker_ctx* ctx, PyObject* app) {
  auto* g = new WsgiGlobals();
  g->app = app;
#define ALICORN_INTERN_KEY(name) g->k_##name = PyUnicode_InternFromString(#name);
  ALICORN_KEYS(ALICORN_INTERN_KEY)
#undef ALICORN_INTERN_KEY
  g->k_wsgi_input = PyUnicode_InternFromString("wsgi.input");
  g->str_close = PyUnicode_InternFromString("close");
  g->empty_str = PyUnicode_New(0, 0);
  g->protocol_11 = PyUnicode_InternFromString("HTTP/1.1");
  g->protocol_10 = PyUnicode_InternFromString("HTTP/1.0");
  g->start_response_type = PyType_FromSpec(&start_response_spec);
  g->input_type = PyType_FromSpec(&input_spec);
  PyObject* io = PyImport_ImportModule("io");
  g->bytesio = io ? PyObject_GetAttrString(io, "BytesIO") : nullptr;
  g->io_open = io ? PyObject_GetAttrString(io, "open") : nullptr;
  Py_XDECREF(io);
  g->file_wrapper = make_file_wrapper_class();
  if (const char* sn = std::getenv("SCRIPT_NAME")) g->script_name = sn;
  while (!g->script_name.empty() && g->script_name.back() == '/') g->script_name.pop_back();

  PyObject* env = PyDict_New();
  auto put = [&](const char* key, PyObject* value) {
    if (value != nullptr) {
      PyDict_SetItemString(env, key, value);
      Py_DECREF(value);
    }
  };
  put("wsgi.version", Py_BuildValue("(ii)", 1, 0));
  put("wsgi.url_scheme", PyUnicode_FromString("http"));
  PyObject* err = PySys_GetObject("stderr");
  Py_XINCREF(err);
  put("wsgi.errors", err);
  put("wsgi.multithread", PyBool_FromLong((ctx->capabilities & ALICORN_CAP_THREADS) != 0 &&
                                          ctx->worker_config.threads > 1));
  put("wsgi.multiprocess", PyBool_FromLong(ctx->config->workers > 1));
  put("wsgi.run_once", PyBool_FromLong(0));
  put("wsgi.input_terminated", PyBool_FromLong(1));
  put("SERVER_SOFTWARE", PyUnicode_FromString("alicorn/" ALICORN_VERSION));
  put("SCRIPT_NAME", PyUnicode_FromString(g->script_name.c_str()));
  Py_XINCREF(g->file_wrapper);
  put("wsgi.file_wrapper", g->file_wrapper);
  g->template_env = env;
  if (PyErr_Occurred() || g->bytesio == nullptr || g->io_open == nullptr ||
      g->file_wrapper == nullptr || g->start_response_type == nullptr || g->input_type == nullptr) {
    std::string tb = python::take_exception();
    log::error().critical("Cannot set up the WSGI bridge:\n{}", tb);
    return nullptr;
  }
  return g;
}

alicorn_session* session_new(alicorn_worker_ctx* ctx, const alicorn_conn_info* info) try {
  if (ctx == nullptr || info == nullptr) return nullptr;
  const Config& c = *ctx->config;
  HttpLimits limits;
  limits.request_line = static_cast<size_t>(c.limit_request_line);
  limits.header_fields = static_cast<size_t>(c.limit_request_fields);
  limits.field_size = static_cast<size_t>(c.limit_request_field_size);
  limits.body = static_cast<uint64_t>(c.limit_request_body);
  auto* s = new alicorn_session(limits);
  s->ctx = ctx;
  s->g = static_cast<WsgiGlobals*>(ctx->wsgi);
  s->listener_index = info->listener_index < ctx->listener_fds.size() ? info->listener_index : 0;
  if (ALICORN_HAS_FIELD(info, alicorn_conn_info, send) && info->recv != nullptr &&
      info->send != nullptr && (ctx->capabilities & ALICORN_CAP_NONBLOCKING) == 0) {
    s->io = info->io;
    s->io_recv = info->recv;
    s->io_send = info->send;
    s->streaming = true;
    s->parser.set_streaming(true);
  }
  if (info->peer != nullptr) {
    char host[INET6_ADDRSTRLEN] = "";
    if (info->peer->sa_family == AF_INET) {
      auto* sin = reinterpret_cast<const sockaddr_in*>(info->peer);
      ::inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
      s->remote_addr = host;
      s->remote_port = std::to_string(ntohs(sin->sin_port));
    } else if (info->peer->sa_family == AF_INET6) {
      auto* sin6 = reinterpret_cast<const sockaddr_in6*>(info->peer);
      ::inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
      s->remote_addr = host;
      s->remote_port = std::to_string(ntohs(sin6->sin6_port));
    }
  }
  return s;
} catch (...) {
  return nullptr;
}

int session_feed(alicorn_session* s, const char* data, size_t len) try {
  using State = alicorn_session::State;
  if (s == nullptr) return ALICORN_EINVAL;
  if (s->state == State::Done) {
    if (!s->r.keep_alive) {
      return ALICORN_FEED_NEED_MORE;  // the plugin is about to close; ignore late bytes
    }
    reset_response(s);
    s->parser.reset();
    s->continue_sent = false;
    s->input_offset = 0;
    s->state = State::Reading;
  }
  if (s->state != State::Reading) {
    if (len > 0) s->pending.append(data, len);
    return ALICORN_FEED_NEED_MORE;
  }
  RequestParser::Status st;
  size_t used = 0;
  if (!s->pending.empty()) {
    if (len > 0) s->pending.append(data, len);
    st = s->parser.feed(s->pending.data(), s->pending.size(), used);
    s->pending.erase(0, used);
  } else {
    st = s->parser.feed(data, len, used);
    if (used < len) s->pending.append(data + used, len - used);
  }
  if (st == RequestParser::Status::NeedMore) {
    if (!s->streaming && s->parser.headers_complete() && s->parser.expect_continue() &&
        !s->continue_sent) {
      s->continue_sent = true;
      s->state = State::Interim;
      return ALICORN_FEED_SEND;
    }
    return ALICORN_FEED_NEED_MORE;
  }
  s->parse_error = st == RequestParser::Status::Error;
  if (s->parse_error) s->pending.clear();  // nothing after a broken request can be trusted
  s->state = State::Ready;
  return ALICORN_FEED_READY;
} catch (...) {
  return ALICORN_ENOMEM;
}

int session_run(alicorn_session* s) try {
  using State = alicorn_session::State;
  if (s == nullptr) return ALICORN_EINVAL;
  if (s->state != State::Ready) return ALICORN_ESTATE;
  s->state = State::Responding;
  s->start_unix_us = unix_time_us();
  s->start_mono_us = mono_us();
  s->logged = false;
  if (s->parse_error) {
    const auto& p = s->parser;
    log::error().info("Invalid request from ip={}: {} ({})", s->remote_addr, p.error_reason(),
                      p.error_status());
    if (!s->held.empty()) {
      python::Gil gil;
      drop_held(s);
    }
    error_response(s, p.error_status(), p.error_reason());
    return 0;
  }
  auto* ctx = s->ctx;
  uint64_t n = ctx->requests.fetch_add(1, std::memory_order_relaxed) + 1;
  if (ctx->slot) ctx->slot->requests.store(n, std::memory_order_relaxed);
  if (ctx->max_requests > 0 && n >= ctx->max_requests) {
    int expected = ALICORN_RUNNING;
    if (ctx->run_state.compare_exchange_strong(expected, ALICORN_STOP_GRACEFUL))
      log::error().info("Autorestarting worker after current request.");
  }
  ctx->in_app.fetch_add(1);
  {
    python::Gil gil;
    drop_held(s);
    run_app(s);
  }
  ctx->in_app.fetch_sub(1);
  return 0;
} catch (...) {
  return ALICORN_ENOMEM;
}

int session_pull(alicorn_session* s, alicorn_output* out) try {
  using State = alicorn_session::State;
  if (s == nullptr || out == nullptr) return ALICORN_EINVAL;
  Response& r = s->r;
  out->iovcnt = 0;
  out->file_fd = -1;
  out->file_offset = 0;
  out->file_length = 0;
  if (s->state == State::Interim) {
    // Static: stays valid however long the plugin takes to write it.
    out->iov[0] = {const_cast<char*>(kContinue), sizeof kContinue - 1};
    out->iovcnt = 1;
    s->state = State::Reading;
    return ALICORN_PULL_DONE;
  }
  if (s->state != State::Responding) return ALICORN_ESTATE;
  auto add = [&](const void* p, size_t n) {
    out->iov[out->iovcnt++] = {const_cast<void*>(p), n};
  };
  if (!r.head_out) {
    r.head_out = true;
    add(r.buf.data(), r.buf.size());
  }
  static const char kCrlf[] = "\r\n";
  static const char kLastChunk[] = "0\r\n\r\n";
  for (;;) {
    // Hand out queued chunks while there is room for [size line, data, CRLF] plus a last chunk.
    while (r.next_chunk < r.chunks.size() && out->iovcnt + 4 <= ALICORN_OUTPUT_IOV_MAX) {
      PyObject* c = r.chunks[r.next_chunk++];
      int64_t n = PyBytes_GET_SIZE(c);
      if (r.no_body) continue;
      if (r.content_length >= 0) n = std::min(n, r.content_length - r.body_sent);
      if (n <= 0) continue;
      if (r.chunked) {
        int len = std::snprintf(r.frames[out->iovcnt], sizeof r.frames[0], "%llx\r\n",
                                static_cast<unsigned long long>(n));
        add(r.frames[out->iovcnt], static_cast<size_t>(len));
      }
      add(PyBytes_AS_STRING(c), static_cast<size_t>(n));
      if (r.chunked) add(kCrlf, 2);
      r.body_sent += n;
    }
    if (r.next_chunk < r.chunks.size()) return ALICORN_PULL_MORE;  // out of iov room
    if (r.file_pending) {
      // The file object stays open (the result holds it) until the next pull ends the response.
      r.file_pending = false;
      if (!r.no_body && r.file_length > 0) {
        out->file_fd = r.file_fd;
        out->file_offset = r.file_offset;
        out->file_length = r.file_length;
        r.body_sent += r.file_length;
        return ALICORN_PULL_MORE;
      }
    }
    if (r.iter == nullptr || r.no_body) {
      if (r.chunked) add(kLastChunk, 5);
      if (r.iter != nullptr || r.result != nullptr || !s->held.empty() || !r.chunks.empty()) {
        // Sent chunks are still referenced by `out`: keep them until the next pull/free.
        python::Gil gil;
        close_result(s);
      }
      finish(s);
      return ALICORN_PULL_DONE;
    }
    if (out->iovcnt > 0) return ALICORN_PULL_MORE;  // write what we have before the app runs
    // Streaming: ask the app for the next chunk.
    python::Gil gil;
    retire_chunks(s);
    drop_held(s);
    PyObject* item = PyIter_Next(r.iter);
    if (item == nullptr) {
      if (PyErr_Occurred()) {
        std::string tb = python::take_exception();
        log::error().error("Error handling request {} (after the response started)\n{}",
                           s->parser.target(), tb);
        close_result(s);
        r.keep_alive = false;
        s->state = State::Done;
        return ALICORN_PULL_ABORT;
      }
      Py_CLEAR(r.iter);
      continue;
    }
    if (!PyBytes_Check(item)) {
      log::error().error("Error handling request {}: response body item must be bytes, not {}",
                         s->parser.target(), Py_TYPE(item)->tp_name);
      Py_DECREF(item);
      close_result(s);
      r.keep_alive = false;
      s->state = State::Done;
      return ALICORN_PULL_ABORT;
    }
    r.chunks.push_back(item);
  }
} catch (...) {
  return ALICORN_ENOMEM;
}

int session_keep_alive(alicorn_session* s) {
  return s != nullptr && s->state == alicorn_session::State::Done && s->r.keep_alive &&
         s->ctx->run_state.load(std::memory_order_relaxed) == ALICORN_RUNNING;
}

void session_abort(alicorn_session* s, int error) {
  if (s == nullptr) return;
  if (s->state == alicorn_session::State::Responding) {
    log::error().debug("Client {} went away during \"{}\" ({})", s->remote_addr,
                       s->parser.request_line(), std::strerror(error < 0 ? -error : error));
  }
  if (s->state == alicorn_session::State::Responding) log_access(s);
  s->r.keep_alive = false;
  s->state = alicorn_session::State::Done;
}

void session_free(alicorn_session* s) {
  if (s == nullptr) return;
  retire_chunks(s);
  if (!s->held.empty() || s->r.result != nullptr || s->start_response != nullptr ||
      s->input != nullptr || s->py_remote_addr != nullptr) {
    python::Gil gil;
    close_result(s);
    drop_held(s);
    if (s->start_response != nullptr)
      reinterpret_cast<StartResponseObject*>(s->start_response)->session = nullptr;
    Py_CLEAR(s->start_response);
    Py_CLEAR(s->write_callable);
    Py_CLEAR(s->py_remote_addr);
    Py_CLEAR(s->py_remote_port);
    Py_CLEAR(s->py_server_name);
    Py_CLEAR(s->py_server_port);
  }
  delete s;
}

std::string_view http_date() {
  thread_local time_t cached_second = 0;
  thread_local char text[40];
  thread_local size_t len = 0;
  time_t now = ::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    len = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return {text, len};
}

}  // namespace alicorn
