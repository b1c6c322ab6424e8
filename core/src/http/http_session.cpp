// The session protocol of the host API: feed, run, pull, keep-alive, abort, free. The
// connection state machine: parses with RequestParser, hands the request to the application
// adapter, frames the reply (response_framing.cpp), decides about the connection.
#include "http/http_session.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "http/http_connection.hpp"
#include "http/http_parser.hpp"
#include "http/session_edge.hpp"
#include "http/session_tls.hpp"
#include "http/session_uwsgi.hpp"
#include "log/access_log.hpp"
#include "log/log.hpp"
#include "metrics/request_metrics.hpp"
#include "plugin/worker_runtime.hpp"
#include "util/clock.hpp"

namespace alicorn {
namespace {

using State = alicorn_session::State;
using http::error_response;
using http::frame_response;

constexpr int kInternalError = -EIO;  // an unexpected failure inside the host

// ---------------------------------------------------------------------------------------------
// Nothing throws across the C ABI: each entry runs its body through `guarded`, which logs the
// cause with the request it concerns and maps it to an error code.

std::string request_context(const alicorn_session* s) {
  std::string where;
  if (s == nullptr) return "no session";
  if (s->parser.headers_complete())
    where.append(s->parser.method()).append(" ").append(s->parser.target()).append(" ");
  where.append("from ").append(s->remote_addr.empty() ? "unix socket" : s->remote_addr);
  if (!s->remote_port.empty()) where.append(":").append(s->remote_port);
  return where;
}

void log_failure(const char* entry, const alicorn_session* s, const char* what) noexcept {
  try {
    log::error().error("{} failed ({}): {}", entry, request_context(s), what);
  } catch (...) {
    // Nothing left to report with.
  }
}

template <class F>
auto guarded(const char* entry, alicorn_session* s, F&& body) noexcept -> decltype(body()) {
  using R = decltype(body());
  auto fail = [&](int code, const char* what) noexcept -> R {
    log_failure(entry, s, what);
    if (s != nullptr) {
      // Never reuse a connection whose state is in doubt.
      s->ex().out.keep_alive = false;
      if (s->state == State::Responding) s->state = State::Done;
    }
    if constexpr (std::is_same_v<R, int>) return code;
    else if constexpr (!std::is_void_v<R>) return R{};
  };
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(ALICORN_ENOMEM, "out of memory");
  } catch (const std::system_error& e) {
    return fail(e.code().value() > 0 ? -e.code().value() : kInternalError, e.what());
  } catch (const std::exception& e) {
    return fail(kInternalError, e.what());
  } catch (...) {
    return fail(kInternalError, "unknown exception");
  }
}

// ---------------------------------------------------------------------------------------------

void log_access(alicorn_session* s) {
  if (s->logged || (log::access() == nullptr && !metrics::enabled())) return;
  s->logged = true;
  if (metrics::enabled()) metrics::record_request(s->ex().reply.code, clock::mono_us() - s->start_mono_us);
  if (log::access() == nullptr) return;
  AccessRecord rec;
  // The request's view of the peer (a trusted proxy may have named the client); a request that
  // never reached the adapter has only the socket's.
  rec.remote_addr = s->parse_error ? std::string_view(s->remote_addr) : s->ex().req.remote_addr;
  rec.request = &s->parser;
  rec.status = s->ex().reply.code;
  rec.body_bytes = s->ex().out.body_sent;
  rec.response_headers = &s->ex().reply.headers;
  rec.content_length = s->ex().reply.length;
  rec.start_unix_us = s->start_unix_us;
  rec.duration_us = clock::mono_us() - s->start_mono_us;
  write_access_log(rec);
}

void finish(alicorn_session* s) {
  http::Framing& f = s->ex().out;
  f.finished = true;
  log_access(s);
  if (f.content_length >= 0 && !f.no_body && f.body_sent < f.content_length) {
    // Fewer bytes than promised: the client must not reuse this connection.
    log::error().warn("Response for \"{}\" ended after {} of {} bytes; closing the connection",
                      s->parser.request_line(), f.body_sent, f.content_length);
    f.keep_alive = false;
  }
  s->state = State::Done;
}

// The adapter's end of the response (close(), post_request), when it asked for one.
void end_app(alicorn_session* s) {
  if (s->app != nullptr && s->app->needs_end) s->app->end(s->ex().reply, s->ex().out.body_sent);
}

// The request as the adapter sees it.
void describe_request(alicorn_session* s) {
  const RequestParser& p = s->parser;
  app::Request& q = s->ex().req;
  q.method = p.method();
  q.method_id = p.method_id();
  q.target = p.target();
  q.http_major = p.http_major();
  q.http_minor = p.http_minor();
  q.headers = &p.headers();
  q.stream = nullptr;
  q.body = {};
  q.body_fd = -1;
  if (s->streaming && !p.message_complete()) {
    s->stream.offset = 0;
    q.stream = &s->stream;
  } else {
    q.body_fd = s->parser.take_body_fd();
    if (q.body_fd < 0) q.body = p.body();
  }
  q.scheme = s->scheme;
  q.remote_addr = s->remote_addr;
  q.remote_port = s->remote_port;
  const auto& l = s->ctx->listeners->items()[s->listener_index];
  q.server_name = l.server_name;
  q.server_port = l.server_port;
  q.listener_index = s->listener_index;
  q.server_fixed = false;
  q.query_string.reset();
  q.extra = nullptr;
  // [tls] the file segment would bypass the encryption: files come as chunks
  q.can_sendfile = (s->ctx->capabilities & ALICORN_CAP_SENDFILE) != 0 && s->tls == nullptr;
}

// The parser stopped: a 4xx (or a 501 for an unsupported transfer coding) is the client's
// request (logged at info, the reason in the response); a 500 is ours (the body could not be
// stored: disk full, ...), logged as an error with the reason, which the client need not see.
void parse_error_response(alicorn_session* s, int status) {
  const RequestParser& p = s->parser;
  if (status == 500) {
    log::error().error("Request \"{}\" from ip={} failed: {} ({})", p.request_line(),
                       s->remote_addr, p.error_reason(), status);
    error_response(s, status, "");
    return;
  }
  log::error().info("Invalid request from ip={}: {} ({})", s->remote_addr, p.error_reason(),
                    status);
  error_response(s, status, p.error_reason());
}

// A request whose body broke while the app read it: the client's fault, answered 4xx.
void body_error_response(alicorn_session* s) {
  const RequestParser& p = s->parser;
  if (int status = p.error_status(); status != 0) {
    parse_error_response(s, status);
    return;
  }
  if (!s->stream.broken) {
    error_response(s, 500, "");
    return;
  }
  int status = s->stream.timed_out ? 408 : 400;
  log::error().info("Client {} {} while sending the body of \"{}\" ({})", s->remote_addr,
                    s->stream.timed_out ? "stalled" : "went away", p.request_line(), status);
  error_response(s, status, s->stream.timed_out ? "timed out reading the request body"
                                                : "incomplete request body");
}

void count_request(alicorn_worker_ctx* ctx) {
  uint64_t n = ctx->requests.fetch_add(1, std::memory_order_relaxed) + 1;
  if (ctx->slot) ctx->slot->requests.store(n, std::memory_order_relaxed);
  if (ctx->max_requests > 0 && n >= ctx->max_requests) {
    int expected = ALICORN_RUNNING;
    if (ctx->run_state.compare_exchange_strong(expected, ALICORN_STOP_GRACEFUL))
      log::error().info("Autorestarting worker after current request.");
  }
}

// An idle keep-alive connection (the response is out, nothing pipelined) gives its memory back:
// the parser's buffers and the Exchange to the thread's spares, the body reader's to malloc.
// The next request takes spare ones (util/spare_buffers.hpp, http::Exchange).
void release_idle(alicorn_session* s) {
  s->parser.release_buffers();
  s->stream.release_buffers();
  if (s->ex_) http::Exchange::give_back(std::move(s->ex_));
  std::string().swap(s->pending);
}

struct InApp {
  explicit InApp(alicorn_worker_ctx* c) : ctx(c) { ctx->in_app.fetch_add(1); }
  ~InApp() { ctx->in_app.fetch_sub(1); }
  alicorn_worker_ctx* ctx;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// The request body stream (blocking plugins that gave recv/send)

namespace http {

std::string_view ConnBodyStream::buffered() const {
  return std::string_view(s_->parser.body_buffer()).substr(offset);
}

void ConnBodyStream::consume(size_t n) {
  offset += n;
  if (offset >= s_->parser.body_buffer().size()) {
    s_->parser.body_buffer().clear();
    offset = 0;
  }
}

const std::string& ConnBodyStream::failure_reason() const { return s_->parser.error_reason(); }

int ConnBodyStream::fill() {
  RequestParser& p = s_->parser;
  for (;;) {
    if (p.message_complete()) return 0;
    if (p.error_status() != 0) {
      failure_ = Failure::Invalid;
      return -1;
    }
    size_t before = p.body_buffer().size();
    size_t used = 0;
    RequestParser::Status st;
    if (!s_->pending.empty()) {
      st = p.feed(s_->pending.data(), s_->pending.size(), used);
      s_->pending.erase(0, used);
    } else {
      if (p.expect_continue() && !s_->continue_sent) {
        // The app wants the body: now the client may send it.
        s_->continue_sent = true;
        ssize_t n = io_send(io, kContinue, sizeof kContinue - 1);
        if (n < 0) {
          broken = true;
          failure_ = Failure::Io;
          errno_ = static_cast<int>(-n);
          return -1;
        }
      }
      if (recv_buf_.empty()) recv_buf_.resize(64 * 1024);
      ssize_t n = io_recv(io, recv_buf_.data(), recv_buf_.size());
      if (n <= 0) {
        broken = true;
        timed_out = n == -EAGAIN || n == -ETIMEDOUT;
        failure_ = n == 0 ? Failure::Closed : Failure::Io;
        errno_ = static_cast<int>(-n);
        return -1;
      }
      st = p.feed(recv_buf_.data(), static_cast<size_t>(n), used);
      if (used < static_cast<size_t>(n))
        s_->pending.append(recv_buf_.data() + used, static_cast<size_t>(n) - used);
    }
    if (st == RequestParser::Status::Error) continue;  // reported at the top
    if (p.body_buffer().size() > before) return 1;
  }
}

}  // namespace http

// ---------------------------------------------------------------------------------------------
// Host API entries

alicorn_session* session_new(alicorn_worker_ctx* ctx, const alicorn_conn_info* info) {
  if (ctx == nullptr || info == nullptr) return nullptr;
  alicorn_session* s = nullptr;
  alicorn_session* made = guarded("session_new", nullptr, [&]() -> alicorn_session* {
    app::AppAdapter* adapter = app::adapter_of(ctx);
    if (adapter == nullptr) throw std::logic_error("no application adapter in this worker");
    const Config& c = *ctx->config;
    HttpLimits limits;
    limits.request_line = static_cast<size_t>(c.limit_request_line);
    limits.header_fields = static_cast<size_t>(c.limit_request_fields);
    limits.field_size = static_cast<size_t>(c.limit_request_field_size);
    limits.body = static_cast<uint64_t>(c.limit_request_body);
    limits.permit_unconventional_method = c.permit_unconventional_http_method;
    limits.casefold_method = c.casefold_http_method;
    s = new alicorn_session(limits);
    s->ctx = ctx;
    s->listener_index = info->listener_index < ctx->listener_fds.size() ? info->listener_index : 0;
    tls_session_init(s);  // [tls] when the server has a certificate
    // The body read while the app runs (recv/send on the socket): not through TLS, whose
    // records only the session can open; a TLS connection's body is buffered by the parser.
    if (ALICORN_HAS_FIELD(info, alicorn_conn_info, send) && info->recv != nullptr &&
        info->send != nullptr && (ctx->capabilities & ALICORN_CAP_NONBLOCKING) == 0 &&
        s->tls == nullptr) {
      s->stream.io = info->io;
      s->stream.io_recv = info->recv;
      s->stream.io_send = info->send;
      s->streaming = true;
      s->parser.set_streaming(true);
    }
    if (info->peer != nullptr) {
      char host[INET6_ADDRSTRLEN] = "";
      if (info->peer->sa_family == AF_INET) {
        auto* sin = reinterpret_cast<const sockaddr_in*>(info->peer);
        ::inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        s->remote_addr = host;
        s->remote_port = std::to_string(ntohs(sin->sin_port));
      } else if (info->peer->sa_family == AF_INET6) {
        auto* sin6 = reinterpret_cast<const sockaddr_in6*>(info->peer);
        ::inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        s->remote_addr = host;
        s->remote_port = std::to_string(ntohs(sin6->sin6_port));
      }
    }
    edge_session_init(s, info);  // [edge] forwarded-header trust, PROXY protocol
    uwsgi_session_init(s, info);  // [uwsgi] protocol = uwsgi: the packet comes first
    s->app = adapter->open_session();
    return std::exchange(s, nullptr);
  });
  delete s;  // only when session_new failed half-way
  return made;
}

namespace {

int feed_http(alicorn_session* s, const char* data, size_t len) {
    if (s->uwsgi_packet != nullptr || s->uwsgi_refused) {  // [uwsgi] the packet, then the body
      if (int rc = uwsgi_consume_packet(s, data, len); rc <= 0)
        return rc < 0 ? rc : ALICORN_FEED_NEED_MORE;
    }
    if (s->state == State::Done) {
      if (!s->ex().out.keep_alive) {
        return ALICORN_FEED_NEED_MORE;  // the plugin is about to close; ignore late bytes
      }
      s->ex_->reply.reset();
      s->ex_->out.reset();
      s->parser.reset();
      s->continue_sent = false;
      s->stream.next_request();
      s->state = State::Reading;
      if (len == 0 && s->pending.empty()) release_idle(s);  // nothing pipelined: idle
    }
    if (s->state != State::Reading) {
      if (len > 0) s->pending.append(data, len);
      return ALICORN_FEED_NEED_MORE;
    }
    RequestParser::Status st;
    size_t used = 0;
    if (!s->pending.empty()) {
      if (len > 0) s->pending.append(data, len);
      st = s->parser.feed(s->pending.data(), s->pending.size(), used);
      s->pending.erase(0, used);
    } else {
      st = s->parser.feed(data, len, used);
      if (used < len) s->pending.append(data + used, len - used);
    }
    if (st == RequestParser::Status::NeedMore) {
      if (!s->streaming && s->parser.headers_complete() && s->parser.expect_continue() &&
          !s->continue_sent) {
        s->continue_sent = true;
        s->state = State::Interim;
        return ALICORN_FEED_SEND;
      }
      return ALICORN_FEED_NEED_MORE;
    }
    // [edge] forwarded headers; a uwsgi request's facts come from its variables instead
    if (st != RequestParser::Status::Error && !s->uwsgi) edge_after_headers(s);
    s->parse_error = s->parser.error_status() != 0;
    if (s->parse_error) s->pending.clear();  // nothing after a broken request can be trusted
    s->state = State::Ready;
    return ALICORN_FEED_READY;
}

}  // namespace

int session_feed(alicorn_session* s, const char* data, size_t len) {
  if (s == nullptr) return ALICORN_EINVAL;
  return guarded("session_feed", s, [&]() -> int {
    size_t clear = s->pending.size();
    if (s->proxy != nullptr) {  // [edge] the PROXY protocol header comes before any HTTP byte
      if (int rc = edge_consume_proxy(s, data, len); rc <= 0)
        return rc < 0 ? rc : ALICORN_FEED_NEED_MORE;
    }
    if (s->tls == nullptr) return feed_http(s, data, len);
    // [tls] ciphertext in (what a PROXY parser buffered first, when there was no header)
    std::string plain;
    if (s->pending.size() > clear) {
      std::string first = s->pending.substr(clear);
      s->pending.resize(clear);
      if (int rc = tls_decrypt(s, first.data(), first.size(), plain); rc < 0) return rc;
    }
    if (int rc = tls_decrypt(s, data, len, plain); rc < 0) return rc;
    int rc = feed_http(s, plain.data(), plain.size());
    if (rc == ALICORN_FEED_NEED_MORE && tls_has_output(s)) return ALICORN_FEED_SEND;  // handshake
    return rc;
  });
}

int session_run(alicorn_session* s) {
  if (s == nullptr) return ALICORN_EINVAL;
  return guarded("session_run", s, [&]() -> int {
    if (s->state != State::Ready) return ALICORN_ESTATE;
    s->state = State::Responding;
    if (log::access() != nullptr || metrics::enabled()) {  // the clocks: access log, metrics
      s->start_unix_us = clock::unix_us();
      s->start_mono_us = clock::mono_us();
      metrics::request_started();
    }
    s->logged = false;
    if (s->parse_error) {
      parse_error_response(s, s->parser.error_status());
      return 0;
    }
    count_request(s->ctx);
    describe_request(s);
    if (s->uwsgi)
      uwsgi_describe(s);  // [uwsgi] REMOTE_ADDR, HTTPS, SERVER_NAME, PATH_INFO, ... as the proxy said
    else
      edge_describe(s);  // [edge] trusted proxy: scheme, SCRIPT_NAME, PATH_INFO, REMOTE_USER
    app::AppSession::Result result;
    {
      InApp in_app(s->ctx);
      result = s->app->run(s->ex().req, s->ex().reply);
    }
    if (s->ex().req.body_fd >= 0) {  // the adapter did not take the spooled body
      ::close(s->ex().req.body_fd);
      s->ex().req.body_fd = -1;
    }
    app::Reply& r = s->ex().reply;
    switch (result) {
      case app::AppSession::Result::Ok:
        if (!r.started) {
          error_response(s, 500, "");
        } else if (r.body == app::Reply::Body::File) {
          frame_response(s, false);
          s->ex().out.file_pending = !s->ex().out.no_body;
        } else {
          frame_response(s, r.body == app::Reply::Body::Complete);
        }
        break;
      case app::AppSession::Result::AppError:
        error_response(s, 500, "");
        break;
      case app::AppSession::Result::BodyError:
        body_error_response(s);
        break;
    }
    return 0;
  });
}

namespace {

int pull_http(alicorn_session* s, alicorn_output* out) {
    app::Reply& r = s->ex().reply;
    http::Framing& f = s->ex().out;
    out->iovcnt = 0;
    out->file_fd = -1;
    out->file_offset = 0;
    out->file_length = 0;
    if (s->state == State::Interim) {
      // Static: stays valid however long the plugin takes to write it.
      out->iov[0] = {const_cast<char*>(http::kContinue), sizeof http::kContinue - 1};
      out->iovcnt = 1;
      s->state = State::Reading;
      return ALICORN_PULL_DONE;
    }
    if (s->state != State::Responding) return ALICORN_ESTATE;
    // Pulling again means everything handed out before was written, the file segment included.
    f.body_sent += f.file_in_flight;
    f.file_in_flight = 0;
    if (!r.head_sent) {
      r.head_sent = true;
      out->iov[out->iovcnt++] = {f.buf.data(), f.buf.size()};
    }
    static const char kLastChunk[] = "0\r\n\r\n";
    for (;;) {
      http::add_chunks(s, out);
      if (f.next_chunk < r.chunks.size()) return ALICORN_PULL_MORE;  // out of iov room
      if (f.file_pending) {
        // The file stays open (the adapter holds it) until the next pull ends the response.
        f.file_pending = false;
        if (r.file_length > 0) {
          out->file_fd = r.file_fd;
          out->file_offset = r.file_offset;
          out->file_length = r.file_length;
          f.file_in_flight = r.file_length;  // counted as sent once the plugin pulls again
          return ALICORN_PULL_MORE;
        }
      }
      // With a Content-Length all sent, iterating stops (PEP 3333: "should stop iterating over
      // the response when enough data has been sent"): more items would be dropped anyway,
      // and an endless iterable (a file_wrapper over /dev/zero) would hold the worker forever.
      // The app is asked once more first, so a generator that ends right there (code after
      // its last yield) finishes as it would in Gunicorn, which iterates to the end; if it
      // yields more, the response ends here and close() stops it.
      const bool length_reached = f.content_length >= 0 && f.body_sent >= f.content_length;
      const bool ask_once = length_reached && !f.asked_past_length &&
                            r.body == app::Reply::Body::Streaming && !f.no_body;
      if (r.body != app::Reply::Body::Streaming || f.no_body || (length_reached && !ask_once)) {
        if (f.chunked) out->iov[out->iovcnt++] = {const_cast<char*>(kLastChunk), 5};
        // Sent chunks are still referenced by `out`: the adapter keeps them until its next call.
        finish(s);
        end_app(s);
        return ALICORN_PULL_DONE;
      }
      if (out->iovcnt > 0) return ALICORN_PULL_MORE;  // write what we have before the app runs
      if (ask_once) f.asked_past_length = true;
      // Streaming: ask the app for the next chunks.
      r.chunks.clear();
      f.next_chunk = 0;
      switch (s->app->next(r)) {
        case app::AppSession::Next::More:
          break;
        case app::AppSession::Next::End:
          r.body = app::Reply::Body::Complete;
          break;
        case app::AppSession::Next::Error:
          f.keep_alive = false;
          s->state = State::Done;
          end_app(s);
          return ALICORN_PULL_ABORT;
      }
    }
}

}  // namespace

int session_pull(alicorn_session* s, alicorn_output* out) {
  if (s == nullptr || out == nullptr) return ALICORN_EINVAL;
  return guarded("session_pull", s, [&]() -> int {
    if (s->tls == nullptr) return pull_http(s, out);
    // [tls] what the session hands out, encrypted (handshake bytes first)
    int rc;
    if (s->state == State::Interim || s->state == State::Responding) {
      rc = pull_http(s, out);
    } else {
      out->iovcnt = 0;
      out->file_fd = -1;
      out->file_offset = 0;
      out->file_length = 0;
      if (!tls_has_output(s)) return ALICORN_ESTATE;
      rc = ALICORN_PULL_DONE;
    }
    if (rc < 0 || rc == ALICORN_PULL_ABORT) return rc;
    // The last bytes before the connection closes carry our close_notify.
    tls_encrypt(s, out, rc == ALICORN_PULL_DONE && s->state == State::Done &&
                            !session_keep_alive(s));
    return rc;
  });
}

int session_keep_alive(alicorn_session* s) {
  return s != nullptr && s->state == State::Done && s->ex().out.keep_alive &&
         s->ctx->run_state.load(std::memory_order_relaxed) == ALICORN_RUNNING;
}

void session_abort(alicorn_session* s, int error) {
  if (s == nullptr) return;
  guarded("session_abort", s, [&] {
    if (s->state == State::Responding) {
      log::error().debug("Client {} went away during \"{}\" ({})", s->remote_addr,
                         s->parser.request_line(), std::strerror(error < 0 ? -error : error));
      log_access(s);
    }
    s->ex().out.keep_alive = false;
    s->state = State::Done;
    end_app(s);
  });
}

void session_free(alicorn_session* s) {
  if (s == nullptr) return;
  guarded("session_free", s, [&] {
    end_app(s);     // a response still open: close() and after-request hooks, with its figures
    delete s->app;  // drops the application's objects (it takes its interpreter lock if it must)
    s->app = nullptr;
    delete s;
  });
}

}  // namespace alicorn
