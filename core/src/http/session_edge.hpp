// The edge of a connection (no Python): which peers may set forwarded headers, the PROXY
// protocol header before any HTTP byte, and what a trusted proxy says about each request. The
// settings come from net/edge_settings; the logic is in http/forwarded and net/proxy_protocol.
// The result reaches the adapter only through app::Request (scheme, remote_addr, remote_port,
// script_name, path_info, remote_user).
#pragma once

#include <cstddef>

#include "http/http_connection.hpp"

namespace alicorn {

// At session_new: trust of the peer, and a PROXY header parser when the setting asks for one.
void edge_session_init(alicorn_session* s, const alicorn_conn_info* info);

// At the top of session_feed while s->proxy is set: consume the PROXY header from data/len.
// 0 = need more bytes, 1 = done (data/len advanced past it), < 0 = invalid (close; logged).
int edge_consume_proxy(alicorn_session* s, const char*& data, size_t& len);

// After a request's headers parsed: read the forwarded headers (a conflict rejects with 400).
void edge_after_headers(alicorn_session* s);

// After describe_request: what a trusted proxy (or root_path) says overrides the request's view.
void edge_describe(alicorn_session* s);

}  // namespace alicorn
