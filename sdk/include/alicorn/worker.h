/*
 * alicorn worker plugin ABI.
 *
 * This is the whole contract between the alicorn host (libalicorn-core) and a worker-class
 * plugin (sync, gthread, uv, or a third party's). It is plain C: no C++ types, no Python.h.
 *
 * The rule: the host owns the protocol and the interpreter, the plugin owns concurrency and I/O.
 * A plugin accepts connections on the listeners it is given, reads bytes and feeds them to a
 * per-connection session, runs the session when a request is ready, and writes out whatever the
 * session hands back. It never sees Python objects and never touches the GIL: every host call
 * that runs Python takes and drops the GIL itself, so plugin code always runs without it.
 *
 * Versioning
 *   ALICORN_ABI_MAJOR changes only when an existing field or meaning changes; host and plugin
 *   must agree on it exactly. ALICORN_ABI_MINOR grows when fields are appended. Every table
 *   starts with `uint32_t struct_size`; fields are only ever appended, and a reader touches a
 *   field only when the table's struct_size covers it (ALICORN_HAS_FIELD).
 *
 * Negotiation
 *   A plugin exports exactly one symbol, `alicorn_worker_negotiate` (use ALICORN_WORKER_PLUGIN
 *   below, which writes it for you). The host fills in its major, the range of minors it serves
 *   and its API table; the plugin answers with its own major and minor and its vtable, or refuses
 *   with a message. The layout of `alicorn_negotiate` itself is frozen for all majors.
 *
 * Errors are values: negative numbers (usually -errno) or ALICORN_E* codes. No C++ exception
 * and no longjmp ever crosses this boundary in either direction.
 */
#ifndef ALICORN_WORKER_H
#define ALICORN_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ALICORN_ABI_MAJOR 1
#define ALICORN_ABI_MINOR 2

#if defined(__GNUC__)
#define ALICORN_EXPORT __attribute__((visibility("default")))
#else
#define ALICORN_EXPORT
#endif

/* The one symbol a plugin exports. */
#define ALICORN_NEGOTIATE_SYMBOL "alicorn_worker_negotiate"

/* True when a size-prefixed table `ptr` is long enough to contain `field`. */
#define ALICORN_HAS_FIELD(ptr, type, field) \
  ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* Host-owned opaque handles. */
typedef struct alicorn_worker_ctx alicorn_worker_ctx; /* one per worker process */
typedef struct alicorn_session alicorn_session;       /* one per client connection */

/* Log levels for alicorn_host_api.log. */
enum alicorn_log_level {
  ALICORN_LOG_DEBUG = 0,
  ALICORN_LOG_INFO = 1,
  ALICORN_LOG_WARNING = 2,
  ALICORN_LOG_ERROR = 3,
  ALICORN_LOG_CRITICAL = 4
};

/* Plugin capability flags (alicorn_worker_vtable.capabilities). */
enum alicorn_worker_caps {
  /* session_run may be called from several threads at once: wsgi.multithread is true. */
  ALICORN_CAP_THREADS = 1u << 0,
  /* The plugin honours alicorn_output.file_fd (sendfile); without it the host reads files into
     memory buffers itself. */
  ALICORN_CAP_SENDFILE = 1u << 1,
  /* The plugin is event-driven and never blocks in I/O: the request body is complete before
     session_run, and the host spools large bodies to a temporary file. */
  ALICORN_CAP_NONBLOCKING = 1u << 2,
  /* The plugin keeps a connection open for further requests when session_keep_alive says so.
     Without it every response carries `Connection: close` (Gunicorn's sync worker). */
  ALICORN_CAP_KEEPALIVE = 1u << 3
};

/* What alicorn_host_api.poll_signals reports. */
enum alicorn_run_state {
  ALICORN_RUNNING = 0,       /* keep serving */
  ALICORN_STOP_GRACEFUL = 1, /* stop accepting, finish in-flight requests, exit within
                                graceful_timeout (TERM, max_requests reached, parent gone) */
  ALICORN_STOP_FAST = 2      /* close everything and return from run() now (INT, QUIT) */
};

