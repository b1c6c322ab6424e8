// The gthread worker class, like Gunicorn's: a pool of N threads per worker process
// (--threads) serving keep-alive connections, with one poller thread that accepts.
//
//   poller (the thread that called run)          pool threads (N), leader/followers
//   -----------------------------------          ----------------------------------
//   its epoll set: listeners, wake_fd, our       the pool's epoll set holds every open
//   eventfd. Accepts (and balances between       connection, edge-triggered. One thread (the
//   workers) and adds each new connection to     leader) waits in it and queues what its
//   the pool's set; heartbeat, signals, the      events name in a ready list; a thread takes
//   connection cap; shuts a parked connection    a ready connection, reads what is there
//   down at its deadline (the event that         (non-blocking), feeds it, runs the session
//   raises queues it for a pool thread, which    (the host takes the GIL), writes the response
//   closes it); wakes a follower when a          with writev/sendfile on the blocking socket,
//   request runs long with no leader.            serves pipelined requests already buffered
//                                                (feed(NULL, 0)), then parks the connection
//                                                (a state change under the lock, no syscall)
//                                                or closes it, and takes the next one or
//                                                becomes the leader. See pool_main.
//
// Differences from Gunicorn's gthread, on purpose:
//  * A thread never waits for a slow client's request head. Whenever a read would block (a
//    fresh connection, headers only partly in, an idle keep-alive connection) the connection
//    goes back to the poller, so a client trickling its headers costs an fd, not a thread.
//    The body is read by the app itself, straight from the socket (ABI 1.1 conn_info.recv:
//    wsgi.input streams, and `100 Continue` goes out only when the app reads), on its thread.
//  * Every request has a read budget and every parked connection a deadline, including fresh
//    ones (Gunicorn's poller keeps a connection that never sends a byte forever):
//      - idle between requests: --keep-alive seconds;
//      - reading a request, head and body (a fresh connection included): --timeout seconds
//        (30 s when --timeout is 0) from its first byte, extended by 1 s for every 16 KiB
//        received, so an upload at 128 kbit/s or more is never cut while a client trickling
//        its headers (at most ~800 KB with the default limits) is dropped after --timeout +
//        50 s at worst. When the budget runs out while the app reads the body, its read fails
//        (the host answers 500 and closes).
//    Writes use SO_SNDTIMEO with the same --timeout (30 s) as a stall limit.
//  * Pipelined requests already buffered by the session are answered before the connection is
//    parked (Gunicorn loses them), in order.
//  * The poller never takes the GIL: freeing a session (which may release Python objects) is
//    always done by a pool thread, so a busy app cannot stall accepting or the heartbeat. An
//    expired connection is shut down by the poller at its deadline, then freed by the pool.
//  * Connections are counted against --worker-connections from accept to close; at the cap
//    the listeners leave the epoll set and come back as soon as one closes.
//  * Workers sharing the listeners balance themselves: a worker that already has work (or
//    fresh connections) for every thread steps aside for 2 ms before accepting another, so a
//    worker with a free thread takes it first (Gunicorn lets one worker grab most of a burst:
//    64 wrk connections split 44/20 or 57/7; here 32/32).
//
// Stopping:
//  * ALICORN_STOP_GRACEFUL: stop accepting; idle keep-alive and fresh connections are closed
//    after a 250 ms linger (a request arriving meanwhile is answered, with Connection: close,
//    so a client racing the stop sees no reset); requests in flight finish and carry
//    `Connection: close`. When no connection is left, or at the drain
//    deadline (graceful_timeout less a margin), the pool is stopped: sockets still busy are
//    shut down and the threads are joined, all within graceful_timeout.
//  * ALICORN_STOP_FAST: the same at once, waiting at most a second for the threads. (The host
//    itself _exits on INT/QUIT when a thread is inside the app.)
//  * A thread still stuck in the app at the end is left behind (the process exits right after
//    run returns); destroy then frees nothing that thread could still touch.
//
// No exception crosses the C boundary: every entry point and thread body catches everything.
#include <alicorn/worker.h>
#include <alicorn/worker_io.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdarg>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace {

constexpr size_t kReadSize = 64 * 1024;
constexpr int kMaxEvents = 256;
constexpr int kPoolEvents = 32;  // events the pool's leader takes at once
constexpr double kDefaultRequestTimeout = 30.0;  // seconds, when --timeout is 0
constexpr int64_t kBudgetBytesPerSecond = 16 * 1024;  // read budget grows 1 s per 16 KiB
constexpr int64_t kNever = INT64_MAX;
constexpr int64_t kFastStopWaitMs = 1000;
constexpr int64_t kAcceptDeferMs = 2;    // a busy worker lets others accept first this long
constexpr int64_t kStopLingerMs = 250;   // idle connections at a graceful stop
constexpr int64_t kPromoteUs = 1000;     // no leader while a thread serves this long: promote
// ... even while it runs: a CPU-bound request (a report, a big template) must not hold the
// other connections back: the promoted thread gets the GIL at Python's next switch (5 ms).
constexpr int64_t kPromoteRunningUs = 20000;
// How often the poller looks for a thread to promote: every ms for a second after a request
// took longer than kPromoteUs, else every 5 ms (Python's own switch interval), since each look
// wakes the poller (a fast app then pays 200 wake-ups a second, not 1,000).
constexpr int kWatchSlowMs = 1;
constexpr int kWatchFastMs = 5;
constexpr int64_t kSlowMemoryUs = 1000000;

