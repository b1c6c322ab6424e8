#include "net/proxy_protocol.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <vector>

namespace alicorn {
namespace {

constexpr std::string_view kV1Signature = "PROXY ";
constexpr char kV2SignatureBytes[] = "\r\n\r\n\0\r\nQUIT\n";
constexpr std::string_view kV2Signature(kV2SignatureBytes, 12);
constexpr size_t kV2Fixed = 16;  // signature, version/command, family, length
constexpr size_t kCap = ProxyHeaderParser::kMaxV2Header;

// Whether `have` and `sig` agree on their common length.
bool agrees(std::string_view have, std::string_view sig) {
  size_t n = std::min(have.size(), sig.size());
  return have.substr(0, n) == sig.substr(0, n);
}

bool parse_port(std::string_view s, uint16_t& port) {
  if (s.empty() || s.size() > 5) return false;
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v > 65535) return false;
  port = static_cast<uint16_t>(v);
  return true;
}

bool valid_ip(std::string_view s, bool v6) {
  if (s.empty() || s.size() >= INET6_ADDRSTRLEN) return false;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  unsigned char out[16];
  return ::inet_pton(v6 ? AF_INET6 : AF_INET, buf, out) == 1;
}

std::string ip_text(bool v6, const unsigned char* bytes) {
  char buf[INET6_ADDRSTRLEN] = "";
  ::inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, buf, sizeof buf);
  return buf;
}

uint16_t be16(const unsigned char* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

}  // namespace

bool parse_proxy_mode(std::string_view text, ProxyMode& mode) {
  if (text == "off" || text == "false" || text == "no" || text == "0") mode = ProxyMode::Off;
  else if (text == "v1") mode = ProxyMode::V1;
  else if (text == "v2") mode = ProxyMode::V2;
  else if (text == "auto" || text == "true" || text == "yes" || text == "1") mode = ProxyMode::Auto;
  else return false;
  return true;
}

std::string_view proxy_mode_name(ProxyMode mode) {
  switch (mode) {
    case ProxyMode::Off: return "off";
    case ProxyMode::V1: return "v1";
    case ProxyMode::V2: return "v2";
    case ProxyMode::Auto: return "auto";
  }
  return "off";
}

ProxyHeaderParser::Result ProxyHeaderParser::fail(std::string why) {
  error_ = std::move(why);
  return Result::Error;
}

ProxyHeaderParser::Result ProxyHeaderParser::feed(const char* data, size_t len, size_t& consumed) {
  consumed = 0;
  if (!error_.empty()) return Result::Error;
  prev_ = buf_.size();
  buf_.append(data, std::min(len, kCap - std::min(kCap, buf_.size())));
  Result r = decide();
  if (r == Result::Done) {
    // decide() left the header's length in prev_ + consumed terms: see parse_v1 / parse_v2.
    consumed = buf_.size() - prev_;
    buf_.clear();
  } else if (r == Result::Absent) {
    buf_.resize(prev_);  // buffered(): the earlier calls' bytes, to replay before this call's
  } else if (r == Result::NeedMore && buf_.size() >= kCap) {
    return fail("PROXY protocol header longer than " + std::to_string(kCap) + " bytes");
  }
  return r;
}

ProxyHeaderParser::Result ProxyHeaderParser::decide() {
  std::string_view have = buf_;
  bool maybe_v1 = agrees(have, kV1Signature);
  bool maybe_v2 = agrees(have, kV2Signature);
  if (!maybe_v1 && !maybe_v2) {
    if (!trusted_) return Result::Absent;
    return fail(std::string("no PROXY protocol header from a peer in proxy_allow_ips "
                            "(proxy_protocol is ") + std::string(proxy_mode_name(mode_)) + ")");
  }
  if (maybe_v1 && have.size() < kV1Signature.size()) return Result::NeedMore;
  if (maybe_v2 && !maybe_v1 && have.size() < kV2Signature.size()) return Result::NeedMore;
  if (maybe_v1 && maybe_v2) return Result::NeedMore;  // only the empty prefix: never here
  const int version = maybe_v1 ? 1 : 2;
  if (!trusted_) return fail("PROXY protocol header from a peer not in proxy_allow_ips");
  if ((version == 1 && mode_ == ProxyMode::V2) || (version == 2 && mode_ == ProxyMode::V1))
    return fail("PROXY protocol v" + std::to_string(version) + " header, but proxy_protocol is " +
                std::string(proxy_mode_name(mode_)));
  return version == 1 ? parse_v1() : parse_v2();
}

