/*
 * "example": a small but complete third-party worker class for alicorn, built only against the
 * installed SDK headers (<alicorn/worker.h>, <alicorn/worker_io.h>). Read it beside
 * docs/writing-a-worker-plugin.md.
 *
 * What it does: one thread, blocking I/O, one connection at a time, like Gunicorn's sync
 * worker, but with keep-alive:
 *   - waits in poll() on every listener and on the host's wake fd, with a tick so that the
 *     heartbeat goes out at least every timeout/2 and poll_signals notices a dead arbiter;
 *   - accepts one connection and opens a session for it;
 *   - reads bytes and feeds them to the session; when a request is READY, runs it (the app runs
 *     inside session_run, the host takes and drops the GIL itself) and writes what
 *     session_pull hands out;
 *   - with ABI 1.1 it passes recv/send callbacks, so the app reads a large body straight from
 *     the socket instead of the host buffering it first (an older host ignores the fields);
 *   - keeps the connection for the next request while session_keep_alive says so (the host
 *     decides: the client's wish, --keep-alive > 0, not stopping), waiting at most
 *     --keep-alive seconds for it; pipelined requests already received are served first;
 *   - stops accepting on ALICORN_STOP_GRACEFUL (TERM, max_requests, arbiter gone) after the
 *     request in progress, and drops everything on ALICORN_STOP_FAST (INT, QUIT).
 *
 * The price of keep-alive in a single thread: while one client idles between requests (up to
 * --keep-alive seconds) this worker serves nobody else; the other workers take new connections
 * meanwhile. gthread and uv are the worker classes for many keep-alive clients.
 *
 * Build:   cmake -S . -B build -DCMAKE_PREFIX_PATH=<alicorn prefix> && cmake --build build
 * Run:     alicorn -k ./build/example.so myapp:app   (or -k example once installed)
 */
#define _GNU_SOURCE /* accept4 */
#include <alicorn/worker.h>
#include <alicorn/worker_io.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef EXAMPLE_WORKER_VERSION
#define EXAMPLE_WORKER_VERSION "1.0.0"
#endif

#define READ_SIZE (64 * 1024)

typedef struct example_worker {
  const alicorn_host_api *host;
  alicorn_worker_ctx *ctx;
  const alicorn_worker_config *cfg;
  struct pollfd *fds; /* the listeners, then the wake fd */
  nfds_t nlisteners;
  alicorn_accept_backoff backoff; /* accept() out of fds: pause, log at most once a second */
  int wake_fd;
  int tick_ms;        /* longest sleep between two heartbeats */
  int state;          /* the most severe alicorn_run_state seen so far */
  char buf[READ_SIZE];
} example_worker;

static void log_msg(example_worker *w, int level, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "example worker: %s: %s", what, strerror(err));
  w->host->log(w->ctx, level, msg);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Ask the host what to do; remember the most severe answer (stopping is never undone). */
static int update_state(example_worker *w) {
  int s = w->host->poll_signals(w->ctx);
  if (s > w->state) w->state = s;
  return w->state;
}

/* ---- one connection ----------------------------------------------------------------------- */

/* Wait until fd is readable (1), or give up (0): the deadline passed, a fast stop, or a
   graceful stop while the connection is idle between requests. Beats the heart meanwhile. */
static int wait_readable(example_worker *w, int fd, double seconds, int idle) {
  int64_t deadline = now_ms() + (int64_t)(seconds * 1000);
  struct pollfd p[2] = {{fd, POLLIN, 0}, {w->wake_fd, POLLIN, 0}};
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0) return 0;
    int rc = poll(p, 2, left < w->tick_ms ? (int)left : w->tick_ms);
    w->host->heartbeat(w->ctx);
    if (rc < 0 && errno != EINTR) return 0;
    if (rc > 0 && (p[1].revents & POLLIN)) update_state(w);
    if (w->state == ALICORN_STOP_FAST) return 0;
    if (w->state == ALICORN_STOP_GRACEFUL && idle) return 0;
    if (rc > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) return 1;
  }
}

/* alicorn_driver hooks (see worker_io.h). */
static int driver_wait(void *arg, int fd, int idle) {
  example_worker *w = arg;
  /* Before the first request: up to --timeout. Between requests: up to --keep-alive. */
  double request_timeout = w->cfg->timeout > 0 ? w->cfg->timeout : 30.0;
  return wait_readable(w, fd, idle ? w->cfg->keepalive : request_timeout, idle);
}

static void driver_on_response(void *arg, int keep_alive) {
  example_worker *w = arg;
  (void)keep_alive;
  w->host->heartbeat(w->ctx);
}

