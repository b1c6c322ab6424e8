// Response framing: the status line, Server/Date, the application's headers, Content-Length or
// chunked, the keep-alive decision, and the iov list one writev sends.
#include <charconv>
#include <cstring>
#include <ctime>
#include <string>

#include <fmt/format.h>

#include "http/http_connection.hpp"
#include "http/http_session.hpp"
#include "plugin/worker_runtime.hpp"

namespace alicorn::http {
namespace {

constexpr size_t kCopyBodyLimit = 16 * 1024;  // bodies up to this size ride in the head buffer

// The head in one pass: sized first, then copied, so a response head costs one allocation at
// most (none once the connection's buffer has grown) and no per-piece append calls.
void append_head(alicorn_session* s, std::string& buf) {
  using namespace std::string_view_literals;
  const app::Reply& r = s->ex().reply;
  const Framing& f = s->ex().out;
  const std::string_view date = http_date();
  char length[24];
  size_t length_len = 0;
  const bool with_length = f.content_length >= 0 && r.code >= 200 && r.code != 204;
  if (with_length)
    length_len = static_cast<size_t>(
        std::to_chars(length, length + sizeof length, f.content_length).ptr - length);
  constexpr std::string_view kStart = "HTTP/1.1 "sv, kServer = "\r\nServer: alicorn\r\nDate: "sv,
                             kCrlf = "\r\n"sv, kColon = ": "sv, kLength = "Content-Length: "sv,
                             kChunked = "Transfer-Encoding: chunked\r\n"sv,
                             kClose = "Connection: close\r\n"sv,
                             kKeepAlive = "Connection: keep-alive\r\n"sv;
  std::string_view connection;
  if (!f.keep_alive)
    connection = kClose;
  else if (s->parser.http_minor() == 0)
    connection = kKeepAlive;
  size_t n = kStart.size() + r.status.size() + kServer.size() + date.size() + kCrlf.size();
  for (const auto& [name, value] : r.headers) n += name.size() + value.size() + 4;
  if (with_length) n += kLength.size() + length_len + 2;
  if (f.chunked) n += kChunked.size();
  n += connection.size() + 2;
  const size_t at = buf.size();
  buf.resize(at + n);
  char* p = buf.data() + at;
  auto put = [&p](std::string_view v) {
    if (!v.empty()) std::memcpy(p, v.data(), v.size());  // an empty view may hold nullptr (UB)
    p += v.size();
  };
  put(kStart);
  put(r.status);
  put(kServer);
  put(date);
  put(kCrlf);
  for (const auto& [name, value] : r.headers) {
    put(name);
    put(kColon);
    put(value);
    put(kCrlf);
  }
  if (with_length) {
    put(kLength);
    put({length, length_len});
    put(kCrlf);
  }
  if (f.chunked) put(kChunked);
  put(connection);
  put(kCrlf);
}

bool connection_may_persist(alicorn_session* s) {
  auto* ctx = s->ctx;
  return !s->uwsgi && (ctx->capabilities & ALICORN_CAP_KEEPALIVE) != 0 &&
         s->parser.keep_alive() && ctx->worker_config.keepalive > 0 &&
         ctx->run_state.load(std::memory_order_relaxed) == ALICORN_RUNNING;
}

}  // namespace

void frame_response(alicorn_session* s, bool body_complete) {
  app::Reply& r = s->ex().reply;
  Framing& f = s->ex().out;
  const bool bodiless_status = r.code < 200 || r.code == 204 || r.code == 304;
  f.no_body = bodiless_status || s->parser.method() == "HEAD";
  // A streamed body the app left unread (or that broke off) makes the connection unusable.
  f.keep_alive = connection_may_persist(s) && !r.close && s->parser.message_complete() &&
                 !s->stream.broken;
  int64_t total = 0;  // of a complete body
  if (body_complete)
    for (std::string_view c : r.chunks) total += static_cast<int64_t>(c.size());
  if (r.length >= 0) {
    f.content_length = r.length;
  } else if (body_complete) {
    if (!bodiless_status) f.content_length = total;
  } else if (f.no_body) {
    // nothing to frame
  } else if (s->parser.http_minor() >= 1 && !s->uwsgi) {
    f.chunked = true;  // (a uwsgi peer reads the body up to the close, as uWSGI's responses)
  } else {
    f.keep_alive = false;  // close-delimited body
  }
  f.buf.clear();
  append_head(s, f.buf);
  // Small complete bodies are copied behind the head so the response is one buffer.
  if (f.no_body || !body_complete || total > static_cast<int64_t>(kCopyBodyLimit)) return;
  int64_t left = f.content_length >= 0 ? f.content_length : total;
  for (std::string_view c : r.chunks) {
    int64_t n = std::min<int64_t>(static_cast<int64_t>(c.size()), left);
    f.buf.append(c.data(), static_cast<size_t>(n));
    left -= n;
    f.body_sent += n;
  }
  r.chunks.clear();
  f.next_chunk = 0;
}

void error_response(alicorn_session* s, int code, std::string_view detail) {
  app::Reply& r = s->ex().reply;
  Framing& f = s->ex().out;
  r.chunks.clear();
  f.next_chunk = 0;
  r.body = app::Reply::Body::Complete;
  r.status = fmt::format("{} {}", code, reason_phrase(code));
  r.code = code;
  r.started = true;
  r.headers.clear();
  r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  std::string body = fmt::format("{} {}\n{}{}", code, reason_phrase(code), detail,
                                 detail.empty() ? "" : "\n");
  r.length = static_cast<int64_t>(body.size());
  f.content_length = r.length;
  f.keep_alive = false;
  f.chunked = false;
  f.file_pending = false;
  f.no_body = s->parser.method() == "HEAD";
  f.buf.clear();
  append_head(s, f.buf);
  if (!f.no_body) f.buf.append(body);
  f.body_sent = f.content_length;
}

void add_chunks(alicorn_session* s, alicorn_output* out) {
  static const char kCrlf[] = "\r\n";
  app::Reply& r = s->ex().reply;
  Framing& f = s->ex().out;
  // Room for [size line, data, CRLF] plus a last chunk.
  while (f.next_chunk < r.chunks.size() && out->iovcnt + 4 <= ALICORN_OUTPUT_IOV_MAX) {
    std::string_view c = r.chunks[f.next_chunk++];
    auto n = static_cast<int64_t>(c.size());
    if (f.no_body) continue;
    if (f.content_length >= 0) n = std::min(n, f.content_length - f.body_sent);
    if (n <= 0) continue;
    if (f.chunked) {
      if (!f.frames) f.frames = std::make_unique<Framing::Frames>();
      char* line = f.frames->line[out->iovcnt];
      int len = std::snprintf(line, sizeof f.frames->line[0], "%llx\r\n",
                              static_cast<unsigned long long>(n));
      out->iov[out->iovcnt] = {line, static_cast<size_t>(len)};
      ++out->iovcnt;
    }
    out->iov[out->iovcnt++] = {const_cast<char*>(c.data()), static_cast<size_t>(n)};
    if (f.chunked) out->iov[out->iovcnt++] = {const_cast<char*>(kCrlf), 2};
    f.body_sent += n;
  }
}

namespace {
// An Exchange's buffers keep what a typical response grew them to; beyond this they are freed.
constexpr size_t kKeptHead = 4096;
constexpr size_t kKeptHeaders = 64;
constexpr size_t kKeptExchanges = 64;  // per thread

std::vector<std::unique_ptr<Exchange>>& spare_exchanges() {
  thread_local std::vector<std::unique_ptr<Exchange>> spares;
  return spares;
}
}  // namespace

std::unique_ptr<Exchange> Exchange::take() {
  auto& spares = spare_exchanges();
  if (spares.empty()) return std::make_unique<Exchange>();
  std::unique_ptr<Exchange> x = std::move(spares.back());
  spares.pop_back();
  return x;
}

void Exchange::give_back(std::unique_ptr<Exchange> x) {
  auto& spares = spare_exchanges();
  if (spares.size() >= kKeptExchanges) return;  // freed
  x->reply.reset();
  x->out.reset();
  if (x->out.buf.capacity() > kKeptHead) std::string().swap(x->out.buf);
  if (x->reply.headers.capacity() > kKeptHeaders) app::HeaderList().swap(x->reply.headers);
  x->req = app::Request();
  x->fwd = ForwardedView();
  spares.push_back(std::move(x));
}

}  // namespace alicorn::http

namespace alicorn {

std::string_view http_date() {
  thread_local time_t cached_second = 0;
  thread_local char text[40];
  thread_local size_t len = 0;
  time_t now = ::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    len = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return {text, len};
}

}  // namespace alicorn
