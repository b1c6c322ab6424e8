// The WSGI adapter, as the worker runtime sees it: no Python types needed to create it.
#pragma once

#include <alicorn/worker.h>

typedef struct _object PyObject;  // NOLINT

namespace alicorn {

// Per-process WSGI state (interned keys, template environ, types): the worker's
// app::AppAdapter, returned as the opaque pointer the worker context keeps (nullptr on failure,
// logged). Created once the interpreter runs and the app is loaded; needs the GIL.
void* wsgi_globals_create(alicorn_worker_ctx* ctx, PyObject* app);

}  // namespace alicorn
