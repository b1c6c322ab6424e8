// The uv worker class: one libuv event loop per worker process, many connections at once,
// keep-alive and pipelining, the WSGI app run on the loop thread (the body is complete before
// session_run, ALICORN_CAP_NONBLOCKING).
//
// Layout
//   * Listeners: the inherited listening fds are shared with the other workers. They sit with
//     EPOLLEXCLUSIVE in an outer epoll that also holds libuv's backend fd (see serve()), so a
//     new connection wakes one idle worker instead of all of them, and a worker that took
//     connections re-registers to go to the back of the queue (rotate_listener). We accept4()
//     ourselves (EAGAIN is still normal) one connection per wake-up, then re-register and yield
//     the core, so a burst of connections spreads over the workers instead of going to the one
//     or two that happen to be on a core; and we try to read the request at once, since it
//     usually came with the connection. Accepting stops at worker_connections (the listeners
//     leave the epoll) and resumes below it.
//   * Connections: a uv_tcp_t (or uv_pipe_t for unix sockets) opened on the accepted fd. Reads
//     land in one per-loop buffer (the session copies what it keeps). A ready request is run
//     and its output written at once with uv_try_write (one writev for all the iovs). Only what
//     the socket does not take goes through uv_write; then the connection stops reading and is
//     not pulled again until that write completed (backpressure for slow clients, pipelining
//     floods and endless generators). A response that completes synchronously does not toggle
//     reading off and on: nothing can be read while it runs anyway, and each toggle would cost
//     two epoll_ctl calls per request. Every connection also yields to the others after
//     kTurnBudget synchronous writes in one turn (a fast reader of an endless stream, a long
//     pipeline). TCP_NODELAY is set before a connection's second write (set_nodelay).
//   * Pipelining: a response that is complete after one pull and small (kCoalesceMax) is not
//     written at once but copied into one per-loop buffer, so all the responses of one read go
//     out in one write: the buffer is flushed before the connection waits for input, closes, or
//     writes anything else (a larger response, a file, interim output: those carry the buffer
//     in front of their own iovs). It is always empty when the connection gives the loop back,
//     so connections never share it; a rest the socket did not take is copied to the heap for
//     its uv_write (flush_buf) and the next step waits for that write (after_flush).
//   * Timeouts: no per-connection timer. A connection waiting for something sits in one of four
//     intrusive lists, each with one fixed timeout, so appending at the tail keeps every list
//     sorted by deadline; one periodic tick marks a sweep, done in the check phase (after the
//     loop read what is pending, so a request that arrived while the app was busy is not
//     mistaken for an idle connection).
//       idle     keep-alive, waiting for the next request          --keep-alive
//       reading  a request being received (or none yet on a fresh connection), measured from
//                its first byte and not extended by later bytes     --timeout (30 s if 0)
//       writing  a write the client does not drain, refreshed on each completed write
//                                                                   --timeout (30 s if 0)
//       linger   closing after a response while the client still has unread input: we shut
//                down our side and discard what it sends until it closes, so the response is
//                not lost to a reset                                2 s at most
//   * Signals: a uv_poll on the host's wake fd; poll_signals also runs on every tick (parent
//     gone) and once per loop iteration in which a response ended without keep-alive: once
//     max_requests is reached the host stops keeping connections, so that is where it shows,
//     and keep-alive traffic pays no syscall for it.
//
//   * Files (ALICORN_CAP_SENDFILE): an output's file segment (wsgi.file_wrapper over a regular
//     file) goes out after its iovs with sendfile(2) straight on the non-blocking socket, so the
//     file's pages never pass through this process. libuv cannot wait for writability on a
//     stream it owns without a write of its own, so when sendfile meets EAGAIN the next block
//     (kFileBlock) is pread into a per-connection buffer and handed to uv_write; its completion
//     (the socket drained) resumes sendfile. The same block write is how a file yields to the
//     other connections once it used its turn (kTurnBudget calls or kFileTurnBytes). The segment
//     is part of the output: the next pull waits until all of it went out, and the connection
//     sits in the writing list meanwhile, like any other pending write.
//
// No C++ exception crosses into libuv or the host: the code below does not throw (nothrow new,
// no growing containers after create), and the entry points catch everything.
#include <alicorn/worker.h>
#include <alicorn/worker_io.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sched.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>

