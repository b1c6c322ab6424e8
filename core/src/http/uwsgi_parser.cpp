#include "http/uwsgi_parser.hpp"

#include <algorithm>
#include <cctype>

namespace alicorn {
namespace {

uint16_t le16(const char* p) {
  return static_cast<uint16_t>(static_cast<unsigned char>(p[0]) |
                               (static_cast<unsigned char>(p[1]) << 8));
}

bool has_break(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

// Bytes a request target may not hold as they are (PATH_INFO is decoded): percent-encoded.
std::string encode_path(std::string_view path) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '%' || c == '?' || c == '#') {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// HTTP_* variables the connection does not pass on as header fields: the body's length and
// type come from CONTENT_LENGTH / CONTENT_TYPE (the protocol's framing), and the hop-by-hop
// fields concern the client's connection to the proxy, not this one.
bool dropped_header(std::string_view rest) {
  return rest == "CONTENT_LENGTH" || rest == "CONTENT_TYPE" || rest == "TRANSFER_ENCODING" ||
         rest == "CONNECTION" || rest == "EXPECT" || rest == "TE" || rest == "UPGRADE";
}

}  // namespace

UwsgiParser::Result UwsgiParser::fail(std::string why) {
  error_ = std::move(why);
  return Result::Error;
}

UwsgiParser::Result UwsgiParser::feed(const char* data, size_t len, size_t& used) {
  used = 0;
  if (!error_.empty()) return Result::Error;
  if (done_) return Result::Done;
  if (!header_done_) {
    size_t take = std::min(len, kHeaderSize - buf_.size());
    buf_.append(data, take);
    used += take;
    if (buf_.size() < kHeaderSize) return Result::NeedMore;
    header_done_ = true;
    auto modifier1 = static_cast<unsigned char>(buf_[0]);
    auto modifier2 = static_cast<unsigned char>(buf_[3]);
    datasize_ = le16(buf_.data() + 1);
    if (modifier1 != 0)
      return fail("modifier1 " + std::to_string(modifier1) + " is not 0 (WSGI request)");
    if (modifier2 != 0) return fail("modifier2 " + std::to_string(modifier2) + " is not 0");
    if (datasize_ > max_datasize_)
      return fail("datasize " + std::to_string(datasize_) + " is over the limit of " +
                  std::to_string(max_datasize_) + " bytes");
    buf_.reserve(kHeaderSize + datasize_);
  }
  size_t want = kHeaderSize + datasize_ - buf_.size();
  size_t take = std::min(len - used, want);
  buf_.append(data + used, take);
  used += take;
  if (buf_.size() < kHeaderSize + datasize_) return Result::NeedMore;
  return parse_vars();
}

UwsgiParser::Result UwsgiParser::parse_vars() {
  const char* p = buf_.data() + kHeaderSize;
  const char* end = p + datasize_;
  while (p < end) {
    std::string_view kv[2];
    for (auto& part : kv) {
      if (end - p < 2)
        return fail("variable " + std::to_string(vars_.size() + 1) + " is truncated");
      size_t n = le16(p);
      p += 2;
      if (static_cast<size_t>(end - p) < n)
        return fail("variable " + std::to_string(vars_.size() + 1) + " is truncated (" +
                    std::to_string(n) + " bytes announced, " + std::to_string(end - p) + " left)");
      part = std::string_view(p, n);
      p += n;
    }
    vars_.push_back({kv[0], kv[1]});
  }
  done_ = true;
  return Result::Done;
}

std::optional<std::string_view> UwsgiParser::get(std::string_view key) const {
  for (const auto& v : vars_)
    if (v.key == key) return v.value;
  return std::nullopt;
}

bool uwsgi_to_request(const std::vector<UwsgiVar>& vars, UwsgiRequest& out, std::string& error) {
  std::optional<std::string_view> method, uri, protocol, length, type, path, query, host,
      uwsgi_scheme, https;
  auto set_once = [](std::optional<std::string>& field, std::string_view v) {
    if (!field) field = std::string(v);
  };
  auto view_once = [](std::optional<std::string_view>& field, std::string_view v) {
    if (!field) field = v;
  };
  std::string headers;
  for (const UwsgiVar& v : vars) {
    if (v.key.empty()) {
      error = "a variable has an empty name";
      return false;
    }
    if (has_break(v.key) || has_break(v.value)) {
      error = "variable '" + std::string(v.key.substr(0, 64)) +
              "' holds a CR, LF or NUL byte";
      for (char& c : error)
        if (c == '\r' || c == '\n' || c == '\0') c = '?';
      return false;
    }
    std::string_view k = v.key;
    if (k.starts_with("HTTP_")) {
      std::string_view rest = k.substr(5);
      if (rest.empty() || rest.find_first_of(": \t") != std::string_view::npos) {
        error = "variable '" + std::string(k.substr(0, 64)) + "' is not a header name";
        return false;
      }
      if (rest == "HOST") view_once(host, v.value);
      if (dropped_header(rest)) continue;
      for (char c : rest)
        headers.push_back(c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      headers.append(": ").append(v.value).append("\r\n");
    } else if (k == "REQUEST_METHOD") {
      view_once(method, v.value);
    } else if (k == "REQUEST_URI") {
      view_once(uri, v.value);
    } else if (k == "SERVER_PROTOCOL") {
      view_once(protocol, v.value);
    } else if (k == "CONTENT_LENGTH") {
      view_once(length, v.value);
    } else if (k == "CONTENT_TYPE") {
      view_once(type, v.value);
    } else if (k == "PATH_INFO") {
      view_once(path, v.value);
      set_once(out.path_info, v.value);
    } else if (k == "QUERY_STRING") {
      view_once(query, v.value);
      set_once(out.query_string, v.value);
    } else if (k == "SCRIPT_NAME") {
      set_once(out.script_name, v.value);
    } else if (k == "REMOTE_ADDR") {
      set_once(out.remote_addr, v.value);
    } else if (k == "REMOTE_PORT") {
      set_once(out.remote_port, v.value);
    } else if (k == "REMOTE_USER") {
      set_once(out.remote_user, v.value);
    } else if (k == "SERVER_NAME") {
      set_once(out.server_name, v.value);
    } else if (k == "SERVER_PORT") {
      set_once(out.server_port, v.value);
    } else if (k == "UWSGI_SCHEME") {
      view_once(uwsgi_scheme, v.value);
    } else if (k.starts_with("wsgi.")) {
      continue;  // the server's own keys: never from the wire
    } else {
      if (k == "HTTPS") view_once(https, v.value);
      out.extra.emplace_back(std::string(k), std::string(v.value));
    }
  }
  if (!method || method->empty()) {
    error = "no REQUEST_METHOD variable (does the nginx location include uwsgi_params?)";
    return false;
  }
  out.content_length = 0;
  if (length && !length->empty()) {
    if (length->size() > 18 ||
        !std::all_of(length->begin(), length->end(), [](char c) { return c >= '0' && c <= '9'; })) {
      error = "CONTENT_LENGTH '" + std::string(length->substr(0, 32)) + "' is not a number";
      return false;
    }
    out.content_length = std::stoull(std::string(*length));
  }
  if (uwsgi_scheme && !uwsgi_scheme->empty()) {
    out.scheme = std::string(*uwsgi_scheme);
    for (char& c : out.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (out.scheme != "http" && out.scheme != "https") {
      error = "UWSGI_SCHEME '" + std::string(uwsgi_scheme->substr(0, 32)) +
              "' is neither http nor https";
      return false;
    }
  } else if (https) {
    std::string h(*https);
    for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.scheme = h == "on" || h == "1" ? "https" : "http";
  } else {
    out.scheme = "http";
  }
  const bool http10 = protocol && *protocol == "HTTP/1.0";
  std::string& head = out.head;
  head.clear();
  head.reserve(method->size() + headers.size() + 128 + (uri ? uri->size() : 64));
  head.append(*method).push_back(' ');
  if (uri && !uri->empty()) {
    head.append(*uri);
  } else {
    head.append(encode_path(path && !path->empty() ? *path : std::string_view("/")));
    if (query && !query->empty()) head.append("?").append(*query);
  }
  head.append(http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  head.append(headers);
  if (!host && !http10) {
    // HTTP/1.1 needs a Host field; a client of the proxy's that sent none gets the server's.
    head.append("host: ");
    head.append(out.server_name && !out.server_name->empty() ? *out.server_name : "localhost");
    head.append("\r\n");
  }
  if (out.content_length > 0) head.append("content-length: ").append(*length).append("\r\n");
  if (type && !type->empty()) head.append("content-type: ").append(*type).append("\r\n");
  head.append("\r\n");
  return true;
}

size_t uwsgi_max_datasize(size_t request_line, size_t header_fields, size_t field_size) {
  constexpr size_t kMax = 65535;
  constexpr size_t kCgiVars = 4096;  // REQUEST_METHOD, SERVER_NAME, DOCUMENT_ROOT, ...
  if (request_line == 0 || header_fields == 0 || field_size == 0) return kMax;
  // Each field costs at most its line (name + value) plus 4 length bytes, the URI appears up to
  // three times (REQUEST_URI, PATH_INFO, QUERY_STRING).
  size_t bound = 3 * (request_line + 16) + header_fields * (field_size + 4) + kCgiVars;
  return std::min(bound, kMax);
}

}  // namespace alicorn
