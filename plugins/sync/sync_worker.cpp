// The sync worker class, like Gunicorn's: one connection at a time, a blocking accept over all
// listeners, one request per connection answered with `Connection: close`, and a heartbeat to
// the arbiter between requests. The app holds the process while it runs; the arbiter's timeout
// is what rescues a hung one.
#include <alicorn/worker.h>
#include <alicorn/worker_io.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <vector>

namespace {

constexpr size_t kReadSize = 64 * 1024;

struct SyncWorker {
  const alicorn_host_api* host;
  alicorn_worker_ctx* ctx;
  const alicorn_worker_config* cfg;
  std::vector<pollfd> fds;  // listeners, then the wake fd
  alicorn_accept_backoff backoff{};  // accept() out of fds: pause, log once a second
  int64_t accept_paused_until = 0;   // monotonic ms; until then only the wake fd is polled
  char buf[kReadSize];
};

void log_errno(SyncWorker* w, const char* call) {
  char msg[256];
  std::snprintf(msg, sizeof msg, "sync worker: %s failed: %s", call, std::strerror(errno));
  w->host->log(w->ctx, ALICORN_LOG_ERROR, msg);
}

void after_response(void* arg, int) {
  auto* w = static_cast<SyncWorker*>(arg);
  w->host->heartbeat(w->ctx);
}

void handle_connection(SyncWorker* w, int fd, uint32_t listener, const sockaddr* peer,
                       socklen_t peer_len) {
  if (w->cfg->timeout > 0) {
    // A client that stalls must not hold the worker past what the arbiter tolerates.
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(w->cfg->timeout);
    tv.tv_usec = static_cast<suseconds_t>((w->cfg->timeout - static_cast<double>(tv.tv_sec)) * 1e6);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  alicorn_conn_info info{};
  info.struct_size = sizeof info;
  info.fd = fd;
  info.listener_index = listener;
  info.peer = peer;
  info.peer_len = peer_len;
  info.io = reinterpret_cast<void*>(static_cast<intptr_t>(fd));
  info.recv = alicorn_fd_recv;  // the app reads the body straight from the socket (ABI 1.1)
  info.send = alicorn_fd_send;
  alicorn_session* s = w->host->session_new(w->ctx, &info);
  if (s == nullptr) {
    close(fd);
    return;
  }
  // The SDK's session driver: without ALICORN_CAP_KEEPALIVE every response says close, so it
  // answers one request (EOF or a timeout before a whole request: nothing to answer).
  alicorn_driver d;
  alicorn_driver_init(&d, w->host, s, fd, w->buf, sizeof w->buf);
  d.arg = w;
  d.on_response = after_response;
  alicorn_drive(&d);
  w->host->session_free(s);
  close(fd);
}

int sync_create(const alicorn_host_api* host, alicorn_worker_ctx* ctx, void** worker, char* err,
                size_t err_size) {
  auto* w = new (std::nothrow) SyncWorker();
  if (w == nullptr) {
    std::snprintf(err, err_size, "out of memory");
    return -ENOMEM;
  }
  w->host = host;
  w->ctx = ctx;
  w->cfg = host->config(ctx);
  for (uint32_t i = 0; i < w->cfg->listener_count; ++i)
    w->fds.push_back({w->cfg->listener_fds[i], POLLIN, 0});
  w->fds.push_back({host->wake_fd(ctx), POLLIN, 0});
  *worker = w;
  return 0;
}

int sync_run(void* worker) {
  auto* w = static_cast<SyncWorker*>(worker);
  // Beat at least twice per timeout period, and wake up regularly even without one.
  int tick_ms = w->cfg->timeout > 0 ? static_cast<int>(w->cfg->timeout * 1000 / 2) : 1000;
  if (tick_ms > 1000 || tick_ms <= 0) tick_ms = 1000;
  size_t listeners = w->fds.size() - 1;
  while (w->host->poll_signals(w->ctx) == ALICORN_RUNNING) {
    w->host->heartbeat(w->ctx);
    if (w->accept_paused_until != 0) {
      // accept() ran out of descriptors (or memory): the listeners stay readable, so leave
      // them out for a while instead of spinning; signals still wake us through the wake fd.
      int64_t left = w->accept_paused_until - alicorn_monotonic_ms();
      if (left > 0) {
        int rc = poll(&w->fds[listeners], 1, static_cast<int>(left < tick_ms ? left : tick_ms));
        if (rc < 0 && errno != EINTR) {
          log_errno(w, "poll()");
          return 1;
        }
        continue;
      }
      w->accept_paused_until = 0;
    }
    int rc = poll(w->fds.data(), w->fds.size(), tick_ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      log_errno(w, "poll()");
      return 1;
    }
    for (size_t i = 0; i < listeners && rc > 0; ++i) {
      if (!(w->fds[i].revents & POLLIN)) continue;
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      int fd = accept4(w->fds[i].fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
      if (fd < 0) {
        // EAGAIN & co.: another worker won the race, or the client already left. Out of fds:
        // pause accepting (logged at most once a second).
        int pause_ms = alicorn_accept_failed(&w->backoff, w->host, w->ctx, "sync worker", errno);
        if (pause_ms > 0) {
          w->accept_paused_until = alicorn_monotonic_ms() + pause_ms;
          break;
        }
        continue;
      }
      handle_connection(w, fd, static_cast<uint32_t>(i), reinterpret_cast<sockaddr*>(&peer), len);
      if (w->host->poll_signals(w->ctx) != ALICORN_RUNNING) break;
    }
  }
  return 0;
}

void sync_destroy(void* worker) { delete static_cast<SyncWorker*>(worker); }

const alicorn_worker_vtable kSyncVtable = {
    sizeof(alicorn_worker_vtable),
    "sync",
    ALICORN_PLUGIN_VERSION,
    "one connection at a time, Connection: close (Gunicorn's sync worker)",
    ALICORN_CAP_SENDFILE,
    sync_create,
    sync_run,
    sync_destroy,
};

}  // namespace

ALICORN_WORKER_PLUGIN(kSyncVtable)
