// RequestParser: one HTTP/1.x request at a time from a byte stream, strictly. Pure: no Python,
// no sockets, so it is unit-tested and fuzzed on its own.
//
// Who parses what:
//   - the request line (RFC 9112 3) is parsed here, byte by byte: llhttp knows only its own list
//     of methods and refuses obs-text in the target, and both are valid HTTP. llhttp is then fed a
//     canonical "GET / HTTP/1.x" line so that it starts on the header section;
//   - the header section and a Content-Length body: llhttp with every lenient flag off, plus the
//     checks llhttp leaves to the application (Host, Content-Type once, Transfer-Encoding, limits);
//   - a chunked body (RFC 9112 7.1) is decoded here: llhttp 8 refuses the optional whitespace
//     around chunk extensions (BWS) that the grammar allows, and its trailer fields are checked
//     (forbidden framing/routing fields refused) without ever reaching the header list.
// Every decision is taken at a byte, so the outcome does not depend on how TCP cut the stream.
#pragma once

#include <llhttp.h>
#include <strings.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/spare_buffers.hpp"

namespace alicorn {

struct HttpLimits {
  size_t request_line = 4094;   // method + target + version; 0 = unlimited
  size_t header_fields = 100;   // number of fields; 0 = unlimited
  size_t field_size = 8190;     // bytes in one "name: value" line; 0 = unlimited
  uint64_t body = 0;            // 0 = unlimited
  size_t spool_threshold = 1 << 20;  // bodies larger than this go to a temporary file; 0 = never
  // Methods (Gunicorn's permit_unconventional_http_method / casefold_http_method). Any RFC 9110
  // token is a method the app may see; unless permitted, one with a lower-case letter or '#',
  // or shorter than 3 / longer than 20 bytes, is refused with 400, as Gunicorn does.
  bool permit_unconventional_method = false;
  bool casefold_method = false;  // upper-case the method before the app sees it
};

struct HttpHeader {
  std::string_view name;
  std::string_view value;
};

class RequestParser {
 public:
  enum class Status { NeedMore, HeadersComplete, Complete, Error };

  explicit RequestParser(HttpLimits limits = {});
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parse bytes. Returns Complete once a whole request (headers and body) is in; `consumed`
  // then says how many bytes of `data` belong to it (the rest is the next, pipelined request).
  // In streaming mode a request with a body stops once at HeadersComplete: feed the body bytes
  // afterwards (they collect in body_buffer() for the reader to consume) until Complete.
  // After Complete or Error, call reset() before feeding the next request.
  Status feed(const char* data, size_t len, size_t& consumed);
  void reset();
  // reset(), and the buffers' memory goes to this thread's spare buffers (util/spare_buffers.hpp):
  // an idle keep-alive connection holds none. The next feed() takes spare ones back.
  void release_buffers();
  // Streaming mode (kept across reset()): stop after the headers of a request with a body, and
  // never spool, since the reader consumes the body as it arrives.
  void set_streaming(bool on) { streaming_ = on; }
  bool message_complete() const { return complete_; }
  // The body bytes received and not yet consumed by a streaming reader.
  std::string& body_buffer() { return body_; }

  // Valid after Complete (headers are valid after headers_complete()).
  std::string_view method() const { return view(0, method_len_); }
  std::string_view target() const { return view(method_len_, target_len_); }
  int http_major() const { return major_; }
  int http_minor() const { return minor_; }  // 1.2 .. 1.9 are served as 1.1 (RFC 9112 2.3)
  // The llhttp_method_t of a method llhttp knows (a cache index), -1 for any other token.
  int method_id() const { return method_id_; }
  const std::vector<HttpHeader>& headers() const { return headers_; }
  // The body: in memory (body()) unless it outgrew spool_threshold, then in an unlinked
  // temporary file (body_fd() >= 0, positioned at its end). body_size() counts either.
  std::string_view body() const { return body_; }
  int body_fd() const { return body_fd_; }
  uint64_t body_size() const { return body_size_; }
  // Hand the temporary file over to the caller (who closes it); -1 when the body is in memory.
  int take_body_fd() {
    int fd = body_fd_;
    body_fd_ = -1;
    return fd;
  }
  bool keep_alive() const { return keep_alive_; }
  bool chunked() const { return chunked_; }
  bool expect_continue() const { return expect_continue_; }
  bool headers_complete() const { return headers_done_; }
  // The request line as sent, e.g. "GET /x?y=1 HTTP/1.1" (for the access log).
  std::string request_line() const;

