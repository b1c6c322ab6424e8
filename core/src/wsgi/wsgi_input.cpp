// The streaming wsgi.input: reads the request body from the connection as the app asks for
// it (blocking plugins that gave conn_info.recv/send), sending 100 Continue on the first read.
#include <cerrno>
#include <cstdint>

#include "wsgi/wsgi_session.hpp"

namespace alicorn {
namespace {

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
        s->input_timed_out = n == -EAGAIN || n == -ETIMEDOUT;
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

}  // namespace

PyType_Spec input_spec = {"alicorn.Input", sizeof(InputObject), 0, Py_TPFLAGS_DEFAULT,
                          input_slots};

}  // namespace alicorn