namespace {

// uv_buf_t is iovec-compatible on unix (libuv writes it with writev itself): alicorn_output's
// iovs are handed to libuv as they are.
static_assert(sizeof(uv_buf_t) == sizeof(struct iovec));
static_assert(offsetof(uv_buf_t, base) == offsetof(struct iovec, iov_base));
static_assert(offsetof(uv_buf_t, len) == offsetof(struct iovec, iov_len));

// On a graceful stop, how long a connection accepted just before it may take to send its request.
constexpr uint64_t kFreshGraceMs = 1000;
constexpr size_t kReadBufferSize = 64 * 1024;   // one per loop
constexpr int kAcceptBatch = 1;                 // accepts per wake-up (see accept_ready)
constexpr int kTurnBudget = 32;                 // synchronous writes per connection per turn
constexpr uint64_t kLingerMs = 2000;            // a lingering client silent this long is closed
constexpr uint64_t kLingerTotalMs = 30000;      // and none lingers longer than this (nginx's way)
constexpr uint64_t kDefaultRequestTimeoutMs = 30000;  // when --timeout is 0
constexpr uint64_t kAcceptRetryMs = 100;        // pause after EMFILE and friends
constexpr size_t kPoolMax = 1024;               // closed connections kept for reuse
constexpr uint64_t kBackendTag = ~uint64_t{0};  // epoll tag of libuv's backend fd
constexpr size_t kFileBlock = 64 * 1024;        // a file block copied when sendfile would block
constexpr int64_t kFileTurnBytes = 8 << 20;     // file bytes sent per connection per turn
constexpr size_t kSendfileMax = 1u << 30;       // bytes asked of one sendfile call
constexpr size_t kCoalesceSize = 16 * 1024;     // the per-loop buffer of pipelined responses
constexpr size_t kCoalesceMax = 4 * 1024;       // largest response copied into it

struct Worker;

enum ListId : uint8_t { kNoList = 0, kIdle, kReading, kWriting, kLinger, kListCount };

enum class Phase : uint8_t {
  Reading,     // waiting for (the rest of) a request, or parsing
  Interim,     // writing interim output (100 Continue)
  Responding,  // writing a response
  Linger,      // response done, our side shut down, discarding input until the client closes
  Closing      // uv_close called
};

enum Step { kContinue, kWait, kGone };

// What follows the uv_write of coalesced responses (Conn::after_flush).
enum class AfterFlush : uint8_t { None, Process, Close };

// What a connection needs only while it writes a response: the pending uv_write and the pulled
// output (with its iovecs, 480 bytes together). Taken from the worker's pool when a response
// starts (drain, flush_coalesced) and given back when the connection waits for its client
// again, so an idle keep-alive connection does not hold one.
struct WriteState {
  uv_write_t wreq;
  alicorn_output out;  // out.file_offset/file_length advance as the file segment goes out
  WriteState* next;    // in Worker::wpool
};

struct Conn {
  union Handle {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  WriteState* io;  // while a response is written (see WriteState), else nullptr
  Worker* w;
  alicorn_session* s;
  Conn* prev;  // timeout list
  Conn* next;
  Conn* all_prev;  // every live connection
  Conn* all_next;
  uint64_t deadline;
  uint64_t linger_until;  // Linger phase: the absolute end, however much the client still sends
  int last_pull;  // the pull result whose output is being written asynchronously
  int budget;     // synchronous writes left in this turn
  ListId list;
  Phase phase;
  bool in_response;  // session_run called, the response not finished
  bool got_bytes;    // bytes of the next request were received
  bool reading;      // uv_read_start is in effect
  bool registered;   // counted in Worker::nconns
  bool nodelay_due;  // TCP, TCP_NODELAY not set yet (see write_output)
  bool wrote;        // something was written on this connection
  char* file_buf;      // kFileBlock bytes for the sendfile fallback, allocated on first use
  size_t file_block;   // bytes of file_buf in the pending uv_write (0: no file block in flight)
  char* flush_buf;     // coalesced bytes the socket did not take, in the pending uv_write
  AfterFlush after_flush;  // a pending uv_write of coalesced responses only: what comes next
  int after_rc;            // AfterFlush::Process: the feed result to act on
};

struct List {
  Conn* head = nullptr;
  Conn* tail = nullptr;
  uint64_t timeout_ms = 0;  // 0: never expires
};

struct Listener {
  Worker* w;
  int fd;
  uint32_t index;
  bool is_unix;
  bool watched;  // in Worker::epfd
};

struct Worker {
  const alicorn_host_api* host = nullptr;
  alicorn_worker_ctx* ctx = nullptr;
  const alicorn_worker_config* cfg = nullptr;
  uv_loop_t loop;
  bool loop_ready = false;
  Listener* listeners = nullptr;
  uint32_t nlisteners = 0;
  int epfd = -1;  // the outer epoll: the loop's backend fd and the listeners (EPOLLEXCLUSIVE)
  uint32_t listen_flags = EPOLLIN | EPOLLEXCLUSIVE;
  uv_poll_t wake;
  uv_timer_t tick;
  uv_timer_t grace;
  uv_timer_t accept_retry;
  uv_check_t check;
  bool wake_ready = false;
  bool timers_ready = false;
  List lists[kListCount];
  Conn* all_head = nullptr;
  uint32_t nconns = 0;
  uint32_t max_conns = 1000;
  uint64_t tick_ms = 1000;
  bool accepting = false;      // listeners in epfd
  bool accept_paused = false;  // backing off after EMFILE
  bool listeners_closed = false;
  bool stopping = false;
  uint64_t stop_started_ms = 0;  // loop time of the graceful stop
  bool finishing = false;
  bool clock_stale = false;       // Python ran since the loop's time was updated
  bool closing_response = false;  // a response ended without keep-alive: poll_signals soon
  bool sweep_due = false;  // the tick asked for a timeout sweep
  alicorn_accept_backoff accept_backoff{};  // accept() out of fds: log once a second
  Conn* pool = nullptr;
  size_t pool_size = 0;
  WriteState* wpool = nullptr;  // spare WriteStates (as many as connections wrote at once)
  size_t wpool_size = 0;
  Conn* coal_owner = nullptr;  // the connection whose responses are in coalbuf
  size_t coal_len = 0;
  alignas(64) char readbuf[kReadBufferSize];
  alignas(64) char coalbuf[kCoalesceSize];
};

// ---------------------------------------------------------------------------------------------
// helpers

void logf(Worker* w, int level, const char* fmt, ...) noexcept __attribute__((format(printf, 3, 4)));
void logf(Worker* w, int level, const char* fmt, ...) noexcept {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  w->host->log(w->ctx, level, msg);
}

uint64_t seconds_to_ms(double s) {
  if (!(s > 0)) return 0;
  double ms = s * 1000.0;
  if (ms < 1) return 1;
  if (ms > 1e12) return static_cast<uint64_t>(1e12);
  return static_cast<uint64_t>(ms);
}

void list_remove(Worker* w, Conn* c) noexcept {
  if (c->list == kNoList) return;
  List& l = w->lists[c->list];
  if (c->prev) c->prev->next = c->next; else l.head = c->next;
  if (c->next) c->next->prev = c->prev; else l.tail = c->prev;
  c->prev = c->next = nullptr;
  c->list = kNoList;
}

// Deadlines grow with time and every list has one timeout, so the tail is always the latest.
void list_append(Worker* w, Conn* c, ListId id) noexcept {
  list_remove(w, c);
  List& l = w->lists[id];
  if (w->clock_stale) {  // the app ran since libuv last read the clock
    w->clock_stale = false;
    uv_update_time(&w->loop);
  }
  c->deadline = uv_now(&w->loop) + l.timeout_ms;
  c->list = id;
  c->prev = l.tail;
  c->next = nullptr;
  if (l.tail) l.tail->next = c; else l.head = c;
  l.tail = c;
}

void all_append(Worker* w, Conn* c) noexcept {
  c->all_prev = nullptr;
  c->all_next = w->all_head;
  if (w->all_head) w->all_head->all_prev = c;
  w->all_head = c;
}

void all_remove(Worker* w, Conn* c) noexcept {
  if (c->all_prev) c->all_prev->all_next = c->all_next; else if (w->all_head == c) w->all_head = c->all_next;
  if (c->all_next) c->all_next->all_prev = c->all_prev;
  c->all_prev = c->all_next = nullptr;
}

Conn* acquire_conn(Worker* w) noexcept {
  Conn* c = w->pool;
  if (c != nullptr) {
    w->pool = c->next;
    --w->pool_size;
  } else {
    c = new (std::nothrow) Conn();
    if (c == nullptr) return nullptr;
  }
  c->w = w;
  c->s = nullptr;
  c->prev = c->next = c->all_prev = c->all_next = nullptr;
  c->deadline = 0;
  c->last_pull = ALICORN_PULL_DONE;
  c->budget = kTurnBudget;
  c->list = kNoList;
  c->phase = Phase::Reading;
  c->in_response = c->got_bytes = c->reading = c->registered = false;
  c->nodelay_due = c->wrote = false;
  c->io = nullptr;
  c->file_buf = nullptr;
  c->file_block = 0;
  c->flush_buf = nullptr;
  c->after_flush = AfterFlush::None;
  c->after_rc = 0;
  return c;
}

// The connection's WriteState, taken from the pool when it has none; nullptr when out of memory.
WriteState* take_io(Conn* c) noexcept {
  if (c->io != nullptr) return c->io;
  Worker* w = c->w;
  WriteState* io = w->wpool;
  if (io != nullptr) {
    w->wpool = io->next;
    --w->wpool_size;
  } else {
    io = new (std::nothrow) WriteState();
    if (io == nullptr) return nullptr;
  }
  io->out.struct_size = sizeof io->out;
  io->out.iovcnt = 0;
  io->out.file_fd = -1;
  io->out.file_offset = io->out.file_length = 0;
  c->io = io;
  return io;
}

// No write is pending on `c` (it waits for its client, or is closed): its WriteState goes back.
void give_back_io(Conn* c) noexcept {
  WriteState* io = c->io;
  if (io == nullptr) return;
  c->io = nullptr;
  Worker* w = c->w;
  if (w->wpool_size < kPoolMax) {
    io->next = w->wpool;
    w->wpool = io;
    ++w->wpool_size;
  } else {
    delete io;
  }
}

void release_conn(Worker* w, Conn* c) noexcept {
  give_back_io(c);
  delete[] c->file_buf;  // not kept in the pool: 64 KB each
  c->file_buf = nullptr;
  delete[] c->flush_buf;
  c->flush_buf = nullptr;
  if (w->pool_size < kPoolMax) {
    c->next = w->pool;
    w->pool = c;
    ++w->pool_size;
  } else {
    delete c;
  }
}

void close_handle(uv_handle_t* h, uv_close_cb cb = nullptr) noexcept {
  if (!uv_is_closing(h)) uv_close(h, cb);
}

// ---------------------------------------------------------------------------------------------
// forward declarations

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
void on_write(uv_write_t* req, int status) noexcept;
void process(Conn* c, int rc) noexcept;
void finish_loop(Worker* w) noexcept;
void resume_accept(Worker* w) noexcept;

// ---------------------------------------------------------------------------------------------
// connections

void on_conn_closed(uv_handle_t* h) noexcept {
  Conn* c = static_cast<Conn*>(h->data);
  Worker* w = c->w;
  if (c->s != nullptr) {
    w->host->session_free(c->s);
    c->s = nullptr;
  }
  release_conn(w, c);
}

// Close the connection (the fd is closed at once, the memory and the session in the close
// callback). A response cut short is reported to the session with `err`.
void close_conn(Conn* c, int err) noexcept {
  if (c->phase == Phase::Closing) return;
  Worker* w = c->w;
  if (w->coal_len > 0 && w->coal_owner == c) {
    // Responses coalesced before an error in a later pipelined request: they were complete,
    // so they get one try (what was written one by one before coalescing went out too).
    uv_buf_t b = uv_buf_init(w->coalbuf, static_cast<unsigned>(w->coal_len));
    uv_try_write(&c->h.stream, &b, 1);
    w->coal_len = 0;
  }
  if (c->in_response) {
    c->in_response = false;
    w->host->session_abort(c->s, err < 0 ? err : -ECONNABORTED);
  }
  list_remove(w, c);
  c->phase = Phase::Closing;
  c->reading = false;
  uv_close(&c->h.handle, on_conn_closed);
  if (c->registered) {
    c->registered = false;
    all_remove(w, c);
    --w->nconns;
    if (w->stopping) {
      if (w->nconns == 0) finish_loop(w);
    } else if (!w->accepting && w->nconns < w->max_conns) {
      resume_accept(w);
    }
  }
}

void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
  Worker* w = static_cast<Conn*>(h->data)->w;
  buf->base = w->readbuf;
  buf->len = sizeof w->readbuf;
}

bool start_reading(Conn* c) noexcept {
  if (c->reading) return true;
  int r = uv_read_start(&c->h.stream, on_alloc, on_read);
  if (r != 0) {
    close_conn(c, r);
    return false;
  }
  c->reading = true;
  return true;
}

void stop_reading(Conn* c) noexcept {
  if (!c->reading) return;
  uv_read_stop(&c->h.stream);
  c->reading = false;
}

// Nagle's algorithm only holds back a small write while earlier data is unacknowledged, so the
// first write on a connection never waits: TCP_NODELAY is set before any later write, which
// spares the syscall on connections that carry one response written at once.
void set_nodelay(Conn* c) noexcept {
  c->nodelay_due = false;
  uv_tcp_nodelay(&c->h.tcp, 1);
}

// Send what is left of c->out's file segment. sendfile(2) straight on the socket while it
// takes bytes and the turn lasts; after that (EAGAIN, the turn used up, or `defer`) one block is
// pread and written with uv_write, whose completion (on_write) advances the segment and calls
// this again. Returns 0 when the segment is out, 1 when a uv_write is pending, or a negative error.
int send_file(Conn* c, bool defer) noexcept {
  alicorn_output& o = c->io->out;
  if (o.file_fd < 0 || o.file_length <= 0) return 0;
  uv_os_fd_t fd = -1;
  if (int r = uv_fileno(&c->h.handle, &fd); r != 0) return r;
  if (c->nodelay_due && c->wrote) set_nodelay(c);
  c->wrote = true;
  if (!defer) {
    int64_t sent = 0;
    while (o.file_length > 0 && c->budget > 0 && sent < kFileTurnBytes) {
      off_t offset = static_cast<off_t>(o.file_offset);
      size_t want = o.file_length > static_cast<int64_t>(kSendfileMax)
                        ? kSendfileMax : static_cast<size_t>(o.file_length);
      ssize_t n = ::sendfile(fd, o.file_fd, &offset, want);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return -errno;
      }
      if (n == 0) return -EPIPE;  // the file shrank under us: the response cannot be completed
      --c->budget;
      sent += n;
      o.file_offset += n;
      o.file_length -= n;
    }
    if (o.file_length == 0) return 0;
  }
  if (c->nodelay_due) set_nodelay(c);  // the rest goes out in several writes
  if (c->file_buf == nullptr) {
    c->file_buf = new (std::nothrow) char[kFileBlock];
    if (c->file_buf == nullptr) return ALICORN_ENOMEM;
  }
  size_t want = o.file_length > static_cast<int64_t>(kFileBlock)
                    ? kFileBlock : static_cast<size_t>(o.file_length);
  ssize_t n;
  do {
    n = ::pread(o.file_fd, c->file_buf, want, static_cast<off_t>(o.file_offset));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  if (n == 0) return -EPIPE;  // the file shrank
  uv_buf_t buf = uv_buf_init(c->file_buf, static_cast<unsigned>(n));
  int r = uv_write(&c->io->wreq, &c->h.stream, &buf, 1, on_write);
  if (r < 0) return r;
  c->file_block = static_cast<size_t>(n);
  return 1;
}

// Write c->out: at once as far as the socket takes it, the rest with uv_write, then its file
// segment (send_file). Returns 0 when everything was written, 1 when a uv_write is pending
// (on_write follows, and sends the file segment if it is still due), or a negative error.
// `defer` sends everything through uv_write, so the continuation runs in a later loop turn.
// Coalesced responses waiting in the loop's buffer go first, in the same writev.
int write_output(Conn* c, bool defer) noexcept {
  Worker* w = c->w;
  alicorn_output& o = c->io->out;
  int cnt = o.iovcnt;
  if (cnt > ALICORN_OUTPUT_IOV_MAX) return ALICORN_EINVAL;
  if (cnt < 0) cnt = 0;
  uv_buf_t* bufs = reinterpret_cast<uv_buf_t*>(o.iov);
  uv_buf_t joined[ALICORN_OUTPUT_IOV_MAX + 1];
  const size_t coal = w->coal_len;
  if (coal > 0) {
    joined[0] = uv_buf_init(w->coalbuf, static_cast<unsigned>(coal));
    if (cnt > 0) std::memcpy(joined + 1, bufs, static_cast<size_t>(cnt) * sizeof(uv_buf_t));
    bufs = joined;
    ++cnt;
    w->coal_len = 0;
  }
  if (cnt == 0) return send_file(c, defer);
  size_t done = 0;
  if (c->nodelay_due && c->wrote) set_nodelay(c);
  if (!defer) {
    int r = uv_try_write(&c->h.stream, bufs, static_cast<unsigned>(cnt));
    c->wrote = true;
    if (r >= 0) {
      done = static_cast<size_t>(r);
    } else if (r != UV_EAGAIN) {
      return r;
    }
  }
  while (cnt > 0 && done >= bufs->len) {
    done -= bufs->len;
    ++bufs;
    --cnt;
  }
  if (cnt == 0) return send_file(c, defer);
  c->wrote = true;
  if (c->nodelay_due) set_nodelay(c);  // the rest goes out in several writes
  bufs->base += done;
  bufs->len -= done;
  if (coal > 0 && bufs == joined) {
    // Part of the coalesced bytes is left, and the loop's buffer is for the next connection.
    c->flush_buf = new (std::nothrow) char[bufs->len];
    if (c->flush_buf == nullptr) return ALICORN_ENOMEM;
    std::memcpy(c->flush_buf, bufs->base, bufs->len);
    bufs->base = c->flush_buf;
  }
  int r = uv_write(&c->io->wreq, &c->h.stream, bufs, static_cast<unsigned>(cnt), on_write);
  return r < 0 ? r : 1;
}

// A response complete in one pull, small, with no file: copied into the loop's buffer (see
// Pipelining above) instead of written. False when it does not qualify or does not fit.
bool coalesce(Conn* c) noexcept {
  Worker* w = c->w;
  const alicorn_output& o = c->io->out;
  if (o.iovcnt < 0 || o.iovcnt > ALICORN_OUTPUT_IOV_MAX) return false;
  if (o.file_fd >= 0 && o.file_length > 0) return false;
  size_t total = 0;
  for (int i = 0; i < o.iovcnt; ++i) total += o.iov[i].iov_len;
  if (total > kCoalesceMax || total > kCoalesceSize - w->coal_len) return false;
  if (w->coal_len > 0 && w->coal_owner != c) return false;  // cannot happen: emptied per turn
  char* dst = w->coalbuf + w->coal_len;
  for (int i = 0; i < o.iovcnt; ++i) {
    std::memcpy(dst, o.iov[i].iov_base, o.iov[i].iov_len);
    dst += o.iov[i].iov_len;
  }
  w->coal_len += total;
  w->coal_owner = c;
  return true;
}

// Write what is coalesced. 0: written (or nothing was there), 1: a uv_write is pending and
// `then` runs when it completes (on_write), negative: an error.
int flush_coalesced(Conn* c, AfterFlush then, int rc) noexcept {
  if (c->w->coal_len == 0) return 0;
  WriteState* io = take_io(c);
  if (io == nullptr) return ALICORN_ENOMEM;
  io->out.iovcnt = 0;
  io->out.file_fd = -1;
  io->out.file_length = 0;
  int r = write_output(c, false);
  if (r > 0) {
    c->after_flush = then;
    c->after_rc = rc;
    c->last_pull = ALICORN_PULL_DONE;
    stop_reading(c);
    list_append(c->w, c, kWriting);
  }
  return r;
}

// Pull and write until the session says DONE (kContinue), a write is pending (kWait: on_write
// takes over), or the connection was closed (kGone).
Step drain(Conn* c) noexcept {
  Worker* w = c->w;
  WriteState* io = take_io(c);
  if (io == nullptr) {
    close_conn(c, ALICORN_ENOMEM);
    return kGone;
  }
  for (;;) {
    int pr = w->host->session_pull(c->s, &io->out);
    w->clock_stale = true;  // a generator may have run
    if (pr < 0 || pr == ALICORN_PULL_ABORT) {
      close_conn(c, pr < 0 ? pr : -ECONNABORTED);
      return kGone;
    }
    bool defer = c->budget <= 0;
    if (!defer) --c->budget;
    if (pr == ALICORN_PULL_DONE && !defer && c->phase == Phase::Responding && coalesce(c))
      return kContinue;
    int wr = write_output(c, defer);
    if (wr < 0) {
      close_conn(c, wr);
      return kGone;
    }
    if (wr > 0) {
      c->last_pull = pr;
      stop_reading(c);  // no new request until this response is out
      list_append(w, c, kWriting);
      return kWait;
    }
    if (pr == ALICORN_PULL_DONE) return kContinue;
  }
}

// The response is out and the connection ends. close() on a socket with unread input sends a
// reset, which can destroy the response before the client read it; so when the client has sent
// more than we read (a body we refused, requests pipelined after a close), shut down our side
// and drop what it sends until it closes (or kLingerMs pass). Otherwise close at once.
// What is in the kernel right now is not enough to tell: a client uploading under load may
// have more on the wire than has arrived, so the session's own view counts too (ABI 1.2
// session_unread_input: it holds bytes past the request, or refused it before its body).
void close_after_response(Conn* c) noexcept {
  Worker* w = c->w;
  uv_os_fd_t fd = -1;
  int unread = 0;
  bool more = ALICORN_HAS_FIELD(w->host, alicorn_host_api, session_unread_input) &&
              w->host->session_unread_input != nullptr &&
              w->host->session_unread_input(c->s) != 0;
  if (uv_fileno(&c->h.handle, &fd) != 0 || (!more && (::ioctl(fd, FIONREAD, &unread) != 0 ||
                                                      unread == 0)) ||
      ::shutdown(fd, SHUT_WR) != 0) {
    close_conn(c, 0);
    return;
  }
  c->phase = Phase::Linger;
  list_append(c->w, c, kLinger);
  c->linger_until = uv_now(&c->w->loop) + kLingerTotalMs;
  start_reading(c);
}

// The response is written. Keep the connection (and parse what was pipelined) or linger-close.
Step response_done(Conn* c, int* rc) noexcept {
  Worker* w = c->w;
  c->in_response = false;
  c->phase = Phase::Reading;
  if (w->host->session_keep_alive(c->s)) {
    c->got_bytes = false;
    *rc = w->host->session_feed(c->s, nullptr, 0);
    return kContinue;
  }
  // Not kept: the client asked, or the host is stopping (max_requests sets STOP_GRACEFUL before
  // the app runs, so this response is the first to say close). Ask the host once this turn.
  w->closing_response = true;
  if (int f = flush_coalesced(c, AfterFlush::Close, 0); f != 0) {
    if (f < 0) close_conn(c, f);
    return kGone;
  }
  close_after_response(c);
  return kGone;
}

// Act on a session_feed result, looping over pipelined requests.
void process(Conn* c, int rc) noexcept {
  Worker* w = c->w;
  for (;;) {
    switch (rc) {
      case ALICORN_FEED_NEED_MORE:
        if (int f = flush_coalesced(c, AfterFlush::Process, rc); f != 0) {
          if (f < 0) close_conn(c, f);
          return;
        }
        if (c->list == kNoList) list_append(w, c, c->got_bytes ? kReading : kIdle);
        give_back_io(c);  // nothing is being written: the client's turn
        start_reading(c);
        return;
      case ALICORN_FEED_SEND: {
        c->phase = Phase::Interim;
        if (drain(c) != kContinue) return;
        c->phase = Phase::Reading;
        rc = w->host->session_feed(c->s, nullptr, 0);
        continue;
      }
      case ALICORN_FEED_READY: {
        list_remove(w, c);
        c->phase = Phase::Responding;
        c->in_response = true;
        int r = w->host->session_run(c->s);
        w->clock_stale = true;
        if (r < 0) {
          close_conn(c, r);
          return;
        }
        if (drain(c) != kContinue) return;
        if (response_done(c, &rc) != kContinue) return;
        continue;
      }
      default:
        close_conn(c, rc < 0 ? rc : ALICORN_EINVAL);
        return;
    }
  }
}

void on_data(Conn* c, const char* data, size_t len) noexcept {
  if (c->phase == Phase::Linger) {
    // Discard, and keep draining while the client keeps sending (up to kLingerTotalMs).
    if (c->deadline < c->linger_until) list_append(c->w, c, kLinger);
    return;
  }
  if (c->phase != Phase::Reading) return;
  if (!c->got_bytes) {
    c->got_bytes = true;
    list_append(c->w, c, kReading);  // the request clock starts with its first byte
  }
  c->budget = kTurnBudget;
  process(c, c->w->host->session_feed(c->s, data, len));
}

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
  Conn* c = static_cast<Conn*>(stream->data);
  if (nread > 0) {
    on_data(c, buf->base, static_cast<size_t>(nread));
    return;
  }
  if (nread == 0) return;  // EAGAIN
  // EOF or an error. Reading is off while a response is being written, so nothing is cut short
  // here: a partial request is just dropped.
  close_conn(c, nread == UV_EOF ? 0 : static_cast<int>(nread));
}

