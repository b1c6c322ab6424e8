// UwsgiParser and uwsgi_to_request: packets fed whole and byte by byte; bad modifiers, truncated
// variables, datasize over the bound; the request head they make, read back by the strict
// RequestParser (method, target, headers, body framing), and the facts (HTTPS, UWSGI_SCHEME,
// REMOTE_ADDR, SERVER_NAME, PATH_INFO, QUERY_STRING, extra variables).
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "http/http_parser.hpp"
#include "http/uwsgi_parser.hpp"

using alicorn::RequestParser;
using alicorn::UwsgiParser;
using alicorn::UwsgiRequest;
using Result = UwsgiParser::Result;
using Vars = std::vector<std::pair<std::string, std::string>>;

namespace {

std::string le16(size_t n) {
  return {static_cast<char>(n & 0xff), static_cast<char>((n >> 8) & 0xff)};
}

std::string vars_block(const Vars& vars) {
  std::string d;
  for (const auto& [k, v] : vars) d += le16(k.size()) + k + le16(v.size()) + v;
  return d;
}

std::string packet(const Vars& vars, int m1 = 0, int m2 = 0) {
  std::string d = vars_block(vars);
  return std::string(1, static_cast<char>(m1)) + le16(d.size()) +
         std::string(1, static_cast<char>(m2)) + d;
}

const Vars kNginxGet = {
    {"QUERY_STRING", "x=1&y=2"},  {"REQUEST_METHOD", "GET"},
    {"CONTENT_TYPE", ""},         {"CONTENT_LENGTH", ""},
    {"REQUEST_URI", "/a%20b?x=1&y=2"}, {"PATH_INFO", "/a b"},
    {"DOCUMENT_ROOT", "/srv/www"}, {"SERVER_PROTOCOL", "HTTP/1.1"},
    {"REQUEST_SCHEME", "http"},   {"REMOTE_ADDR", "192.0.2.7"},
    {"REMOTE_PORT", "40000"},     {"SERVER_PORT", "80"},
    {"SERVER_NAME", "example.test"}, {"HTTP_HOST", "example.test"},
    {"HTTP_USER_AGENT", "curl/8"}, {"HTTP_X_CUSTOM_THING", "v"},
    {"HTTP_CONNECTION", "keep-alive"},
};

UwsgiParser parse_ok(const std::string& bytes) {
  UwsgiParser p;
  size_t used = 0;
  EXPECT_EQ(p.feed(bytes.data(), bytes.size(), used), Result::Done) << p.error();
  EXPECT_EQ(used, bytes.size());
  return p;
}

UwsgiRequest to_request(const Vars& vars) {
  UwsgiParser p = parse_ok(packet(vars));
  UwsgiRequest r;
  std::string error;
  EXPECT_TRUE(alicorn::uwsgi_to_request(p.vars(), r, error)) << error;
  return r;
}

std::string header(const RequestParser& p, std::string_view name) {
  for (const auto& h : p.headers())
    if (alicorn::iequals(h.name, name)) return std::string(h.value);
  return "<absent>";
}

}  // namespace

TEST(UwsgiParser, ParsesWholeAndByteByByte) {
  std::string bytes = packet(kNginxGet) + "BODY";
  {
    UwsgiParser p;
    size_t used = 0;
    ASSERT_EQ(p.feed(bytes.data(), bytes.size(), used), Result::Done);
    EXPECT_EQ(used, bytes.size() - 4);  // the body is left to the caller
    ASSERT_EQ(p.vars().size(), kNginxGet.size());
    EXPECT_EQ(p.vars()[1].key, "REQUEST_METHOD");
    EXPECT_EQ(p.get("REQUEST_URI"), "/a%20b?x=1&y=2");
    EXPECT_EQ(p.get("CONTENT_TYPE"), "");
    EXPECT_FALSE(p.get("NOPE"));
  }
  UwsgiParser p;
  size_t total = 0;
  Result r = Result::NeedMore;
  for (size_t i = 0; i < bytes.size() && r == Result::NeedMore; ++i) {
    size_t used = 0;
    r = p.feed(bytes.data() + i, 1, used);
    total += used;
  }
  ASSERT_EQ(r, Result::Done);
  EXPECT_EQ(total, bytes.size() - 4);
  EXPECT_EQ(p.get("HTTP_USER_AGENT"), "curl/8");
}

