// HttpSession: one client connection as the plugin sees it through the session_* host API.
// It parses requests (RequestParser), runs the WSGI app (WsgiBridge), serialises responses and
// decides keep-alive. The plugin only moves bytes.
#pragma once

#include <alicorn/worker.h>

#include <string>

typedef struct _object PyObject;  // NOLINT

namespace alicorn {

// Per-process WSGI state (interned keys, template environ, types). Created once the
// interpreter runs and the app is loaded; needs the GIL.
void* wsgi_globals_create(alicorn_worker_ctx* ctx, PyObject* app);

// The session entries of the host API table.
alicorn_session* session_new(alicorn_worker_ctx* ctx, const alicorn_conn_info* info);
int session_feed(alicorn_session* s, const char* data, size_t len);
int session_run(alicorn_session* s);
int session_pull(alicorn_session* s, alicorn_output* out);
int session_keep_alive(alicorn_session* s);
void session_abort(alicorn_session* s, int error);
void session_free(alicorn_session* s);

// "Sat, 21 Nov 2026 12:00:00 GMT", cached per second.
std::string_view http_date();

}  // namespace alicorn