void on_write(uv_write_t* req, int status) noexcept {
  Conn* c = static_cast<Conn*>(req->handle->data);
  if (status == UV_ECANCELED || c->phase == Phase::Closing) return;
  if (status < 0) {
    close_conn(c, status);
    return;
  }
  Worker* w = c->w;
  list_remove(w, c);
  c->budget = kTurnBudget;
  delete[] c->flush_buf;  // coalesced bytes, now out
  c->flush_buf = nullptr;
  if (c->file_block > 0) {  // a block of the file segment went out
    c->io->out.file_offset += static_cast<int64_t>(c->file_block);
    c->io->out.file_length -= static_cast<int64_t>(c->file_block);
    c->file_block = 0;
  }
  // The iovs (or a file block) are out; the rest of the file segment comes before the next pull.
  if (int r = send_file(c, false); r != 0) {
    if (r < 0) {
      close_conn(c, r);
    } else {
      list_append(w, c, kWriting);
    }
    return;
  }
  if (c->after_flush != AfterFlush::None) {  // only coalesced responses were in this write
    AfterFlush then = c->after_flush;
    c->after_flush = AfterFlush::None;
    if (then == AfterFlush::Close) {
      close_after_response(c);
    } else {
      process(c, c->after_rc);
    }
    return;
  }
  if (c->last_pull == ALICORN_PULL_MORE && drain(c) != kContinue) return;
  int rc;
  if (c->phase == Phase::Interim) {
    c->phase = Phase::Reading;
    rc = w->host->session_feed(c->s, nullptr, 0);
  } else if (response_done(c, &rc) != kContinue) {
    return;
  }
  process(c, rc);
}

