/* Built against the frozen v1.0 copy of worker.h (tests/plugins/frozen/v1_0), to prove that
   plugins built against an old SDK keep loading as the ABI grows. */
#include <alicorn/worker.h>

/* Guard against building this against sdk/include by mistake once the SDK moves past 1.0. */
#if ALICORN_ABI_MAJOR != 1 || ALICORN_ABI_MINOR != 0
#error "frozen_v1_0.c must be compiled against tests/plugins/frozen/v1_0, not the current SDK"
#endif

static int frozen_create(const alicorn_host_api *host, alicorn_worker_ctx *ctx, void **worker,
                         char *err, size_t err_size) {
  (void)host;
  (void)ctx;
  (void)err;
  (void)err_size;
  *worker = NULL;
  return 0;
}

static int frozen_run(void *worker) {
  (void)worker;
  return 0;
}

static void frozen_destroy(void *worker) { (void)worker; }

static const alicorn_worker_vtable frozen_vtable = {
    .struct_size = sizeof(alicorn_worker_vtable),
    .name = "frozen_v1_0",
    .version = "1.0.0",
    .description = "test plugin built against the frozen v1.0 SDK header",
    .capabilities = 0,
    .create = frozen_create,
    .run = frozen_run,
    .destroy = frozen_destroy,
};

ALICORN_WORKER_PLUGIN(frozen_vtable)
