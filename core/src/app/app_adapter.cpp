// Which adapter serves a worker: the worker runtime keeps it in the context's application slot
// (wsgi_globals_create fills it today; an ASGI adapter would be created there instead).
#include "app/app_adapter.hpp"

#include "plugin/worker_runtime.hpp"

namespace alicorn::app {

AppAdapter* adapter_of(alicorn_worker_ctx* ctx) {
  return ctx != nullptr ? static_cast<AppAdapter*>(ctx->wsgi) : nullptr;
}

}  // namespace alicorn::app
