// The session's edge: what a proxy in front says about the connection (PROXY protocol header)
// and about each request (forwarded headers), applied to an alicorn_session. The parsing and
// the policies are pure (net/proxy_protocol, http/forwarded); this file is the glue the session
// (http_session.cpp) and the environ (wsgi_environ.cpp) call, one line each.
#pragma once

#include "wsgi/wsgi_session.hpp"  // Python.h first

namespace alicorn {

// session_new: whether the peer may send forwarded headers, and whether a PROXY header is due.
void edge_session_init(alicorn_session* s, const alicorn_conn_info* info);

// session_feed, before any HTTP parsing, while s->proxy is set: consume the PROXY header.
// Returns 1 to go on parsing HTTP from (data, len) (advanced past the header), 0 when more
// bytes are needed, or a negative error after logging why (the plugin closes the connection).
int edge_consume_proxy(alicorn_session* s, const char*& data, size_t& len);

// session_feed, once a request's headers are parsed: read its forwarded headers; conflicting
// scheme headers make the request invalid (400).
void edge_after_headers(alicorn_session* s);

// build_environ: the SCRIPT_NAME that PATH_INFO is relative to, then the forwarded overrides
// (wsgi.url_scheme, SCRIPT_NAME, PATH_INFO, REMOTE_USER). GIL held.
std::string_view edge_script_name(const alicorn_session* s);
void edge_environ(alicorn_session* s, PyObject* env);

}  // namespace alicorn
