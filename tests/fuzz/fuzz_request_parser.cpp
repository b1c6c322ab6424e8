// libFuzzer target for alicorn::RequestParser (core/src/http/http_parser.cpp + llhttp, compiled in
// directly; see tests/fuzz/CMakeLists.txt and scripts/fuzz.sh).
//
// Input layout: byte 0 picks the limits and the feeding mode, byte 1 seeds the split generator,
// the rest is a byte stream from a client (possibly several pipelined requests). The stream is
// parsed twice: once in pieces (whole / one byte at a time / random sizes derived from the
// input) and once as a single buffer. Invariants (any violation aborts, which libFuzzer reports
// as a crash):
//   - consumed <= len; NeedMore consumes everything it was given; Complete consumes >= 1 byte
//     when fed right after reset();
//   - error_status() is one of 400, 413, 414, 431, 501, 505 (500 only if the body could not be
//     spooled to disk) and error_reason() is not empty;
//   - after Complete: method, target and header views lie inside the parser's arena (which
//     starts at target().data(), the target being the first thing stored after reset(), and
//     holds at most the bytes fed since reset()); every header name is a non-empty token; no
//     value contains CR, LF or NUL or starts/ends with SP/HTAB; request_line() is
//     "METHOD SP target SP HTTP/x.y"; a chunked request is never HTTP/1.0;
//   - the sequence of outcomes (statuses, request boundaries, method, target, headers, body,
//     keep-alive, chunked, expect-continue, error statuses) does not depend on how the stream
//     was split.
// (ALICORN_FUZZ_ANY_ERROR_STATUS=1 relaxes the last point to "refused at the same request, with
// any status", to look past known status differences.)
// ASan/UBSan catch memory errors and undefined behaviour in the parser and llhttp along the way.
// After Complete the parser is reset() and fed the rest of the stream; after Error parsing stops
// (a server closes the connection).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/http_parser.hpp"

namespace {

using alicorn::HttpLimits;
using alicorn::RequestParser;
using Status = RequestParser::Status;

[[noreturn]] void violated(const char* cond, const char* what = "", const std::string& detail = {}) {
  std::fprintf(stderr, "\n*** RequestParser invariant violated: %s [%s] %s\n", what, cond,
               detail.c_str());
  std::fflush(stderr);
  std::abort();
}
#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) violated(#cond __VA_OPT__(, ) __VA_ARGS__); \
  } while (0)

struct Event {
  int status = 0;     // 0 NeedMore (end of input), 1 Complete, 2 Error
  size_t end = 0;     // Complete: stream offset just past the request
  int error_status = 0;
  std::string method, target, request_line, body;
  uint64_t body_size = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  bool keep_alive = false, chunked = false, expect_continue = false;

  bool operator==(const Event&) const = default;
};

bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  for (const char* p = "!#$%&'*+-.^_`|~"; *p; ++p)
    if (c == static_cast<unsigned char>(*p)) return true;
  return false;
}

bool inside(std::string_view v, uintptr_t base, size_t len) {
  auto a = reinterpret_cast<uintptr_t>(v.data());
  return v.empty() || (a >= base && a + v.size() <= base + len);
}

// Parsers with a spooled body (body_size(), body_fd()) and without: templates, so the
// requires-expressions are checked at instantiation and the target builds against either API.
template <class P>
uint64_t body_size_of(const P& p, std::string& body) {
  if constexpr (requires { p.body_size(); p.body_fd(); }) {
    if (p.body_fd() >= 0) body.clear();  // spooled to a file: compare sizes only
    return p.body_size();
  } else {
    return body.size();
  }
}

template <class L>
void set_spool_threshold(L& limits, size_t value) {
  if constexpr (requires { limits.spool_threshold; }) limits.spool_threshold = value;
}

// `fed`: bytes given to the parser since its last reset().
Event complete_event(const RequestParser& p, size_t end, size_t fed) {
  Event e;
  e.status = 1;
  e.end = end;
  CHECK(p.error_status() == 0);
  CHECK(p.headers_complete());
  auto base = reinterpret_cast<uintptr_t>(p.target().data());
  CHECK(!p.target().empty(), "empty target");
  CHECK(inside(p.target(), base, fed));
  for (const auto& h : p.headers()) {
    // Addresses first, so a dangling view is reported rather than read.
    CHECK(inside(h.name, base, fed), "header name outside the arena");
    CHECK(inside(h.value, base, fed), "header value outside the arena");
    CHECK(!h.name.empty(), "empty header name");
    for (char c : h.name) CHECK(is_tchar(static_cast<unsigned char>(c)), "non-token header name");
    for (char c : h.value) CHECK(c != '\r' && c != '\n' && c != '\0', "CR/LF/NUL in a value");
    if (!h.value.empty()) {
      CHECK(h.value.front() != ' ' && h.value.front() != '\t', "value not trimmed");
      CHECK(h.value.back() != ' ' && h.value.back() != '\t', "value not trimmed");
    }
    e.headers.emplace_back(h.name, h.value);
  }
  e.method = std::string(p.method());
  CHECK(!e.method.empty());
  for (char c : e.method) CHECK(is_tchar(static_cast<unsigned char>(c)), "non-token method");
  e.target = std::string(p.target());
  for (char c : e.target)
    CHECK(static_cast<unsigned char>(c) > 0x20 && c != 0x7f, "SP/CTL in target", e.target);
  CHECK(p.http_major() == 1 && (p.http_minor() == 0 || p.http_minor() == 1),
        "accepted version", std::to_string(p.http_major()) + "." + std::to_string(p.http_minor()));
  e.request_line = p.request_line();
  std::string expected = e.method + " " + e.target + " HTTP/" + std::to_string(p.http_major()) +
                         "." + std::to_string(p.http_minor());
  CHECK(e.request_line == expected, "request_line()", e.request_line);
  e.keep_alive = p.keep_alive();
  e.chunked = p.chunked();
  e.expect_continue = p.expect_continue();
  if (e.chunked) CHECK(p.http_minor() == 1, "chunked on HTTP/1.0 accepted");
  e.body = std::string(p.body());
  e.body_size = body_size_of(p, e.body);
  return e;
}

