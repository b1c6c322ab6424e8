// start_response and its write() callable: PEP 3333 status and header checks (latin-1, no
// CR/LF injection, hop-by-hop headers left to the server), exc_info semantics.
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "wsgi/wsgi_session.hpp"

#include <structmember.h>

namespace alicorn {
namespace {

bool valid_header_name(std::string_view name) {
  return is_token(name);
}

bool valid_header_value(std::string_view value) {
  for (unsigned char c : value) {
    if ((c < 32 && c != '\t') || c == 127) return false;
  }
  return true;
}

}  // namespace

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

namespace {

bool is_hop_by_hop(std::string_view name) {
  for (std::string_view h : {"connection", "keep-alive", "proxy-authenticate",
                             "proxy-authorization", "te", "trailers", "transfer-encoding",
                             "upgrade"}) {
    if (iequals(name, h)) return true;
  }
  return false;
}

}  // namespace

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
  WsgiSession* s = reinterpret_cast<StartResponseObject*>(self)->session;
  if (s == nullptr || !s->cur.app_active) {
    PyErr_SetString(PyExc_RuntimeError, "start_response called after the response ended");
    return nullptr;
  }
  app::Reply& r = *s->cur.reply;
  if (exc_info != Py_None) {
    if (r.head_sent) {
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
  r.close = app_close;
  r.length = app_length;
  r.started = true;
  Py_INCREF(s->write_callable);
  return s->write_callable;
}

namespace {

PyObject* start_response_write(PyObject* self, PyObject* data) {
  WsgiSession* s = reinterpret_cast<StartResponseObject*>(self)->session;
  if (s == nullptr || !s->cur.app_active || !s->cur.reply->started) {
    PyErr_SetString(PyExc_RuntimeError, "write() called before start_response");
    return nullptr;
  }
  if (!PyBytes_Check(data)) {
    PyErr_Format(PyExc_TypeError, "write() argument must be bytes, not %.100s",
                 Py_TYPE(data)->tp_name);
    return nullptr;
  }
  Py_INCREF(data);
  s->add_chunk(data);
  Py_RETURN_NONE;
}

}  // namespace

PyMethodDef write_def = {"write", start_response_write, METH_O,
                         "Write body bytes (the legacy PEP 3333 write callable)."};

namespace {

PyMemberDef start_response_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET,
     static_cast<Py_ssize_t>(offsetof(StartResponseObject, vectorcall)), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr}};

PyType_Slot start_response_slots[] = {
    {Py_tp_call, reinterpret_cast<void*>(PyVectorcall_Call)},
    {Py_tp_members, start_response_members},
    {Py_tp_doc, const_cast<char*>("alicorn start_response callable")},
    {0, nullptr}};

}  // namespace

PyType_Spec start_response_spec = {"alicorn.StartResponse", sizeof(StartResponseObject), 0,
                                   Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
                                   start_response_slots};

}  // namespace alicorn
