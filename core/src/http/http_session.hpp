// The session entries of the host API: one client connection as the plugin sees it. The
// connection (http_connection.hpp) parses requests, hands each to the worker's application
// adapter (app/app_adapter.hpp), frames the response and decides keep-alive; the plugin only
// moves bytes. None of these entries throws: a failure is logged with the request it concerns
// and returned as an error code (ALICORN_EINVAL, ALICORN_ESTATE, ALICORN_ENOMEM, or -EIO for
// an unexpected internal failure).
#pragma once

#include <alicorn/worker.h>

#include <string_view>

namespace alicorn {

alicorn_session* session_new(alicorn_worker_ctx* ctx, const alicorn_conn_info* info);
int session_feed(alicorn_session* s, const char* data, size_t len);
int session_run(alicorn_session* s);
int session_pull(alicorn_session* s, alicorn_output* out);
int session_keep_alive(alicorn_session* s);
void session_abort(alicorn_session* s, int error);
void session_free(alicorn_session* s);

// "Sat, 21 Nov 2026 12:00:00 GMT", cached per second (response_framing.cpp).
std::string_view http_date();

}  // namespace alicorn
