#include "http/http_parser.hpp"

#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "util/spare_buffers.hpp"

namespace alicorn {
namespace {

RequestParser* self(llhttp_t* p) { return static_cast<RequestParser*>(p->data); }

// Where request bodies over spool_threshold go: $TMPDIR, or /tmp.
const char* spool_dir() {
  const char* dir = std::getenv("TMPDIR");
  return dir == nullptr || *dir == '\0' ? "/tmp" : dir;
}

// The reason for a 500 when the body cannot be stored (disk full, no such folder, out of fds),
// for the log: names the folder and errno.
std::string spool_failure() {
  int saved = errno;
  return std::string("cannot store the request body in ") + spool_dir() + ": " +
         std::strerror(saved);
}

// An unlinked temporary file in $TMPDIR (or /tmp): gone from the disk as soon as it is closed.
int open_spool_file() {
  const char* dir = spool_dir();
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

// The llhttp id of an HTTP method llhttp knows (used as a cache index), -1 for any other token.
int llhttp_method_id(std::string_view m) {
  struct Known {
    std::string_view name;
    int id;
  };
  static constexpr Known kKnown[] = {
#define ALICORN_METHOD(NUM, NAME, STRING) {#STRING, NUM},
      HTTP_METHOD_MAP(ALICORN_METHOD)
#undef ALICORN_METHOD
  };
  for (const auto& k : kKnown)
    if (k.name == m) return k.id;
  return -1;
}

std::string fmt_version_reason(int major, int minor) {
  std::string r = "HTTP version ";
  r.push_back(static_cast<char>('0' + major));
  r.push_back('.');
  r.push_back(static_cast<char>('0' + minor));
  r += " not supported";
  return r;
}

int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

const llhttp_settings_t RequestParser::settings_ = [] {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_message_begin = &RequestParser::on_message_begin;
  s.on_header_field = &RequestParser::on_header_field;
  s.on_header_field_complete = &RequestParser::on_header_field_complete;
  s.on_header_value = &RequestParser::on_header_value;
  s.on_header_value_complete = &RequestParser::on_header_value_complete;
  s.on_headers_complete = &RequestParser::on_headers_complete;
  s.on_body = &RequestParser::on_body;
  s.on_message_complete = &RequestParser::on_message_complete;
  return s;
}();

// No buffer up front: a connection that has not sent a byte yet holds none (feed() takes spare
// ones from the pool, or they grow on the first request).
RequestParser::RequestParser(HttpLimits limits) : limits_(limits) { reset(); }

void RequestParser::release_buffers() {
  reset();
  if (released_) return;
  released_ = true;
  Spares::Arenas::put(arena_);
  Spares::Spans::put(spans_);
  Spares::Headers::put(headers_);
  std::string().swap(body_);  // a body can be large: never pooled
  std::string().swap(trailer_name_);
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
  method_len_ = target_len_ = 0;
  method_id_ = -1;
  major_ = minor_ = 0;
  line_ = Line::Start;
  version_pos_ = 0;
  chunk_ = Chunk::Size;
  in_chunked_ = false;
  chunk_left_ = 0;
  chunk_line_ = 0;
  trailer_field_ = 0;
  trailer_name_.clear();
  headers_done_ = complete_ = keep_alive_ = chunked_ = expect_continue_ = false;
  paused_at_headers_ = false;
  field_open_ = false;
  trailer_count_ = 0;
  after_lf_ = false;
  fold_scan_done_ = false;
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
  if (released_) {
    released_ = false;
    Spares::Arenas::take(arena_);
    Spares::Spans::take(spans_);
    Spares::Headers::take(headers_);
  }
  size_t off = 0;
  if (line_ != Line::Done) {
    off = parse_request_line(data, len);
    if (error_status_ != 0) return Status::Error;
    if (line_ != Line::Done) {
      consumed = len;
      return Status::NeedMore;
    }
  }
  if (in_chunked_) {
    size_t used = parse_chunked(data + off, len - off);
    if (error_status_ != 0) return Status::Error;
    consumed = complete_ ? off + used : len;
    return complete_ ? Status::Complete : Status::NeedMore;
  }
  if (paused_at_headers_) {
    paused_at_headers_ = false;
    llhttp_resume(&parser_);
  }
  const char* at = data + off;
  const size_t n = len - off;
  const bool in_headers = !headers_done_;
  llhttp_errno_t err = llhttp_execute(&parser_, at, n);
  // Look for folded lines only in what llhttp went through, so that whichever problem comes
  // first in the byte stream decides the answer, however the bytes were split.
  size_t extent = err == HPE_OK ? n : static_cast<size_t>(llhttp_get_error_pos(&parser_) - at);
  if (in_headers && scan_for_folding(at, extent)) {
    error_status_ = 400;
    error_reason_ = "obsolete line folding or whitespace at the start of a header line";
    return Status::Error;
  }
  if (err == HPE_OK) {
    consumed = len;
    return Status::NeedMore;
  }
  if (err == HPE_PAUSED && in_chunked_) {
    // The header section is done and llhttp skipped the body: the chunks are ours.
    size_t body_at = off + extent;
    if (streaming_) {
      consumed = body_at;
      return Status::HeadersComplete;
    }
    size_t used = parse_chunked(data + body_at, len - body_at);
    if (error_status_ != 0) return Status::Error;
    consumed = complete_ ? body_at + used : len;
    return complete_ ? Status::Complete : Status::NeedMore;
  }
  if (err == HPE_PAUSED && (complete_ || paused_at_headers_)) {
    consumed = off + extent;
    return complete_ ? Status::Complete : Status::HeadersComplete;
  }
  if (error_status_ == 0 && err != HPE_USER && err != HPE_PAUSED && parser_._span_pos0 != nullptr &&
      parser_._span_cb0 != nullptr) {
    // llhttp stopped inside a span (name or value) it had not handed over yet. Hand it over
    // now, as a split buffer would have, so a limit it breaks is reported the same way however
    // the bytes arrived.
    auto* start = static_cast<const char*>(parser_._span_pos0);
    const char* stop = llhttp_get_error_pos(&parser_);
    if (start >= at && stop != nullptr && stop >= start && stop <= at + n) {
      // llhttp's span callbacks take (parser, start, end), and call ours with the length.
      using SpanCallback = int (*)(llhttp_t*, const char*, const char*);
      reinterpret_cast<SpanCallback>(parser_._span_cb0)(&parser_, start, stop);
    }
  }
  if (error_status_ == 0) {
    const char* reason = llhttp_get_error_reason(&parser_);
    error_reason_ = reason ? reason : llhttp_errno_name(err);
    error_status_ = 400;
  }
  return Status::Error;
}

// ---------------------------------------------------------------------------------------------
// Request line: method SP request-target SP HTTP-version CRLF (RFC 9112 3), after any empty
// lines (2.2). One SP exactly between the parts; the target is any bytes but CTLs, SP and DEL
// (obs-text included: nginx and Gunicorn pass it through, and PEP 3333 gives it to the app as
// latin-1); the version is HTTP/1.x. Returns the bytes used; the line ends with line_ == Done.

namespace {
constexpr std::string_view kHttpSlash = "HTTP/";
constexpr size_t kMaxConventionalMethod = 20;  // Gunicorn's bound on a method's length
constexpr size_t kMinConventionalMethod = 3;

bool target_byte(unsigned char c) { return c > 0x20 && c != 0x7f; }

// Method bytes without permit_unconventional_http_method: tchar less lower-case and '#'.
constexpr std::array<bool, 256> kConventionalMethodChars = [] {
  std::array<bool, 256> t = kTokenChars;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<size_t>(c)] = false;
  t['#'] = false;
  return t;
}();
}  // namespace

size_t RequestParser::parse_request_line(const char* data, size_t len) {
  const size_t limit = limits_.request_line;
  size_t i = 0;
  while (i < len) {
    const auto c = static_cast<unsigned char>(data[i]);
    switch (line_) {
      case Line::Start:
        if (c == '\r') {
          line_ = Line::StartLf;
          ++i;
          continue;
        }
        if (c == ' ' || c == '\t') {
          fail(400, "whitespace before the method");
          return i;
        }
        line_ = Line::Method;
        continue;  // this byte starts the method
      case Line::StartLf:
        if (c != '\n') {
          fail(400, "bare CR before the request line");
          return i;
        }
        line_ = Line::Start;
        ++i;
        continue;
      case Line::Method: {
        // The run of method bytes at once (the hot path), with the limits checked at the byte
        // that breaks them, so that the answer does not depend on how the bytes were split.
        const bool permit = limits_.permit_unconventional_method;
        const auto& chars = permit ? kTokenChars : kConventionalMethodChars;
        size_t j = i;
        while (j < len && chars[static_cast<unsigned char>(data[j])]) ++j;
        if (j > i) {
          const size_t run = j - i;
          // The method length at which a limit breaks: 21 (400) or the request line's (414).
          const size_t too_long = permit ? SIZE_MAX : kMaxConventionalMethod + 1;
          const size_t too_wide = limit && limit > 10 ? limit - 9 : (limit ? 1 : SIZE_MAX);
          const size_t first_bad = std::min(too_long, too_wide);
          if (method_len_ + run >= first_bad) {
            if (first_bad == too_long)
              fail(400, "method longer than 20 bytes (permit_unconventional_http_method allows it)");
            else
              fail(414, "request line longer than limit_request_line");
            return i + (first_bad - method_len_ - 1);
          }
          size_t at = arena_.size();
          arena_.append(data + i, run);
          if (limits_.casefold_method)
            for (size_t k = at; k < arena_.size(); ++k)
              if (arena_[k] >= 'a' && arena_[k] <= 'z') arena_[k] = static_cast<char>(arena_[k] - 'a' + 'A');
          method_len_ += static_cast<uint32_t>(run);
          i = j;
          continue;
        }
        if (c == ' ') {
          if (method_len_ == 0) {
            fail(400, "empty method");
            return i;
          }
          if (!permit && method_len_ < kMinConventionalMethod) {
            fail(400, "method shorter than 3 bytes (permit_unconventional_http_method allows it)");
            return i;
          }
          line_ = Line::TargetStart;
          ++i;
          continue;
        }
        if (kTokenChars[c]) {  // a token byte refused only by the conventional rule
          fail(400, "method with a lower-case letter or '#' (permit_unconventional_http_method "
                    "allows it)");
          return i;
        }
        fail(400, "invalid method");
        return i;
      }
      case Line::TargetStart:
        if (c == ' ') {
          fail(400, "more than one space between the method and the target");
          return i;
        }
        line_ = Line::Target;
        continue;
      case Line::Target: {
        // The hot loop: take the run of target bytes at once.
        size_t j = i;
        while (j < len && target_byte(static_cast<unsigned char>(data[j]))) ++j;
        if (j > i) {
          arena_.append(data + i, j - i);
          target_len_ += static_cast<uint32_t>(j - i);
          if (limit && method_len_ + target_len_ + 10 > limit) {
            fail(414, "request line longer than limit_request_line");
            return j;
          }
          i = j;
          continue;
        }
        if (c != ' ') {
          fail(400, c == '\r' || c == '\n' ? "request line without an HTTP version"
                                           : "control byte in the request target");
          return i;
        }
        line_ = Line::Version;
        version_pos_ = 0;
        ++i;
        continue;
      }
      case Line::Version:
        if (version_pos_ == 0 && len - i >= 10 && std::memcmp(data + i, "HTTP/1.", 7) == 0 &&
            (data[i + 7] == '1' || data[i + 7] == '0') && data[i + 8] == '\r' &&
            data[i + 9] == '\n') {  // the usual "HTTP/1.1\r\n" in one step
          major_ = 1;
          minor_ = data[i + 7] - '0';
          i += 10;
          finish_request_line();
          return i;
        }
        if (version_pos_ < kHttpSlash.size()) {
          if (c != static_cast<unsigned char>(kHttpSlash[version_pos_])) {
            fail(400, version_pos_ == 0 && c == ' '
                          ? "more than one space between the target and the version"
                          : "invalid HTTP version");
            return i;
          }
        } else if (version_pos_ == 5 || version_pos_ == 7) {
          if (c < '0' || c > '9') {
            fail(400, "invalid HTTP version");
            return i;
          }
          (version_pos_ == 5 ? major_ : minor_) = c - '0';
        } else if (c != '.') {
          fail(400, "invalid HTTP version");
          return i;
        }
        if (++version_pos_ == 8) line_ = Line::Cr;
        ++i;
        continue;
      case Line::Cr:
        if (c != '\r') {
          fail(400, c == '\n' ? "request line ends in a bare LF" : "invalid HTTP version");
          return i;
        }
        line_ = Line::Lf;
        ++i;
        continue;
      case Line::Lf:
        if (c != '\n') {
          fail(400, "request line not ended by CRLF");
          return i;
        }
        ++i;
        if (!finish_request_line()) return i;
        return i;
      case Line::Done:
        return i;
    }
  }
  return i;
}

// The whole line is in: check what needs all of it, then start llhttp on the header section.
bool RequestParser::finish_request_line() {
  if (major_ != 1) {
    fail(505, fmt_version_reason(major_, minor_));
    return false;
  }
  if (minor_ > 1) minor_ = 1;  // RFC 9112 2.3: a higher minor version is served as 1.1
  std::string_view m = method();
  std::string_view t = target();
  // RFC 9112 3.2: origin-form (/path), absolute-form (scheme://...), authority-form (CONNECT
  // only) and asterisk-form (OPTIONS only).
  if (t == "*") {
    if (m != "OPTIONS") {
      fail(400, "asterisk-form target on a method other than OPTIONS");
      return false;
    }
  } else if (m == "CONNECT") {
    if (t.find('/') != std::string_view::npos || t.find(':') == std::string_view::npos) {
      fail(400, "CONNECT needs an authority-form target (host:port)");
      return false;
    }
  } else if (t.front() != '/') {
    size_t k = 0;
    auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    if (!alpha(t[0])) k = t.size();
    while (k < t.size() && (alpha(t[k]) || (t[k] >= '0' && t[k] <= '9') || t[k] == '+' ||
                            t[k] == '-' || t[k] == '.'))
      ++k;
    if (k == 0 || k >= t.size() || t.substr(k, 3) != "://") {
      fail(400, "invalid request target (not origin-form, absolute-form or asterisk-form)");
      return false;
    }
  }
  method_id_ = llhttp_method_id(m);
  line_ = Line::Done;
  after_lf_ = true;  // the header section starts on a new line (obs-fold scan)
  // llhttp parses the header section after a canonical request line of the same version.
  static constexpr char kLine10[] = "GET / HTTP/1.0\r\n";
  static constexpr char kLine11[] = "GET / HTTP/1.1\r\n";
  const char* line = minor_ == 0 ? kLine10 : kLine11;
  if (llhttp_execute(&parser_, line, sizeof kLine11 - 1) != HPE_OK) {
    fail(500, "internal error: llhttp refused the canonical request line");
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Chunked body (RFC 9112 7.1):
//   chunked-body = *chunk last-chunk trailer-section CRLF
//   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//   chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//   chunk-ext-val = token / quoted-string
// Extensions are checked and ignored. Trailer fields are checked like header fields (token
// name, no space before the colon, no control bytes, no obs-fold, the field limits) and then
// dropped, never merged into the header list; the fields that frame or route a message
// (Content-Length, Transfer-Encoding, Host) are refused there, since a proxy that did merge
// them would disagree with us about the message (RFC 9110 6.5.1).

namespace {
constexpr size_t kMaxChunkLine = 4096;      // a chunk-size line with its extensions
constexpr size_t kTrailerNameKept = 32;     // enough to recognise the forbidden names
bool ws(unsigned char c) { return c == ' ' || c == '\t'; }
bool qdtext(unsigned char c) {
  return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
         (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}
bool field_vchar(unsigned char c) { return (c > 0x20 && c != 0x7f); }  // VCHAR / obs-text
bool forbidden_trailer(std::string_view name) {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "host");
}
}  // namespace

size_t RequestParser::parse_chunked(const char* data, size_t len) {
  size_t i = 0;
  auto bad = [&](const char* why) {
    fail(400, why);
    return i;
  };
  while (i < len) {
    const auto c = static_cast<unsigned char>(data[i]);
    if (chunk_ <= Chunk::SizeLf && ++chunk_line_ > kMaxChunkLine)
      return bad("chunk-size line (with extensions) longer than 4096 bytes");
    switch (chunk_) {
      case Chunk::Size: {
        int h = hexval(c);
        if (h < 0) return bad("invalid chunk size");
        chunk_left_ = static_cast<uint64_t>(h);
        chunk_ = Chunk::SizeMore;
        break;
      }
      case Chunk::SizeMore: {
        int h = hexval(c);
        if (h < 0) {
          chunk_ = Chunk::AfterValue;
          continue;  // the size ends here: this byte is CR, BWS or ';'
        }
        if (chunk_left_ > (UINT64_MAX >> 5)) return bad("chunk size too large");
        chunk_left_ = chunk_left_ * 16 + static_cast<uint64_t>(h);
        break;
      }
      case Chunk::AfterValue:  // after the size, an extension name or an extension value
        if (c == '\r') chunk_ = Chunk::SizeLf;
        else if (c == ';') chunk_ = Chunk::ExtNameStart;
        else if (ws(c)) chunk_ = Chunk::BwsBeforeSemi;
        else return bad("invalid chunk-size line");
        break;
      case Chunk::BwsBeforeSemi:
        if (c == ';') chunk_ = Chunk::ExtNameStart;
        else if (!ws(c)) return bad("whitespace in a chunk-size line not followed by ';'");
        break;
      case Chunk::ExtNameStart:
        if (kTokenChars[c]) chunk_ = Chunk::ExtName;
        else if (!ws(c)) return bad("invalid chunk extension name");
        break;
      case Chunk::ExtName:
        if (kTokenChars[c]) break;
        if (ws(c)) chunk_ = Chunk::AfterName;
        else if (c == '=') chunk_ = Chunk::ExtValueStart;
        else if (c == ';') chunk_ = Chunk::ExtNameStart;
        else if (c == '\r') chunk_ = Chunk::SizeLf;
        else return bad("invalid chunk extension");
        break;
      case Chunk::AfterName:
        if (c == '=') chunk_ = Chunk::ExtValueStart;
        else if (c == ';') chunk_ = Chunk::ExtNameStart;
        else if (!ws(c)) return bad("invalid chunk extension");
        break;
      case Chunk::ExtValueStart:
        if (c == '"') chunk_ = Chunk::Quoted;
        else if (kTokenChars[c]) chunk_ = Chunk::ExtValue;
        else if (!ws(c)) return bad("invalid chunk extension value");
        break;
      case Chunk::ExtValue:
        if (kTokenChars[c]) break;
        chunk_ = Chunk::AfterValue;
        continue;
      case Chunk::Quoted:
        if (c == '"') chunk_ = Chunk::AfterValue;
        else if (c == '\\') chunk_ = Chunk::QuotedEscape;
        else if (!qdtext(c)) return bad("invalid byte in a quoted chunk extension value");
        break;
      case Chunk::QuotedEscape:
        if (!(ws(c) || field_vchar(c))) return bad("invalid quoted-pair in a chunk extension");
        chunk_ = Chunk::Quoted;
        break;
      case Chunk::SizeLf:
        if (c != '\n') return bad("chunk-size line not ended by CRLF");
        chunk_line_ = 0;
        if (chunk_left_ == 0) {
          chunk_ = Chunk::TrailerStart;
        } else {
          if (limits_.body && body_size_ + chunk_left_ > limits_.body) {
            fail(413, "request body larger than limit_request_body");
            return i;
          }
          chunk_ = Chunk::Data;
        }
        break;
      case Chunk::Data: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(chunk_left_, len - i));
        if (!append_body(data + i, take)) {
          fail(500, spool_failure());
          return i;
        }
        chunk_left_ -= take;
        i += take;
        if (chunk_left_ == 0) chunk_ = Chunk::DataCr;
        continue;
      }
      case Chunk::DataCr:
        if (c != '\r') return bad("chunk data not followed by CRLF");
        chunk_ = Chunk::DataLf;
        break;
      case Chunk::DataLf:
        if (c != '\n') return bad("chunk data not followed by CRLF");
        chunk_ = Chunk::Size;
        break;
      case Chunk::TrailerStart:
        if (c == '\r') {
          chunk_ = Chunk::EndLf;
          break;
        }
        if (ws(c)) return bad("obsolete line folding or whitespace at the start of a trailer line");
        if (!kTokenChars[c]) return bad("invalid trailer field name");
        if (limits_.header_fields && trailer_count_ >= limits_.header_fields) {
          fail(431, "more trailer fields than limit_request_fields");
          return i;
        }
        ++trailer_count_;
        trailer_field_ = 0;
        trailer_name_.clear();
        chunk_ = Chunk::TrailerName;
        continue;
      case Chunk::TrailerName:
        if (c == ':') {
          if (forbidden_trailer(trailer_name_)) {
            fail(400, trailer_name_ + " is not allowed in a chunked trailer");
            return i;
          }
          chunk_ = Chunk::TrailerOws;
          break;
        }
        if (!kTokenChars[c]) return bad("invalid trailer field name");
        if (trailer_name_.size() < kTrailerNameKept) trailer_name_.push_back(static_cast<char>(c));
        if (limits_.field_size && ++trailer_field_ + 2 > limits_.field_size) {
          fail(431, "trailer field larger than limit_request_field_size");
          return i;
        }
        break;
      case Chunk::TrailerOws:
        if (ws(c)) break;
        chunk_ = Chunk::TrailerValue;
        continue;
      case Chunk::TrailerValue:
        if (c == '\r') {
          chunk_ = Chunk::TrailerLf;
          break;
        }
        if (!(ws(c) || field_vchar(c))) return bad("invalid byte in a trailer field value");
        if (limits_.field_size && ++trailer_field_ + 2 > limits_.field_size) {
          fail(431, "trailer field larger than limit_request_field_size");
          return i;
        }
        break;
      case Chunk::TrailerLf:
        if (c != '\n') return bad("trailer field not ended by CRLF");
        chunk_ = Chunk::TrailerStart;
        break;
      case Chunk::EndLf:
        if (c != '\n') return bad("chunked body not ended by CRLF");
        complete_ = true;
        in_chunked_ = false;
        return i + 1;
    }
    ++i;
  }
  return i;
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
  line.reserve(method_len_ + target_len_ + 10);
  line.append(method()).append(" ").append(target()).append(" HTTP/");
  line.push_back(static_cast<char>('0' + major_));
  line.push_back('.');
  line.push_back(static_cast<char>('0' + minor_));
  return line;
}

int RequestParser::on_message_begin(llhttp_t* p) {
  (void)p;
  return 0;
}

// Header callbacks (the header section only: a chunked body and its trailer are decoded by
// parse_chunked, never by llhttp).
int RequestParser::on_header_field(llhttp_t* p, const char* at, size_t len) {
  auto* r = self(p);
  if (!r->field_open_) {
    if (r->limits_.header_fields && r->spans_.size() >= r->limits_.header_fields)
      return r->fail(431, "more header fields than limit_request_fields");
    r->field_open_ = true;
    r->cur_ = {static_cast<uint32_t>(r->arena_.size()), 0, 0, 0};
  }
  r->arena_.append(at, len);
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
  r->arena_.append(at, len);
  r->cur_.value_len += static_cast<uint32_t>(len);
  if (r->limits_.field_size && r->cur_.name_len + r->cur_.value_len + 2 > r->limits_.field_size)
    return r->fail(431, "header field larger than limit_request_field_size");
  return 0;
}

int RequestParser::on_header_value_complete(llhttp_t* p) {
  auto* r = self(p);
  if (!r->field_open_) return r->fail(400, "empty header name");
  r->field_open_ = false;
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

// Transfer-Encoding (RFC 9112 6.1, 6.3): the body is read as chunked or by Content-Length,
// never anything else. The codings of every Transfer-Encoding field, in order, must end in one
// chunked; a coding after chunked (or chunked twice) makes the length unknowable (400), a
// coding before it that we do not decode (gzip, ...) gets 501. Called when there is one.
bool RequestParser::check_transfer_encoding() {
  bool chunked_last = false, twice = false;
  std::string_view unsupported;
  for (const auto& h : headers_) {
    if (!iequals(h.name, "transfer-encoding")) continue;
    std::string_view rest = h.value;
    while (true) {
      size_t comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      size_t semi = item.find(';');
      std::string_view coding = item.substr(0, semi);
      while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t')) coding.remove_prefix(1);
      while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t')) coding.remove_suffix(1);
      if (!coding.empty() || semi != std::string_view::npos) {  // empty list elements are allowed
        if (!is_token(coding)) {
          fail(400, "invalid Transfer-Encoding");
          return false;
        }
        if (chunked_last) twice = true;  // something after chunked
        if (iequals(coding, "chunked")) {
          if (semi != std::string_view::npos) {
            fail(400, "chunked transfer coding with parameters");
            return false;
          }
          chunked_last = true;
        } else {
          chunked_last = false;
          if (unsupported.empty()) unsupported = coding;
        }
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  if (minor_ == 0) {
    fail(400, "Transfer-Encoding on HTTP/1.0");
    return false;
  }
  if (twice || !chunked_last) {
    fail(400, "Transfer-Encoding does not end in a single chunked");
    return false;
  }
  if (!unsupported.empty()) {
    fail(501, "transfer coding " + std::string(unsupported) + " not implemented");
    return false;
  }
  chunked_ = true;
  return true;
}

int RequestParser::on_headers_complete(llhttp_t* p) {
  auto* r = self(p);
  r->finish_headers_views();
  int hosts = 0, content_types = 0;
  bool te = false;
  for (const auto& h : r->headers_) {
    if (iequals(h.name, "host")) ++hosts;
    else if (iequals(h.name, "content-type")) ++content_types;
    else if (iequals(h.name, "transfer-encoding")) te = true;
    else if (iequals(h.name, "expect") && iequals(h.value, "100-continue"))
      r->expect_continue_ = r->minor_ >= 1;  // 1.0: MUST ignore
  }
  if (hosts > 1) return r->fail(400, "more than one Host header");
  if (hosts == 0 && r->minor_ >= 1) return r->fail(400, "missing Host header");
  if (content_types > 1) return r->fail(400, "more than one Content-Type header");
  if (te && !r->check_transfer_encoding()) return HPE_USER;
  if (r->limits_.body && (p->flags & F_CONTENT_LENGTH) && p->content_length > r->limits_.body)
    return r->fail(413, "request body larger than limit_request_body");
  r->headers_done_ = true;
  if (r->chunked_) {
    r->in_chunked_ = true;
    return 1;  // llhttp skips the body (and completes): parse_chunked decodes it
  }
  if (r->streaming_ && (p->flags & F_CONTENT_LENGTH) && p->content_length > 0) {
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
    return r->fail(500, spool_failure());
  return 0;
}

int RequestParser::on_message_complete(llhttp_t* p) {
  auto* r = self(p);
  r->keep_alive_ = llhttp_should_keep_alive(p) != 0;
  if (!r->in_chunked_) r->complete_ = true;  // else complete once parse_chunked is
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