// epoll tags: small integers; anything else is a Conn*.
constexpr uint64_t kTagWake = 1;
constexpr uint64_t kTagNotify = 2;
constexpr uint64_t kTagStop = 3;  // in the pool's set
constexpr uint64_t kTagListener0 = 16;
constexpr uint64_t kTagLimit = 65536;

int64_t now_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

int64_t now_ms() { return now_us() / 1000; }

struct Worker;

struct Conn {
  // Every connection is in the pool's epoll set, edge-triggered, from accept to close (no
  // epoll_ctl per request). What an event means depends on the state (mu held):
  // Parked: waiting for a byte or its deadline: an event queues it in Worker::ready.
  // Expiring: shut down by the poller at its deadline (or at the stop): the event the shutdown
  //   raises queues it, to be closed by a pool thread.
  // Queued: in Worker::ready; an event changes nothing.
  // Active: a pool thread owns it; an event sets `more` (bytes came while it was served), so
  //   the thread reads again before parking it. Only that thread may close it.
  // Dead: closed; an event that was already fetched is ignored (see close_conn).
  enum class State { Parked, Expiring, Queued, Active, Dead };
  Worker* w = nullptr;
  int fd = -1;
  alicorn_session* s = nullptr;
  State state = State::Parked;
  bool expired = false;      // handed to a pool thread only to be closed
  bool more = false;         // an event came while Active
  bool served = false;       // a response went out on it
  bool idle_ka = false;      // parked between requests (counted in Worker::idle)
  int64_t deadline = 0;      // while parked: when the poller gives up on it
  int64_t req_deadline = 0;  // read budget of the request being read; 0 = none started
  alicorn_driver d{};        // the SDK session driver's place in this connection's requests
  Conn* prev = nullptr;      // registry of all open connections
  Conn* next = nullptr;
};

struct Worker {
  const alicorn_host_api* host = nullptr;
  alicorn_worker_ctx* ctx = nullptr;
  const alicorn_worker_config* cfg = nullptr;
  uint32_t nthreads = 1;
  uint32_t max_conns = 0;  // 0 = no cap
  int64_t keepalive_ms = 0;
  int64_t request_ms = 0;
  int tick_ms = 1000;
  int64_t graceful_ms = 0;
  timeval send_timeout{};
  std::vector<int> listeners;
  std::vector<bool> listener_tcp;
  int wake_fd = -1;
  int ep = -1;         // the poller's: listeners, wake_fd, notify_fd
  int notify_fd = -1;
  int cep = -1;        // the pool's: every parked connection (EPOLLONESHOT), and stop_fd
  int stop_fd = -1;    // written once at the end: level-triggered, so every pool thread sees it

  // Everything below is guarded by mu, except the atomics.
  std::mutex mu;
  std::condition_variable exit_cv;    // poller: a thread exited
  std::condition_variable follow_cv;  // followers: the poller promotes one, or pool_stop
  // Leader/followers (see pool_main): at most one pool thread waits in the pool's epoll_wait.
  bool has_leader = false;
  bool pool_stop = false;
  uint32_t followers = 0;             // threads waiting on follow_cv
  std::vector<int64_t> serving_since; // per thread: when its connection started (µs), or 0
  std::vector<int> stat_fds;          // per thread: /proc/self/task/TID/stat (poller), or -1
  std::deque<Conn*> ready;            // connections the leader's events named, to be served
  std::vector<Conn*> graveyard;       // closed while a leader waited: freed after its events
  bool watch = false;                 // the poller checks every ms for a thread to promote
  int64_t slow_seen_us = 0;           // when a connection last took kPromoteUs or more
  Conn* conns = nullptr;
  uint32_t open = 0;
  std::atomic<bool> listening{false};  // written under mu
  int64_t next_deadline = kNever;
  uint32_t live_threads = 0;
  uint32_t idle = 0;             // connections parked between requests (keep-alive)
  // Why the listeners may be out of the epoll set (besides stopping and the cap):
  int64_t accept_deferred_until = 0;  // every thread busy: let other workers accept first
  int64_t accept_paused_until = 0;    // accept() failed for lack of fds or memory
  alicorn_accept_backoff accept_backoff{};  // its log line: at most once a second (poller only)
  bool accept_now = false;            // a deferral ended: take the next one without deferring
  std::atomic<bool> stopping{false};  // graceful stop under way: no more accepts or idle parks
  std::atomic<bool> closing{false};   // the end: close whatever a thread picks up

  std::vector<std::thread> threads;
  bool leaked = false;  // threads were left running: destroy must not free
};

void log_msg(Worker* w, int level, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
void log_msg(Worker* w, int level, const char* fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  w->host->log(w->ctx, level, msg);
}

void log_errno(Worker* w, const char* call) {
  log_msg(w, ALICORN_LOG_ERROR, "gthread worker: %s failed: %s", call, std::strerror(errno));
}

void notify_poller(Worker* w) {
  uint64_t one = 1;
  ssize_t ignored = write(w->notify_fd, &one, sizeof one);
  (void)ignored;
}

// ---- registry and epoll helpers (mu held) ---------------------------------------------------

void link_conn(Worker* w, Conn* c) {
  c->prev = nullptr;
  c->next = w->conns;
  if (w->conns != nullptr) w->conns->prev = c;
  w->conns = c;
  ++w->open;
}

void unlink_conn(Worker* w, Conn* c) {
  if (c->prev != nullptr) c->prev->next = c->next;
  else w->conns = c->next;
  if (c->next != nullptr) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
  --w->open;
}

// Listener i into the poller's set. Several workers watch the same sockets: wake one of them,
// not all. 0, or -1 with errno.
int add_listener(Worker* w, size_t i) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  ev.data.u64 = kTagListener0 + i;
  int rc = epoll_ctl(w->ep, EPOLL_CTL_ADD, w->listeners[i], &ev);
  if (rc != 0 && errno == EINVAL) {  // a kernel without EPOLLEXCLUSIVE (< 4.5)
    ev.events = EPOLLIN;
    rc = epoll_ctl(w->ep, EPOLL_CTL_ADD, w->listeners[i], &ev);
  }
  return rc;
}