static void serve_connection(example_worker *w, int fd, uint32_t listener,
                             const struct sockaddr *peer, socklen_t peer_len) {
  /* A client that stops reading or sending must not hold the worker past --timeout: blocking
     calls on the socket (ours, and the app's body reads through alicorn_fd_recv) time out. */
  double request_timeout = w->cfg->timeout > 0 ? w->cfg->timeout : 30.0;
  struct timeval tv;
  tv.tv_sec = (time_t)request_timeout;
  tv.tv_usec = (suseconds_t)((request_timeout - (double)tv.tv_sec) * 1e6);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  alicorn_conn_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.fd = fd;
  info.listener_index = listener;
  info.peer = peer;
  info.peer_len = peer_len;
  info.io = (void *)(intptr_t)fd; /* since 1.1: the app streams the body from the socket */
  info.recv = alicorn_fd_recv;
  info.send = alicorn_fd_send;
  alicorn_session *s = w->host->session_new(w->ctx, &info);
  if (s == NULL) {
    close(fd);
    return;
  }

  /* The SDK's session driver does the request loop: read and feed, interim output, run the
     ready request (the app runs inside session_run), write the response with writev/sendfile,
     pipelined requests first, then the next one while session_keep_alive says so. Our hooks
     wait for input (heartbeat, signals, the keep-alive deadline) and beat after a response. */
  alicorn_driver d;
  alicorn_driver_init(&d, w->host, s, fd, w->buf, sizeof w->buf);
  d.arg = w;
  d.wait = driver_wait;
  d.on_response = driver_on_response;
  alicorn_drive(&d);
  w->host->session_free(s);
  close(fd);
}

/* ---- the vtable ------------------------------------------------------------------------------ */

static int example_create(const alicorn_host_api *host, alicorn_worker_ctx *ctx, void **worker,
                          char *err, size_t err_size) {
  example_worker *w = calloc(1, sizeof *w);
  if (w == NULL) {
    snprintf(err, err_size, "example worker: out of memory");
    return ALICORN_ENOMEM;
  }
  w->host = host;
  w->ctx = ctx;
  w->cfg = host->config(ctx);
  w->nlisteners = w->cfg->listener_count;
  w->fds = calloc(w->nlisteners + 1, sizeof *w->fds);
  if (w->fds == NULL) {
    free(w);
    snprintf(err, err_size, "example worker: out of memory");
    return ALICORN_ENOMEM;
  }
  for (nfds_t i = 0; i < w->nlisteners; ++i) {
    w->fds[i].fd = w->cfg->listener_fds[i]; /* non-blocking; never closed by us */
    w->fds[i].events = POLLIN;
  }
  w->wake_fd = host->wake_fd(ctx);
  w->fds[w->nlisteners].fd = w->wake_fd;
  w->fds[w->nlisteners].events = POLLIN;
  /* Beat at least twice per --timeout, and wake at least once a second. */
  w->tick_ms = w->cfg->timeout > 0 ? (int)(w->cfg->timeout * 1000 / 2) : 1000;
  if (w->tick_ms <= 0 || w->tick_ms > 1000) w->tick_ms = 1000;
  w->state = ALICORN_RUNNING;

  char msg[160];
  snprintf(msg, sizeof msg, "example worker %s: %u listener(s), keep-alive %gs, host ABI %u.%u",
           EXAMPLE_WORKER_VERSION, w->cfg->listener_count, w->cfg->keepalive, host->abi_major,
           host->abi_minor);
  host->log(ctx, ALICORN_LOG_INFO, msg);
  *worker = w;
  return 0;
}

static int example_run(void *worker) {
  example_worker *w = worker;
  int64_t paused_until = 0;
  while (update_state(w) == ALICORN_RUNNING) {
    w->host->heartbeat(w->ctx);
    if (paused_until != 0) {
      /* accept() ran out of descriptors: watch only the wake fd (after the listeners) until
         the pause ends, instead of spinning on a listener that stays readable. */
      int64_t left = paused_until - alicorn_monotonic_ms();
      if (left > 0) {
        poll(&w->fds[w->nlisteners], 1, left < w->tick_ms ? (int)left : w->tick_ms);
        continue;
      }
      paused_until = 0;
    }
    int rc = poll(w->fds, w->nlisteners + 1, w->tick_ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      log_msg(w, ALICORN_LOG_ERROR, "poll() failed", errno);
      return 1;
    }
    for (nfds_t i = 0; i < w->nlisteners && rc > 0; ++i) {
      if (!(w->fds[i].revents & POLLIN)) continue;
      struct sockaddr_storage peer;
      socklen_t len = sizeof peer;
      int fd = accept4(w->fds[i].fd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
      if (fd < 0) {
        /* EAGAIN & co.: another worker won the race, or the client already left (0). Out of
           descriptors or memory: pause accepting (the helper logs once a second at most). */
        int pause_ms = alicorn_accept_failed(&w->backoff, w->host, w->ctx, "example worker", errno);
        if (pause_ms > 0) {
          paused_until = alicorn_monotonic_ms() + pause_ms;
          break;
        }
        continue;
      }
      serve_connection(w, fd, (uint32_t)i, (struct sockaddr *)&peer, len);
      if (update_state(w) != ALICORN_RUNNING) break; /* max_requests, TERM, ... */
    }
  }
  return 0;
}

static void example_destroy(void *worker) {
  example_worker *w = worker;
  free(w->fds);
  free(w);
}

static const alicorn_worker_vtable example_vtable = {
    .struct_size = sizeof(alicorn_worker_vtable),
    .name = "example",
    .version = EXAMPLE_WORKER_VERSION,
    .description = "SDK example: blocking accept loop, one connection at a time, keep-alive",
    .capabilities = ALICORN_CAP_KEEPALIVE | ALICORN_CAP_SENDFILE,
    .create = example_create,
    .run = example_run,
    .destroy = example_destroy,
};

/* Writes the one exported function, alicorn_worker_negotiate. */
ALICORN_WORKER_PLUGIN(example_vtable)
