#include "http/http_parser.hpp"

#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace alicorn {
namespace {

RequestParser* self(llhttp_t* p) { return static_cast<RequestParser*>(p->data); }

// An unlinked temporary file in $TMPDIR (or /tmp): gone from the disk as soon as it is closed.
int open_spool_file() {
  const char* dir = std::getenv("TMPDIR");
  if (dir == nullptr || *dir == '\0') dir = "/tmp";
  int fd = ::open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  std::string templ = std::string(dir) + "/alicorn-body-XXXXXX";
  fd = ::mkostemp(templ.data(), O_CLOEXEC);
  if (fd >= 0) ::unlink(templ.c_str());
  return fd;
}

bool write_all(int fd, const char* p, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}


}  // namespace

const llhttp_settings_t RequestParser::settings_ = [] {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_message_begin = &RequestParser::on_message_begin;
  s.on_url = &RequestParser::on_url;
  s.on_header_field = &RequestParser::on_header_field;
  s.on_header_field_complete = &RequestParser::on_header_field_complete;
  s.on_header_value = &RequestParser::on_header_value;
  s.on_header_value_complete = &RequestParser::on_header_value_complete;
  s.on_headers_complete = &RequestParser::on_headers_complete;
  s.on_body = &RequestParser::on_body;
  s.on_message_complete = &RequestParser::on_message_complete;
  return s;
}();

RequestParser::RequestParser(HttpLimits limits) : limits_(limits) {
  arena_.reserve(1024);
  spans_.reserve(32);
  headers_.reserve(32);
  reset();
}

RequestParser::~RequestParser() {
  if (body_fd_ >= 0) ::close(body_fd_);
}

bool RequestParser::append_body(const char* at, size_t len) {
  if (body_fd_ < 0 && !streaming_ && limits_.spool_threshold &&
      body_.size() + len > limits_.spool_threshold) {
    body_fd_ = open_spool_file();
    if (body_fd_ < 0 || !write_all(body_fd_, body_.data(), body_.size())) return false;
    body_.clear();
  }
  body_size_ += len;
  if (body_fd_ >= 0) return write_all(body_fd_, at, len);
  body_.append(at, len);
  return true;
}

void RequestParser::reset() {
  if (body_fd_ >= 0) ::close(body_fd_);
  body_fd_ = -1;
  body_size_ = 0;
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
  arena_.clear();
  body_.clear();
  spans_.clear();
  headers_.clear();
  target_off_ = target_len_ = 0;
  method_ = {};
  headers_done_ = complete_ = keep_alive_ = chunked_ = expect_continue_ = false;
  paused_at_headers_ = false;
  field_open_ = false;
  trailer_count_ = 0;
  after_lf_ = false;
  fold_scan_done_ = false;
  probing_method_ = false;
  method_probe_done_ = false;
  method_probe_.clear();
  error_status_ = 0;
  error_reason_.clear();
}

int RequestParser::fail(int status, std::string reason) {
  error_status_ = status;
  error_reason_ = std::move(reason);
  return HPE_USER;
}