void set_listening(Worker* w, bool on) {
  if (w->listening.load() == on) return;
  for (size_t i = 0; i < w->listeners.size(); ++i) {
    if (!on) epoll_ctl(w->ep, EPOLL_CTL_DEL, w->listeners[i], nullptr);
    else if (add_listener(w, i) != 0 && errno != EEXIST) log_errno(w, "epoll_ctl(ADD listener)");
  }
  w->listening.store(on);
}

// EPOLLEXCLUSIVE wakes the first waiting epoll in the listener's wait queue, and a worker's
// place there is fixed when it registers: the poller, which only accepts, is nearly always
// waiting, so the first worker would take every new connection (with one connection per
// request, every request; after USR2 the new master's workers got none). Re-registering after
// an accept moves this worker to the back of the queue, so connections go round the workers
// (as the uv worker does). mu held.
void rotate_listener(Worker* w, size_t index) {
  if (!w->listening.load()) return;
  epoll_ctl(w->ep, EPOLL_CTL_DEL, w->listeners[index], nullptr);
  if (add_listener(w, index) != 0) {  // out of the set: the poller adds every listener again in 100 ms
    log_errno(w, "epoll_ctl(ADD listener)");
    w->listening.store(false);
    w->accept_paused_until = now_ms() + 100;
  }
}

bool below_cap(const Worker* w) { return w->max_conns == 0 || w->open < w->max_conns; }

// Put the listeners in or out of the epoll set as the state says (mu held).
void update_listening(Worker* w) {
  set_listening(w, !w->stopping.load() && below_cap(w) && w->accept_deferred_until == 0 &&
                       w->accept_paused_until == 0);
}

// Put a new connection in the pool's set, edge-triggered, for its whole life (its state set
// first, under mu). Bytes already there raise an event at once.
bool arm(Worker* w, Conn* c, int op) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = c;
  return epoll_ctl(w->cep, op, c->fd, &ev) == 0;
}

// A connection leaves the poller (mu held).
void leave_parked(Worker* w, Conn* c) {
  if (c->idle_ka) {
    c->idle_ka = false;
    --w->idle;
  }
}

// A parked connection's deadline passed, or the worker stops (mu held, poller thread). It stays
// in the pool's set: shutdown() raises an event (EOF, EPOLLHUP) that queues it for a pool
// thread, which closes and frees it (freeing a session may take the GIL, which the poller never
// does). The client sees the close at once, even while every thread is busy in the app. The
// poller never frees a connection nor touches the pool's set. (An earlier design had the poller
// disarm it with EPOLL_CTL_MOD and an empty mask: the kernel then still reports EPOLLHUP
// level-triggered, and the poller read a connection a pool thread had freed.)
void expire_conn(Worker* w, Conn* c) {
  leave_parked(w, c);
  c->state = Conn::State::Expiring;
  c->expired = true;
  shutdown(c->fd, SHUT_RDWR);
}

void park_deadline(Worker* w, Conn* c, int64_t deadline) {
  c->deadline = deadline;
  if (deadline < w->next_deadline) w->next_deadline = deadline;
}

// ---- connections: pool side -----------------------------------------------------------------

// This thread is about to be free (mu held): take new connections again if the worker stepped
// aside for being busy and no longer has work for every thread.
void thread_freed(Worker* w) {
  if (w->accept_deferred_until != 0 && w->open - w->idle < w->nthreads) {
    w->accept_deferred_until = 0;
    w->accept_now = true;
    update_listening(w);
  }
}

// Close a connection the calling thread owns (Active).
// The leader may have fetched an event naming `c` before the EPOLL_CTL_DEL below and not yet
// looked at it: such an event is only read under mu, in the same hold in which the leader gives
// up has_leader. So `c` (marked Dead) is freed at once when no leader is waiting, or else put in
// the graveyard, which the leader empties after it has looked at its events: no epoll_wait
// started after the DEL can name it.
void close_conn(Worker* w, Conn* c) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(w->mu);
    unlink_conn(w, c);
    c->state = Conn::State::Dead;
    update_listening(w);
    thread_freed(w);
    wake = w->stopping.load() && w->open == 0;
  }
  epoll_ctl(w->cep, EPOLL_CTL_DEL, c->fd, nullptr);  // a forked child may share the socket
  w->host->session_free(c->s);                       // may take the GIL
  c->s = nullptr;
  close(c->fd);
  bool now;
  {
    std::lock_guard<std::mutex> lock(w->mu);
    now = !w->has_leader;
    if (!now) w->graveyard.push_back(c);
  }
  if (now) delete c;
  if (wake) notify_poller(w);
}

