// AddressList (forwarded_allow_ips, proxy_allow_ips) and read_forwarded: which peers are
// trusted, and what their secure_scheme_headers / forwarder_headers say.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <string>
#include <vector>

#include "config/config.hpp"
#include "http/forwarded.hpp"
#include "net/address_list.hpp"
#include "net/edge_settings.hpp"

using alicorn::AddressList;
using alicorn::ForwardedSettings;
using alicorn::HttpHeader;

namespace {

AddressList list(std::vector<std::string> entries) {
  AddressList l;
  std::string error;
  EXPECT_TRUE(AddressList::parse(entries, l, error)) << error;
  return l;
}

sockaddr_in v4(const char* ip) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

sockaddr_in6 v6(const char* ip) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  inet_pton(AF_INET6, ip, &a.sin6_addr);
  return a;
}

TEST(AddressList, AddressesAndNetworks) {
  AddressList l = list({"127.0.0.1", " ::1 ", "10.0.0.0/8", "192.168.1.128/25", "2001:db8::/32", ""});
  EXPECT_TRUE(l.contains("127.0.0.1"));
  EXPECT_FALSE(l.contains("127.0.0.2"));
  EXPECT_TRUE(l.contains("::1"));
  EXPECT_TRUE(l.contains("10.255.1.2"));
  EXPECT_FALSE(l.contains("11.0.0.1"));
  EXPECT_TRUE(l.contains("192.168.1.200"));
  EXPECT_FALSE(l.contains("192.168.1.127"));
  EXPECT_TRUE(l.contains("2001:db8:ffff::1"));
  EXPECT_FALSE(l.contains("2001:db9::1"));
  EXPECT_FALSE(l.contains("not an address"));
  auto a = v4("10.1.2.3");
  EXPECT_TRUE(l.contains(reinterpret_cast<sockaddr*>(&a)));
  auto b = v4("8.8.8.8");
  EXPECT_FALSE(l.contains(reinterpret_cast<sockaddr*>(&b)));
  auto c = v6("2001:db8::7");
  EXPECT_TRUE(l.contains(reinterpret_cast<sockaddr*>(&c)));
}

TEST(AddressList, V4MappedPeersMatchV4Entries) {
  AddressList l = list({"127.0.0.1", "::ffff:10.0.0.0/104"});
  auto a = v6("::ffff:127.0.0.1");  // a dual-stack socket's view of 127.0.0.1
  EXPECT_TRUE(l.contains(reinterpret_cast<sockaddr*>(&a)));
  EXPECT_TRUE(l.contains("10.9.9.9"));
  EXPECT_FALSE(l.contains("11.0.0.1"));
}

TEST(AddressList, StarAndEmpty) {
  AddressList any = list({"*"});
  EXPECT_TRUE(any.any());
  EXPECT_TRUE(any.contains("203.0.113.9"));
  AddressList none = list({});
  EXPECT_TRUE(none.empty());
  EXPECT_FALSE(none.contains("127.0.0.1"));
  sockaddr_un u{};
  u.sun_family = AF_UNIX;
  EXPECT_FALSE(any.contains(reinterpret_cast<sockaddr*>(&u))) << "unix peers are the caller's call";
}

TEST(AddressList, BadEntriesNamed) {
  for (const char* bad : {"localhost", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "1.2.3"}) {
    AddressList l;
    std::string error;
    EXPECT_FALSE(AddressList::parse({"127.0.0.1", bad}, l, error)) << bad;
    EXPECT_NE(error.find(bad), std::string::npos) << error;
  }
}

ForwardedSettings settings() {
  alicorn::Config c;  // Gunicorn's defaults
  ForwardedSettings s;
  std::string error;
  EXPECT_TRUE(ForwardedSettings::from_config(c, s, error)) << error;
  return s;
}

TEST(Forwarded, DefaultsTrustLoopbackAndUnixSockets) {
  ForwardedSettings s = settings();
  auto lo = v4("127.0.0.1");
  auto other = v4("192.0.2.1");
  auto lo6 = v6("::1");
  sockaddr_un u{};
  u.sun_family = AF_UNIX;
  EXPECT_TRUE(s.trusts(reinterpret_cast<sockaddr*>(&lo)));
  EXPECT_TRUE(s.trusts(reinterpret_cast<sockaddr*>(&lo6)));
  EXPECT_TRUE(s.trusts(reinterpret_cast<sockaddr*>(&u)));
  EXPECT_FALSE(s.trusts(reinterpret_cast<sockaddr*>(&other)));
}