  // For the caller that finds a parsed request invalid on other grounds (conflicting forwarded
  // headers): the parser is in the Error state from now on.
  void reject(int status, std::string reason) {
    error_status_ = status;
    error_reason_ = std::move(reason);
  }

  // Valid after Error: the status to answer (400, 413, 414, 431, 501, 505) and why.
  int error_status() const { return error_status_; }
  const std::string& error_reason() const { return error_reason_; }

 private:
  static int on_message_begin(llhttp_t*);
  static int on_header_field(llhttp_t*, const char*, size_t);
  static int on_header_field_complete(llhttp_t*);
  static int on_header_value(llhttp_t*, const char*, size_t);
  static int on_header_value_complete(llhttp_t*);
  static int on_headers_complete(llhttp_t*);
  static int on_body(llhttp_t*, const char*, size_t);
  static int on_message_complete(llhttp_t*);
  static const llhttp_settings_t settings_;

  std::string_view view(uint32_t off, uint32_t len) const {
    return std::string_view(arena_).substr(off, len);
  }
  int fail(int status, std::string reason);
  size_t parse_request_line(const char* data, size_t len);
  bool finish_request_line();
  size_t parse_chunked(const char* data, size_t len);
  bool check_transfer_encoding();
  bool scan_for_folding(const char* data, size_t len);
  bool append_body(const char* at, size_t len);
  void finish_headers_views();

  // Request-line states (parse_request_line).
  enum class Line : uint8_t { Start, StartLf, Method, TargetStart, Target, Version, Cr, Lf, Done };
  // Chunked-body states (parse_chunked).
  enum class Chunk : uint8_t {
    Size, SizeMore, AfterValue, BwsBeforeSemi, ExtNameStart, ExtName, AfterName, ExtValueStart,
    ExtValue, Quoted, QuotedEscape, SizeLf, Data, DataCr, DataLf, TrailerStart, TrailerName,
    TrailerOws, TrailerValue, TrailerLf, EndLf
  };

  HttpLimits limits_;
  llhttp_t parser_{};
  std::string arena_;  // target and header bytes, reused across requests
  std::string body_;
  int body_fd_ = -1;
  uint64_t body_size_ = 0;
  struct Span {
    uint32_t name_off, name_len, value_off, value_len;
  };
  std::vector<Span> spans_;
  // The spare-buffer pools of release_buffers() (a typical request's buffers are kept, larger
  // ones freed).
  struct Spares {
    using Arenas = SpareBuffers<std::string, 8192>;
    using Spans = SpareBuffers<std::vector<Span>, 128>;
    using Headers = SpareBuffers<std::vector<HttpHeader>, 128>;
  };
  Span cur_{};                 // the field being parsed
  bool field_open_ = false;    // cur_ has name bytes
  size_t trailer_count_ = 0;
  bool after_lf_ = false;      // obs-fold scan state, across feeds
  bool fold_scan_done_ = false;
  std::vector<HttpHeader> headers_;
  // The arena starts with the method then the target (no separator), then the header bytes.
  uint32_t method_len_ = 0, target_len_ = 0;
  int method_id_ = -1;
  int major_ = 0, minor_ = 0;
  Line line_ = Line::Start;
  uint8_t version_pos_ = 0;    // bytes of "HTTP/d.d" matched
  Chunk chunk_ = Chunk::Size;
  bool in_chunked_ = false;    // the chunked body is being decoded (llhttp is done)
  uint64_t chunk_left_ = 0;    // size of the chunk being read, then the bytes still to come
  size_t chunk_line_ = 0;      // bytes in the current chunk-size line (extensions bounded)
  size_t trailer_field_ = 0;   // bytes of the trailer field being read (name + value)
  std::string trailer_name_;   // its name, up to kTrailerNameKept bytes (to spot forbidden ones)
  bool headers_done_ = false;
  bool complete_ = false;
  bool streaming_ = false;
  bool paused_at_headers_ = false;
  bool keep_alive_ = false;
  bool chunked_ = false;
  bool expect_continue_ = false;
  bool released_ = true;  // no buffers taken yet (a new parser) or given back (release_buffers)
  int error_status_ = 0;
  std::string error_reason_;
};

// ASCII case-insensitive equality, for header names and tokens.
inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// RFC 9110 token (tchar+): what methods and header names are made of.
inline constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<size_t>(c)] = t[static_cast<size_t>(c - 'A' + 'a')] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

inline bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!kTokenChars[static_cast<unsigned char>(c)]) return false;
  return true;
}

// Reason phrase for a status code ("Not Found"); "Unknown" for codes it does not know.
std::string_view reason_phrase(int status);

}  // namespace alicorn
