// The access log line, in Gunicorn's format language: %(h)s remote address, %(l)s '-',
// %(u)s the Basic-auth user (or '-'), %(t)s [time], %(r)s request line, %(m)s method,
// %(U)s path (percent-decoded, as PATH_INFO), %(q)s query, %(H)s protocol, %(s)s status,
// %(B)s body bytes, %(b)s bytes or '-', %(f)s referer, %(a)s user agent, %(T)s seconds,
// %(M)s milliseconds, %(D)s microseconds, %(L)s decimal seconds, %(p)s <pid>,
// %({name}i)s request header, %({name}o)s response header, %({name}e)s a WSGI environ
// variable the connection knows (REQUEST_METHOD, RAW_URI, PATH_INFO, QUERY_STRING,
// SERVER_PROTOCOL, REMOTE_ADDR, HTTP_*; any case), else the process environment's.
// The format is compiled once; rendering is pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/http_parser.hpp"

namespace alicorn {

struct AccessRecord {
  std::string_view remote_addr;
  const RequestParser* request = nullptr;  // method, target, version, headers
  int status = 0;
  int64_t body_bytes = 0;
  const std::vector<std::pair<std::string, std::string>>* response_headers = nullptr;
  int64_t content_length = -1;  // the app's Content-Length (kept out of response_headers)
  int64_t start_unix_us = 0;  // wall clock when the request was ready
  int64_t duration_us = 0;
};

class AccessLogFormat {
 public:
  // Unknown atoms render as '-', as in Gunicorn; never throws on user input.
  static AccessLogFormat compile(std::string_view format);
  void render(const AccessRecord& record, std::string& out) const;

 private:
  enum class Atom : uint8_t {
    Literal, h, l, u, t, r, m, U, q, H, s, B, b, f, a, T, M, D, L, p, In, Out, Env, Unknown
  };
  struct Part {
    Atom atom;
    std::string text;  // literal text, or the header / variable name
  };
  std::vector<Part> parts_;
};

// Process-wide: set once at start-up from the access_log_format setting.
void set_access_log_format(std::string_view format);
// Write one line to the access log if it is enabled (any thread).
void write_access_log(const AccessRecord& record);


}  // namespace alicorn
