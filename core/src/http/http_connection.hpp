// The HTTP connection behind an alicorn_session: parser, connection state machine, the request
// body stream, and the response framing state. Knows nothing of the application protocol: the
// request goes to an app::AppSession (app/app_adapter.hpp) and its app::Reply comes back.
//
//   Reading ──feed: request complete──▶ Ready ──run──▶ Responding ──pull…DONE──▶ Done
//      ▲  └─feed: Expect: 100-continue─▶ Interim ─pull─┘                          │
//      └───────────────────────── feed (keep-alive: the next request) ◀───────────┘
#pragma once

#include <alicorn/worker.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "app/app_adapter.hpp"
#include "http/forwarded.hpp"
#include "http/http_parser.hpp"
#include "http/uwsgi_parser.hpp"
#include "net/proxy_protocol.hpp"

struct alicorn_session;

namespace alicorn::http {

// The request body as it arrives, for blocking workers that gave conn_info.recv/send: the
// adapter reads it while the application runs (sending 100 Continue on the first read).
class ConnBodyStream final : public app::BodyStream {
 public:
  explicit ConnBodyStream(alicorn_session* s) : s_(s) {}
  std::string_view buffered() const override;
  void consume(size_t n) override;
  int fill() override;
  Failure failure() const override { return failure_; }
  int failure_errno() const override { return errno_; }
  const std::string& failure_reason() const override;
  // A new request on the connection (`broken` stays: such a connection is not reused).
  void next_request() {
    offset = 0;
    timed_out = false;
    failure_ = Failure::None;
    errno_ = 0;
  }
  // The connection is idle: the 64 KiB receive buffer goes back to malloc.
  void release_buffers() { std::string().swap(recv_buf_); }

  // The plugin's blocking I/O (conn_info.io/recv/send): called without any interpreter lock.
  void* io = nullptr;
  ssize_t (*io_recv)(void*, void*, size_t) = nullptr;
  ssize_t (*io_send)(void*, const void*, size_t) = nullptr;
  size_t offset = 0;       // consumed prefix of parser.body_buffer()
  bool broken = false;     // the client vanished or stalled mid-body: never reuse
  bool timed_out = false;  // ... because it stopped sending (408, not 400)

 private:
  alicorn_session* s_;
  std::string recv_buf_;
  Failure failure_ = Failure::None;
  int errno_ = 0;
};

// How the current response goes out (response_framing.cpp).
struct Framing {
  std::string buf;               // head (+ a small body copied in)
  size_t next_chunk = 0;         // in reply.chunks
  int64_t content_length = -1;   // framing length, -1 when chunked / close-delimited
  int64_t body_sent = 0;
  bool chunked = false;
  bool no_body = false;          // HEAD, 1xx, 204, 304
  bool keep_alive = false;
  bool finished = false;
  bool file_pending = false;     // reply's file segment not handed out yet
  int64_t file_in_flight = 0;    // handed to the plugin, not yet known to be written
  bool asked_past_length = false;  // the app was asked once more after Content-Length was met
  // Chunk-size lines, made for the first chunked response (most responses are not chunked, and
  // an idle connection holds none).
  struct Frames {
    char line[ALICORN_OUTPUT_IOV_MAX][24];
  };
  std::unique_ptr<Frames> frames;

  void reset() {
    buf.clear();
    next_chunk = 0;
    content_length = -1;
    body_sent = 0;
    chunked = no_body = keep_alive = finished = file_pending = false;
    file_in_flight = 0;
    asked_past_length = false;
  }
};

// One request and its response: what a connection holds only while a request is in progress.
// An idle keep-alive connection gives it back (release_idle in http_session.cpp) to the
// thread's spares, with the capacity its buffers grew to, and the next request on any
// connection of that thread takes it again: 1,000 idle connections hold none of this.
struct Exchange {
  app::Request req;
  app::Reply reply;
  Framing out;
  ForwardedView fwd;  // what this request's headers said (http/session_edge.cpp)

  static std::unique_ptr<Exchange> take();
  static void give_back(std::unique_ptr<Exchange> x);
};

constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

// Decide framing once the reply's status, headers and known chunks are in, and build the head
// (small complete bodies are copied behind it, so the response is one buffer).
void frame_response(alicorn_session* s, bool body_complete);
// A server-made response (4xx/5xx) replacing whatever the reply held; closes the connection.
void error_response(alicorn_session* s, int code, std::string_view detail);
// Fill `out` with the queued chunks (chunk-framed when chunked) while iov room lasts.
void add_chunks(alicorn_session* s, alicorn_output* out);

}  // namespace alicorn::http

namespace alicorn {
struct TlsConn;
void tls_free(TlsConn* t) noexcept;
}  // namespace alicorn

struct alicorn_session {
  enum class State { Reading, Interim, Ready, Responding, Done };

  alicorn_worker_ctx* ctx = nullptr;
  alicorn::app::AppSession* app = nullptr;  // the adapter's state for this connection (owned)
  uint32_t listener_index = 0;
  // The connection's facts, copied into each app::Request (describe_request): the peer as the
  // socket says, and "http". A TLS listener or a PROXY protocol header sets these once per
  // connection; trusted Forwarded / X-Forwarded-* headers override req.scheme, req.remote_addr
  // and req.remote_port per request after describe_request, before the adapter runs.
  std::string scheme = "http";
  std::string remote_addr;  // empty for unix sockets
  std::string remote_port;
  // At the edge (http/session_edge.cpp): forwarded-header trust and the PROXY protocol header.
  bool forwarded_trusted = false;                     // the peer may set forwarded headers
  std::unique_ptr<alicorn::ProxyHeaderParser> proxy;  // while the PROXY header is awaited
  // uwsgi protocol (http/session_uwsgi.cpp): the whole connection speaks it (protocol = uwsgi);
  // the packet parser lives until the packet is in, then its request's facts stay for the run.
  bool uwsgi = false;
  bool uwsgi_refused = false;  // the peer is not in uwsgi_allow_ips
  std::unique_ptr<alicorn::UwsgiParser> uwsgi_packet;
  std::unique_ptr<alicorn::UwsgiRequest> uwsgi_req;
  // TLS (http/session_tls.cpp): set when the server has a certificate; owned.
  alicorn::TlsConn* tls = nullptr;
  alicorn::RequestParser parser;
  std::string pending;  // bytes received but not parsed yet (pipelining)
  State state = State::Reading;
  bool continue_sent = false;
  bool parse_error = false;
  bool streaming = false;  // the body is read through `stream` while the app runs
  alicorn::http::ConnBodyStream stream{this};
  // The current request and its response (req, reply, out, fwd), taken when first needed.
  alicorn::http::Exchange& ex() {
    if (!ex_) [[unlikely]] ex_ = alicorn::http::Exchange::take();
    return *ex_;
  }
  std::unique_ptr<alicorn::http::Exchange> ex_;  // nullptr while the connection is idle
  int64_t start_unix_us = 0;  // when the request became ready (access log)
  int64_t start_mono_us = 0;
  bool logged = false;        // access log line written for this request

  explicit alicorn_session(alicorn::HttpLimits limits) : parser(limits) {}
  ~alicorn_session() {
    delete app;
    alicorn::tls_free(tls);
  }
  alicorn_session(const alicorn_session&) = delete;
  alicorn_session& operator=(const alicorn_session&) = delete;
};
