// The streaming wsgi.input: reads the request body through the connection's app::BodyStream as
// the app asks for it (blocking plugins that gave conn_info.recv/send; the connection sends
// 100 Continue on the first read). The GIL is released while the stream waits for bytes.
#include <cerrno>
#include <cstdint>

#include "wsgi/wsgi_session.hpp"

namespace alicorn {
namespace {

app::BodyStream* input_stream(PyObject* self) {
  app::BodyStream* s = reinterpret_cast<InputObject*>(self)->stream;
  if (s == nullptr) PyErr_SetString(PyExc_ValueError, "wsgi.input used after the request ended");
  return s;
}

// Get more body bytes into the buffer. Returns 1 when some arrived, 0 at the end of the body,
// -1 with a Python exception set. Holds the GIL on entry and exit, not while waiting.
int input_fill(app::BodyStream* s) {
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = s->fill();
  Py_END_ALLOW_THREADS
  if (rc >= 0) return rc;
  switch (s->failure()) {
    case app::BodyStream::Failure::Invalid:
      PyErr_Format(PyExc_OSError, "invalid request body: %s", s->failure_reason().c_str());
      break;
    case app::BodyStream::Failure::Closed:
      PyErr_SetString(PyExc_OSError, "client closed the connection before the end of the "
                                     "request body");
      break;
    default:
      errno = s->failure_errno();
      PyErr_SetFromErrno(PyExc_OSError);
      break;
  }
  return -1;
}

PyObject* input_bytes(app::BodyStream* s, size_t n) {
  std::string_view b = s->buffered();
  n = std::min(n, b.size());
  PyObject* out = PyBytes_FromStringAndSize(b.data(), static_cast<Py_ssize_t>(n));
  if (out != nullptr) s->consume(n);
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
  app::BodyStream* s = input_stream(self);
  Py_ssize_t size;
  if (s == nullptr || !size_arg(args, nargs, size)) return nullptr;
  size_t want = size < 0 ? SIZE_MAX : static_cast<size_t>(size);
  while (s->buffered().size() < want) {
    int rc = input_fill(s);
    if (rc < 0) return nullptr;
    if (rc == 0) break;
  }
  return input_bytes(s, want);
}

PyObject* input_readline(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  app::BodyStream* s = input_stream(self);
  Py_ssize_t size;
  if (s == nullptr || !size_arg(args, nargs, size)) return nullptr;
  size_t limit = size < 0 ? SIZE_MAX : static_cast<size_t>(size);
  size_t scanned = 0;
  for (;;) {
    std::string_view b = s->buffered();
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
