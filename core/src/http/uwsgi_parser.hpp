// The uwsgi binary protocol (what nginx's uwsgi_pass speaks), request side. Pure: no Python, no
// sockets, so it is unit-tested and fuzzed on its own (tests/unit/test_uwsgi_parser.cpp,
// tests/fuzz/fuzz_uwsgi.cpp).
//
// A packet is a 4-byte header, modifier1 (0 = WSGI), datasize (little-endian 16 bits),
// modifier2 (0), then `datasize` bytes of variables, each a little-endian 16-bit length and the
// key's bytes, then the same for the value. The request body (CONTENT_LENGTH bytes) follows the
// packet. The response is HTTP/1.x status line + headers + body, and the peer closes after it.
//
// How the connection uses it (http/http_session.cpp): UwsgiParser collects the variables;
// uwsgi_to_request() turns them into an HTTP/1.1 request head (method, REQUEST_URI, the HTTP_*
// variables as header fields, CONTENT_LENGTH / CONTENT_TYPE) that the strict RequestParser then
// reads like any other request, body included, so every limit, the body spooling and streaming
// and the access log work as they do for HTTP; and into the facts the variables state about the
// request (REMOTE_ADDR, SERVER_NAME, HTTPS, PATH_INFO, ...), which override what the socket says.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alicorn {

struct UwsgiVar {
  std::string_view key;
  std::string_view value;
};

class UwsgiParser {
 public:
  enum class Result { NeedMore, Done, Error };
  static constexpr size_t kHeaderSize = 4;

  // `max_datasize` bounds the variables block (the header's datasize); at most 65535 anyway.
  explicit UwsgiParser(size_t max_datasize = 65535) : max_datasize_(max_datasize) {}

  // Consume bytes of the packet; `used` says how many of `data` belonged to it (the rest is the
  // body). Done: vars() is valid (views into this parser, stable until it is destroyed).
  Result feed(const char* data, size_t len, size_t& used);
  const std::vector<UwsgiVar>& vars() const { return vars_; }
  // Valid after Error: why, for the log line.
  const std::string& error() const { return error_; }
  // The variable's value, nullopt when absent (the first one when repeated).
  std::optional<std::string_view> get(std::string_view key) const;

 private:
  Result fail(std::string why);
  Result parse_vars();

  size_t max_datasize_;
  std::string buf_;        // header + variables as received
  size_t datasize_ = 0;    // from the header, once it is in
  bool header_done_ = false;
  bool done_ = false;
  std::vector<UwsgiVar> vars_;
  std::string error_;
};

// What a uwsgi request says, ready for the connection: the HTTP/1.1 head to parse and the
// request's facts. The strings are owned here (the app::Request views point into them).
struct UwsgiRequest {
  std::string head;  // "GET /x?y HTTP/1.1\r\nhost: ...\r\n...\r\n"
  std::string scheme = "http";  // UWSGI_SCHEME, else HTTPS=on|1 -> https
  std::optional<std::string> remote_addr, remote_port, remote_user;
  std::optional<std::string> server_name, server_port;
  std::optional<std::string> script_name, path_info, query_string;
  uint64_t content_length = 0;
  // Variables passed to the environ as they are (DOCUMENT_ROOT, REQUEST_SCHEME, HTTPS, ...):
  // every one that is neither an HTTP_* header nor one of the facts above.
  std::vector<std::pair<std::string, std::string>> extra;
};

// Build the request from a packet's variables. False with `error` naming the cause when they do
// not make a request: no REQUEST_METHOD (a location without `include uwsgi_params`), a bad
// CONTENT_LENGTH, a CR, LF or NUL byte in a key or value, a bad HTTP_* name.
bool uwsgi_to_request(const std::vector<UwsgiVar>& vars, UwsgiRequest& out, std::string& error);

// The bound on datasize for the given HTTP limits (0 = unlimited): room for a request line, the
// header fields and the CGI variables nginx adds, at most 65535 (the field is 16 bits).
size_t uwsgi_max_datasize(size_t request_line, size_t header_fields, size_t field_size);

}  // namespace alicorn
