/*
 * Small I/O helpers for worker plugins, header-only C, built on worker.h. Optional: a plugin
 * may do its own I/O. Everything here is plain POSIX and holds no state.
 */
#ifndef ALICORN_WORKER_IO_H
#define ALICORN_WORKER_IO_H

#include <errno.h>
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

#ifdef __cplusplus
}
#endif
#endif /* ALICORN_WORKER_IO_H */
