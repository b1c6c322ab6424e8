// PROXY protocol (HAProxy's, versions 1 and 2): the header a load balancer sends before the
// first byte of the client's stream, giving the client's address. Pure: fed bytes, it says
// when the header is complete, how long it was and what it said; the session then hands the
// rest of the bytes to the HTTP parser and takes REMOTE_ADDR / REMOTE_PORT from the header.
//
// Policy (proxy_protocol = v1 | v2 | auto, proxy_allow_ips):
//   - a peer in proxy_allow_ips (or on a unix socket) MUST start with a header of the accepted
//     version(s): a missing or malformed one is an error (the connection is closed);
//   - any other peer must NOT send one: a PROXY header from it is an error; without one its
//     bytes are plain HTTP (so direct clients are still served).
// Header size: a v1 line is at most 107 bytes (the spec's bound); a v2 header at most
// kMaxV2Header bytes (TLVs included), beyond which it is refused rather than buffered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace alicorn {

enum class ProxyMode { Off, V1, V2, Auto };

// "off"/"false", "v1", "v2", "auto"/"true" (a bare --proxy-protocol flag). False if none.
bool parse_proxy_mode(std::string_view text, ProxyMode& mode);
std::string_view proxy_mode_name(ProxyMode mode);

struct ProxyHeader {
  int version = 0;       // 1 or 2
  bool local = true;     // LOCAL (v2), UNKNOWN (v1) or a non-IP family: keep the socket's peer
  bool v6 = false;
  std::string src_addr;  // the client, in text form ("192.0.2.1", "2001:db8::1")
  std::string dst_addr;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
};

class ProxyHeaderParser {
 public:
  static constexpr size_t kMaxV1Line = 107;
  static constexpr size_t kMaxV2Header = 4096;

  enum class Result {
    NeedMore,  // not decided yet: feed more bytes
    Done,      // a header was read (header()); `consumed` bytes of this feed belonged to it
    Absent,    // no header (untrusted peer only): every byte fed so far is HTTP
    Error      // error() says why; close the connection
  };

  ProxyHeaderParser(ProxyMode mode, bool trusted_peer) : mode_(mode), trusted_(trusted_peer) {}

  // Feed the next bytes of the stream. On Done, `consumed` is how many bytes of this call were
  // part of the header; on Absent the caller replays the bytes buffered() and this call's.
  Result feed(const char* data, size_t len, size_t& consumed);
  const ProxyHeader& header() const { return header_; }
  const std::string& error() const { return error_; }
  // Bytes fed before this call that were held while undecided (for Absent).
  const std::string& buffered() const { return buf_; }

 private:
  Result decide();
  Result parse_v1();
  Result parse_v2();
  Result fail(std::string why);

  ProxyMode mode_;
  bool trusted_;
  std::string buf_;
  size_t prev_ = 0;  // bytes of buf_ fed by earlier calls
  ProxyHeader header_;
  std::string error_;
};

}  // namespace alicorn
