// The session protocol of the host API: feed, run, pull, keep-alive, free. Parses with
// RequestParser, runs the app, frames the response, decides about the connection.
#include "wsgi/wsgi_session.hpp"  // Python.h first

#include "http/http_session.hpp"

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

#include "log/access_log.hpp"
#include "util/clock.hpp"
#include "python/hooks.hpp"
#include "http/http_parser.hpp"
#include "log/log.hpp"
#include "metrics/request_metrics.hpp"
#include "python/python_runtime.hpp"
#include "plugin/worker_runtime.hpp"


namespace alicorn {
namespace {

constexpr size_t kCopyBodyLimit = 16 * 1024;  // bodies up to this size ride in the head buffer


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
  s->held.insert(s->held.end(), r.chunks.begin(), r.chunks.end());
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
  const bool bodiless_status = r.code < 200 || r.code == 204 || r.code == 304;
  r.no_body = bodiless_status || s->parser.method() == "HEAD";
  // A streamed body the app left unread (or that broke off) makes the connection unusable.
  r.keep_alive = connection_may_persist(s) && !r.app_close && s->parser.message_complete() &&
                 !s->input_broken;
  int64_t total = 0;  // of a complete body
  if (body_complete)
    for (PyObject* c : r.chunks) total += PyBytes_GET_SIZE(c);
  if (r.app_length >= 0) {
    r.content_length = r.app_length;
  } else if (body_complete) {
    if (!bodiless_status) r.content_length = total;
  } else if (r.no_body) {
    // nothing to frame
  } else if (s->parser.http_minor() >= 1) {
    r.chunked = true;
  } else {
    r.keep_alive = false;  // close-delimited body
  }
  r.buf.clear();
  append_head(s, r.buf);
  // Small complete bodies are copied behind the head so the response is one buffer.
  if (r.no_body || !body_complete || total > static_cast<int64_t>(kCopyBodyLimit)) return;
  int64_t left = r.content_length >= 0 ? r.content_length : total;
  for (PyObject* c : r.chunks) {
    int64_t n = std::min<int64_t>(PyBytes_GET_SIZE(c), left);
    r.buf.append(PyBytes_AS_STRING(c), static_cast<size_t>(n));
    left -= n;
    r.body_sent += n;
  }
  retire_chunks(s);
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
  r.file_offset = r.file_length = r.file_in_flight = 0;
  r.file_pending = false;
}

void log_access(alicorn_session* s) {
  if (s->logged || (log::access() == nullptr && !metrics::enabled())) return;
  s->logged = true;
  if (metrics::enabled()) metrics::record_request(s->r.code, clock::mono_us() - s->start_mono_us);
  if (log::access() == nullptr) return;
  AccessRecord rec;
  rec.remote_addr = s->remote_addr;
  rec.request = &s->parser;
  rec.status = s->r.code;
  rec.body_bytes = s->r.body_sent;
  rec.response_headers = &s->r.headers;
  rec.start_unix_us = s->start_unix_us;
  rec.duration_us = clock::mono_us() - s->start_mono_us;
  write_access_log(rec);
}

// post_request, once per request that reached the app, whichever way its response ended.
// Takes the GIL only when a pre_request ran.
void run_post_request(alicorn_session* s) {
  if (s->hook_env == nullptr) return;
  python::Gil gil;
  hooks::run_request_hook("post_request", s->hook_env, s->r.status.empty() ? nullptr : s->r.status.c_str(),
                          &s->r.headers, s->r.body_sent);
  Py_CLEAR(s->hook_env);
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
  if (hooks::has_request_hooks()) {
    hooks::run_request_hook("pre_request", env);
    Py_INCREF(env);
    s->hook_env = env;
  }
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
      // The app failed because the body never came: the client's fault, not the app's.
      int status = s->input_timed_out ? 408 : 400;
      log::error().info("Client {} {} while sending the body of \"{}\" ({})", s->remote_addr,
                        s->input_timed_out ? "stalled" : "went away", s->parser.request_line(),
                        status);
      error_response(s, status, s->input_timed_out ? "timed out reading the request body"
                                                   : "incomplete request body");
      return;
    }
    log::error().error("Error handling request {}\n{}", s->parser.target(), tb);
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
    s->input_timed_out = false;
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
  if (log::access() != nullptr || metrics::enabled()) {  // the clocks: access log, metrics
    s->start_unix_us = clock::unix_us();
    s->start_mono_us = clock::mono_us();
    metrics::request_started();
  }
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
  // Pulling again means everything handed out before was written, the file segment included.
  r.body_sent += r.file_in_flight;
  r.file_in_flight = 0;
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
        r.file_in_flight = r.file_length;  // counted as sent once the plugin pulls again
        return ALICORN_PULL_MORE;
      }
    }
    if (r.iter == nullptr || r.no_body) {
      if (r.chunked) add(kLastChunk, 5);
      if (r.iter != nullptr || r.result != nullptr) {
        // Sent chunks are still referenced by `out`: they stay held until the next pull/free.
        python::Gil gil;
        close_result(s);
      }
      finish(s);
      run_post_request(s);
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
        run_post_request(s);
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
      run_post_request(s);
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
  run_post_request(s);
}

void session_free(alicorn_session* s) {
  if (s == nullptr) return;
  retire_chunks(s);
  if (!s->held.empty() || s->r.result != nullptr || s->start_response != nullptr ||
      s->input != nullptr || s->py_remote_addr != nullptr || s->hook_env != nullptr) {
    run_post_request(s);
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