/* Results of session_feed. */
enum alicorn_feed_result {
  ALICORN_FEED_NEED_MORE = 0, /* no complete request yet: read more bytes and feed them */
  ALICORN_FEED_READY = 1,     /* a response is due: call session_run, then drain session_pull */
  ALICORN_FEED_SEND = 2       /* interim output (e.g. 100 Continue) is queued: drain
                                 session_pull until it returns ALICORN_PULL_DONE, then feed
                                 again */
};

/* Results of session_pull. */
enum alicorn_pull_result {
  ALICORN_PULL_MORE = 0, /* write this output, then pull again */
  ALICORN_PULL_DONE = 1, /* write this output; it ends the response (it may be empty) */
  ALICORN_PULL_ABORT = 2 /* stop: close the connection without writing anything more */
};

/* Host error codes (negative errno values are used too). */
#define ALICORN_EINVAL (-22)
#define ALICORN_ENOMEM (-12)
#define ALICORN_ESTATE (-1000) /* call made in the wrong session state */
#define ALICORN_EINTERNAL (-1001) /* the host failed inside the call (since 1.2; logged with the
                                     worker and request it concerns): close the connection */

/* Settings a worker needs, as the host resolved them. Owned by the host; valid until the
   worker's destroy returns. */
typedef struct alicorn_worker_config {
  uint32_t struct_size;
  uint32_t listener_count;
  const int *listener_fds; /* non-blocking, already listening; the plugin must not close them */
  uint32_t threads;            /* --threads */
  uint32_t worker_connections; /* --worker-connections: cap on open client connections */
  double timeout;              /* --timeout, seconds: heartbeat at least every timeout/2 */
  double graceful_timeout;     /* --graceful-timeout, seconds */
  double keepalive;            /* --keep-alive, seconds of idle before closing; 0 = no keep-alive */
  uint32_t worker_index;       /* 0-based slot of this worker in the arbiter */
  uint32_t reserved;

  /* --- since 1.2 --- */
  /* listener_count entries of alicorn_listener_flags, one per listener_fds entry, so a plugin
     need not ask the kernel what each socket is (TCP_NODELAY only applies to TCP, a unix
     socket has no peer address). */
  const uint32_t *listener_flags;
} alicorn_worker_config;

/* alicorn_worker_config.listener_flags (since 1.2). */
enum alicorn_listener_flags {
  ALICORN_LISTENER_UNIX = 1u << 0, /* AF_UNIX stream socket (else TCP over IPv4 or IPv6) */
  ALICORN_LISTENER_INET6 = 1u << 1 /* TCP over IPv6 */
};

/* What the plugin knows about a new connection. Copied by session_new. */
typedef struct alicorn_conn_info {
  uint32_t struct_size;
  int fd;                        /* the client socket (for logging; the plugin keeps ownership) */
  uint32_t listener_index;       /* which of config->listener_fds accepted it */
  const struct sockaddr *peer;   /* from accept(); may be NULL */
  socklen_t peer_len;

  /* --- since 1.1 --- */
  /* Optional, for blocking plugins (never with ALICORN_CAP_NONBLOCKING): when `recv` is set, the
     app reads the request body straight from the connection as it arrives (wsgi.input streams;
     session_feed reports READY once the headers are in), and the host answers
     `Expect: 100-continue` through `send` only when the app first reads the body. Both block and
     are called only from inside session_run, on that thread, without the GIL. recv returns the
     bytes read, 0 at end of stream, or -errno; send returns the bytes written or -errno. */
  void *io;
  ssize_t (*recv)(void *io, void *buf, size_t len);
  ssize_t (*send)(void *io, const void *buf, size_t len);
} alicorn_conn_info;

/* Output the plugin must write, in order: the iov buffers, then `file_length` bytes of file_fd
   from file_offset (only when file_fd >= 0, and only for plugins with ALICORN_CAP_SENDFILE).
   The memory and the fd stay valid until the next session_pull or session_free. */
