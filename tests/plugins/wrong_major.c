/* Hand-written negotiate function that claims the next ABI major and refuses. */
#include <alicorn/worker.h>

ALICORN_EXPORT int alicorn_worker_negotiate(alicorn_negotiate *n) {
  static const char message[] = "built for the next major";
  size_t i;
  n->plugin_abi_major = ALICORN_ABI_MAJOR + 1;
  n->plugin_abi_minor = 0;
  n->vtable = NULL;
  if (n->error != NULL && n->error_size > 0) {
    for (i = 0; i + 1 < n->error_size && i + 1 < sizeof message; ++i) n->error[i] = message[i];
    n->error[i] = '\0';
  }
  return ALICORN_EINVAL;
}