void open_conn(Worker* w, Listener* l, int fd, const sockaddr* peer, socklen_t peer_len) noexcept {
  Conn* c = acquire_conn(w);
  if (c == nullptr) {
    ::close(fd);
    return;
  }
  int r = l->is_unix ? uv_pipe_init(&w->loop, &c->h.pipe, 0) : uv_tcp_init(&w->loop, &c->h.tcp);
  if (r != 0) {
    ::close(fd);
    release_conn(w, c);
    return;
  }
  c->h.handle.data = c;
  c->registered = true;
  all_append(w, c);
  ++w->nconns;
  r = l->is_unix ? uv_pipe_open(&c->h.pipe, fd) : uv_tcp_open(&c->h.tcp, fd);
  if (r != 0) {
    ::close(fd);  // not owned by the handle yet
    close_conn(c, r);
    return;
  }
  c->nodelay_due = !l->is_unix;
  alicorn_conn_info info{};
  info.struct_size = sizeof info;
  info.fd = fd;
  info.listener_index = l->index;
  info.peer = peer_len > 0 ? peer : nullptr;
  info.peer_len = peer_len;
  c->s = w->host->session_new(w->ctx, &info);
  if (c->s == nullptr) {
    logf(w, ALICORN_LOG_ERROR, "uv worker: cannot open a session (out of memory)");
    close_conn(c, 0);
    return;
  }
  list_append(w, c, kReading);
  if (!start_reading(c)) return;
  // The request often came with the connection: read it now instead of after another trip
  // through epoll.
  ssize_t n = ::read(fd, w->readbuf, sizeof w->readbuf);
  if (n > 0) {
    on_data(c, w->readbuf, static_cast<size_t>(n));
  } else if (n == 0) {
    close_conn(c, 0);
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    close_conn(c, -errno);
  }
}

