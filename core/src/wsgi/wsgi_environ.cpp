// The WSGI environ of a request and the wsgi.file_wrapper class.
#include <unistd.h>

#include <utility>

#include "python/embedded.hpp"
#include "wsgi/wsgi_session.hpp"

namespace alicorn {
namespace {
// ---------------------------------------------------------------------------------------------
// wsgi.file_wrapper: iterates a file-like in blocks; over a real file the session sends it with
// sendfile(2) instead (when the plugin can), never iterating at all.

// The class is core/src/python/py/alicorn_file_wrapper.py, embedded at build time.

}  // namespace

PyObject* make_file_wrapper_class() {
  PyObject* globals = PyDict_New();
  if (globals == nullptr) return nullptr;
  PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
  if (PyObject* name = PyUnicode_FromString("alicorn")) {
    PyDict_SetItemString(globals, "__name__", name);
    Py_DECREF(name);
  }
  PyObject* ran = python::run_embedded("alicorn_file_wrapper", globals);
  Py_XDECREF(ran);
  PyObject* cls = ran ? PyDict_GetItemString(globals, "FileWrapper") : nullptr;
  Py_XINCREF(cls);
  Py_DECREF(globals);
  return cls;
}

// ---------------------------------------------------------------------------------------------
// environ

namespace {

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

PyObject* finish_environ(WsgiSession* s, PyObject* env);

// The environ key of a request header (HTTP_USER_AGENT, CONTENT_TYPE), cached by the name as
// the client spelled it; nullptr for a name with '_', which could pose as one with '-' (unless
// header_map = dangerous; header_map = refuse has answered 400 before the environ). The
// cache stops growing at kMaxHeaderKeys names (a client inventing names). Returns a new
// reference.
constexpr size_t kMaxHeaderKeys = 1024;

PyObject* environ_key(WsgiGlobals* g, std::string_view name) {
  PyObject* k;
  if (auto it = g->header_keys.find(name); it != g->header_keys.end()) {
    k = it->second;
  } else {
    if (iequals(name, "content-type")) {
      k = g->k_CONTENT_TYPE;
      Py_INCREF(k);
    } else if (iequals(name, "content-length")) {
      k = g->k_CONTENT_LENGTH;
      Py_INCREF(k);
    } else if (!g->underscore_headers && name.find('_') != std::string_view::npos) {
      k = nullptr;
    } else {
      std::string key("HTTP_");
      for (char c : name)
        key.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
      k = PyUnicode_InternFromString(key.c_str());
      if (k == nullptr) PyErr_Clear();
    }
    if (g->header_keys.size() >= kMaxHeaderKeys) return k;  // used once, not cached
    g->header_keys.emplace(std::string(name), k);           // the cache owns this reference
  }
  Py_XINCREF(k);
  return k;
}

}  // namespace

PyObject* build_environ(WsgiSession* s) {
  WsgiGlobals* g = s->g;
  const app::Request& p = *s->cur.req;
  PyObject* env = PyDict_Copy(g->template_env);
  if (env == nullptr) return nullptr;

  {
    auto id = static_cast<size_t>(p.method_id);
    PyObject* method = id < g->methods.size() ? g->methods[id] : nullptr;
    if (method == nullptr) {
      method = PyUnicode_InternFromString(std::string(p.method).c_str());
      if (id < g->methods.size()) g->methods[id] = method;
    }
    if (id < g->methods.size()) Py_XINCREF(method);
    set_item(env, g->k_REQUEST_METHOD, method);
  }
  std::string_view target = p.target;
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
  // SCRIPT_NAME: what a trusted proxy forwarded, else root_path, else $SCRIPT_NAME.
  std::string_view script_name = p.script_name ? *p.script_name : std::string_view(g->script_name);
  if (!script_name.empty() && path_info.starts_with(script_name))
    path_info.remove_prefix(script_name.size());
  if (p.path_info) path_info = *p.path_info;  // forwarded by a trusted proxy
  set_item(env, g->k_PATH_INFO, latin1_str(path_info));
  if (script_name != g->script_name) {
    PyObject* v = latin1_str(script_name);
    if (v != nullptr) PyDict_SetItemString(env, "SCRIPT_NAME", v);
    Py_XDECREF(v);
  }
  if (p.remote_user) {
    PyObject* v = latin1_str(*p.remote_user);
    if (v != nullptr) PyDict_SetItemString(env, "REMOTE_USER", v);
    Py_XDECREF(v);
  }
  if (p.query_string) query = *p.query_string;  // uwsgi: QUERY_STRING as the proxy sent it
  if (query.empty()) {
    Py_INCREF(g->empty_str);
    set_item(env, g->k_QUERY_STRING, g->empty_str);
  } else {
    set_item(env, g->k_QUERY_STRING, latin1_str(query));
  }
  PyObject* proto = p.http_minor == 0 ? g->protocol_10 : g->protocol_11;
  Py_INCREF(proto);
  set_item(env, g->k_SERVER_PROTOCOL, proto);
  if (p.scheme != "http") set_item(env, g->k_wsgi_url_scheme, latin1_str(p.scheme));
  // The peer is the same for every request on a connection, unless a trusted proxy says else.
  if (s->py_remote_addr == nullptr || p.remote_addr != s->remote_addr ||
      p.remote_port != s->remote_port) {
    Py_XDECREF(s->py_remote_addr);
    Py_XDECREF(s->py_remote_port);
    s->remote_addr.assign(p.remote_addr);
    s->remote_port.assign(p.remote_port);
    s->py_remote_addr = latin1_str(p.remote_addr);
    s->py_remote_port = latin1_str(p.remote_port);
  }
  Py_XINCREF(s->py_remote_addr);
  set_item(env, g->k_REMOTE_ADDR, s->py_remote_addr);
  Py_XINCREF(s->py_remote_port);
  set_item(env, g->k_REMOTE_PORT, s->py_remote_port);

  std::string_view host;
  for (const auto& h : *p.headers) {
    if (h.name.size() == 4 && iequals(h.name, "host")) host = h.value;
    PyObject* k = environ_key(g, h.name);  // nullptr: the header is dropped
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
    Py_DECREF(k);
  }
  // uwsgi: the proxy's variables (DOCUMENT_ROOT, HTTPS, ...) as they are.
  if (p.extra != nullptr) {
    for (const auto& [key, value] : *p.extra) {
      PyObject* v = latin1_str(value);
      PyObject* k = v != nullptr ? latin1_str(key) : nullptr;
      if (k != nullptr) PyDict_SetItem(env, k, v);
      Py_XDECREF(k);
      Py_XDECREF(v);
    }
  }
  // uwsgi: SERVER_NAME / SERVER_PORT as the proxy's variables say, whatever Host says.
  if (p.server_fixed) {
    set_item(env, g->k_SERVER_NAME, latin1_str(p.server_name));
    set_item(env, g->k_SERVER_PORT, latin1_str(p.server_port));
    return finish_environ(s, env);
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
    server_name = p.server_name;
    server_port = p.server_port;
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
namespace {

PyObject* finish_environ(WsgiSession* s, PyObject* env) {
  WsgiGlobals* g = s->g;
  app::Request& p = *s->cur.req;
  std::string_view body = p.body;
  PyObject* input = nullptr;
  if (p.stream != nullptr) {
    auto* in = PyObject_New(InputObject, reinterpret_cast<PyTypeObject*>(g->input_type));
    if (in != nullptr) {
      in->stream = p.stream;
      Py_INCREF(in);
      s->cur.input = reinterpret_cast<PyObject*>(in);
      input = s->cur.input;
    }
  } else if (int fd = std::exchange(p.body_fd, -1); fd >= 0) {
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


}  // namespace
}  // namespace alicorn
