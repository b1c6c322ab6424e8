/* A vtable whose struct_size stops before run and destroy: shorter than v1.0 requires. */
#include <alicorn/worker.h>

static int short_create(const alicorn_host_api *host, alicorn_worker_ctx *ctx, void **worker,
                        char *err, size_t err_size) {
  (void)host;
  (void)ctx;
  (void)err;
  (void)err_size;
  *worker = NULL;
  return 0;
}

static const alicorn_worker_vtable short_vtable = {
    .struct_size = offsetof(alicorn_worker_vtable, run),
    .name = "short_table",
    .version = "0.0.1",
    .create = short_create,
};

ALICORN_WORKER_PLUGIN(short_vtable)