// "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n", "PROXY TCP6 ...", "PROXY UNKNOWN ...\r\n".
ProxyHeaderParser::Result ProxyHeaderParser::parse_v1() {
  std::string_view have = buf_;
  size_t lf = have.find('\n');
  if (lf == std::string_view::npos) {
    if (have.size() >= kMaxV1Line) return fail("PROXY v1 line longer than 107 bytes");
    return Result::NeedMore;
  }
  if (lf + 1 > kMaxV1Line) return fail("PROXY v1 line longer than 107 bytes");
  if (lf == 0 || have[lf - 1] != '\r') return fail("PROXY v1 line not ended by CRLF");
  std::string_view line = have.substr(0, lf - 1);
  for (char c : line)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return fail("control byte in the PROXY v1 line");
  std::vector<std::string_view> parts;
  while (true) {
    size_t sp = line.find(' ');
    parts.push_back(line.substr(0, sp));
    if (sp == std::string_view::npos) break;
    line.remove_prefix(sp + 1);
  }
  ProxyHeader h;
  h.version = 1;
  if (parts.size() >= 2 && parts[1] == "UNKNOWN") {
    h.local = true;
  } else {
    if (parts.size() != 6 || (parts[1] != "TCP4" && parts[1] != "TCP6"))
      return fail("malformed PROXY v1 line (expected PROXY TCP4|TCP6 SRC DST SRCPORT DSTPORT)");
    h.v6 = parts[1] == "TCP6";
    h.local = false;
    if (!valid_ip(parts[2], h.v6) || !valid_ip(parts[3], h.v6))
      return fail("invalid address in the PROXY v1 line");
    if (!parse_port(parts[4], h.src_port) || !parse_port(parts[5], h.dst_port))
      return fail("invalid port in the PROXY v1 line");
    h.src_addr = parts[2];
    h.dst_addr = parts[3];
  }
  header_ = std::move(h);
  buf_.resize(lf + 1);  // what follows the line is HTTP
  return Result::Done;
}

ProxyHeaderParser::Result ProxyHeaderParser::parse_v2() {
  if (buf_.size() < kV2Fixed) return Result::NeedMore;
  const auto* b = reinterpret_cast<const unsigned char*>(buf_.data());
  const unsigned ver = b[12] >> 4, cmd = b[12] & 0x0f;
  const unsigned family = b[13] >> 4, transport = b[13] & 0x0f;
  const size_t total = kV2Fixed + be16(b + 14);
  if (ver != 2) return fail("PROXY v2 header with version " + std::to_string(ver));
  if (cmd > 1) return fail("PROXY v2 header with unknown command " + std::to_string(cmd));
  if (total > kMaxV2Header)
    return fail("PROXY v2 header of " + std::to_string(total) + " bytes (at most " +
                std::to_string(kMaxV2Header) + ")");
  if (buf_.size() < total) return Result::NeedMore;
  ProxyHeader h;
  h.version = 2;
  const unsigned char* addr = b + kV2Fixed;
  const size_t addr_len = total - kV2Fixed;
  if (cmd == 1 && (family == 1 || family == 2)) {  // PROXY over IPv4 / IPv6
    if (transport != 1) return fail("PROXY v2 header for a datagram or unknown transport");
    h.v6 = family == 2;
    const size_t need = h.v6 ? 36 : 12, alen = h.v6 ? 16 : 4;
    if (addr_len < need) return fail("PROXY v2 address block shorter than its family needs");
    h.local = false;
    h.src_addr = ip_text(h.v6, addr);
    h.dst_addr = ip_text(h.v6, addr + alen);
    h.src_port = be16(addr + 2 * alen);
    h.dst_port = be16(addr + 2 * alen + 2);
  } else if (cmd == 1 && family > 3) {
    return fail("PROXY v2 header with unknown address family " + std::to_string(family));
  }
  // LOCAL (health checks from the proxy itself), UNSPEC and unix addresses: keep the socket's.
  header_ = std::move(h);
  buf_.resize(total);
  return Result::Done;
}

}  // namespace alicorn