TEST(Forwarded, SchemeHeaders) {
  ForwardedSettings s = settings();
  struct Case {
    std::vector<HttpHeader> headers;
    bool https;
  } cases[] = {
      {{{"X-Forwarded-Proto", "https"}}, true},
      {{{"x-forwarded-proto", "https"}}, true},  // names are case-insensitive
      {{{"X-Forwarded-Proto", "http"}}, false},
      {{{"X-Forwarded-Proto", "HTTPS"}}, false},  // values exact, as Gunicorn
      {{{"X-Forwarded-Ssl", "on"}}, true},
      {{{"X-Forwarded-Protocol", "ssl"}}, true},
      {{{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Ssl", "on"}}, true},
      {{{"X-Other", "https"}}, false},
      {{}, false},
  };
  for (const auto& c : cases) {
    auto v = alicorn::read_forwarded(s, true, c.headers);
    EXPECT_EQ(v.error_status, 0) << v.error;
    EXPECT_EQ(v.https, c.https) << (c.headers.empty() ? "none" : std::string(c.headers[0].value));
  }
}

TEST(Forwarded, ConflictingSchemeHeadersAre400) {
  ForwardedSettings s = settings();
  for (std::vector<HttpHeader> h : {
           std::vector<HttpHeader>{{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Ssl", "off"}},
           std::vector<HttpHeader>{{"X-Forwarded-Proto", "http"}, {"X-Forwarded-Protocol", "ssl"}},
           std::vector<HttpHeader>{{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Proto", "http"}},
       }) {
    auto v = alicorn::read_forwarded(s, true, h);
    EXPECT_EQ(v.error_status, 400);
    EXPECT_FALSE(v.error.empty());
  }
}

TEST(Forwarded, UntrustedPeerChangesNothing) {
  ForwardedSettings s = settings();
  std::vector<HttpHeader> h = {{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Ssl", "off"},
                               {"SCRIPT_NAME", "/evil"}, {"PATH_INFO", "/x"}};
  auto v = alicorn::read_forwarded(s, false, h);
  EXPECT_FALSE(v.https);
  EXPECT_EQ(v.error_status, 0);
  EXPECT_FALSE(v.script_name);
  EXPECT_FALSE(v.path_info);
}

TEST(Forwarded, ForwarderHeaders) {
  ForwardedSettings s = settings();
  std::vector<HttpHeader> h = {{"SCRIPT_NAME", "/app"}, {"Path_Info", "/p"}, {"REMOTE_USER", "bob"},
                               {"SCRIPT-NAME", "/dash"}};
  auto v = alicorn::read_forwarded(s, true, h);
  ASSERT_TRUE(v.script_name);
  EXPECT_EQ(*v.script_name, "/app");
  ASSERT_TRUE(v.path_info);
  EXPECT_EQ(*v.path_info, "/p");
  EXPECT_FALSE(v.remote_user) << "REMOTE_USER is not in the default forwarder_headers";
  alicorn::Config c;
  c.forwarder_headers = {"remote_user"};
  std::string error;
  ASSERT_TRUE(ForwardedSettings::from_config(c, s, error)) << error;
  v = alicorn::read_forwarded(s, true, h);
  EXPECT_FALSE(v.script_name);
  ASSERT_TRUE(v.remote_user);
  EXPECT_EQ(*v.remote_user, "bob");
}

TEST(Forwarded, ConfigErrorsNameTheSetting) {
  auto error_of = [](auto change) {
    alicorn::Config c;
    change(c);
    try {
      alicorn::validate_edge_settings(c);
    } catch (const alicorn::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of([](auto& c) { c.forwarded_allow_ips = {"10.0.0.0/99"}; })
                .find("forwarded_allow_ips: '10.0.0.0/99'"), std::string::npos);
  EXPECT_NE(error_of([](auto& c) { c.proxy_allow_ips = {"nope"}; }).find("proxy_allow_ips"),
            std::string::npos);
  EXPECT_NE(error_of([](auto& c) { c.proxy_protocol = "v3"; }).find("proxy_protocol: 'v3'"),
            std::string::npos);
  EXPECT_NE(error_of([](auto& c) { c.root_path = "app"; }).find("root_path"), std::string::npos);
  EXPECT_NE(error_of([](auto& c) { c.secure_scheme_headers = {{"X Bad", "on"}}; })
                .find("secure_scheme_headers"), std::string::npos);
  EXPECT_EQ(error_of([](auto& c) { c.proxy_protocol = "true"; }), "");
  alicorn::Config c;
  c.proxy_protocol = "true";
  alicorn::validate_edge_settings(c);
  EXPECT_EQ(c.proxy_protocol, "auto");
}

}  // namespace