TEST(UwsgiParser, EmptyPacketParsesButMakesNoRequest) {
  UwsgiParser p = parse_ok(packet({}));
  EXPECT_TRUE(p.vars().empty());
  UwsgiRequest r;
  std::string error;
  EXPECT_FALSE(alicorn::uwsgi_to_request(p.vars(), r, error));
  EXPECT_NE(error.find("REQUEST_METHOD"), std::string::npos) << error;
  EXPECT_NE(error.find("uwsgi_params"), std::string::npos) << error;
}

TEST(UwsgiParser, RefusesBadModifiers) {
  for (auto [m1, m2, word] : {std::tuple{1, 0, "modifier1"}, std::tuple{5, 0, "modifier1"},
                             std::tuple{0, 1, "modifier2"}, std::tuple{0, 255, "modifier2"}}) {
    UwsgiParser p;
    std::string bytes = packet({{"REQUEST_METHOD", "GET"}}, m1, m2);
    size_t used = 0;
    EXPECT_EQ(p.feed(bytes.data(), bytes.size(), used), Result::Error);
    EXPECT_NE(p.error().find(word), std::string::npos) << p.error();
    EXPECT_EQ(p.feed(bytes.data(), bytes.size(), used), Result::Error);  // stays failed
  }
}

TEST(UwsgiParser, RefusesTruncatedVariables) {
  // A key length running past datasize, a value length running past it, a lone length byte.
  std::vector<std::string> blocks = {
      le16(20) + "REQUEST_METHOD",
      le16(14) + "REQUEST_METHOD" + le16(10) + "GET",
      le16(14) + "REQUEST_METHOD" + le16(3) + "GET" + "\x05",
      le16(14) + "REQUEST_METHOD",
  };
  for (const std::string& d : blocks) {
    std::string bytes = std::string(1, '\0') + le16(d.size()) + std::string(1, '\0') + d;
    UwsgiParser p;
    size_t used = 0;
    EXPECT_EQ(p.feed(bytes.data(), bytes.size(), used), Result::Error);
    EXPECT_NE(p.error().find("truncated"), std::string::npos) << p.error();
  }
}

TEST(UwsgiParser, WaitsForTheAnnouncedBytes) {
  std::string bytes = packet(kNginxGet);
  UwsgiParser p;
  size_t used = 0;
  EXPECT_EQ(p.feed(bytes.data(), bytes.size() - 1, used), Result::NeedMore);
  EXPECT_EQ(used, bytes.size() - 1);
  EXPECT_EQ(p.feed(bytes.data() + bytes.size() - 1, 1, used), Result::Done);
}

TEST(UwsgiParser, RefusesDatasizeOverTheBound) {
  std::string bytes = packet({{"REQUEST_METHOD", "GET"}, {"HTTP_COOKIE", std::string(500, 'c')}});
  UwsgiParser p(100);
  size_t used = 0;
  EXPECT_EQ(p.feed(bytes.data(), 4, used), Result::Error);  // known from the header alone
  EXPECT_NE(p.error().find("datasize"), std::string::npos) << p.error();
  EXPECT_EQ(alicorn::uwsgi_max_datasize(4094, 100, 8190), 65535u);
  EXPECT_EQ(alicorn::uwsgi_max_datasize(0, 100, 8190), 65535u);
  size_t small = alicorn::uwsgi_max_datasize(100, 10, 100);
  EXPECT_GT(small, 10u * 104);
  EXPECT_LT(small, 65535u);
}