// ---------------------------------------------------------------------------------------------
// listeners

void pause_accept(Worker* w) noexcept {
  if (!w->accepting) return;
  for (uint32_t i = 0; i < w->nlisteners; ++i) {
    Listener& l = w->listeners[i];
    if (l.watched) ::epoll_ctl(w->epfd, EPOLL_CTL_DEL, l.fd, nullptr);
    l.watched = false;
  }
  w->accepting = false;
}

void resume_accept(Worker* w) noexcept {
  if (w->accepting || w->stopping || w->listeners_closed || w->accept_paused ||
      w->nconns >= w->max_conns || w->epfd < 0)
    return;
  for (uint32_t i = 0; i < w->nlisteners; ++i) {
    Listener& l = w->listeners[i];
    epoll_event ev{};
    ev.events = w->listen_flags;
    ev.data.u64 = i;
    int r = ::epoll_ctl(w->epfd, EPOLL_CTL_ADD, l.fd, &ev);
    if (r != 0 && errno == EINVAL && (w->listen_flags & EPOLLEXCLUSIVE)) {
      w->listen_flags &= ~static_cast<uint32_t>(EPOLLEXCLUSIVE);  // kernel before 4.5
      ev.events = w->listen_flags;
      r = ::epoll_ctl(w->epfd, EPOLL_CTL_ADD, l.fd, &ev);
    }
    if (r != 0 && errno != EEXIST) {
      logf(w, ALICORN_LOG_ERROR, "uv worker: cannot watch listener %d: %s", l.fd,
           std::strerror(errno));
      continue;
    }
    l.watched = true;
  }
  w->accepting = true;
}