#define ALICORN_OUTPUT_IOV_MAX 16
typedef struct alicorn_output {
  uint32_t struct_size;
  int iovcnt;
  struct iovec iov[ALICORN_OUTPUT_IOV_MAX];
  int file_fd;
  int64_t file_offset;
  int64_t file_length;
} alicorn_output;

/* The host API table handed to the plugin at negotiation. Every function is safe to call
   without the GIL and never throws. Functions marked (any thread) may be called from any of the
   plugin's threads; the rest from the thread that called run(). A session is used by one thread
   at a time. */
typedef struct alicorn_host_api {
  uint32_t struct_size;
  uint32_t abi_major;
  uint32_t abi_minor;
  const char *server_version; /* e.g. "0.1.0" */

  /* (any thread) Write one line to the error log. */
  void (*log)(alicorn_worker_ctx *ctx, int level, const char *message);
  /* The resolved settings for this worker. */
  const alicorn_worker_config *(*config)(alicorn_worker_ctx *ctx);
  /* (any thread) Tell the arbiter this worker is alive. Cheap: a store to shared memory. */
  void (*heartbeat)(alicorn_worker_ctx *ctx);
  /* A file descriptor that becomes readable when a signal arrived for this worker. Watch it
     beside the listeners and call poll_signals when it is readable. */
  int (*wake_fd)(alicorn_worker_ctx *ctx);
  /* (any thread) Drain wake_fd, handle what the host handles itself (log reopening), and
     report whether the worker should keep running: an alicorn_run_state. Also reports
     ALICORN_STOP_GRACEFUL once max_requests is reached or the arbiter went away.
     Since 1.2 (host abi_minor >= 2) the host also makes wake_fd readable when the request
     that reaches max_requests starts, so a plugin watching wake_fd needs no poll_signals
     call after each response to notice it (a 1.0/1.1 host only reports it when asked). */
  int (*poll_signals)(alicorn_worker_ctx *ctx);

  /* (any thread) Open a session for an accepted connection. NULL on allocation failure. */
  alicorn_session *(*session_new)(alicorn_worker_ctx *ctx, const alicorn_conn_info *info);
  /* Give the session bytes read from the client; the host copies what it needs. Pass len 0 to
     let it parse what it still holds from earlier calls (pipelined requests). Returns an
     alicorn_feed_result or a negative error. A malformed request yields ALICORN_FEED_READY: the
     response is the error page, and session_keep_alive is then false. */
  int (*session_feed)(alicorn_session *s, const char *data, size_t len);
  /* Produce the response for the ready request: runs the WSGI app (takes the GIL inside). May
     block for as long as the app does. Returns 0 or a negative error. */
  int (*session_run)(alicorn_session *s);
  /* Next piece of output. Returns an alicorn_pull_result or a negative error (treat as ABORT). */
  int (*session_pull)(alicorn_session *s, alicorn_output *out);
  /* After ALICORN_PULL_DONE: 1 if the connection may carry another request, 0 to close it.
     It says what the response told the client (1 exactly when it did not say
     `Connection: close`): a connection whose client was promised keep-alive must then be
     kept for its next request, even when a stop began meanwhile (close it once it is idle,
     after a short linger, or answer its next request, which then says close). */
  int (*session_keep_alive)(alicorn_session *s);
  /* Tell the session the client went away (read/write error or EOF) before the response was
     complete, so the host can close the app's iterable and log it. */
  void (*session_abort)(alicorn_session *s, int error);
  /* (any thread) Release the session and everything it holds. The plugin closes the fd. */
  void (*session_free)(alicorn_session *s);

  /* --- since 1.2 (check ALICORN_HAS_FIELD(host, alicorn_host_api, session_unread_input)) --- */
  /* After a response that ends the connection: 1 when the client may still be sending, so a
     plain close() would reset the connection and can destroy the response before the client
     read it: the session holds bytes beyond the answered request (pipelined after a close, or
     more of a body than the request had), the request was refused before its body was read
     (413, 400, ...), or the app left a streamed body unread. Then shut down the write side and
     drain the input until the client closes (a lingering close), as nginx does. 0 when
     nothing suggests more input. Bytes still in the kernel are the plugin's to check
     (FIONREAD). */
  int (*session_unread_input)(alicorn_session *s);
} alicorn_host_api;

