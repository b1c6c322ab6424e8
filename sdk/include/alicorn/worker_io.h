/*
 * Small I/O helpers for worker plugins, header-only C, built on worker.h. Optional: a plugin
 * may do its own I/O. Everything here is plain POSIX and holds no state.
 */
#ifndef ALICORN_WORKER_IO_H
#define ALICORN_WORKER_IO_H

#include <errno.h>
#include <stdint.h>
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

#ifdef __cplusplus
}
#endif
#endif /* ALICORN_WORKER_IO_H */
