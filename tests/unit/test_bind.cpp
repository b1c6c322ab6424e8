// parse_bind and BindAddress::to_string: Gunicorn's address spellings.
#include <gtest/gtest.h>

#include <string>

#include "net/bind.hpp"
#include "config/config.hpp"

using alicorn::BindAddress;
using alicorn::ConfigError;
using alicorn::parse_bind;

namespace {

struct TcpCase {
  const char* spec;
  const char* host;
  int port;
  const char* canonical;
};

class ParseBindTcp : public ::testing::TestWithParam<TcpCase> {};

TEST_P(ParseBindTcp, ParsesHostAndPort) {
  const auto& c = GetParam();
  BindAddress b = parse_bind(c.spec);
  EXPECT_EQ(b.kind, BindAddress::Kind::Tcp);
  EXPECT_EQ(b.host, c.host);
  EXPECT_EQ(b.port, c.port);
  EXPECT_EQ(b.spec, c.spec);
  EXPECT_EQ(b.to_string(), c.canonical);
}

INSTANTIATE_TEST_SUITE_P(
    Good, ParseBindTcp,
    ::testing::Values(TcpCase{"127.0.0.1:8000", "127.0.0.1", 8000, "127.0.0.1:8000"},
                      TcpCase{"0.0.0.0:80", "0.0.0.0", 80, "0.0.0.0:80"},
                      TcpCase{"localhost", "localhost", 8000, "localhost:8000"},
                      TcpCase{"example.com:0", "example.com", 0, "example.com:0"},
                      TcpCase{"my_host-1.internal:65535", "my_host-1.internal", 65535,
                              "my_host-1.internal:65535"},
                      TcpCase{":9000", "", 9000, "0.0.0.0:9000"},
                      TcpCase{"[::1]:8080", "::1", 8080, "[::1]:8080"},
                      TcpCase{"[::]", "::", 8000, "[::]:8000"},
                      TcpCase{"[fe80::1%eth0]:81", "fe80::1%eth0", 81, "[fe80::1%eth0]:81"},
                      TcpCase{"[::ffff:10.0.0.1]:5000", "::ffff:10.0.0.1", 5000,
                              "[::ffff:10.0.0.1]:5000"},
                      TcpCase{"tcp://10.1.2.3:7000", "10.1.2.3", 7000, "10.1.2.3:7000"},
                      TcpCase{"tcp://[::1]:7001", "::1", 7001, "[::1]:7001"},
                      TcpCase{"tcp://localhost", "localhost", 8000, "localhost:8000"}));

TEST(ParseBind, UnixSocket) {
  BindAddress b = parse_bind("unix:/run/app.sock");
  EXPECT_EQ(b.kind, BindAddress::Kind::Unix);
  EXPECT_EQ(b.path, "/run/app.sock");
  EXPECT_EQ(b.to_string(), "unix:/run/app.sock");
  EXPECT_EQ(parse_bind("unix:relative.sock").path, "relative.sock");
  EXPECT_EQ(parse_bind("unix:///tmp/x.sock").path, "/tmp/x.sock");  // unix://PATH as Gunicorn
  EXPECT_EQ(parse_bind("unix:///tmp/x.sock").to_string(), "unix:/tmp/x.sock");
}

TEST(ParseBind, InheritedFd) {
  BindAddress b = parse_bind("fd://3");
  EXPECT_EQ(b.kind, BindAddress::Kind::Fd);
  EXPECT_EQ(b.fd, 3);
  EXPECT_EQ(b.to_string(), "fd://3");
  EXPECT_EQ(parse_bind("fd://0").fd, 0);
}

TEST(ParseBind, EqualityIncludesSpec) {
  EXPECT_EQ(parse_bind("[::1]:1"), parse_bind("[::1]:1"));
  EXPECT_NE(parse_bind("localhost"), parse_bind("localhost:8000"));  // same address, other text
  EXPECT_EQ(parse_bind("localhost").to_string(), parse_bind("localhost:8000").to_string());
}

struct BadCase {
  const char* spec;
  const char* fragment;  // the message must mention this
};

class ParseBindBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParseBindBad, RefusedWithMessage) {
  const auto& c = GetParam();
  try {
    parse_bind(c.spec);
    FAIL() << "accepted '" << c.spec << "'";
  } catch (const ConfigError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind("bind: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(c.fragment), std::string::npos) << msg;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Bad, ParseBindBad,
    ::testing::Values(BadCase{"", "empty"}, BadCase{"localhost:", "empty port"},
                      BadCase{"localhost:http", "invalid port 'http'"},
                      BadCase{"localhost:65536", "invalid port '65536'"},
                      BadCase{"localhost:-1", "invalid port"},
                      BadCase{"localhost:80x", "invalid port '80x'"},
                      BadCase{"localhost:+80", "invalid port"},
                      BadCase{"localhost:99999999999999999999", "invalid port"},
                      BadCase{"[::1", "unclosed '['"}, BadCase{"[::1]8000", "after ']'"},
                      BadCase{"[::1]:", "empty port"}, BadCase{"[]:80", "invalid IPv6"},
                      BadCase{"[nothex]:80", "invalid IPv6"}, BadCase{"::1", "brackets"},
                      BadCase{"::1:8000", "brackets"}, BadCase{"unix:", "empty socket path"},
                      BadCase{"unix://", "empty socket path"}, BadCase{"fd://", "file descriptor"},
                      BadCase{"fd://-1", "file descriptor"}, BadCase{"fd://3x", "file descriptor"},
                      BadCase{"fd://abc", "file descriptor"}, BadCase{"tcp://", "no host"},
                      BadCase{"ho st:80", "invalid host"}, BadCase{"a/b:80", "invalid host"},
                      BadCase{":", "empty port"}));

}  // namespace