RequestParser::Status RequestParser::feed(const char* data, size_t len, size_t& consumed) {
  consumed = 0;
  if (error_status_ != 0) return Status::Error;
  if (complete_) return Status::Complete;
  if (probing_method_) return probe_method(data, len, consumed);
  const bool in_headers = !headers_done_;
  if (in_headers && method_probe_.size() < kMethodProbe && !method_probe_done_) {
    size_t n = std::min(len, kMethodProbe - method_probe_.size());
    method_probe_.append(data, n);
    if (method_probe_.find(' ') != std::string::npos) method_probe_done_ = true;
  }
  if (paused_at_headers_) {
    paused_at_headers_ = false;
    llhttp_resume(&parser_);
  }
  llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  // Look for folded lines only in what llhttp went through, so that whichever problem comes
  // first in the byte stream decides the answer, however the bytes were split.
  size_t extent = err == HPE_OK ? len : static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
  if (in_headers && scan_for_folding(data, extent)) {
    consumed = 0;
    error_status_ = 400;
    error_reason_ = "obsolete line folding or whitespace at the start of a header line";
    return Status::Error;
  }
  if (err == HPE_OK) {
    consumed = len;
    return Status::NeedMore;
  }
  if (err == HPE_PAUSED && (complete_ || paused_at_headers_)) {
    consumed = extent;
    return complete_ ? Status::Complete : Status::HeadersComplete;
  }
  if (error_status_ == 0 && err != HPE_USER && err != HPE_PAUSED && parser_._span_pos0 != nullptr &&
      parser_._span_cb0 != nullptr) {
    // llhttp stopped inside a span (target, name or value) it had not handed over yet. Hand it
    // over now, as a split buffer would have, so a limit it breaks is reported the same way
    // however the bytes arrived.
    auto* start = static_cast<const char*>(parser_._span_pos0);
    const char* stop = llhttp_get_error_pos(&parser_);
    if (start >= data && stop != nullptr && stop >= start && stop <= data + len) {
      // llhttp's span callbacks take (parser, start, end), and call ours with the length.
      using SpanCallback = int (*)(llhttp_t*, const char*, const char*);
      reinterpret_cast<SpanCallback>(parser_._span_cb0)(&parser_, start, stop);
    }
  }
  if (error_status_ == 0) {
    int status = err == HPE_INVALID_VERSION ? 505 : 400;
    // llhttp stops at the first byte that no known method starts with. A well-formed method
    // token we do not implement deserves 501, anything else 400: look at the whole token, which
    // may still be arriving.
    if (err == HPE_INVALID_METHOD) {
      probing_method_ = true;
      Status st = probe_method(nullptr, 0, consumed);
      if (st == Status::NeedMore) consumed = len;  // already kept in method_probe_
      return st;
    }
    const char* reason = llhttp_get_error_reason(&parser_);
    error_reason_ = reason ? reason : llhttp_errno_name(err);
    // llhttp files a broken line ending after the version under INVALID_VERSION too.
    if (status == 505 && error_reason_.find("CRLF") != std::string::npos) status = 400;
    error_status_ = status;
  }
  return Status::Error;
}

RequestParser::Status RequestParser::probe_method(const char* data, size_t len, size_t& consumed) {
  if (len > 0 && !method_probe_done_) {
    size_t n = std::min(len, kMethodProbe - std::min(kMethodProbe, method_probe_.size()));
    method_probe_.append(data, n);
  }
  consumed = len;
  auto sp = method_probe_.find(' ');
  std::string_view token(method_probe_.data(), sp == std::string::npos ? method_probe_.size() : sp);
  bool all_tchar = is_token(token);
  if (sp == std::string::npos && all_tchar && method_probe_.size() < kMethodProbe)
    return Status::NeedMore;  // the token is not complete yet
  probing_method_ = false;
  error_status_ = sp != std::string::npos && all_tchar ? 501 : 400;
  error_reason_ = error_status_ == 501 ? "method not implemented" : "invalid method";
  return Status::Error;
}

// RFC 9112 5.2: a line starting with SP or HTAB inside the header section (obsolete line
// folding, or whitespace before the first field) is rejected. llhttp 8 would accept it.
bool RequestParser::scan_for_folding(const char* data, size_t len) {
  size_t i = 0;
  while (i < len && !fold_scan_done_) {
    if (after_lf_) {
      char c = data[i];
      after_lf_ = false;
      if (c == ' ' || c == '\t') return true;
      if (c == '\r' || c == '\n') {
        fold_scan_done_ = true;  // end of the header section: the body may hold anything
        return false;
      }
    }
    const void* lf = std::memchr(data + i, '\n', len - i);
    if (lf == nullptr) return false;
    i = static_cast<size_t>(static_cast<const char*>(lf) - data) + 1;
    after_lf_ = true;
  }
  return false;
}

std::string RequestParser::request_line() const {
  std::string line;
  line.reserve(method_.size() + target_len_ + 10);
  line.append(method_).append(" ").append(target()).append(" HTTP/");
  line.push_back(static_cast<char>('0' + parser_.http_major));
  line.push_back('.');
  line.push_back(static_cast<char>('0' + parser_.http_minor));
  return line;
}

int RequestParser::on_message_begin(llhttp_t* p) {
  (void)p;
  return 0;
}

int RequestParser::on_url(llhttp_t* p, const char* at, size_t len) {
  auto* r = self(p);
  if (r->target_len_ == 0) {
    r->method_ = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
    r->target_off_ = static_cast<uint32_t>(r->arena_.size());
  }
  r->arena_.append(at, len);
  r->target_len_ += static_cast<uint32_t>(len);
  // "METHOD SP target SP HTTP/x.y" must fit the limit.
  if (r->limits_.request_line && r->method_.size() + r->target_len_ + 10 > r->limits_.request_line)
    return r->fail(414, "request line longer than limit_request_line");
  return 0;
}

