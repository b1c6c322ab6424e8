/* Built against the frozen v1.0 copy of worker.h (tests/plugins/frozen/v1_0), to prove that
   plugins built against an old SDK keep loading AND serving as the ABI grows: since 1.1 the
   host's alicorn_conn_info is longer (recv/send), and this plugin hands it the 1.0-sized
   record, so the host must read only what struct_size covers (and buffer the request body
   itself, as it did in 1.0).

   A minimal sync-style worker: a blocking accept loop over the listeners and the wake fd, one
   request per connection (no ALICORN_CAP_KEEPALIVE, so the host answers Connection: close), a
   heartbeat per loop. Only C and POSIX, only what the 1.0 header declares.
   tests/integration/test_plugin_abi.py serves requests with it. */
#define _GNU_SOURCE /* accept4 */
#include <alicorn/worker.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

/* Guard against building this against sdk/include by mistake once the SDK moves past 1.0. */
#if ALICORN_ABI_MAJOR != 1 || ALICORN_ABI_MINOR != 0
#error "frozen_v1_0.c must be compiled against tests/plugins/frozen/v1_0, not the current SDK"
#endif

#define FROZEN_MAX_LISTENERS 64
#define FROZEN_READ_SIZE 16384

typedef struct frozen_worker {
  const alicorn_host_api *host;
  alicorn_worker_ctx *ctx;
  const alicorn_worker_config *cfg;
  struct pollfd fds[FROZEN_MAX_LISTENERS + 1]; /* listeners, then the wake fd */
  nfds_t nfds;
  char buf[FROZEN_READ_SIZE];
} frozen_worker;

static int write_all(int fd, alicorn_output *out) {
  struct iovec *iov = out->iov;
  int cnt = out->iovcnt;
  while (cnt > 0) {
    ssize_t n = writev(fd, iov, cnt);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    while (cnt > 0 && (size_t)n >= iov->iov_len) {
      n -= (ssize_t)iov->iov_len;
      ++iov;
      --cnt;
    }
    if (cnt > 0) {
      iov->iov_base = (char *)iov->iov_base + n;
      iov->iov_len -= (size_t)n;
    }
  }
  return 0;
}

/* Pull and write until the response (or the interim output) is done. 0, or -1 to close. */
static int send_output(frozen_worker *w, alicorn_session *s, int fd) {
  alicorn_output out;
  memset(&out, 0, sizeof out);
  out.struct_size = sizeof out;
  for (;;) {
    int rc = w->host->session_pull(s, &out);
    if (rc < 0 || rc == ALICORN_PULL_ABORT) return -1;
    /* No ALICORN_CAP_SENDFILE: the host never hands out a file segment. */
    int err = write_all(fd, &out);
    if (err != 0) {
      w->host->session_abort(s, err);
      return -1;
    }
    if (rc == ALICORN_PULL_DONE) return 0;
  }
}

static void serve_connection(frozen_worker *w, int fd, uint32_t listener,
                             const struct sockaddr *peer, socklen_t peer_len) {
  if (w->cfg->timeout > 0) {
    struct timeval tv;
    tv.tv_sec = (time_t)w->cfg->timeout;
    tv.tv_usec = (suseconds_t)((w->cfg->timeout - (double)tv.tv_sec) * 1e6);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  alicorn_conn_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info; /* the 1.0 size: no recv/send fields */
  info.fd = fd;
  info.listener_index = listener;
  info.peer = peer;
  info.peer_len = peer_len;
  alicorn_session *s = w->host->session_new(w->ctx, &info);
  if (s == NULL) {
    close(fd);
    return;
  }
  int ready = 0;
  while (!ready) {
    ssize_t n = recv(fd, w->buf, sizeof w->buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    int rc = w->host->session_feed(s, w->buf, (size_t)n);
    if (rc == ALICORN_FEED_READY) ready = 1;
    else if (rc == ALICORN_FEED_SEND) {
      if (send_output(w, s, fd) != 0) break;
    } else if (rc < 0) {
      break;
    }
  }
  if (ready && w->host->session_run(s) == 0) (void)send_output(w, s, fd);
  w->host->session_free(s);
  close(fd);
}

static int frozen_create(const alicorn_host_api *host, alicorn_worker_ctx *ctx, void **worker,
                         char *err, size_t err_size) {
  const alicorn_worker_config *cfg = host->config(ctx);
  if (cfg->listener_count > FROZEN_MAX_LISTENERS) {
    snprintf(err, err_size, "frozen_v1_0: at most %d listeners", FROZEN_MAX_LISTENERS);
    return ALICORN_EINVAL;
  }
  frozen_worker *w = calloc(1, sizeof *w);
  if (w == NULL) {
    snprintf(err, err_size, "frozen_v1_0: out of memory");
    return ALICORN_ENOMEM;
  }
  w->host = host;
  w->ctx = ctx;
  w->cfg = cfg;
  for (uint32_t i = 0; i < cfg->listener_count; ++i) {
    w->fds[i].fd = cfg->listener_fds[i];
    w->fds[i].events = POLLIN;
  }
  w->fds[cfg->listener_count].fd = host->wake_fd(ctx);
  w->fds[cfg->listener_count].events = POLLIN;
  w->nfds = cfg->listener_count + 1;

  char msg[160];
  snprintf(msg, sizeof msg,
           "frozen_v1_0: built against ABI 1.0, serving with a host that speaks ABI %u.%u "
           "(host table %u bytes)",
           host->abi_major, host->abi_minor, host->struct_size);
  host->log(ctx, ALICORN_LOG_INFO, msg);
  *worker = w;
  return 0;
}

static int frozen_run(void *worker) {
  frozen_worker *w = worker;
  if (w == NULL) return 0; /* not created: nothing to serve (test_plugin_host calls run(NULL)) */
  nfds_t listeners = w->nfds - 1;
  while (w->host->poll_signals(w->ctx) == ALICORN_RUNNING) {
    w->host->heartbeat(w->ctx);
    int rc = poll(w->fds, w->nfds, 500);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    for (nfds_t i = 0; i < listeners && rc > 0; ++i) {
      if (!(w->fds[i].revents & POLLIN)) continue;
      struct sockaddr_storage peer;
      socklen_t len = sizeof peer;
      int fd = accept4(w->fds[i].fd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
      if (fd < 0) continue; /* EAGAIN: another worker took it */
      serve_connection(w, fd, (uint32_t)i, (struct sockaddr *)&peer, len);
      w->host->heartbeat(w->ctx);
    }
  }
  return 0;
}

static void frozen_destroy(void *worker) { free(worker); }

static const alicorn_worker_vtable frozen_vtable = {
    .struct_size = sizeof(alicorn_worker_vtable),
    .name = "frozen_v1_0",
    .version = "1.0.0",
    .description = "test plugin built against the frozen v1.0 SDK header; serves like sync",
    .capabilities = 0,
    .create = frozen_create,
    .run = frozen_run,
    .destroy = frozen_destroy,
};

ALICORN_WORKER_PLUGIN(frozen_vtable)
