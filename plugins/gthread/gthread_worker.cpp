// Placeholder for the gthread worker class while it is being written.
#include <alicorn/worker.h>

#include <cstdio>

namespace {
int create(const alicorn_host_api*, alicorn_worker_ctx*, void**, char* err, size_t size) {
  std::snprintf(err, size, "the gthread worker class is not implemented yet");
  return -38;
}
int run(void*) { return 1; }
void destroy(void*) {}
const alicorn_worker_vtable kVtable = {sizeof(alicorn_worker_vtable), "gthread", ALICORN_PLUGIN_VERSION,
                                       "placeholder", 0, create, run, destroy};
}  // namespace

ALICORN_WORKER_PLUGIN(kVtable)
