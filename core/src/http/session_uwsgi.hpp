// The uwsgi protocol on a connection (protocol = uwsgi): the packet before the request body,
// turned into an HTTP request head for the RequestParser plus the facts its variables state.
// One request per connection, as nginx's uwsgi_pass expects; the response is HTTP/1.x, never
// chunked, delimited by closing the connection when the app gives no length.
#pragma once

#include <cstddef>

#include "http/http_connection.hpp"

namespace alicorn {

// At session_new: whether this connection speaks uwsgi, and whether its peer may.
void uwsgi_session_init(alicorn_session* s, const alicorn_conn_info* info);

// At the top of session_feed while s->uwsgi_packet is set: consume the packet from data/len
// (the request head it makes is queued in s->pending). 0 = need more bytes, 1 = done (data/len
// advanced past it), < 0 = malformed or refused (close; logged).
int uwsgi_consume_packet(alicorn_session* s, const char*& data, size_t& len);

// After describe_request: the variables' facts override the socket's (REMOTE_ADDR, HTTPS, ...).
void uwsgi_describe(alicorn_session* s);

}  // namespace alicorn
