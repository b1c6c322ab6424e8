/* A full-size vtable whose required run entry is NULL. */
#include <alicorn/worker.h>

static int null_create(const alicorn_host_api *host, alicorn_worker_ctx *ctx, void **worker,
                       char *err, size_t err_size) {
  (void)host;
  (void)ctx;
  (void)err;
  (void)err_size;
  *worker = NULL;
  return 0;
}

static void null_destroy(void *worker) { (void)worker; }

static const alicorn_worker_vtable null_vtable = {
    .struct_size = sizeof(alicorn_worker_vtable),
    .name = "null_entry",
    .version = "0.0.1",
    .create = null_create,
    .run = NULL,
    .destroy = null_destroy,
};

ALICORN_WORKER_PLUGIN(null_vtable)