// Give a connection back to the poller until it is readable or `deadline` passes. false: bytes
// came while it was served (an event set `more`): read again.
bool park(Worker* w, Conn* c, int64_t deadline) {
  {
    std::lock_guard<std::mutex> lock(w->mu);
    bool idle = c->req_deadline == 0;
    if (c->more && !w->closing.load()) {
      c->more = false;
      return false;
    }
    if (!w->closing.load()) {
      // Idle during a graceful stop: the client got a keep-alive response before the stop and
      // may be sending its next request right now, so it gets the stop linger (its request is
      // answered with Connection: close) rather than a close under a request in flight.
      if (idle && w->stopping.load()) deadline = std::min(deadline, now_ms() + kStopLingerMs);
      c->state = Conn::State::Parked;
      park_deadline(w, c, deadline);
      c->idle_ka = idle && c->served;
      if (c->idle_ka) ++w->idle;
      thread_freed(w);
      return true;
    }
  }
  close_conn(w, c);
  return true;
}

// After a request: report a stop the host decided (max_requests, a signal seen first here).
void check_signals(Worker* w) {
  if (w->host->poll_signals(w->ctx) != ALICORN_RUNNING) notify_poller(w);
}

// wsgi.input reads the request body straight from the socket (ABI 1.1 conn_info.recv/send),
// called by the host inside session_run on the thread serving the connection. The request's
// read budget still applies: a client trickling its body is cut off like one trickling its
// headers, and a shutdown() at a fast stop ends the wait.
ssize_t conn_recv(void* io, void* buf, size_t len) {
  auto* c = static_cast<Conn*>(io);
  if (c->req_deadline == 0) c->req_deadline = now_ms() + c->w->request_ms;
  for (;;) {
    ssize_t n = recv(c->fd, buf, len, MSG_DONTWAIT);
    if (n > 0) {
      c->req_deadline += n * 1000 / kBudgetBytesPerSecond;
      return n;
    }
    if (n == 0) return 0;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
    int64_t left = c->req_deadline - now_ms();
    if (left <= 0) return -ETIMEDOUT;
    pollfd p{c->fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::min<int64_t>(left, INT_MAX))) < 0 && errno != EINTR)
      return -errno;
  }
}

// Interim responses (100 Continue) on the blocking socket; SO_SNDTIMEO bounds a stall.
ssize_t conn_send(void* io, const void* buf, size_t len) {
  return alicorn_send_all(static_cast<Conn*>(io)->fd, buf, len);
}

// alicorn_driver hooks (the SDK's session driver runs the request loop; see worker_io.h).
// Each read extends the request's read budget; a request still incomplete past it is cut.
int conn_on_read(void* arg, ssize_t n, int rc) {
  auto* c = static_cast<Conn*>(arg);
  int64_t now = now_ms();
  if (c->req_deadline == 0) c->req_deadline = now + c->w->request_ms;
  c->req_deadline += n * 1000 / kBudgetBytesPerSecond;
  if (rc == ALICORN_FEED_NEED_MORE && now >= c->req_deadline) {
    log_msg(c->w, ALICORN_LOG_DEBUG, "gthread worker: request read timed out (fd %d)", c->fd);
    return 1;
  }
  return 0;
}

int conn_before_run(void* arg) { return static_cast<Conn*>(arg)->w->closing.load() ? 1 : 0; }

void conn_on_response(void* arg, int keep_alive) {
  auto* c = static_cast<Conn*>(arg);
  c->req_deadline = 0;
  c->served = true;
  // Without keep-alive the host may be stopping (max_requests): tell the poller. (A 1.2 host
  // also wakes wake_fd itself; this keeps the check cheap and host-independent.)
  if (!keep_alive) check_signals(c->w);
}

// Serve a connection the poller found readable (or gave up on) until it must wait again.
void serve(Worker* w, Conn* c, char* buf) {
  for (;;) {
    if (c->expired || w->closing.load()) return close_conn(w, c);
    c->d.buf = buf;  // this pool thread's buffer
    if (alicorn_drive(&c->d) == ALICORN_DRIVE_CLOSE) return close_conn(w, c);
    // Nothing to read: back to the poller, with the request's budget or, idle, --keep-alive.
    int64_t now = now_ms();
    if (c->req_deadline != 0) {
      if (now >= c->req_deadline) return close_conn(w, c);
      if (park(w, c, c->req_deadline)) return;
    } else if (park(w, c, now + w->keepalive_ms)) {
      return;
    }
  }
}

