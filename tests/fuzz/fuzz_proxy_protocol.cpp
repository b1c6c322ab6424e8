// libFuzzer target for the PROXY protocol header parser (core/src/net/proxy_protocol.cpp,
// HAProxy's v1 text line and v2 binary header), compiled in as for fuzz_request_parser.cpp.
//
// Input: byte 0 picks the policy (bits 0-1: proxy_protocol off/v1/v2/auto, bit 2: the peer is
// in proxy_allow_ips) and the feeding mode (bits 3-4: whole, byte by byte, or pieces whose sizes
// come from byte 1); the rest is the start of the client's stream.
// Invariants (a violation aborts):
//   - the outcome does not depend on how the stream was split: the result, where the header
//     ends, what it said, and the error text;
//   - a feed never consumes more than it was given, and consumes nothing unless Done;
//   - a header is never longer than its version's bound (107 bytes for v1, kMaxV2Header for v2),
//     and a v1 header ends in CRLF;
//   - Absent only for a peer not in proxy_allow_ips, and buffered() is exactly the bytes fed
//     before that call (the session replays them to the HTTP parser);
//   - Error always comes with a reason;
//   - a header that names an address (not LOCAL/UNKNOWN) gives addresses inet_pton accepts in
//     the family it says.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "net/proxy_protocol.hpp"

namespace {

using alicorn::ProxyHeader;
using alicorn::ProxyHeaderParser;
using alicorn::ProxyMode;
using Result = ProxyHeaderParser::Result;

[[noreturn]] void violated(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "\n*** PROXY protocol parser invariant violated: %s %s\n", what,
               detail.c_str());
  std::fflush(stderr);
  std::abort();
}

struct Outcome {
  Result result = Result::NeedMore;
  size_t header_end = 0;  // stream offset of the first byte after the header (Done)
  ProxyHeader header;
  std::string error;
};

bool same_header(const ProxyHeader& a, const ProxyHeader& b) {
  return a.version == b.version && a.local == b.local && a.v6 == b.v6 &&
         a.src_addr == b.src_addr && a.dst_addr == b.dst_addr && a.src_port == b.src_port &&
         a.dst_port == b.dst_port;
}

bool parses_as(const std::string& text, bool v6) {
  unsigned char out[16];
  return ::inet_pton(v6 ? AF_INET6 : AF_INET, text.c_str(), out) == 1;
}

Outcome run(std::string_view stream, const std::vector<size_t>& cuts, ProxyMode mode,
            bool trusted) {
  ProxyHeaderParser p(mode, trusted);
  Outcome o;
  std::vector<size_t> ends(cuts);
  ends.push_back(stream.size());
  size_t off = 0;
  for (size_t end : ends) {
    if (end <= off) continue;
    size_t consumed = 12345;
    Result r = p.feed(stream.data() + off, end - off, consumed);
    if (r != Result::Done && consumed != 0) violated("consumed bytes without a header");
    if (consumed > end - off) violated("consumed more than given");
    if (r == Result::NeedMore) {
      off = end;
      continue;
    }
    o.result = r;
    if (r == Result::Error) {
      if (p.error().empty()) violated("Error without a reason");
      o.error = p.error();
    } else if (r == Result::Absent) {
      if (trusted) violated("Absent for a peer in proxy_allow_ips");
      if (p.buffered() != stream.substr(0, off))
        violated("buffered() is not the bytes fed before this call");
    } else {  // Done
      o.header_end = off + consumed;
      o.header = p.header();
      const ProxyHeader& h = o.header;
      if (!trusted) violated("a header accepted from a peer not in proxy_allow_ips");
      if (h.version == 1) {
        if (mode == ProxyMode::V2) violated("v1 header accepted in v2 mode");
        if (o.header_end > ProxyHeaderParser::kMaxV1Line) violated("v1 line over 107 bytes");
        if (o.header_end < 2 || stream.substr(o.header_end - 2, 2) != "\r\n")
          violated("v1 header not ended by CRLF");
        if (stream.substr(0, 6) != "PROXY ") violated("v1 header without its signature");
      } else if (h.version == 2) {
        if (mode == ProxyMode::V1) violated("v2 header accepted in v1 mode");
        if (o.header_end > ProxyHeaderParser::kMaxV2Header) violated("v2 header over the cap");
        if (o.header_end < 16) violated("v2 header shorter than its fixed part");
      } else {
        violated("Done with version", std::to_string(h.version));
      }
      if (!h.local && (!parses_as(h.src_addr, h.v6) || !parses_as(h.dst_addr, h.v6)))
        violated("address that does not parse", h.src_addr + " " + h.dst_addr);
    }
    return o;
  }
  return o;  // NeedMore at the end of the stream
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t cfg = data[0];
  uint32_t seed = data[1] * 2654435761u + static_cast<uint32_t>(size);
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  static constexpr ProxyMode kModes[] = {ProxyMode::Off, ProxyMode::V1, ProxyMode::V2,
                                         ProxyMode::Auto};
  const ProxyMode mode = kModes[cfg & 3];
  const bool trusted = (cfg >> 2) & 1;

  std::vector<size_t> cuts;
  const unsigned feeding = (cfg >> 3) & 3;
  if (feeding == 1) {
    for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  } else if (feeding >= 2) {
    for (size_t off = 0;;) {
      seed ^= seed << 13;
      seed ^= seed >> 17;
      seed ^= seed << 5;
      off += 1 + seed % (feeding == 2 ? 7 : 61);
      if (off >= stream.size()) break;
      cuts.push_back(off);
    }
  }
  Outcome whole = run(stream, {}, mode, trusted);
  Outcome split = run(stream, cuts, mode, trusted);
  if (whole.result != split.result)
    violated("result depends on the split",
             std::to_string(static_cast<int>(whole.result)) + " vs " +
                 std::to_string(static_cast<int>(split.result)));
  if (whole.result == Result::Done &&
      (whole.header_end != split.header_end || !same_header(whole.header, split.header)))
    violated("header depends on the split");
  if (whole.result == Result::Error && whole.error != split.error)
    violated("error depends on the split", whole.error + " | " + split.error);
  return 0;
}
