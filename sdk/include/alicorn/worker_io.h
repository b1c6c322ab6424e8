/*
 * Small I/O helpers for worker plugins, header-only C, built on worker.h. Optional: a plugin
 * may do its own I/O. Everything here is plain POSIX and holds no state.
 */
#ifndef ALICORN_WORKER_IO_H
#define ALICORN_WORKER_IO_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/sendfile.h>
#include <sys/uio.h>

#include "alicorn/worker.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Write all of `out` to a blocking socket: the iov buffers in order (one writev when the socket
   takes them), then the file segment with sendfile(2). Returns 0, or -errno on failure (the
   client went away, a send timeout expired). `out` is modified as it is consumed. */
static inline int alicorn_output_write_blocking(int fd, alicorn_output *out) {
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
  out->iovcnt = 0;
  if (out->file_fd >= 0) {
    off_t offset = (off_t)out->file_offset;
    int64_t left = out->file_length;
    while (left > 0) {
      ssize_t n = sendfile(fd, out->file_fd, &offset, left > (1 << 30) ? (1 << 30) : (size_t)left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return -errno;
      }
      if (n == 0) return -EPIPE; /* the file shrank under us */
      left -= n;
    }
  }
  return 0;
}

/* Write all of buf to a blocking socket. Returns len, or -errno. */
static inline ssize_t alicorn_send_all(int fd, const void *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    done += (size_t)n;
  }
  return (ssize_t)done;
}

/* Ready-made alicorn_conn_info.recv / .send (ABI 1.1) for a blocking socket whose fd is passed
   as `io`: info.io = (void *)(intptr_t)fd; info.recv = alicorn_fd_recv; info.send = alicorn_fd_send. */