// A pool thread. Leader/followers: one thread at a time (the leader) waits in epoll_wait on the
// pool's set; it queues the connections its events name in `ready` and serves the first; the
// others wait on follow_cv. A thread that finishes a request takes the next ready connection,
// or becomes the leader. A readable connection thus goes from the kernel to a thread with no
// hand-off through the poller and no condition variable, and while the leader serves, nobody
// waits in epoll_wait, so new events do not wake a second thread: the thread that just finished
// a request takes the next one with no sleep and no context switch (with a fast app, one thread
// serves everything, as an event loop would; the GIL lets only one run Python anyway). When a
// request takes longer (the app waits on I/O with the GIL released), the poller promotes a
// follower after kPromoteUs without a leader, so the other connections are served meanwhile, as
// they are by Gunicorn's gthread.
void pool_main(Worker* w, uint32_t index) {
  {
    // The poller reads this thread's scheduler state (check_promote).
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%ld/stat", static_cast<long>(gettid()));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    std::lock_guard<std::mutex> lock(w->mu);
    w->stat_fds[index] = fd;
  }
  try {
    std::unique_ptr<char[]> buf(new char[kReadSize]);
    epoll_event events[kPoolEvents];
    std::vector<Conn*> dead;
    std::unique_lock<std::mutex> lock(w->mu);
    for (;;) {
      if (w->ready.empty()) {
        while (w->has_leader && w->ready.empty() && !w->pool_stop) {
          ++w->followers;
          w->follow_cv.wait(lock);
          --w->followers;
        }
        if (w->pool_stop) break;
        if (w->ready.empty()) {
          w->has_leader = true;
          lock.unlock();
          int n = epoll_wait(w->cep, events, kPoolEvents, -1);
          int err = errno;
          lock.lock();
          w->has_leader = false;
          if (n < 0 && err != EINTR) {
            errno = err;
            log_errno(w, "epoll_wait(pool)");
            notify_poller(w);
            break;
          }
          for (int i = 0; i < n; ++i) {
            if (events[i].data.u64 == kTagStop) {
              w->pool_stop = true;
              w->follow_cv.notify_all();
              continue;
            }
            auto* c = static_cast<Conn*>(events[i].data.ptr);
            switch (c->state) {
              case Conn::State::Parked:
                leave_parked(w, c);
                [[fallthrough]];
              case Conn::State::Expiring:
                c->state = Conn::State::Queued;
                w->ready.push_back(c);
                break;
              case Conn::State::Active:
                c->more = true;
                break;
              case Conn::State::Queued:
              case Conn::State::Dead:
                break;
            }
          }
          // No event fetched before a close's EPOLL_CTL_DEL is left unread: free them.
          dead.swap(w->graveyard);
          if (!dead.empty()) {
            lock.unlock();
            for (Conn* c : dead) delete c;
            dead.clear();
            lock.lock();
          }
          if (w->pool_stop) break;
          continue;
        }
      }
      Conn* c = w->ready.front();
      w->ready.pop_front();
      c->state = Conn::State::Active;
      c->more = false;
      w->serving_since[index] = now_us();
      // Followers wait and the poller sleeps a whole tick: have it watch for a slow request.
      bool wake = !w->watch && w->followers > 0;
      if (wake) w->watch = true;
      lock.unlock();
      if (wake) notify_poller(w);
      serve(w, c, buf.get());
      int64_t done = now_us();
      lock.lock();
      if (done - w->serving_since[index] >= kPromoteUs) w->slow_seen_us = done;
      w->serving_since[index] = 0;
    }
  } catch (...) {
    try {
      log_msg(w, ALICORN_LOG_CRITICAL, "gthread worker: a pool thread failed; stopping");
    } catch (...) {
    }
    notify_poller(w);
  }
  std::lock_guard<std::mutex> lock(w->mu);
  --w->live_threads;
  w->exit_cv.notify_all();
}

// The state letter of /proc/self/task/TID/stat: 'R' running or runnable. Unknown (no procfs):
// not running, so promotion works as if every serving thread slept.
bool thread_running(int fd) {
  if (fd < 0) return false;
  char buf[256];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return false;
  buf[n] = 0;
  const char* paren = std::strrchr(buf, ')');  // the command name may hold spaces and parens
  return paren != nullptr && paren[1] == ' ' && paren[2] == 'R';
}

// Poller, every ms while watching (mu held): no thread waits for events (or takes the ready
// connections) while one has served its connection for kPromoteUs: promote a follower. Stop
// watching once idle.
void check_promote(Worker* w) {
  if (!w->watch) return;
  bool serving = std::any_of(w->serving_since.begin(), w->serving_since.end(),
                             [](int64_t since) { return since != 0; });
  if (!serving || w->followers == 0) {
    w->watch = false;
    return;
  }
  if (w->has_leader) return;
  int64_t now = now_us();
  bool slow = false, long_running = false;
  for (int64_t since : w->serving_since) {
    slow = slow || (since != 0 && now - since >= kPromoteUs);
    long_running = long_running || (since != 0 && now - since >= kPromoteRunningUs);
  }
  if (!slow) return;
  // A serving thread that is running (or runnable, preempted on a busy machine) for a short
  // while is making progress: another thread would only wait for the core or the GIL (on this
  // 2-core box, with wrk beside it, that doubled the context switches). Before
  // kPromoteRunningUs, promote only while every serving thread sleeps: the app waits on I/O, a
  // lock, or the GIL another thread of ours holds, and a free thread can serve meanwhile.
  if (!long_running) {
    for (size_t i = 0; i < w->serving_since.size(); ++i) {
      if (w->serving_since[i] != 0 && thread_running(w->stat_fds[i])) return;
    }
  }
  // Only when there is something to serve: a ready connection, or events no thread fetched
  // (the epoll fd itself polls readable then). A thread that is merely preempted on a busy
  // machine would otherwise bring a second thread in for nothing.
  pollfd p{w->cep, POLLIN, 0};
  if (!w->ready.empty() || (poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0))
    w->follow_cv.notify_one();
}

// ---- poller ---------------------------------------------------------------------------------