TEST(UwsgiRequest, HeadReadsBackAsTheRequest) {
  UwsgiRequest r = to_request(kNginxGet);
  RequestParser p;
  size_t used = 0;
  ASSERT_EQ(p.feed(r.head.data(), r.head.size(), used), RequestParser::Status::Complete)
      << p.error_reason() << "\n" << r.head;
  EXPECT_EQ(p.method(), "GET");
  EXPECT_EQ(p.target(), "/a%20b?x=1&y=2");
  EXPECT_EQ(p.http_minor(), 1);
  EXPECT_EQ(header(p, "host"), "example.test");
  EXPECT_EQ(header(p, "user-agent"), "curl/8");
  EXPECT_EQ(header(p, "x-custom-thing"), "v");
  EXPECT_EQ(header(p, "connection"), "<absent>");  // hop-by-hop: the client's, not ours
  EXPECT_EQ(header(p, "content-type"), "<absent>");
  EXPECT_EQ(r.scheme, "http");
  EXPECT_EQ(r.remote_addr, "192.0.2.7");
  EXPECT_EQ(r.remote_port, "40000");
  EXPECT_EQ(r.server_name, "example.test");
  EXPECT_EQ(r.server_port, "80");
  EXPECT_EQ(r.path_info, "/a b");
  EXPECT_EQ(r.query_string, "x=1&y=2");
  EXPECT_FALSE(r.script_name);
  Vars extra(r.extra.begin(), r.extra.end());
  EXPECT_EQ(extra, (Vars{{"DOCUMENT_ROOT", "/srv/www"}, {"REQUEST_SCHEME", "http"}}));
}

TEST(UwsgiRequest, BodyFramedByContentLength) {
  Vars v = {{"REQUEST_METHOD", "POST"}, {"REQUEST_URI", "/up"}, {"CONTENT_LENGTH", "5"},
            {"CONTENT_TYPE", "text/plain"}, {"HTTP_HOST", "h"},
            {"HTTP_CONTENT_LENGTH", "999"}, {"HTTP_TRANSFER_ENCODING", "chunked"},
            {"HTTP_EXPECT", "100-continue"}};
  UwsgiRequest r = to_request(v);
  EXPECT_EQ(r.content_length, 5u);
  std::string bytes = r.head + "helloNEXT";
  RequestParser p;
  size_t used = 0;
  ASSERT_EQ(p.feed(bytes.data(), bytes.size(), used), RequestParser::Status::Complete)
      << p.error_reason() << "\n" << r.head;
  EXPECT_EQ(used, bytes.size() - 4);
  EXPECT_EQ(p.body(), "hello");
  EXPECT_EQ(header(p, "content-type"), "text/plain");
  EXPECT_FALSE(p.chunked());
  EXPECT_FALSE(p.expect_continue());
}

