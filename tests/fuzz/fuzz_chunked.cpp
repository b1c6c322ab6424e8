// libFuzzer target for the chunked transfer-coding decoder: alicorn::RequestParser (llhttp's
// chunked state machine plus the parser's body and trailer handling), compiled in as for
// fuzz_request_parser.cpp.
//
// Input: byte 0 picks the feeding mode (whole, byte by byte, or pieces whose sizes come from
// byte 1) and small limits; the rest is a chunked body sent after a fixed, valid request head
//   POST /c HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: chunked\r\n\r\n
// Invariants (a violation aborts):
//   - the result does not depend on how the stream was split (status, body, error status);
//   - a reference decoder written from RFC 9112 section 7.1 (chunk-size in hex, extensions
//     skipped up to the line end, trailer fields up to the empty line; a bare LF ends a line as
//     section 2.2 allows, which llhttp accepts too) decodes the same body whenever
//     the parser says Complete, and the parser never says Complete on a stream the reference
//     finds truncated (fewer data bytes than a chunk-size announced);
//   - an error status is 400, 413 (the body limit) or 431 (a trailer past limit_request_fields /
//     limit_request_field_size: trailers count against the header limits).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/http_parser.hpp"

namespace {

using alicorn::HttpLimits;
using alicorn::RequestParser;
using Status = RequestParser::Status;

[[noreturn]] void violated(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "\n*** chunked decoder invariant violated: %s %s\n", what, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

constexpr std::string_view kHead =
    "POST /c HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: chunked\r\n\r\n";

struct Outcome {
  Status status = Status::NeedMore;
  int error_status = 0;
  std::string body;
};

Outcome parse(std::string_view stream, const std::vector<size_t>& cuts, const HttpLimits& lim) {
  RequestParser p(lim);
  Outcome o;
  size_t off = 0;
  std::vector<size_t> ends(cuts);
  ends.push_back(stream.size());
  for (size_t end : ends) {
    while (off < end) {
      size_t consumed = 0;
      Status st = p.feed(stream.data() + off, end - off, consumed);
      if (consumed > end - off) violated("consumed more than given");
      off += consumed;
      if (st == Status::Complete || st == Status::Error) {
        o.status = st;
        if (st == Status::Error) o.error_status = p.error_status();
        if (st == Status::Complete) o.body.assign(p.body());
        return o;
      }
      if (consumed == 0) violated("NeedMore without consuming its input");
    }
  }
  return o;
}

// Reference decoder. Returns 1 complete (body set), 0 truncated (needs more), -1 malformed.
// Lines end in CRLF or, as RFC 9112 section 2.2 lets a recipient accept, a bare LF: line_end
// gives the terminator's first byte and `next` the offset after it.
int reference(std::string_view s, std::string& body) {
  size_t i = 0;
  size_t next = 0;
  auto line_end = [&](size_t from) {
    size_t lf = s.find('\n', from);
    if (lf == std::string_view::npos) return lf;
    next = lf + 1;
    return lf > from && s[lf - 1] == '\r' ? lf - 1 : lf;
  };
  for (;;) {
    size_t eol = line_end(i);
    if (eol == std::string_view::npos) return 0;
    uint64_t size = 0;
    size_t j = i, digits = 0;
    for (; j < eol; ++j) {
      char c = s[j];
      int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (v < 0) break;
      if (size > (UINT64_MAX >> 4)) return -1;
      size = size * 16 + static_cast<uint64_t>(v);
      ++digits;
    }
    if (digits == 0) return -1;
    if (j < eol && s[j] != ';' && s[j] != ' ' && s[j] != '\t') return -1;
    i = next;
    if (size == 0) break;
    if (s.size() - i < size + 1) return 0;
    body.append(s.substr(i, size));
    i += size;
    if (s[i] == '\n') {
      i += 1;
    } else if (s[i] == '\r') {
      if (s.size() - i < 2) return 0;
      if (s[i + 1] != '\n') return -1;
      i += 2;
    } else {
      return -1;
    }
  }
  // trailer section: fields until an empty line
  for (;;) {
    size_t eol = line_end(i);
    if (eol == std::string_view::npos) return 0;
    if (eol == i) return 1;
    i = next;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t cfg = data[0];
  uint32_t seed = data[1] * 2654435761u + static_cast<uint32_t>(size);
  std::string_view chunked(reinterpret_cast<const char*>(data) + 2, size - 2);
  std::string stream(kHead);
  stream.append(chunked);

  HttpLimits lim;
  if (cfg & 1) lim.body = 64;  // reach the 413 path with short inputs
  lim.spool_threshold = 0;     // keep the body in memory, to compare it

  std::vector<size_t> cuts;
  if ((cfg >> 1) & 1) {
    for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  } else if ((cfg >> 2) & 1) {
    for (size_t off = 0;;) {
      seed ^= seed << 13;
      seed ^= seed >> 17;
      seed ^= seed << 5;
      off += 1 + seed % 17;
      if (off >= stream.size()) break;
      cuts.push_back(off);
    }
  }
  Outcome whole = parse(stream, {}, lim);
  Outcome split = parse(stream, cuts, lim);
  if (whole.status != split.status) violated("status depends on the split");
  if (whole.status == Status::Complete && whole.body != split.body)
    violated("body depends on the split");
  if (whole.status == Status::Error && whole.error_status != split.error_status)
    violated("error status depends on the split");
  if (whole.status == Status::Error && whole.error_status != 400 && whole.error_status != 413 &&
      whole.error_status != 431)
    violated("unexpected error status", std::to_string(whole.error_status));

  std::string ref_body;
  int ref = reference(chunked, ref_body);
  if (whole.status == Status::Complete) {
    if (ref == 0) violated("complete on a truncated chunked body");
    if (ref == 1 && ref_body != whole.body)
      violated("body differs from the reference decoding",
               std::to_string(ref_body.size()) + " vs " + std::to_string(whole.body.size()));
    if (lim.body != 0 && whole.body.size() > lim.body) violated("body over the limit accepted");
  }
  return 0;
}
