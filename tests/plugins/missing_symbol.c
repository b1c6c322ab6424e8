/* A shared object that exports a function, but not alicorn_worker_negotiate. */
__attribute__((visibility("default"))) int alicorn_something_else(void);

int alicorn_something_else(void) { return 42; }