void accept_one(Worker* w, size_t index, int64_t now) {
  {
    // Balance between workers sharing the listeners: once this worker has work (or fresh
    // connections about to bring some) for every thread, it steps aside for kAcceptDeferMs
    // before taking another connection, so that a worker with a free thread gets it first.
    // It then accepts one regardless (no starvation), or earlier as soon as one of its
    // threads is free. Idle keep-alive connections do not count as work.
    std::lock_guard<std::mutex> lock(w->mu);
    if (w->accept_now) {
      w->accept_now = false;
    } else if (w->open - w->idle >= w->nthreads) {
      w->accept_deferred_until = now + kAcceptDeferMs;
      update_listening(w);
      return;
    }
  }
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  int fd = accept4(w->listeners[index], reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
  if (fd < 0) {
    // Out of descriptors or memory: the level-triggered listener would spin, so pause (and log
    // at most once a second). EAGAIN & co.: another worker won the race, or the client left.
    int pause_ms = alicorn_accept_failed(&w->accept_backoff, w->host, w->ctx, "gthread worker",
                                         errno);
    if (pause_ms > 0) {
      std::lock_guard<std::mutex> lock(w->mu);
      w->accept_paused_until = now + pause_ms;
      update_listening(w);
    }
    return;
  }
  if (w->listener_tcp[index]) {
    int one = 1;  // responses go out in one writev; streamed chunks must not wait for ACKs
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &w->send_timeout, sizeof w->send_timeout);
  alicorn_conn_info info{};
  info.struct_size = sizeof info;
  info.fd = fd;
  info.listener_index = static_cast<uint32_t>(index);
  info.peer = reinterpret_cast<sockaddr*>(&peer);
  info.peer_len = len;
  auto* c = new (std::nothrow) Conn();
  if (c != nullptr) {
    c->w = w;
    c->fd = fd;
  }
  info.io = c;
  info.recv = conn_recv;
  info.send = conn_send;
  alicorn_session* s = c != nullptr ? w->host->session_new(w->ctx, &info) : nullptr;
  if (s == nullptr) {
    delete c;
    close(fd);
    log_msg(w, ALICORN_LOG_ERROR, "gthread worker: out of memory for a new connection");
    return;
  }
  c->s = s;
  alicorn_driver_init(&c->d, w->host, s, fd, nullptr, kReadSize);
  c->d.recv_flags = MSG_DONTWAIT;  // a read that would block parks the connection instead
  // Edge-triggered, and an event while it is served sets `more`: bytes that come after a short
  // read are never missed, so the recv that would fail with EAGAIN is skipped.
  c->d.wait_after_short_read = 1;
  c->d.arg = c;
  c->d.on_read = conn_on_read;
  c->d.before_run = conn_before_run;
  c->d.on_response = conn_on_response;
  {
    std::lock_guard<std::mutex> lock(w->mu);
    link_conn(w, c);
    c->state = Conn::State::Parked;
    park_deadline(w, c, now + w->request_ms);
    if (arm(w, c, EPOLL_CTL_ADD)) {  // a pool thread may take it as soon as mu is free
      if (!below_cap(w)) update_listening(w);
      else rotate_listener(w, index);
      return;
    }
    unlink_conn(w, c);
  }
  log_errno(w, "epoll_ctl(ADD connection)");
  w->host->session_free(s);  // a fresh session holds no Python objects: no GIL taken
  close(fd);
  delete c;
}

// Shut down parked connections whose deadline passed; the pool closes them (mu held).
void expire(Worker* w, int64_t now) {
  int64_t next = kNever;
  for (Conn* c = w->conns; c != nullptr; c = c->next) {
    if (c->state != Conn::State::Parked) continue;
    if (c->deadline <= now) expire_conn(w, c);
    else next = std::min(next, c->deadline);
  }
  w->next_deadline = next;
}

// STOP_GRACEFUL: no more accepts. Idle keep-alive and fresh connections get a short linger
// instead of an immediate close: a client that sent its next request just now (it may be on
// the wire) is still answered, with Connection: close, instead of finding the connection
// closed under it. Past the linger they are closed like any expired connection.
void begin_graceful(Worker* w, int64_t now) {
  size_t lingering = 0;
  {
    std::lock_guard<std::mutex> lock(w->mu);
    w->stopping.store(true);
    set_listening(w, false);
    int64_t until = now + kStopLingerMs;
    for (Conn* c = w->conns; c != nullptr; c = c->next) {
      if (c->state != Conn::State::Parked || c->req_deadline != 0) continue;
      if (c->deadline > until) park_deadline(w, c, until);
      ++lingering;
    }
  }
  log_msg(w, ALICORN_LOG_DEBUG,
          "gthread worker: graceful stop; %zu idle connections close within %lld ms", lingering,
          static_cast<long long>(kStopLingerMs));
}

// The end of run: stop the pool. Busy sockets are shut down so threads blocked in I/O return;
// threads are joined if they exit before `deadline`, else left behind.
void stop_pool(Worker* w, int64_t deadline) {
  {
    std::lock_guard<std::mutex> lock(w->mu);
    w->stopping.store(true);
    w->closing.store(true);
    w->pool_stop = true;
    w->follow_cv.notify_all();
    set_listening(w, false);
    for (Conn* c = w->conns; c != nullptr; c = c->next) {
      if (c->state == Conn::State::Parked) expire_conn(w, c);
      else if (c->state == Conn::State::Active) shutdown(c->fd, SHUT_RDWR);
    }
  }
  // Every pool thread leaves at its next epoll_wait (level-triggered). Connections no thread
  // picked up by then are freed by destroy, once the threads are gone.
  uint64_t one = 1;
  ssize_t ignored = write(w->stop_fd, &one, sizeof one);
  (void)ignored;
  bool done;
  {
    std::unique_lock<std::mutex> lock(w->mu);
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(std::max<int64_t>(0, deadline - now_ms()));
    done = w->exit_cv.wait_until(lock, until, [w] { return w->live_threads == 0; });
  }
  if (done) {
    for (auto& t : w->threads) t.join();
  } else {
    uint32_t left;
    {
      std::lock_guard<std::mutex> lock(w->mu);
      left = w->live_threads;
    }
    log_msg(w, ALICORN_LOG_WARNING,
            "gthread worker: %u thread(s) still busy in the application at the stop deadline; "
            "exiting without them", left);
    for (auto& t : w->threads) t.detach();
    w->leaked = true;
  }
  w->threads.clear();
}

int run_impl(Worker* w) {
  const alicorn_host_api* h = w->host;
  w->serving_since.assign(w->nthreads, 0);
  w->stat_fds.assign(w->nthreads, -1);
  for (uint32_t i = 0; i < w->nthreads; ++i) {
    {
      std::lock_guard<std::mutex> lock(w->mu);
      ++w->live_threads;
    }
    try {
      w->threads.emplace_back(pool_main, w, i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(w->mu);
      --w->live_threads;
      log_msg(w, ALICORN_LOG_ERROR, "gthread worker: cannot start thread %u of %u", i + 1,
              w->nthreads);
      if (w->threads.empty()) return 1;
      break;
    }
  }
  {
    std::lock_guard<std::mutex> lock(w->mu);
    update_listening(w);
  }

  int state = ALICORN_RUNNING;
  int exit_code = 0;
  int64_t last_poll = 0;
  int64_t drain_deadline = kNever, final_deadline = kNever;
  epoll_event events[kMaxEvents];
  size_t listener_hits[kMaxEvents];
  for (;;) {
    int64_t now = now_ms();
    h->heartbeat(w->ctx);
    if (now - last_poll >= w->tick_ms) {
      state = std::max(state, h->poll_signals(w->ctx));
      last_poll = now;
    }
    if (state == ALICORN_STOP_FAST) break;
    if (state == ALICORN_STOP_GRACEFUL && !w->stopping.load()) {
      final_deadline = now + w->graceful_ms;
      drain_deadline = final_deadline - std::min<int64_t>(1000, w->graceful_ms / 10);
      begin_graceful(w, now);
    }
    int timeout = w->tick_ms;
    {
      std::lock_guard<std::mutex> lock(w->mu);
      if (w->stopping.load() && w->open == 0) break;
      for (int64_t* until : {&w->accept_paused_until, &w->accept_deferred_until}) {
        if (*until == 0) continue;
        if (now >= *until) {
          *until = 0;
          if (until == &w->accept_deferred_until) w->accept_now = true;
          update_listening(w);
        } else {
          timeout = static_cast<int>(std::min<int64_t>(timeout, *until - now));
        }
      }
      if (now >= w->next_deadline) expire(w, now);
      check_promote(w);
      if (w->watch)
        timeout = std::min(timeout, now_us() - w->slow_seen_us < kSlowMemoryUs ? kWatchSlowMs
                                                                                : kWatchFastMs);
      if (w->next_deadline != kNever)
        timeout = static_cast<int>(std::min<int64_t>(timeout, w->next_deadline - now + 1));
    }
    if (now >= drain_deadline) break;
    if (drain_deadline != kNever)
      timeout = static_cast<int>(std::min<int64_t>(timeout, drain_deadline - now));
    timeout = std::max(timeout, 0);

    int n = epoll_wait(w->ep, events, kMaxEvents, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      log_errno(w, "epoll_wait()");
      state = ALICORN_STOP_FAST;
      exit_code = 1;
      break;
    }
    now = now_ms();
    bool signal_due = false;
    int naccept = 0;
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag == kTagWake) {
        signal_due = true;
      } else if (tag == kTagNotify) {
        uint64_t count;
        ssize_t ignored = read(w->notify_fd, &count, sizeof count);
        (void)ignored;
        signal_due = true;
      } else if (tag >= kTagListener0 && tag < kTagLimit) {
        listener_hits[naccept++] = static_cast<size_t>(tag - kTagListener0);
      }
    }
    for (int i = 0; i < naccept; ++i) {
      if (w->listening.load()) accept_one(w, listener_hits[i], now);
    }
    if (signal_due) {
      state = std::max(state, h->poll_signals(w->ctx));
      last_poll = now;
    }
  }

  int64_t now = now_ms();
  if (state == ALICORN_STOP_FAST || final_deadline == kNever) {
    stop_pool(w, now + std::min<int64_t>(kFastStopWaitMs, std::max<int64_t>(w->graceful_ms, 100)));
  } else {
    stop_pool(w, std::max(final_deadline, now + 50));
  }
  return exit_code;
}

