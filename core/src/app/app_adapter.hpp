// The application adapter: the one seam between the HTTP connection (http/) and an application
// protocol (wsgi/ today, an ASGI adapter later). The connection parses a request, hands it to
// the adapter as a Request, and gets back a Reply: status, headers and a body source (bytes
// chunks known now, more chunks on demand, or a file segment for sendfile). The connection
// alone frames the response and decides about the connection; the adapter alone knows the
// application's objects and its interpreter (it takes and drops any lock itself).
//
// Cost: one virtual call per request (AppSession::run), one per streamed chunk
// (AppSession::next) and one when the response ends only if the adapter asked for it
// (AppSession::needs_end). Headers and chunks travel as plain data, never through calls.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/http_parser.hpp"  // HttpHeader

struct alicorn_worker_ctx;

namespace alicorn::app {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The request body while it is still arriving (blocking workers that stream it). Implemented by
// the connection; an adapter reads through it. Never runs application code, so an adapter may
// release its interpreter lock around fill().
class BodyStream {
 public:
  enum class Failure { None, Invalid, Closed, Io };
  // Bytes received and not consumed yet.
  virtual std::string_view buffered() const = 0;
  virtual void consume(size_t n) = 0;
  // Block until more body bytes are buffered: 1 some arrived, 0 end of the body, -1 failed.
  virtual int fill() = 0;
  // Why fill() failed: Invalid (malformed or too large: failure_reason()), Closed (the client
  // closed the connection mid-body), Io (failure_errno(): a socket error, ETIMEDOUT/EAGAIN when
  // the client stalled).
  virtual Failure failure() const = 0;
  virtual int failure_errno() const = 0;
  virtual const std::string& failure_reason() const = 0;

 protected:
  ~BodyStream() = default;
};

// One parsed request, as the adapter sees it. Views stay valid until the response ends.
struct Request {
  std::string_view method;  // "GET"
  int method_id = 0;        // llhttp_method_t, for caches keyed by method
  std::string_view target;  // as sent: "/a%20b?x=1", or absolute-form
  int http_major = 1;
  int http_minor = 1;
  const std::vector<HttpHeader>* headers = nullptr;
  // The body, in exactly one of three places: in memory (body), spooled to an unlinked
  // temporary file positioned at its end (body_fd >= 0: an adapter that takes it sets body_fd
  // to -1 and closes it itself; otherwise the connection closes it), or still arriving
  // (stream != nullptr).
  std::string_view body;
  int body_fd = -1;
  BodyStream* stream = nullptr;
  // Where the request came from. The connection fills these from the socket today; TLS, the
  // PROXY protocol and trusted Forwarded headers overwrite them here, before run(), and
  // adapters read them instead of looking at the socket.
  std::string_view scheme = "http";
  std::string_view remote_addr;  // "127.0.0.1", "::1"; empty for unix sockets
  std::string_view remote_port;
  // Set only when a trusted proxy forwarded them (forwarder_headers) or root_path is set: the
  // adapter's SCRIPT_NAME / PATH_INFO / REMOTE_USER (http/forwarded.hpp).
  std::optional<std::string_view> script_name, path_info, remote_user;
  // The listener's name and port, for requests without Host.
  std::string_view server_name;
  std::string_view server_port;
  // uwsgi protocol (http/uwsgi_parser.hpp): the proxy's variables state the facts. When
  // server_fixed, SERVER_NAME/SERVER_PORT are server_name/server_port even if Host says else;
  // query_string, when set, is QUERY_STRING instead of the target's query; `extra` are further
  // environ variables (DOCUMENT_ROOT, HTTPS, ...) passed as they are. Empty for HTTP.
  bool server_fixed = false;
  std::optional<std::string_view> query_string;
  const std::vector<std::pair<std::string, std::string>>* extra = nullptr;
  uint32_t listener_index = 0;
  bool can_sendfile = false;  // the worker writes Reply::Body::File segments with sendfile
};

// "GET /x?y=1 HTTP/1.1", for log lines.
inline std::string request_line(const Request& r) {
  std::string line;
  line.reserve(r.method.size() + r.target.size() + 10);
  line.append(r.method).append(" ").append(r.target).append(" HTTP/");
  line.push_back(static_cast<char>('0' + r.http_major));
  line.push_back('.');
  line.push_back(static_cast<char>('0' + r.http_minor));
  return line;
}

// What the application answered. The adapter fills it; the connection frames it.
struct Reply {
  std::string status;      // "200 OK"
  int code = 0;            // 200
  bool started = false;    // status and headers are set
  HeaderList headers;      // without Content-Length and hop-by-hop fields
  bool close = false;      // the application asked for Connection: close
  int64_t length = -1;     // the application's Content-Length, -1 when it gave none
  // Body bytes known so far. The adapter keeps the memory alive until its next call on this
  // session (run, next, or its destruction); the connection empties the vector when it has
  // copied or handed them out.
  std::vector<std::string_view> chunks;
  enum class Body : uint8_t {
    Complete,   // chunks is the whole body
    Streaming,  // more comes from AppSession::next()
    File        // then file_length bytes of file_fd from file_offset (sendfile)
  } body = Body::Complete;
  int file_fd = -1;  // owned by the adapter, open until end() or destruction
  int64_t file_offset = 0;
  int64_t file_length = 0;
  // Set by the connection: the status line and headers have been handed to the worker (too late
  // for a new status, e.g. PEP 3333 start_response with exc_info).
  bool head_sent = false;

  void reset() {
    status.clear();
    code = 0;
    started = false;
    headers.clear();
    close = false;
    length = -1;
    chunks.clear();
    body = Body::Complete;
    file_fd = -1;
    file_offset = file_length = 0;
    head_sent = false;
  }
};

// An adapter's state for one connection: what it reuses across requests and what one request
// holds while its response is sent. Used by one thread at a time, like the connection.
class AppSession {
 public:
  enum class Result {
    Ok,         // reply is started
    AppError,   // the application failed (the adapter logged why): the connection answers 500
    BodyError   // reading the streamed body failed (client's fault, not logged): the
                // connection answers 4xx from the BodyStream's failure
  };
  enum class Next { More, End, Error };

  virtual ~AppSession() = default;
  // Call the application for one request and fill `reply`. `reply` and `req` stay valid and
  // are reused by the connection until the response ends.
  virtual Result run(Request& req, Reply& reply) = 0;
  // Reply::Body::Streaming: put the next chunks into reply.chunks (emptied by the connection).
  // End: the body is complete. Error: the application failed mid-body (logged); the connection
  // closes without writing more.
  virtual Next next(Reply& reply) = 0;
  // The response ended (sent, aborted or failed) after `body_sent` body bytes: release the body
  // source (PEP 3333 close()), run after-request hooks. Called only while needs_end is true.
  virtual void end(const Reply& reply, int64_t body_sent) = 0;

  // Set by the adapter while end() has work to do, so a plain response costs no call.
  bool needs_end = false;
};

class AppAdapter {
 public:
  virtual ~AppAdapter() = default;
  // For a new connection, on any thread, without any interpreter lock. Never null; throws
  // std::bad_alloc.
  virtual AppSession* open_session() = 0;
};

// The adapter the worker runtime created for this worker (app_adapter.cpp).
AppAdapter* adapter_of(alicorn_worker_ctx* ctx);

}  // namespace alicorn::app