Event error_event(const RequestParser& p) {
  Event e;
  e.status = 2;
  int s = p.error_status();
  CHECK(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505 || s == 500,
        "error_status", std::to_string(s));
  CHECK(!p.error_reason().empty(), "empty error_reason");
  e.error_status = s;
  return e;
}

// Parse `stream` fed in pieces cut at `cuts` (sorted absolute offsets; the end is implied).
std::vector<Event> run(const HttpLimits& limits, std::string_view stream,
                       const std::vector<size_t>& cuts) {
  std::vector<Event> events;
  RequestParser p(limits);
  size_t pos = 0, start = 0;  // start: where the current request began
  size_t next_cut = 0;
  std::string scratch;
  while (pos < stream.size()) {
    while (next_cut < cuts.size() && cuts[next_cut] <= pos) ++next_cut;
    size_t end = next_cut < cuts.size() ? cuts[next_cut] : stream.size();
    // A private copy, scribbled over afterwards: the parser must not keep pointers into input.
    scratch.assign(stream.substr(pos, end - pos));
    size_t used = ~size_t{0};
    Status st = p.feed(scratch.data(), scratch.size(), used);
    CHECK(used <= scratch.size(), "consumed > len");
    if (st == Status::NeedMore) {
      CHECK(used == scratch.size(), "NeedMore left bytes unconsumed",
            std::to_string(used) + " of " + std::to_string(scratch.size()));
      pos = end;
    } else if (st == Status::Complete) {
      CHECK(pos + used > start, "Complete without consuming a byte");
      size_t req_end = pos + used;
      events.push_back(complete_event(p, req_end, req_end - start));
      p.reset();
      pos = start = req_end;
    } else if (st == Status::Error) {
      events.push_back(error_event(p));
      std::fill(scratch.begin(), scratch.end(), '#');
      return events;
    } else {
      violated("st", "unexpected status in the default (non-streaming) mode",
               std::to_string(static_cast<int>(st)));
    }
    std::fill(scratch.begin(), scratch.end(), '#');
  }
  events.push_back(Event{});  // ran out of input (NeedMore)
  return events;
}

std::string describe(const std::vector<Event>& ev) {
  std::string out;
  for (const auto& e : ev) {
    out += e.status == 0 ? "[NeedMore]" : e.status == 1 ? "[Complete end=" + std::to_string(e.end) +
                                                             " " + e.request_line + "]"
                                                       : "[Error " + std::to_string(e.error_status) + "]";
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t cfg = data[0];
  uint32_t seed = data[1] * 2654435761u + static_cast<uint32_t>(size);
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  HttpLimits limits;  // Gunicorn's defaults...
  if (cfg & 1) {      // ...or small ones, so short inputs reach the limit paths
    limits.request_line = 48;
    limits.header_fields = 6;
    limits.field_size = 64;
    limits.body = 128;
  }
  set_spool_threshold(limits, (cfg & 2) ? 32 : 0);  // sometimes spool bodies to a file

  std::vector<size_t> cuts;
  switch ((cfg >> 2) & 3) {
    case 0:  // whole: no cuts
      break;
    case 1:  // one byte at a time
      for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
      break;
    default: {  // random piece sizes (xorshift32 seeded from the input)
      size_t max_piece = 1 + (cfg >> 4) * 4;
      for (size_t off = 0;;) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        off += 1 + seed % max_piece;
        if (off >= stream.size()) break;
        cuts.push_back(off);
      }
    }
  }

  std::vector<Event> split = run(limits, stream, cuts);
  std::vector<Event> whole = run(limits, stream, {});
  // ALICORN_FUZZ_ANY_ERROR_STATUS=1: only require that both parses refuse at the same request
  // (any status), to look past known status differences for other bugs.
  static const bool any_error_status = [] {
    const char* v = std::getenv("ALICORN_FUZZ_ANY_ERROR_STATUS");
    return v != nullptr && *v == '1';
  }();
  if (any_error_status) {
    for (auto* events : {&split, &whole})
      for (auto& e : *events)
        if (e.status == 2) e.error_status = 0;
  }
  if (split != whole)
    violated("split == whole", "outcome depends on how the stream was split",
             "\n  whole: " + describe(whole) + "\n  split: " + describe(split));
  return 0;
}