/* What a plugin provides. Static storage in the plugin; read by the host after negotiation. */
typedef struct alicorn_worker_vtable {
  uint32_t struct_size;
  const char *name;        /* worker class name, e.g. "sync" (required) */
  const char *version;     /* plugin version string (required) */
  const char *description; /* one line for --list-workers (may be NULL) */
  uint64_t capabilities;   /* alicorn_worker_caps */

  /* Set up the worker in the child process, after fork and after the app is loaded. Store the
     plugin's state in *worker. On failure return a negative value and put a message in err. */
  int (*create)(const alicorn_host_api *host, alicorn_worker_ctx *ctx, void **worker,
                char *err, size_t err_size);
  /* Serve until poll_signals says stop. Returns the process exit code (0 for a clean stop). */
  int (*run)(void *worker);
  /* Release everything create made. Called once, after run returned. */
  void (*destroy)(void *worker);
} alicorn_worker_vtable;

/* Negotiation record. Frozen layout: never reordered or shrunk, in any major. */
typedef struct alicorn_negotiate {
  uint32_t struct_size;
  /* in: host */
  uint32_t host_abi_major;
  uint32_t host_abi_minor_min;
  uint32_t host_abi_minor_max;
  const alicorn_host_api *host;
  char *error;       /* buffer for a refusal message */
  size_t error_size;
  /* out: plugin */
  uint32_t plugin_abi_major;
  uint32_t plugin_abi_minor;
  const alicorn_worker_vtable *vtable;
} alicorn_negotiate;

typedef int (*alicorn_negotiate_fn)(alicorn_negotiate *n);

/* Declared here so that a C++ definition gets C linkage. Returns 0 or a negative refusal. */
ALICORN_EXPORT int alicorn_worker_negotiate(alicorn_negotiate *n);

/* Minimum sizes the v1.0 tables must have. */
#define ALICORN_HOST_API_MIN_SIZE \
  (offsetof(alicorn_host_api, session_free) + sizeof(void (*)(void)))
#define ALICORN_WORKER_VTABLE_MIN_SIZE \
  (offsetof(alicorn_worker_vtable, destroy) + sizeof(void (*)(void)))

/* The standard negotiate function body: agrees on the major, picks the highest minor both
   sides speak, checks the host table is long enough and hands over `vtable`. */
static inline int alicorn_negotiate_standard(alicorn_negotiate *n,
                                             const alicorn_worker_vtable *vtable) {
  if (n == NULL || n->struct_size < offsetof(alicorn_negotiate, vtable) + sizeof(void *))
    return ALICORN_EINVAL;
  n->plugin_abi_major = ALICORN_ABI_MAJOR;
  n->plugin_abi_minor = ALICORN_ABI_MINOR;
  n->vtable = vtable;
  if (n->host_abi_major != ALICORN_ABI_MAJOR) return ALICORN_EINVAL;
  if (n->host_abi_minor_min > ALICORN_ABI_MINOR) return ALICORN_EINVAL;
  {
    const uint32_t plugin_minor = ALICORN_ABI_MINOR; /* a variable: no -Wtype-limits at 0 */
    if (n->host_abi_minor_max < plugin_minor) n->plugin_abi_minor = n->host_abi_minor_max;
  }
  if (n->host == NULL || n->host->struct_size < ALICORN_HOST_API_MIN_SIZE) return ALICORN_EINVAL;
  return 0;
}

/* Put this once in a plugin source file, without a trailing semicolon, to export the negotiate
   function for `vtable`. */
#define ALICORN_WORKER_PLUGIN(vtable)                                                 \
  ALICORN_EXPORT int alicorn_worker_negotiate(alicorn_negotiate *n) {                 \
    return alicorn_negotiate_standard(n, &(vtable));                                  \
  }

#ifdef __cplusplus
}
#endif
#endif /* ALICORN_WORKER_H */