void on_accept_retry(uv_timer_t* t) noexcept {
  Worker* w = static_cast<Worker*>(t->data);
  w->accept_paused = false;
  resume_accept(w);
}

void backoff_accept(Worker* w, uint64_t ms = kAcceptRetryMs) noexcept {
  pause_accept(w);
  w->accept_paused = true;
  uv_timer_start(&w->accept_retry, on_accept_retry, ms, 0);
}

// EPOLLEXCLUSIVE wakes the first waiting worker in the listener's wait queue, and a worker's
// place there is fixed when it registers: left alone, the first worker takes every connection
// it has time for (wrk's 64 connections all land in one process). Re-registering after taking
// some moves us to the back of the queue, so connections go round the idle workers instead.
void rotate_listener(Worker* w, Listener* l) noexcept {
  if (!l->watched || !(w->listen_flags & EPOLLEXCLUSIVE)) return;
  epoll_event ev{};
  ev.events = w->listen_flags;
  ev.data.u64 = l->index;
  ::epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, nullptr);
  if (::epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev) != 0) {
    l->watched = false;
    logf(w, ALICORN_LOG_ERROR, "uv worker: cannot watch listener %d again: %s", l->fd,
         std::strerror(errno));
    backoff_accept(w);  // resume_accept registers every listener again
  }
}

// The listener is readable: accept kAcceptBatch. With EPOLLEXCLUSIVE the kernel may have woken
// only us for these connections; one left queued is not lost: the listener stays readable in our
// (level-triggered) epoll, re-registered by rotate_listener, so our next epoll_wait returns at
// once unless another worker took it meanwhile. At the cap or out of fds we stop watching, and
// then the next arrival wakes another worker, or we pick it up when we watch again.
void accept_ready(Listener* l) noexcept {
  Worker* w = l->w;
  int accepted = 0;
  for (int i = 0; i < kAcceptBatch; ++i) {
    if (!w->accepting) return;
    if (w->nconns >= w->max_conns) {
      pause_accept(w);  // resumed when a connection closes
      return;
    }
    sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int fd = ::accept4(l->fd, reinterpret_cast<sockaddr*>(&peer), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) break;  // another worker won the race
      // Out of fds or memory: the listener stays readable, so back off instead of spinning
      // (logged at most once a second). ECONNABORTED & co.: that client is gone.
      int pause_ms = alicorn_accept_failed(&w->accept_backoff, w->host, w->ctx, "uv worker", e);
      if (pause_ms == 0) continue;
      backoff_accept(w, static_cast<uint64_t>(pause_ms));
      return;
    }
    open_conn(w, l, fd, reinterpret_cast<sockaddr*>(&peer), len);
    ++accepted;
  }
  if (w->nconns >= w->max_conns) {
    pause_accept(w);
  } else if (accepted > 0 && w->accepting) {
    rotate_listener(w, l);
    // The workers woken for the other connections of a burst may still wait for a core while
    // we, on one, would take every connection queued (on 2 cores with 4 workers, two workers
    // took all 64 of wrk's). Giving the core up here lets them take their share.
    ::sched_yield();
  }
}

void close_listeners(Worker* w) noexcept {
  if (w->listeners_closed) return;
  pause_accept(w);
  w->listeners_closed = true;
}

// ---------------------------------------------------------------------------------------------
// stopping, signals, timeouts