static inline ssize_t alicorn_fd_recv(void *io, void *buf, size_t len) {
  int fd = (int)(intptr_t)io;
  for (;;) {
    ssize_t n = recv(fd, buf, len, 0);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

static inline ssize_t alicorn_fd_send(void *io, const void *buf, size_t len) {
  return alicorn_send_all((int)(intptr_t)io, buf, len);
}

/* ---- accept() out of descriptors or memory ---------------------------------------------------
   accept() fails with EMFILE / ENFILE (the process's or the system's descriptor limit) or
   ENOBUFS / ENOMEM while connections wait in the listen queue: the listener stays readable, so
   a loop that polls again at once spins at 100% CPU and logs a line per try. The answer is to
   stop watching the listeners for ALICORN_ACCEPT_PAUSE_MS (the queued clients wait in the
   kernel's backlog; connections closing meanwhile free descriptors), then try again, and to log
   at most once a second. Keep one alicorn_accept_backoff per worker (zeroed), and on a failed
   accept():

     int pause_ms = alicorn_accept_failed(&w->backoff, host, ctx, "sync worker", errno);
     if (pause_ms > 0)  ... leave the listeners out of poll/epoll for pause_ms ...

   0 means the error is one to ignore (EAGAIN: another worker won the race; ECONNABORTED,
   EPROTO, EPERM, EINTR: that client is gone) and the loop goes on at once. */
#define ALICORN_ACCEPT_PAUSE_MS 100
#define ALICORN_ACCEPT_LOG_EVERY_MS 1000

typedef struct alicorn_accept_backoff {
  int64_t last_log_ms;  /* monotonic; 0 = never logged */
  uint64_t unlogged;    /* failures since the last line */
} alicorn_accept_backoff;

/* CLOCK_MONOTONIC in milliseconds. */
static inline int64_t alicorn_monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether accept()'s errno means "out of descriptors or memory" (pause), as opposed to a
   connection that went away or a race lost (go on). */
static inline int alicorn_accept_error_is_resource(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* See above. Returns the pause in milliseconds (0: ignore the error). Any other unexpected
   error is logged (at most once a second too) and also pauses, so it cannot spin either. */
static inline int alicorn_accept_failed(alicorn_accept_backoff *b, const alicorn_host_api *host,
                                        alicorn_worker_ctx *ctx, const char *who, int err) {
  if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED ||
      err == EPROTO || err == EPERM)
    return 0;
  int64_t now = alicorn_monotonic_ms();
  ++b->unlogged;
  if (b->last_log_ms == 0 || now - b->last_log_ms >= ALICORN_ACCEPT_LOG_EVERY_MS) {
    char msg[256];
    if (b->unlogged > 1)
      snprintf(msg, sizeof msg,
               "%s: accept() failed: %s (%llu times since the last report); not accepting for "
               "%d ms",
               who, strerror(err), (unsigned long long)b->unlogged, ALICORN_ACCEPT_PAUSE_MS);
    else
      snprintf(msg, sizeof msg, "%s: accept() failed: %s; not accepting for %d ms", who,
               strerror(err), ALICORN_ACCEPT_PAUSE_MS);
    host->log(ctx, ALICORN_LOG_ERROR, msg);
    b->last_log_ms = now;
    b->unlogged = 0;
  }
  return ALICORN_ACCEPT_PAUSE_MS;
}

/* ---- the session driver ----------------------------------------------------------------------

   One connection's request loop for plugins that write with blocking sockets (sync, gthread and
   the SDK example all use it): read, feed, write interim output, run the ready request, write
   the response, then keep the connection for the next request (pipelined ones first) while
   session_keep_alive says so. Keep-alive and pipelining are decided here once, for every
   plugin that uses it.

     alicorn_driver d;
     alicorn_driver_init(&d, host, session, fd, buf, sizeof buf);
     d.arg = my_state; d.wait = my_wait; ...          (all hooks optional)
     while (alicorn_drive(&d) == ALICORN_DRIVE_WAIT) wait_until_readable(fd);
     host->session_free(session); close(fd);

   alicorn_drive returns ALICORN_DRIVE_CLOSE when the connection is finished (the client closed
   or left, an error, no keep-alive, a hook said stop): free the session and close the fd.
   It returns ALICORN_DRIVE_WAIT only when recv_flags has MSG_DONTWAIT and nothing is there to
   read: the driver keeps its place, so call alicorn_drive again once the fd is readable (this
   is how gthread hands an idle connection back to its poller). The driver holds no resource
   and may be moved between threads between calls, never used by two at once. */

enum alicorn_drive_result {
  ALICORN_DRIVE_CLOSE = 0, /* done: session_free and close the fd */
  ALICORN_DRIVE_WAIT = 1   /* nothing to read (MSG_DONTWAIT): call again once readable */
};

typedef struct alicorn_driver {
  /* set by alicorn_driver_init */
  const alicorn_host_api *host;
  alicorn_session *session;
  int fd;
  char *buf; /* read buffer, owned by the caller */
  size_t buf_size;
  int recv_flags; /* 0 (block in recv) or MSG_DONTWAIT (return ALICORN_DRIVE_WAIT instead) */
  /* With MSG_DONTWAIT: after a read shorter than buf_size (the socket was drained), return
     ALICORN_DRIVE_WAIT at once when more bytes are needed instead of trying another recv that
     would most likely fail with EAGAIN. For a caller that then waits for readability with a
     level-triggered or EPOLLONESHOT arm (which reports bytes that came meanwhile at once);
     not for an edge-triggered wait. Saves a syscall per keep-alive request. */
  int wait_after_short_read;

  /* optional hooks; `arg` is passed to each */
  void *arg;
  /* Before a blocking recv: wait until fd is readable. `idle` is 1 when no byte of the next
     request came yet and at least one response went out (a keep-alive connection between
     requests). Return 1 to read, 0 to close (a deadline passed, the worker is stopping). */
  int (*wait)(void *arg, int fd, int idle);
  /* After each read of n > 0 bytes was fed (rc is the feed result). Return 0 to go on,
     non-zero to close the connection (a read budget ran out, ...). */
  int (*on_read)(void *arg, ssize_t n, int rc);
  /* A request is ready, just before session_run. Return 0 to go on, non-zero to close. */
  int (*before_run)(void *arg);
  /* After a response was written in full; keep_alive is session_keep_alive's answer. */
  void (*on_response)(void *arg, int keep_alive);

  /* state, read-only for the caller */
  int rc;             /* the last feed result (ALICORN_FEED_NEED_MORE at the start) */
  int in_request;     /* bytes of the current request were received */
  unsigned long served; /* responses written on this connection */
  int drained;        /* the last recv was short (see wait_after_short_read) */
} alicorn_driver;

static inline void alicorn_driver_init(alicorn_driver *d, const alicorn_host_api *host,
                                       alicorn_session *session, int fd, char *buf,
                                       size_t buf_size) {
  memset(d, 0, sizeof *d);
  d->host = host;
  d->session = session;
  d->fd = fd;
  d->buf = buf;
  d->buf_size = buf_size;
  d->rc = ALICORN_FEED_NEED_MORE;
}

/* Drain the session's output (interim or a response) to the socket. 0, or -1 when the
   connection must close (the client left: the session is told with session_abort). */
static inline int alicorn_driver_send(alicorn_driver *d) {
  alicorn_output out;
  memset(&out, 0, sizeof out);
  out.struct_size = sizeof out;
  for (;;) {
    int rc = d->host->session_pull(d->session, &out);
    if (rc < 0 || rc == ALICORN_PULL_ABORT) return -1;
    int err = alicorn_output_write_blocking(d->fd, &out);
    if (err != 0) {
      d->host->session_abort(d->session, err);
      return -1;
    }
    if (rc == ALICORN_PULL_DONE) return 0;
  }
}

static inline int alicorn_drive(alicorn_driver *d) {
  const alicorn_host_api *h = d->host;
  for (;;) {
    if (d->rc == ALICORN_FEED_NEED_MORE) {
      if (d->drained && d->wait_after_short_read && (d->recv_flags & MSG_DONTWAIT)) {
        d->drained = 0;
        return ALICORN_DRIVE_WAIT;
      }
      if (d->wait != NULL && !(d->recv_flags & MSG_DONTWAIT) &&
          !d->wait(d->arg, d->fd, !d->in_request && d->served > 0))
        return ALICORN_DRIVE_CLOSE;
      ssize_t n = recv(d->fd, d->buf, d->buf_size, d->recv_flags);
      if (n < 0) {
        if (errno == EINTR) continue;
        if ((errno == EAGAIN || errno == EWOULDBLOCK) && (d->recv_flags & MSG_DONTWAIT))
          return ALICORN_DRIVE_WAIT;
        return ALICORN_DRIVE_CLOSE; /* reset, or SO_RCVTIMEO expired */
      }
      if (n == 0) return ALICORN_DRIVE_CLOSE; /* the client closed */
      d->drained = (size_t)n < d->buf_size;
      d->in_request = 1;
      d->rc = h->session_feed(d->session, d->buf, (size_t)n);
      if (d->on_read != NULL && d->on_read(d->arg, n, d->rc) != 0) return ALICORN_DRIVE_CLOSE;
    } else if (d->rc == ALICORN_FEED_SEND) {
      /* interim output such as "100 Continue" (when the app cannot read the body itself) */
      if (alicorn_driver_send(d) != 0) return ALICORN_DRIVE_CLOSE;
      d->rc = ALICORN_FEED_NEED_MORE;
    } else if (d->rc == ALICORN_FEED_READY) {
      if (d->before_run != NULL && d->before_run(d->arg) != 0) return ALICORN_DRIVE_CLOSE;
      if (h->session_run(d->session) != 0) return ALICORN_DRIVE_CLOSE; /* the app runs here */
      if (alicorn_driver_send(d) != 0) return ALICORN_DRIVE_CLOSE;
      ++d->served;
      d->in_request = 0;
      int keep = h->session_keep_alive(d->session);
      if (d->on_response != NULL) d->on_response(d->arg, keep);
      if (!keep) return ALICORN_DRIVE_CLOSE;
      d->rc = h->session_feed(d->session, NULL, 0); /* a pipelined request may be buffered */
      if (d->rc != ALICORN_FEED_NEED_MORE) d->in_request = 1;
    } else {
      return ALICORN_DRIVE_CLOSE; /* a negative error from session_feed */
    }
  }
}

#ifdef __cplusplus
}
#endif
#endif /* ALICORN_WORKER_IO_H */