// Header callbacks. After the headers (trailers of a chunked body) fields are checked against the
// limits but not stored: the application interface has no place for them.
int RequestParser::on_header_field(llhttp_t* p, const char* at, size_t len) {
  auto* r = self(p);
  if (!r->field_open_) {
    size_t count = r->headers_done_ ? r->trailer_count_++ : r->spans_.size();
    if (r->limits_.header_fields && count >= r->limits_.header_fields)
      return r->fail(431, "more header fields than limit_request_fields");
    r->field_open_ = true;
    r->cur_ = {static_cast<uint32_t>(r->arena_.size()), 0, 0, 0};
  }
  if (!r->headers_done_) r->arena_.append(at, len);
  r->cur_.name_len += static_cast<uint32_t>(len);
  if (r->limits_.field_size && r->cur_.name_len + 2 > r->limits_.field_size)
    return r->fail(431, "header field larger than limit_request_field_size");
  return 0;
}

int RequestParser::on_header_field_complete(llhttp_t* p) {
  auto* r = self(p);
  if (!r->field_open_ || r->cur_.name_len == 0) return r->fail(400, "empty header name");
  r->cur_.value_off = static_cast<uint32_t>(r->arena_.size());
  return 0;
}

int RequestParser::on_header_value(llhttp_t* p, const char* at, size_t len) {
  auto* r = self(p);
  if (!r->headers_done_) r->arena_.append(at, len);
  r->cur_.value_len += static_cast<uint32_t>(len);
  if (r->limits_.field_size && r->cur_.name_len + r->cur_.value_len + 2 > r->limits_.field_size)
    return r->fail(431, "header field larger than limit_request_field_size");
  return 0;
}

int RequestParser::on_header_value_complete(llhttp_t* p) {
  auto* r = self(p);
  if (!r->field_open_) return r->fail(400, "empty header name");
  r->field_open_ = false;
  if (r->headers_done_) return 0;
  Span& s = r->cur_;
  // llhttp strips leading whitespace; strip trailing SP / HTAB only (RFC 9110 5.5).
  while (s.value_len > 0) {
    char c = r->arena_[s.value_off + s.value_len - 1];
    if (c != ' ' && c != '\t') break;
    --s.value_len;
  }
  r->spans_.push_back(s);
  return 0;
}

void RequestParser::finish_headers_views() {
  headers_.clear();
  for (const auto& s : spans_) headers_.push_back({view(s.name_off, s.name_len), view(s.value_off, s.value_len)});
}

int RequestParser::on_headers_complete(llhttp_t* p) {
  auto* r = self(p);
  if (r->target_len_ == 0) r->method_ = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
  r->finish_headers_views();
  int hosts = 0;
  for (const auto& h : r->headers_) {
    if (iequals(h.name, "host")) ++hosts;
    else if (iequals(h.name, "expect") && iequals(h.value, "100-continue"))
      r->expect_continue_ = p->http_major == 1 && p->http_minor >= 1;  // 1.0: MUST ignore
  }
  if (hosts > 1) return r->fail(400, "more than one Host header");
  if (hosts == 0 && p->http_major == 1 && p->http_minor >= 1)
    return r->fail(400, "missing Host header");
  if (p->http_major != 1) return r->fail(505, "unsupported HTTP version");
  r->chunked_ = (p->flags & F_CHUNKED) != 0;
  if (r->chunked_ && p->http_minor == 0)
    return r->fail(400, "chunked transfer coding on HTTP/1.0");
  if (r->limits_.body && (p->flags & F_CONTENT_LENGTH) && p->content_length > r->limits_.body)
    return r->fail(413, "request body larger than limit_request_body");
  r->headers_done_ = true;
  if (r->streaming_ && (r->chunked_ || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0))) {
    r->paused_at_headers_ = true;
    return HPE_PAUSED;
  }
  return 0;
}

int RequestParser::on_body(llhttp_t* p, const char* at, size_t len) {
  auto* r = self(p);
  if (r->limits_.body && r->body_size_ + len > r->limits_.body)
    return r->fail(413, "request body larger than limit_request_body");
  if (!r->append_body(at, len))
    return r->fail(500, std::string("cannot store the request body: ") + std::strerror(errno));
  return 0;
}

int RequestParser::on_message_complete(llhttp_t* p) {
  auto* r = self(p);
  r->keep_alive_ = llhttp_should_keep_alive(p) != 0;
  r->complete_ = true;
  return HPE_PAUSED;  // one request at a time: the rest of the buffer is the next request
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

}  // namespace alicorn