// Close every handle of ours; uv_run returns once their close callbacks ran.
void finish_loop(Worker* w) noexcept {
  if (w->finishing) return;
  w->finishing = true;
  w->stopping = true;
  close_listeners(w);
  if (w->wake_ready) close_handle(reinterpret_cast<uv_handle_t*>(&w->wake));
  if (w->timers_ready) {
    close_handle(reinterpret_cast<uv_handle_t*>(&w->tick));
    close_handle(reinterpret_cast<uv_handle_t*>(&w->grace));
    close_handle(reinterpret_cast<uv_handle_t*>(&w->accept_retry));
    close_handle(reinterpret_cast<uv_handle_t*>(&w->check));
  }
}

void fast_stop(Worker* w) noexcept {
  w->stopping = true;
  close_listeners(w);
  while (w->all_head != nullptr) close_conn(w->all_head, -ECONNABORTED);
  finish_loop(w);
}

void on_grace(uv_timer_t* t) noexcept {
  Worker* w = static_cast<Worker*>(t->data);
  if (w->nconns > 0)
    logf(w, ALICORN_LOG_WARNING,
         "uv worker: graceful timeout reached, closing %u connection(s) still open", w->nconns);
  fast_stop(w);
}

void begin_graceful(Worker* w) noexcept {
  if (w->stopping) return;
  w->stopping = true;
  close_listeners(w);
  uv_timer_stop(&w->accept_retry);
  // Idle connections go now: keep-alive ones and fresh ones that sent nothing yet. Requests in
  // flight finish; the host answers them with Connection: close.
  // A fresh connection that has not sent its request yet was accepted an instant before the
  // stop: its client is about to send, so it gets kFreshGraceMs to do so (see sweep) instead of
  // a reset.
  // Idle keep-alive connections get the same grace: their client got a keep-alive response
  // an instant ago and may have its next request on the wire (closing now would make it fail
  // after it was sent); it is answered with Connection: close.
  uv_update_time(&w->loop);
  w->stop_started_ms = uv_now(&w->loop);
  if (w->finishing) return;
  if (w->nconns == 0) {
    finish_loop(w);
    return;
  }
  uint64_t ms = seconds_to_ms(w->cfg->graceful_timeout);
  if (ms == 0) {
    fast_stop(w);
    return;
  }
  uv_timer_start(&w->grace, on_grace, ms, 0);
}

void check_signals(Worker* w) noexcept {
  if (w->finishing) return;
  int st = w->host->poll_signals(w->ctx);
  if (st == ALICORN_STOP_FAST) {
    fast_stop(w);
  } else if (st == ALICORN_STOP_GRACEFUL) {
    begin_graceful(w);
  }
}

void sweep(Worker* w) noexcept {
  uv_update_time(&w->loop);
  uint64_t now = uv_now(&w->loop);
  if (w->stopping && now - w->stop_started_ms >= kFreshGraceMs) {
    while (w->lists[kIdle].head != nullptr) {
      close_conn(w->lists[kIdle].head, 0);
      if (w->finishing) return;
    }
    for (Conn* c = w->lists[kReading].head; c != nullptr;) {
      Conn* next = c->next;
      if (!c->got_bytes) close_conn(c, 0);
      if (w->finishing) return;
      c = next;
    }
  }
  for (int id = kIdle; id < kListCount; ++id) {
    List& l = w->lists[id];
    if (l.timeout_ms == 0) continue;
    while (l.head != nullptr && l.head->deadline <= now) {
      Conn* c = l.head;
      close_conn(c, -ETIMEDOUT);  // removes c from the list
      if (w->finishing) return;
    }
  }
}

void on_wake(uv_poll_t* p, int, int) noexcept { check_signals(static_cast<Worker*>(p->data)); }

void on_tick(uv_timer_t* t) noexcept {
  Worker* w = static_cast<Worker*>(t->data);
  w->host->heartbeat(w->ctx);
  w->sweep_due = true;  // done in the check phase, after this turn's reads
  check_signals(w);
}

// Once per loop iteration, after I/O.
void on_check(uv_check_t* h) noexcept {
  Worker* w = static_cast<Worker*>(h->data);
  if (w->finishing) return;
  if (w->sweep_due) {
    w->sweep_due = false;
    sweep(w);
  }
  if (w->closing_response) {
    w->closing_response = false;
    check_signals(w);  // max_requests shows up here (see response_done)
  }
}

// ---------------------------------------------------------------------------------------------
// teardown

void noop_close(uv_handle_t*) {}

void walk_close(uv_handle_t* h, void*) {
  if (!uv_is_closing(h)) uv_close(h, noop_close);
}

void teardown(Worker* w) noexcept {
  if (w->loop_ready) {
    while (w->all_head != nullptr) close_conn(w->all_head, -ECONNABORTED);
    w->stopping = true;
    finish_loop(w);
    uv_walk(&w->loop, walk_close, nullptr);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    int r = uv_loop_close(&w->loop);
    if (r != 0)
      logf(w, ALICORN_LOG_WARNING, "uv worker: uv_loop_close: %s", uv_strerror(r));
    w->loop_ready = false;
  }
  while (w->pool != nullptr) {
    Conn* c = w->pool;
    w->pool = c->next;
    delete c;
  }
  w->pool_size = 0;
  while (w->wpool != nullptr) {
    WriteState* io = w->wpool;
    w->wpool = io->next;
    delete io;
  }
  w->wpool_size = 0;
  delete[] w->listeners;
  w->listeners = nullptr;
  if (w->epfd >= 0) ::close(w->epfd);
  w->epfd = -1;
}

// ---------------------------------------------------------------------------------------------
// entry points

