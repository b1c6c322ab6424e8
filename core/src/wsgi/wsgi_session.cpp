// The WSGI adapter: the per-process globals, and per connection the app call (environ,
// start_response), the body iteration (lists at once, iterators chunk by chunk, file_wrapper
// over a real file as a sendfile segment) and PEP 3333's close().
#include "wsgi/wsgi_session.hpp"  // Python.h first

#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>

#include "log/log.hpp"
#include "plugin/worker_runtime.hpp"
#include "python/hooks.hpp"
#include "python/py_logging.hpp"
#include "python/python_runtime.hpp"
#include "util/clock.hpp"

namespace alicorn {
namespace {

using Result = app::AppSession::Result;
using Next = app::AppSession::Next;

// A wsgi.file_wrapper over a regular file, for a plugin that can sendfile: describe the file
// segment instead of iterating. False (and no Python error) when it is not such a file.
bool prepare_sendfile(PyObject* result, app::Reply& r) {
  PyObject* filelike = PyObject_GetAttrString(result, "filelike");
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
  r.file_length = r.length >= 0 ? std::min(r.length, remaining) : remaining;
  r.body = app::Reply::Body::File;
  if (r.length < 0) r.length = remaining;
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// WsgiSession

app::AppSession* WsgiGlobals::open_session() { return new WsgiSession(this); }

void WsgiSession::drop_owned() {
  for (PyObject* o : owned) Py_DECREF(o);
  owned.clear();
}

void WsgiSession::close_result() {
  Py_CLEAR(cur.iter);
  if (cur.result != nullptr) {
    PyObject* close = nullptr;
    if (!PyList_CheckExact(cur.result) && !PyTuple_CheckExact(cur.result) &&
        _PyObject_LookupAttr(cur.result, g->str_close, &close) > 0) {
      PyObject* ret = PyObject_CallNoArgs(close);
      Py_DECREF(close);
      if (ret == nullptr) {
        std::string tb = python::take_exception();
        log::error().error("Error closing the response iterable:\n{}", tb);
      }
      Py_XDECREF(ret);
    }
    PyErr_Clear();
    Py_CLEAR(cur.result);
  }
  cur.app_active = false;
  if (cur.input != nullptr) {
    reinterpret_cast<InputObject*>(cur.input)->stream = nullptr;
    Py_CLEAR(cur.input);
  }
}

app::AppSession::Result WsgiSession::run(app::Request& req, app::Reply& reply) {
  python::Gil gil;
  drop_owned();  // the previous response's chunks are written by now
  cur.req = &req;
  cur.reply = &reply;
  PyObject* env = build_environ(this);
  if (env == nullptr) {
    std::string tb = python::take_exception();
    log::error().error("Error building the environ for \"{}\":\n{}", app::request_line(req), tb);
    close_result();  // drops a streaming wsgi.input made on the way
    return Result::AppError;
  }
  if (start_response == nullptr) {
    auto* sr = PyObject_New(StartResponseObject,
                            reinterpret_cast<PyTypeObject*>(g->start_response_type));
    if (sr != nullptr) {
      sr->vectorcall = start_response_call;
      sr->session = this;
      start_response = reinterpret_cast<PyObject*>(sr);
      write_callable = PyCFunction_New(&write_def, start_response);
    }
    if (write_callable == nullptr) {
      Py_DECREF(env);
      std::string tb = python::take_exception();
      log::error().error("Cannot make start_response for \"{}\":\n{}", app::request_line(req), tb);
      close_result();
      return Result::AppError;
    }
  }
  cur.app_active = true;
  if (g->access_logger != nullptr) {
    cur.start_us = clock::mono_us();
    Py_INCREF(env);
    cur.access_env = env;
    needs_end = true;
  }
  PyObject* args[2] = {env, start_response};
  if (hooks::has_request_hooks()) {
    hooks::run_request_hook("pre_request", env);
    Py_INCREF(env);
    cur.hook_env = env;
  }
  cur.result = PyObject_Vectorcall(g->app, args, 2, nullptr);
  Py_DECREF(env);
  PyObject* result = cur.result;
  bool complete = false;
  if (result != nullptr && reply.started &&
      Py_TYPE(result) == reinterpret_cast<PyTypeObject*>(g->file_wrapper) && req.can_sendfile &&
      prepare_sendfile(result, reply)) {
    needs_end = true;  // the file stays open until the response ends
    return Result::Ok;
  }
  if (result != nullptr) {
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) {
      // The common case: a list of bytes, all known now.
      Py_ssize_t n = PySequence_Fast_GET_SIZE(result);
      for (Py_ssize_t i = 0; i < n; ++i) {
        PyObject* item = PySequence_Fast_GET_ITEM(result, i);
        if (!PyBytes_Check(item)) {
          PyErr_Format(PyExc_TypeError, "response body item must be bytes, not %.100s",
                       Py_TYPE(item)->tp_name);
          break;
        }
        Py_INCREF(item);
        add_chunk(item);
      }
      complete = true;
    } else {
      cur.iter = PyObject_GetIter(result);
      // Pull until the first non-empty chunk: start_response may be called that late.
      while (cur.iter != nullptr) {
        PyObject* item = PyIter_Next(cur.iter);
        if (item == nullptr) {
          if (!PyErr_Occurred()) {
            complete = true;
            Py_CLEAR(cur.iter);
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
        add_chunk(item);
        break;
      }
    }
  }
  Result outcome = Result::Ok;
  if (PyErr_Occurred() || cur.result == nullptr) {
    std::string tb = python::take_exception();
    close_result();
    if (req.stream != nullptr && req.stream->failure() != app::BodyStream::Failure::None) {
      // The app failed because the body was malformed or never came: the connection answers.
      outcome = Result::BodyError;
    } else {
      log::error().error("Error handling request {}\n{}", req.target, tb);
      outcome = Result::AppError;
    }
  } else if (!reply.started) {
    log::error().error("Error handling request {}: the application returned without calling "
                       "start_response", req.target);
    close_result();
    outcome = Result::AppError;
  } else if (complete) {
    close_result();
    reply.body = app::Reply::Body::Complete;
  } else {
    reply.body = app::Reply::Body::Streaming;
  }
  needs_end = cur.result != nullptr || cur.hook_env != nullptr || cur.access_env != nullptr;
  return outcome;
}

app::AppSession::Next WsgiSession::next(app::Reply& reply) {
  python::Gil gil;
  drop_owned();  // the connection emptied reply.chunks: those are written
  cur.reply = &reply;
  PyObject* item = cur.iter != nullptr ? PyIter_Next(cur.iter) : nullptr;
  if (item == nullptr) {
    if (PyErr_Occurred()) {
      std::string tb = python::take_exception();
      log::error().error("Error handling request {} (after the response started)\n{}",
                         cur.req->target, tb);
      close_result();
      return Next::Error;
    }
    Py_CLEAR(cur.iter);
    return Next::End;
  }
  if (!PyBytes_Check(item)) {
    log::error().error("Error handling request {}: response body item must be bytes, not {}",
                       cur.req->target, Py_TYPE(item)->tp_name);
    Py_DECREF(item);
    close_result();
    return Next::Error;
  }
  add_chunk(item);
  return Next::More;
}

void WsgiSession::end(const app::Reply& reply, int64_t body_sent) {
  needs_end = false;
  python::Gil gil;
  close_result();
  if (cur.access_env != nullptr) python_access(reply, body_sent);
  if (cur.hook_env != nullptr) {
    hooks::run_request_hook("post_request", cur.hook_env,
                            reply.status.empty() ? nullptr : reply.status.c_str(), &reply.headers,
                            body_sent);
    Py_CLEAR(cur.hook_env);
  }
}

void WsgiSession::python_access(const app::Reply& reply, int64_t body_sent) {
  PyObject* env = cur.access_env;
  cur.access_env = nullptr;
  int64_t duration = clock::mono_us() - cur.start_us;
  auto str = [](std::string_view v) {
    return PyUnicode_DecodeLatin1(v.data(), static_cast<Py_ssize_t>(v.size()), "replace");
  };
  // Gunicorn's resp.headers (the app's, Content-Length included: start_response keeps it in
  // reply.length, out of reply.headers) and req.headers (names upper-cased, as received).
  PyObject* headers = PyList_New(0);
  for (const auto& [name, value] : reply.headers) {
    PyObject* item = Py_BuildValue("(NN)", str(name), str(value));
    if (headers && item) PyList_Append(headers, item);
    Py_XDECREF(item);
  }
  if (reply.length >= 0 && headers) {
    PyObject* item = Py_BuildValue("(sN)", "Content-Length",
                                   PyUnicode_FromFormat("%lld", static_cast<long long>(reply.length)));
    if (item) PyList_Append(headers, item);
    Py_XDECREF(item);
  }
  PyObject* req_headers = PyList_New(0);
  std::string upper;
  if (cur.req != nullptr && cur.req->headers != nullptr)
    for (const auto& h : *cur.req->headers) {
      upper.assign(h.name);
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      PyObject* item = Py_BuildValue("(NN)", str(upper), str(h.value));
      if (req_headers && item) PyList_Append(req_headers, item);
      Py_XDECREF(item);
    }
  std::string_view method = cur.req ? cur.req->method : std::string_view();
  std::string_view target = cur.req ? cur.req->target : std::string_view();
  PyObject* r = nullptr;
  if (headers && req_headers && !PyErr_Occurred())
    r = PyObject_CallFunction(g->call_access, "ONiNLNNiiNOL", g->access_logger,
                              str(reply.status), reply.code, headers, static_cast<long long>(body_sent),
                              str(method), str(target), cur.req ? cur.req->http_major : 1,
                              cur.req ? cur.req->http_minor : 1, req_headers, env,
                              static_cast<long long>(duration));
  else {
    Py_XDECREF(headers);
    Py_XDECREF(req_headers);
  }
  if (r == nullptr) {
    std::string tb = python::take_exception();
    log::error().error("Error in the logger_class access() for \"{} {}\":\n{}", method, target,
                       tb);
  }
  Py_XDECREF(r);
  Py_DECREF(env);
}

WsgiSession::~WsgiSession() {
  if (owned.empty() && cur.result == nullptr && cur.iter == nullptr && cur.input == nullptr &&
      cur.hook_env == nullptr && cur.access_env == nullptr && start_response == nullptr &&
      py_remote_addr == nullptr && py_server_name == nullptr)
    return;
  python::Gil gil;
  close_result();
  Py_CLEAR(cur.hook_env);
  Py_CLEAR(cur.access_env);
  drop_owned();
  if (start_response != nullptr)
    reinterpret_cast<StartResponseObject*>(start_response)->session = nullptr;
  Py_CLEAR(start_response);
  Py_CLEAR(write_callable);
  Py_CLEAR(py_remote_addr);
  Py_CLEAR(py_remote_port);
  Py_CLEAR(py_server_name);
  Py_CLEAR(py_server_port);
}

// ---------------------------------------------------------------------------------------------
// Per-process globals

void* wsgi_globals_create(alicorn_worker_ctx* ctx, PyObject* app) {
  auto* g = new WsgiGlobals();
  g->ctx = ctx;
  g->app = app;
#define ALICORN_INTERN_KEY(name) g->k_##name = PyUnicode_InternFromString(#name);
  ALICORN_KEYS(ALICORN_INTERN_KEY)
#undef ALICORN_INTERN_KEY
  g->k_wsgi_input = PyUnicode_InternFromString("wsgi.input");
  g->k_wsgi_url_scheme = PyUnicode_InternFromString("wsgi.url_scheme");
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
  g->underscore_headers = strcasecmp(ctx->config->header_map.c_str(), "dangerous") == 0;
  g->access_logger = python::logger_access();
  g->call_access = python::logger_call_access();

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
  return static_cast<app::AppAdapter*>(g);
}

}  // namespace alicorn