TEST(UwsgiRequest, SchemeFromHttpsOrUwsgiScheme) {
  Vars base = {{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/"}, {"HTTP_HOST", "h"}};
  auto with = [&](Vars more) {
    Vars v = base;
    v.insert(v.end(), more.begin(), more.end());
    return to_request(v).scheme;
  };
  EXPECT_EQ(with({}), "http");
  EXPECT_EQ(with({{"HTTPS", "on"}}), "https");
  EXPECT_EQ(with({{"HTTPS", "ON"}}), "https");
  EXPECT_EQ(with({{"HTTPS", "1"}}), "https");
  EXPECT_EQ(with({{"HTTPS", "off"}}), "http");
  EXPECT_EQ(with({{"UWSGI_SCHEME", "https"}}), "https");
  EXPECT_EQ(with({{"UWSGI_SCHEME", "http"}, {"HTTPS", "on"}}), "http");  // UWSGI_SCHEME wins
  UwsgiParser p = parse_ok(packet({{"REQUEST_METHOD", "GET"}, {"UWSGI_SCHEME", "gopher"}}));
  UwsgiRequest r;
  std::string error;
  EXPECT_FALSE(alicorn::uwsgi_to_request(p.vars(), r, error));
  EXPECT_NE(error.find("UWSGI_SCHEME"), std::string::npos) << error;
}

TEST(UwsgiRequest, TargetFromPathInfoWithoutRequestUri) {
  UwsgiRequest r = to_request({{"REQUEST_METHOD", "GET"}, {"PATH_INFO", "/a b%c"},
                               {"QUERY_STRING", "q=1"}, {"SERVER_PROTOCOL", "HTTP/1.0"}});
  RequestParser p;
  size_t used = 0;
  ASSERT_EQ(p.feed(r.head.data(), r.head.size(), used), RequestParser::Status::Complete)
      << p.error_reason() << "\n" << r.head;
  EXPECT_EQ(p.target(), "/a%20b%25c?q=1");
  EXPECT_EQ(p.http_minor(), 0);
  EXPECT_EQ(r.path_info, "/a b%c");
}

TEST(UwsgiRequest, HostFromServerNameWhenTheClientSentNone) {
  UwsgiRequest r = to_request({{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/"},
                               {"SERVER_NAME", "srv.test"}});
  RequestParser p;
  size_t used = 0;
  ASSERT_EQ(p.feed(r.head.data(), r.head.size(), used), RequestParser::Status::Complete)
      << p.error_reason();
  EXPECT_EQ(header(p, "host"), "srv.test");
}

TEST(UwsgiRequest, RefusesInjectionAndBadValues) {
  std::vector<std::pair<Vars, std::string>> cases = {
      {{{"REQUEST_METHOD", "GET"}, {"HTTP_X", "a\r\nX-Evil: 1"}}, "CR, LF or NUL"},
      {{{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/ HTTP/1.1\r\nX: y"}}, "CR, LF or NUL"},
      {{{"REQUEST_METHOD", "GET"}, {std::string("HTTP_\0X", 7), "v"}}, "CR, LF or NUL"},
      {{{"REQUEST_METHOD", "GET"}, {"HTTP_A:B", "v"}}, "not a header name"},
      {{{"REQUEST_METHOD", "GET"}, {"HTTP_", "v"}}, "not a header name"},
      {{{"REQUEST_METHOD", "GET"}, {"", "v"}}, "empty name"},
      {{{"REQUEST_METHOD", "POST"}, {"CONTENT_LENGTH", "12a"}}, "CONTENT_LENGTH"},
      {{{"REQUEST_METHOD", "POST"}, {"CONTENT_LENGTH", "-1"}}, "CONTENT_LENGTH"},
      {{{"REQUEST_METHOD", ""}}, "REQUEST_METHOD"},
  };
  for (const auto& [vars, mention] : cases) {
    UwsgiParser p = parse_ok(packet(vars));
    UwsgiRequest r;
    std::string error;
    EXPECT_FALSE(alicorn::uwsgi_to_request(p.vars(), r, error)) << r.head;
    EXPECT_NE(error.find(mention), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;  // one log line
  }
}

TEST(UwsgiRequest, ServerKeysNeverComeFromTheWire) {
  UwsgiRequest r = to_request({{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/"},
                               {"wsgi.input", "x"}, {"wsgi.url_scheme", "https"},
                               {"SCRIPT_NAME", "/app"}, {"REMOTE_USER", "bob"}});
  EXPECT_TRUE(r.extra.empty());
  EXPECT_EQ(r.scheme, "http");
  EXPECT_EQ(r.script_name, "/app");
  EXPECT_EQ(r.remote_user, "bob");
}

TEST(UwsgiRequest, LargeHeaderWithinTheFieldLimit) {
  std::string cookie(6 * 1024, 'c');
  UwsgiRequest r = to_request({{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/"},
                               {"HTTP_HOST", "h"}, {"HTTP_COOKIE", cookie}});
  RequestParser p;
  size_t used = 0;
  ASSERT_EQ(p.feed(r.head.data(), r.head.size(), used), RequestParser::Status::Complete)
      << p.error_reason();
  EXPECT_EQ(header(p, "cookie"), cookie);
  // Past limit_request_field_size the parser refuses it as for HTTP (431).
  alicorn::HttpLimits small;
  small.field_size = 1024;
  RequestParser q(small);
  EXPECT_EQ(q.feed(r.head.data(), r.head.size(), used), RequestParser::Status::Error);
  EXPECT_EQ(q.error_status(), 431);
}