int setup(Worker* w, char* err, size_t err_size) noexcept {
  const alicorn_worker_config* cfg = w->cfg;
  int r = uv_loop_init(&w->loop);
  if (r != 0) {
    std::snprintf(err, err_size, "uv_loop_init: %s", uv_strerror(r));
    return r;
  }
  w->loop_ready = true;
  w->loop.data = w;

  r = uv_timer_init(&w->loop, &w->tick);
  if (r == 0) r = uv_timer_init(&w->loop, &w->grace);
  if (r == 0) r = uv_timer_init(&w->loop, &w->accept_retry);
  if (r == 0) r = uv_check_init(&w->loop, &w->check);
  if (r != 0) {
    std::snprintf(err, err_size, "cannot create timers: %s", uv_strerror(r));
    return r;
  }
  w->timers_ready = true;
  w->tick.data = w->grace.data = w->accept_retry.data = w->check.data = w;

  w->epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (w->epfd < 0) {
    std::snprintf(err, err_size, "epoll_create1: %s", std::strerror(errno));
    return -errno;
  }
  {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kBackendTag;
    if (::epoll_ctl(w->epfd, EPOLL_CTL_ADD, uv_backend_fd(&w->loop), &ev) != 0) {
      std::snprintf(err, err_size, "cannot watch the loop's backend fd: %s", std::strerror(errno));
      return -errno;
    }
  }

  r = uv_poll_init(&w->loop, &w->wake, w->host->wake_fd(w->ctx));
  if (r != 0) {
    std::snprintf(err, err_size, "cannot watch the wake fd: %s", uv_strerror(r));
    return r;
  }
  w->wake_ready = true;
  w->wake.data = w;

  w->nlisteners = cfg->listener_count;
  if (w->nlisteners > 0) {
    w->listeners = new (std::nothrow) Listener[w->nlisteners]();
    if (w->listeners == nullptr) {
      std::snprintf(err, err_size, "out of memory");
      return ALICORN_ENOMEM;
    }
  }
  for (uint32_t i = 0; i < w->nlisteners; ++i) {
    Listener& l = w->listeners[i];
    l.w = w;
    l.fd = cfg->listener_fds[i];
    l.index = i;
    if (ALICORN_HAS_FIELD(cfg, alicorn_worker_config, listener_flags) &&
        cfg->listener_flags != nullptr) {  // a 1.2 host says what each socket is
      l.is_unix = (cfg->listener_flags[i] & ALICORN_LISTENER_UNIX) != 0;
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(l.fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      std::snprintf(err, err_size, "listener fd %d: getsockname: %s", l.fd, std::strerror(errno));
      return -errno;
    }
    l.is_unix = ss.ss_family == AF_UNIX;
  }

  uint64_t request_ms = seconds_to_ms(cfg->timeout);
  if (request_ms == 0) request_ms = kDefaultRequestTimeoutMs;
  uint64_t keepalive_ms = seconds_to_ms(cfg->keepalive);
  w->lists[kIdle].timeout_ms = keepalive_ms > 0 ? keepalive_ms : request_ms;
  w->lists[kReading].timeout_ms = request_ms;
  w->lists[kWriting].timeout_ms = request_ms;
  w->lists[kLinger].timeout_ms = kLingerMs < request_ms ? kLingerMs : request_ms;
  w->max_conns = cfg->worker_connections > 0 ? cfg->worker_connections : 1000;

  // Heartbeat at least every min(1 s, timeout/2); tick often enough that a timeout fires within
  // a quarter of its length (the keep-alive one is the shortest).
  uint64_t tick = 1000;
  if (uint64_t t = seconds_to_ms(cfg->timeout) / 2; t > 0 && t < tick) tick = t;
  for (int id = kIdle; id < kListCount; ++id) {
    uint64_t q = w->lists[id].timeout_ms / 4;
    if (q < 50) q = 50;
    if (q < tick) tick = q;
  }
  w->tick_ms = tick < 10 ? 10 : tick;
  return 0;
}

// The loop. libuv's own epoll fd sits in an outer epoll beside the listeners, which are
// registered with EPOLLEXCLUSIVE: the kernel then hands a new connection to one worker that is
// idle in epoll_wait, instead of waking every worker to race for it. That spreads connections
// by load (a busy worker is not woken) rather than by scheduler luck. libuv runs one
// non-blocking turn per wake-up; the outer wait sleeps no longer than libuv's next timer.
void serve(Worker* w) noexcept {
  epoll_event events[16];
  for (;;) {
    if (uv_run(&w->loop, UV_RUN_NOWAIT) == 0) return;  // every handle closed
    int timeout = uv_backend_timeout(&w->loop);
    int n = ::epoll_wait(w->epfd, events, 16, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      logf(w, ALICORN_LOG_ERROR, "uv worker: epoll_wait: %s", std::strerror(errno));
      fast_stop(w);
      continue;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag == kBackendTag || tag >= w->nlisteners) continue;  // libuv's: the next turn
      Listener& l = w->listeners[tag];
      w->clock_stale = true;  // we slept in epoll_wait since libuv read the clock
      if (l.watched) accept_ready(&l);
    }
  }
}

int uv_worker_create(const alicorn_host_api* host, alicorn_worker_ctx* ctx, void** worker,
                     char* err, size_t err_size) {
  try {
    auto* w = new (std::nothrow) Worker();
    if (w == nullptr) {
      std::snprintf(err, err_size, "out of memory");
      return ALICORN_ENOMEM;
    }
    w->host = host;
    w->ctx = ctx;
    w->cfg = host->config(ctx);
    if (w->cfg == nullptr) {
      std::snprintf(err, err_size, "the host gave no worker configuration");
      delete w;
      return ALICORN_EINVAL;
    }
    int r = setup(w, err, err_size);
    if (r != 0) {
      teardown(w);
      delete w;
      return r < 0 ? r : -r;
    }
    *worker = w;
    return 0;
  } catch (...) {
    std::snprintf(err, err_size, "unexpected error while creating the uv worker");
    return ALICORN_ENOMEM;
  }
}

int uv_worker_run(void* worker) {
  auto* w = static_cast<Worker*>(worker);
  try {
    w->host->heartbeat(w->ctx);
    uv_timer_start(&w->tick, on_tick, w->tick_ms, w->tick_ms);
    uv_check_start(&w->check, on_check);
    int r = uv_poll_start(&w->wake, UV_READABLE, on_wake);
    if (r != 0) {
      logf(w, ALICORN_LOG_ERROR, "uv worker: cannot watch the wake fd: %s", uv_strerror(r));
      return 1;
    }
    resume_accept(w);
    check_signals(w);  // a signal may have come before the loop started
    serve(w);
    if (!w->finishing) {
      logf(w, ALICORN_LOG_ERROR, "uv worker: the event loop stopped unexpectedly");
      return 1;
    }
    return 0;
  } catch (...) {
    return 1;
  }
}

void uv_worker_destroy(void* worker) {
  auto* w = static_cast<Worker*>(worker);
  if (w == nullptr) return;
  try {
    teardown(w);
  } catch (...) {
  }
  delete w;
}

const alicorn_worker_vtable kUvVtable = {
    sizeof(alicorn_worker_vtable),
    "uv",
    ALICORN_PLUGIN_VERSION,
    "libuv event loop: many connections per process, keep-alive and pipelining",
    ALICORN_CAP_NONBLOCKING | ALICORN_CAP_KEEPALIVE | ALICORN_CAP_SENDFILE,
    uv_worker_create,
    uv_worker_run,
    uv_worker_destroy,
};

}  // namespace

ALICORN_WORKER_PLUGIN(kUvVtable)
