/* A well-formed worker plugin: negotiates with ALICORN_WORKER_PLUGIN, run() returns 0. */
#include <alicorn/worker.h>

static int good_create(const alicorn_host_api *host, alicorn_worker_ctx *ctx, void **worker,
                       char *err, size_t err_size) {
  (void)host;
  (void)ctx;
  (void)err;
  (void)err_size;
  *worker = NULL;
  return 0;
}

static int good_run(void *worker) {
  (void)worker;
  return 0;
}

static void good_destroy(void *worker) { (void)worker; }

static const alicorn_worker_vtable good_vtable = {
    .struct_size = sizeof(alicorn_worker_vtable),
    .name = "good",
    .version = "1.2.3",
    .description = "test plugin that does nothing",
    .capabilities = ALICORN_CAP_THREADS,
    .create = good_create,
    .run = good_run,
    .destroy = good_destroy,
};

ALICORN_WORKER_PLUGIN(good_vtable)