// ---- vtable entries -------------------------------------------------------------------------

void free_worker(Worker* w) {
  if (w == nullptr || w->leaked) return;  // threads left running may still use it
  for (Conn* c = w->conns; c != nullptr;) {
    Conn* next = c->next;
    if (w->cep >= 0) epoll_ctl(w->cep, EPOLL_CTL_DEL, c->fd, nullptr);
    w->host->session_free(c->s);
    close(c->fd);
    delete c;
    c = next;
  }
  w->conns = nullptr;
  for (Conn* c : w->graveyard) delete c;
  w->graveyard.clear();
  for (int fd : w->stat_fds)
    if (fd >= 0) close(fd);
  if (w->ep >= 0) close(w->ep);
  if (w->notify_fd >= 0) close(w->notify_fd);
  if (w->cep >= 0) close(w->cep);
  if (w->stop_fd >= 0) close(w->stop_fd);
  delete w;
}

int gthread_create(const alicorn_host_api* host, alicorn_worker_ctx* ctx, void** worker,
                   char* err, size_t err_size) {
  Worker* w = nullptr;
  try {
    w = new Worker();
    w->host = host;
    w->ctx = ctx;
    w->cfg = host->config(ctx);
    const alicorn_worker_config* cfg = w->cfg;
    if (cfg == nullptr || cfg->listener_count == 0) {
      std::snprintf(err, err_size, "no listening sockets");
      delete w;
      return ALICORN_EINVAL;
    }
    w->nthreads = cfg->threads > 0 ? cfg->threads : 1;
    w->max_conns = cfg->worker_connections;
    w->keepalive_ms = static_cast<int64_t>(cfg->keepalive * 1000);
    double request_s = cfg->timeout > 0 ? cfg->timeout : kDefaultRequestTimeout;
    w->request_ms = static_cast<int64_t>(request_s * 1000);
    w->send_timeout.tv_sec = static_cast<time_t>(request_s);
    w->send_timeout.tv_usec =
        static_cast<suseconds_t>((request_s - static_cast<double>(w->send_timeout.tv_sec)) * 1e6);
    w->graceful_ms = static_cast<int64_t>(std::max(0.0, cfg->graceful_timeout) * 1000);
    // Beat at least twice per timeout, and wake often enough to close idle keep-alive
    // connections close to their deadline even when a pool thread parked them meanwhile.
    double tick = 1000;
    if (cfg->timeout > 0) tick = std::min(tick, cfg->timeout * 500);
    if (cfg->keepalive > 0) tick = std::min(tick, cfg->keepalive * 500);
    w->tick_ms = std::max(10, static_cast<int>(tick));
    for (uint32_t i = 0; i < cfg->listener_count; ++i) {
      int fd = cfg->listener_fds[i];
      bool tcp;
      if (ALICORN_HAS_FIELD(cfg, alicorn_worker_config, listener_flags) &&
          cfg->listener_flags != nullptr) {  // a 1.2 host says what each socket is
        tcp = (cfg->listener_flags[i] & ALICORN_LISTENER_UNIX) == 0;
      } else {
        int domain = 0;
        socklen_t len = sizeof domain;
        tcp = getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
              (domain == AF_INET || domain == AF_INET6);
      }
      w->listeners.push_back(fd);
      w->listener_tcp.push_back(tcp);
    }
    w->wake_fd = host->wake_fd(ctx);
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->cep = epoll_create1(EPOLL_CLOEXEC);
    w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->ep < 0 || w->notify_fd < 0 || w->cep < 0 || w->stop_fd < 0) {
      std::snprintf(err, err_size, "epoll/eventfd: %s", std::strerror(errno));
      free_worker(w);
      return -EIO;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTagWake;
    int rc = w->wake_fd >= 0 ? epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wake_fd, &ev) : 0;
    ev.data.u64 = kTagNotify;
    if (rc == 0) rc = epoll_ctl(w->ep, EPOLL_CTL_ADD, w->notify_fd, &ev);
    ev.data.u64 = kTagStop;
    if (rc == 0) rc = epoll_ctl(w->cep, EPOLL_CTL_ADD, w->stop_fd, &ev);
    if (rc != 0) {
      std::snprintf(err, err_size, "epoll_ctl: %s", std::strerror(errno));
      free_worker(w);
      return -EIO;
    }
    char msg[256];
    std::snprintf(msg, sizeof msg,
                  "gthread worker: %u threads, worker_connections %u, keep-alive %.3gs, "
                  "request read timeout %.3gs",
                  w->nthreads, w->max_conns, cfg->keepalive, request_s);
    host->log(ctx, ALICORN_LOG_DEBUG, msg);
    *worker = w;
    return 0;
  } catch (...) {
    std::snprintf(err, err_size, "out of memory");
    free_worker(w);
    return ALICORN_ENOMEM;
  }
}

int gthread_run(void* worker) {
  auto* w = static_cast<Worker*>(worker);
  try {
    return run_impl(w);
  } catch (...) {
    try {
      log_msg(w, ALICORN_LOG_CRITICAL, "gthread worker: unexpected failure; stopping");
      if (!w->threads.empty()) stop_pool(w, now_ms() + kFastStopWaitMs);
    } catch (...) {
      w->leaked = true;
    }
    return 1;
  }
}

void gthread_destroy(void* worker) {
  try {
    free_worker(static_cast<Worker*>(worker));
  } catch (...) {
  }
}

const alicorn_worker_vtable kGthreadVtable = {
    sizeof(alicorn_worker_vtable),
    "gthread",
    ALICORN_PLUGIN_VERSION,
    "a thread pool per worker with keep-alive connections (Gunicorn's gthread)",
    ALICORN_CAP_THREADS | ALICORN_CAP_KEEPALIVE | ALICORN_CAP_SENDFILE,
    gthread_create,
    gthread_run,
    gthread_destroy,
};

}  // namespace

ALICORN_WORKER_PLUGIN(kGthreadVtable)
