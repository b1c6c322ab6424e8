// ProxyHeaderParser: PROXY protocol v1 and v2 headers, fed whole and byte by byte; truncated,
// oversized and malformed headers; the trust policy (a header required from proxy_allow_ips,
// refused from anyone else) and the modes (v1, v2, auto).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net/proxy_protocol.hpp"

using alicorn::ProxyHeaderParser;
using alicorn::ProxyMode;
using Result = ProxyHeaderParser::Result;
using namespace std::string_literals;

namespace {

const std::string kSig = "\r\n\r\n\0\r\nQUIT\n"s;

std::string v2(unsigned char ver_cmd, unsigned char fam, const std::string& body) {
  std::string h = kSig;
  h.push_back(static_cast<char>(ver_cmd));
  h.push_back(static_cast<char>(fam));
  h.push_back(static_cast<char>(body.size() >> 8));
  h.push_back(static_cast<char>(body.size() & 0xff));
  return h + body;
}

std::string v2_tcp4(const std::string& tlvs = "") {
  // 192.0.2.1:56324 -> 198.51.100.7:443
  std::string a = "\xc0\x00\x02\x01\xc6\x33\x64\x07\xdc\x04\x01\xbb"s;
  return v2(0x21, 0x11, a + tlvs);
}

std::string v2_tcp6() {
  std::string a(16, '\0');
  a[0] = '\x20', a[1] = '\x01', a[2] = '\x0d', a[3] = '\xb8', a[15] = '\x05';  // 2001:db8::5
  std::string d(16, '\0');
  d[15] = '\x01';  // ::1
  return v2(0x21, 0x21, a + d + "\x30\x39\x00\x50"s);  // 12345 -> 80
}

struct Out {
  Result result;
  size_t consumed_total = 0;  // header bytes, summed over the feeds
  std::string replay;         // on Absent: buffered() + the last feed
  alicorn::ProxyHeader header;
  std::string error;
};

// Feed `data` whole (step 0) or in pieces of `step` bytes until the parser decides.
Out run(ProxyMode mode, bool trusted, const std::string& data, size_t step = 0) {
  ProxyHeaderParser p(mode, trusted);
  Out o{Result::NeedMore};
  size_t off = 0;
  if (step == 0) step = data.size() ? data.size() : 1;
  while (off < data.size()) {
    size_t n = std::min(step, data.size() - off);
    size_t used = 0;
    o.result = p.feed(data.data() + off, n, used);
    if (o.result == Result::Done) {
      o.consumed_total = off + used;
      o.header = p.header();
      return o;
    }
    if (o.result == Result::Absent) {
      o.replay = p.buffered() + data.substr(off, n);
      return o;
    }
    if (o.result == Result::Error) {
      o.error = p.error();
      return o;
    }
    off += n;
  }
  return o;
}

void expect_every_split(ProxyMode mode, bool trusted, const std::string& data, Result want) {
  for (size_t step : {size_t{0}, size_t{1}, size_t{3}, size_t{7}}) {
    Out o = run(mode, trusted, data, step);
    EXPECT_EQ(static_cast<int>(o.result), static_cast<int>(want)) << "step " << step << ": " << o.error;
  }
}

TEST(ProxyProtocolV1, Tcp4) {
  std::string line = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n";
  for (size_t step : {size_t{0}, size_t{1}, size_t{5}}) {
    Out o = run(ProxyMode::V1, true, line + "GET / HTTP/1.1\r\n", step);
    ASSERT_EQ(o.result, Result::Done) << o.error;
    EXPECT_EQ(o.consumed_total, line.size());
    EXPECT_FALSE(o.header.local);
    EXPECT_EQ(o.header.version, 1);
    EXPECT_EQ(o.header.src_addr, "192.0.2.1");
    EXPECT_EQ(o.header.src_port, 56324);
    EXPECT_EQ(o.header.dst_addr, "198.51.100.7");
    EXPECT_EQ(o.header.dst_port, 443);
  }
}

TEST(ProxyProtocolV1, Tcp6AndUnknown) {
  Out o = run(ProxyMode::Auto, true, "PROXY TCP6 2001:db8::1 ::1 1 65535\r\nX");
  ASSERT_EQ(o.result, Result::Done) << o.error;
  EXPECT_TRUE(o.header.v6);
  EXPECT_EQ(o.header.src_addr, "2001:db8::1");
  EXPECT_EQ(o.header.dst_port, 65535);
  o = run(ProxyMode::V1, true, "PROXY UNKNOWN\r\n");
  ASSERT_EQ(o.result, Result::Done) << o.error;
  EXPECT_TRUE(o.header.local);
  o = run(ProxyMode::V1, true, "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n");
  ASSERT_EQ(o.result, Result::Done) << o.error;
  EXPECT_TRUE(o.header.local);
}

TEST(ProxyProtocolV1, Malformed) {
  for (const char* bad : {
           "PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n",         // a field missing
           "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443 9\r\n",   // one too many
           "PROXY TCP4  192.0.2.1 198.51.100.7 56324 443\r\n",    // two spaces
           "PROXY TCP5 192.0.2.1 198.51.100.7 56324 443\r\n",     // protocol
           "PROXY TCP4 2001:db8::1 198.51.100.7 56324 443\r\n",   // family mismatch
           "PROXY TCP6 192.0.2.1 ::1 56324 443\r\n",
           "PROXY TCP4 192.0.2.256 198.51.100.7 56324 443\r\n",   // address
           "PROXY TCP4 192.0.2.1 198.51.100.7 65536 443\r\n",     // port range
           "PROXY TCP4 192.0.2.1 198.51.100.7 -1 443\r\n",
           "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\n",       // bare LF
           "PROXY TCP4 192.0.2.1 198.51.100.7 56324 4\x01" "3\r\n",  // control byte
       }) {
    SCOPED_TRACE(bad);
    expect_every_split(ProxyMode::V1, true, bad, Result::Error);
  }
}

TEST(ProxyProtocolV1, TruncatedNeedsMoreOversizedFails) {
  std::string line = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n";
  for (size_t n = 1; n < line.size(); ++n) {
    SCOPED_TRACE(n);
    EXPECT_EQ(run(ProxyMode::V1, true, line.substr(0, n)).result, Result::NeedMore);
  }
  // 107 bytes is the spec's bound for the whole line: with no CRLF by then, it is refused.
  std::string longer = "PROXY UNKNOWN " + std::string(93, 'x');  // 107 bytes, no CRLF
  expect_every_split(ProxyMode::V1, true, longer, Result::Error);
  std::string at_limit = "PROXY UNKNOWN " + std::string(91, 'x') + "\r\n";  // exactly 107
  ASSERT_EQ(at_limit.size(), 107u);
  expect_every_split(ProxyMode::V1, true, at_limit, Result::Done);
  expect_every_split(ProxyMode::V1, true, "PROXY UNKNOWN " + std::string(5000, 'x') + "\r\n",
                     Result::Error);
}

TEST(ProxyProtocolV2, Tcp4WithTlvsAndTcp6) {
  std::string tlv = "\x01\x00\x08http/1.1"s;  // PP2_TYPE_ALPN, ignored
  std::string h = v2_tcp4(tlv);
  for (size_t step : {size_t{0}, size_t{1}, size_t{4}}) {
    Out o = run(ProxyMode::V2, true, h + "GET", step);
    ASSERT_EQ(o.result, Result::Done) << o.error;
    EXPECT_EQ(o.consumed_total, h.size());
    EXPECT_EQ(o.header.version, 2);
    EXPECT_EQ(o.header.src_addr, "192.0.2.1");
    EXPECT_EQ(o.header.src_port, 56324);
    EXPECT_EQ(o.header.dst_addr, "198.51.100.7");
    EXPECT_EQ(o.header.dst_port, 443);
  }
  Out o = run(ProxyMode::Auto, true, v2_tcp6());
  ASSERT_EQ(o.result, Result::Done) << o.error;
  EXPECT_TRUE(o.header.v6);
  EXPECT_EQ(o.header.src_addr, "2001:db8::5");
  EXPECT_EQ(o.header.src_port, 12345);
  EXPECT_EQ(o.header.dst_addr, "::1");
}

TEST(ProxyProtocolV2, LocalAndUnspecKeepThePeer) {
  Out o = run(ProxyMode::V2, true, v2(0x20, 0x00, ""));  // LOCAL: a health check
  ASSERT_EQ(o.result, Result::Done) << o.error;
  EXPECT_TRUE(o.header.local);
  o = run(ProxyMode::V2, true, v2(0x21, 0x00, "abc"));  // PROXY, UNSPEC family
  ASSERT_EQ(o.result, Result::Done) << o.error;
  EXPECT_TRUE(o.header.local);
  o = run(ProxyMode::V2, true, v2(0x21, 0x31, std::string(216, '\0')));  // unix addresses
  ASSERT_EQ(o.result, Result::Done) << o.error;
  EXPECT_TRUE(o.header.local);
}

TEST(ProxyProtocolV2, Malformed) {
  expect_every_split(ProxyMode::V2, true, v2(0x11, 0x11, std::string(12, '\0')), Result::Error);  // version 1
  expect_every_split(ProxyMode::V2, true, v2(0x22, 0x11, std::string(12, '\0')), Result::Error);  // command 2
  expect_every_split(ProxyMode::V2, true, v2(0x21, 0x11, std::string(11, '\0')), Result::Error);  // short IPv4
  expect_every_split(ProxyMode::V2, true, v2(0x21, 0x21, std::string(35, '\0')), Result::Error);  // short IPv6
  expect_every_split(ProxyMode::V2, true, v2(0x21, 0x12, std::string(12, '\0')), Result::Error);  // UDP
  expect_every_split(ProxyMode::V2, true, v2(0x21, 0x41, std::string(12, '\0')), Result::Error);  // family 4
}

TEST(ProxyProtocolV2, TruncatedNeedsMoreOversizedFails) {
  std::string h = v2_tcp4();
  for (size_t n = 1; n < h.size(); ++n) {
    SCOPED_TRACE(n);
    EXPECT_EQ(run(ProxyMode::V2, true, h.substr(0, n)).result, Result::NeedMore);
  }
  // The length field says more than kMaxV2Header: refused at once, before buffering it.
  std::string huge = v2(0x21, 0x11, std::string(12, '\0'));
  huge[14] = '\xff', huge[15] = '\xff';
  Out o = run(ProxyMode::V2, true, huge.substr(0, 16));
  EXPECT_EQ(o.result, Result::Error);
  EXPECT_NE(o.error.find("bytes"), std::string::npos) << o.error;
  std::string at_limit = v2_tcp4(std::string(ProxyHeaderParser::kMaxV2Header - 16 - 12, '\0'));
  EXPECT_EQ(run(ProxyMode::V2, true, at_limit).result, Result::Done);
  std::string over = v2_tcp4(std::string(ProxyHeaderParser::kMaxV2Header - 16 - 12 + 1, '\0'));
  EXPECT_EQ(run(ProxyMode::V2, true, over).result, Result::Error);
}

TEST(ProxyProtocolPolicy, TrustedPeerMustSendTheRightVersion) {
  expect_every_split(ProxyMode::V1, true, "GET / HTTP/1.1\r\n\r\n", Result::Error);
  expect_every_split(ProxyMode::Auto, true, "GET / HTTP/1.1\r\n\r\n", Result::Error);
  expect_every_split(ProxyMode::V1, true, v2_tcp4(), Result::Error);
  expect_every_split(ProxyMode::V2, true, "PROXY TCP4 192.0.2.1 198.51.100.7 1 2\r\n", Result::Error);
  expect_every_split(ProxyMode::Auto, true, "PROXY TCP4 192.0.2.1 198.51.100.7 1 2\r\n", Result::Done);
  expect_every_split(ProxyMode::Auto, true, v2_tcp4(), Result::Done);
}

TEST(ProxyProtocolPolicy, UntrustedPeerIsPlainHttpAndMayNotSendAHeader) {
  std::string post = "POST / HTTP/1.1\r\n\r\n";
  for (size_t step : {size_t{0}, size_t{1}, size_t{2}}) {
    Out o = run(ProxyMode::Auto, false, post, step);
    ASSERT_EQ(o.result, Result::Absent);
    // Every byte seen so far is replayed, the "P" held while it could start "PROXY " included.
    EXPECT_EQ(o.replay, step == 0 ? post : "PO");
  }
  expect_every_split(ProxyMode::Auto, false, "PROXY TCP4 6.6.6.6 198.51.100.7 1 2\r\n", Result::Error);
  expect_every_split(ProxyMode::V1, false, v2_tcp4(), Result::Error);
  // "\r\n\r\n" before a request: could start a v2 signature, then is not one.
  Out o = run(ProxyMode::Auto, false, "\r\nGET / HTTP/1.1\r\n\r\n", 1);
  ASSERT_EQ(o.result, Result::Absent);
  EXPECT_EQ(o.replay, "\r\nG");
}

TEST(ProxyProtocolModes, Names) {
  ProxyMode m{};
  EXPECT_TRUE(alicorn::parse_proxy_mode("true", m));
  EXPECT_EQ(m, ProxyMode::Auto);
  EXPECT_TRUE(alicorn::parse_proxy_mode("v2", m));
  EXPECT_EQ(m, ProxyMode::V2);
  EXPECT_TRUE(alicorn::parse_proxy_mode("off", m));
  EXPECT_EQ(m, ProxyMode::Off);
  EXPECT_FALSE(alicorn::parse_proxy_mode("v3", m));
  EXPECT_EQ(alicorn::proxy_mode_name(ProxyMode::V1), "v1");
}

}  // namespace
