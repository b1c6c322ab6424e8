// AccessLogFormat: Gunicorn's access log atoms rendered from a parsed request.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "log/access_log.hpp"

namespace alicorn {
namespace {

class AccessLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char raw[] =
        "POST /submit?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88\r\n"
        "Referer: http://ref.example/\r\nX-Request-Id: abc123\r\nContent-Length: 3\r\n\r\nabc";
    size_t used = 0;
    ASSERT_EQ(parser.feed(raw, sizeof raw - 1, used), RequestParser::Status::Complete);
    headers = {{"Content-Type", "text/plain"}, {"X-Served-By", "unit"}};
    rec.remote_addr = "10.1.2.3";
    rec.request = &parser;
    rec.status = 201;
    rec.body_bytes = 42;
    rec.response_headers = &headers;
    rec.start_unix_us = 1700000000LL * 1000000;
    rec.duration_us = 2345678;
  }
  std::string render(const char* format) {
    std::string out;
    AccessLogFormat::compile(format).render(rec, out);
    return out;
  }
  RequestParser parser;
  std::vector<std::pair<std::string, std::string>> headers;
  AccessRecord rec;
};

TEST_F(AccessLogTest, DefaultFormatHasGunicornShape) {
  std::string line = render(R"(%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s")");
  EXPECT_EQ(line.rfind("10.1.2.3 - - [", 0), 0u) << line;
  EXPECT_NE(line.find("/Nov/2023:"), std::string::npos) << line;
  EXPECT_NE(line.find("] \"POST /submit?x=1&y=2 HTTP/1.1\" 201 42 \"http://ref.example/\" \"curl/7.88\""),
            std::string::npos)
      << line;
}

TEST_F(AccessLogTest, RequestAtoms) {
  EXPECT_EQ(render("%(m)s|%(U)s|%(q)s|%(H)s"), "POST|/submit|x=1&y=2|HTTP/1.1");
}

TEST_F(AccessLogTest, TimingAtoms) {
  EXPECT_EQ(render("%(T)s %(M)s %(D)s %(L)s"), "2 2345 2345678 2.345678");
}

TEST_F(AccessLogTest, SizeAtomsZeroForEmptyAsGunicorn) {
  // Gunicorn's glogging writes str(resp.sent) for b, so "0", not CLF's "-", for an empty body:
  // log parsers fed by Gunicorn see the same.
  EXPECT_EQ(render("%(B)s %(b)s"), "42 42");
  rec.body_bytes = 0;
  EXPECT_EQ(render("%(B)s %(b)s"), "0 0");
}

TEST_F(AccessLogTest, HeaderAndEnvironmentAtoms) {
  ::setenv("ALICORN_ACCESS_TEST", "from-env", 1);
  EXPECT_EQ(render("%({x-request-id}i)s %({X-Served-By}o)s %({ALICORN_ACCESS_TEST}e)s"),
            "abc123 unit from-env");
  EXPECT_EQ(render("%({missing}i)s %({missing}o)s %({ALICORN_ACCESS_NOPE}e)s"), "- - -");
}

TEST_F(AccessLogTest, WsgiEnvironAtomsAsGunicorn) {
  // Gunicorn's {name}e looks in the WSGI environ, any case; the process environment after.
  EXPECT_EQ(render("%({REQUEST_METHOD}e)s %({raw_uri}e)s %({PATH_INFO}e)s %({QUERY_STRING}e)s"),
            "POST /submit?x=1&y=2 /submit x=1&y=2");
  EXPECT_EQ(render("%({SERVER_PROTOCOL}e)s %({REMOTE_ADDR}e)s %({HTTP_X_REQUEST_ID}e)s"),
            "HTTP/1.1 10.1.2.3 abc123");
  EXPECT_EQ(render("%({HTTP_NOPE}e)s"), "-");
}

TEST_F(AccessLogTest, BasicAuthUserAndDecodedPath) {
  RequestParser p;
  const char raw[] =
      "GET /a%20b/c?q=%20 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6czNjcjN0\r\n\r\n";
  size_t used = 0;
  ASSERT_EQ(p.feed(raw, sizeof raw - 1, used), RequestParser::Status::Complete);
  rec.request = &p;
  EXPECT_EQ(render("%(u)s|%(U)s|%(q)s|%(r)s"), "alice|/a b/c|q=%20|GET /a%20b/c?q=%20 HTTP/1.1");
  RequestParser bad;
  const char raw2[] = "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic !!!\r\n\r\n";
  used = 0;
  ASSERT_EQ(bad.feed(raw2, sizeof raw2 - 1, used), RequestParser::Status::Complete);
  rec.request = &bad;
  EXPECT_EQ(render("%(u)s"), "-");
}

TEST_F(AccessLogTest, ProcessIdAndUnknownAtoms) {
  EXPECT_EQ(render("%(p)s"), "<" + std::to_string(::getpid()) + ">");
  EXPECT_EQ(render("%(Z)s %(zz)s"), "- -");
}

TEST_F(AccessLogTest, LiteralTextAndUnterminatedAtomsKept) {
  EXPECT_EQ(render("status=%(s)s 100%% %(h"), "status=201 100%% %(h");
}

}  // namespace
}  // namespace alicorn
