// Parsing of listening addresses as Gunicorn spells them (see bind.hpp).
#include "net/bind.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>

#include "config/config.hpp"

namespace alicorn {
namespace {

constexpr int kDefaultPort = 8000;

[[noreturn]] void fail(std::string_view spec, const std::string& problem) {
  throw ConfigError("bind: '" + std::string(spec) + "' " + problem);
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), s.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         });
}

// A whole non-negative decimal number no larger than max, or -1.
int parse_number(std::string_view text, int max) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (text.empty() || !std::all_of(text.begin(), text.end(), digit)) return -1;
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > max) return -1;
  return value;
}

int parse_port(std::string_view spec, std::string_view port) {
  if (port.empty()) fail(spec, "has an empty port (expected an integer from 0 to 65535)");
  int value = parse_number(port, 65535);
  if (value < 0)
    fail(spec, "has an invalid port '" + std::string(port) +
                   "' (expected an integer from 0 to 65535)");
  return value;
}

bool valid_hostname(std::string_view host) {
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  });
}

// Inside brackets: hex digits, ':' and '.', at least one ':', plus an optional %zone suffix.
bool valid_ipv6(std::string_view host) {
  auto zone = host.find('%');
  std::string_view addr = host.substr(0, zone);
  if (zone != std::string_view::npos && !valid_hostname(host.substr(zone + 1))) return false;
  if (zone != std::string_view::npos && zone + 1 == host.size()) return false;
  return addr.find(':') != std::string_view::npos &&
         std::all_of(addr.begin(), addr.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
         });
}

}  // namespace

std::string BindAddress::to_string() const {
  switch (kind) {
    case Kind::Unix: return "unix:" + path;
    case Kind::Fd: return "fd://" + std::to_string(fd);
    case Kind::Tcp: break;
  }
  std::string h = host.empty() ? "0.0.0.0" : host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  return h + ":" + std::to_string(port);
}

BindAddress parse_bind(std::string_view spec) {
  BindAddress out;
  out.spec = std::string(spec);
  if (spec.empty())
    throw ConfigError("bind: empty address (expected HOST:PORT, unix:PATH or fd://N)");

  if (starts_with_ci(spec, "unix:")) {
    std::string_view path = spec.substr(5);
    if (path.substr(0, 2) == "//") path.remove_prefix(2);  // unix://PATH, as Gunicorn also accepts
    if (path.empty()) fail(spec, "has an empty socket path (expected unix:PATH)");
    out.kind = BindAddress::Kind::Unix;
    out.path = std::string(path);
    return out;
  }
  if (starts_with_ci(spec, "fd://")) {
    out.kind = BindAddress::Kind::Fd;
    out.fd = parse_number(spec.substr(5), 0x7fffffff);
    if (out.fd < 0)
      fail(spec, "has an invalid file descriptor (expected fd://N with an integer N >= 0)");
    return out;
  }

  std::string_view rest = spec;
  if (starts_with_ci(rest, "tcp://")) rest.remove_prefix(6);
  out.kind = BindAddress::Kind::Tcp;
  out.port = kDefaultPort;

  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) fail(spec, "has an unclosed '[' (expected [IPv6]:PORT)");
    std::string_view host = rest.substr(1, close - 1);
    if (!valid_ipv6(host)) fail(spec, "has an invalid IPv6 address '" + std::string(host) + "'");
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') fail(spec, "has unexpected text after ']' (expected [IPv6]:PORT)");
      out.port = parse_port(spec, after.substr(1));
    }
    out.host = std::string(host);
    return out;
  }

  auto colon = rest.find(':');
  if (colon != std::string_view::npos && rest.find(':', colon + 1) != std::string_view::npos)
    fail(spec, "is ambiguous: write an IPv6 address in brackets, e.g. [::1]:8000");
  std::string_view host = rest.substr(0, colon);
  if (colon != std::string_view::npos) out.port = parse_port(spec, rest.substr(colon + 1));
  else if (host.empty()) fail(spec, "has no host or port (expected HOST:PORT)");
  if (!valid_hostname(host)) fail(spec, "has an invalid host '" + std::string(host) + "'");
  out.host = std::string(host);
  return out;
}

}  // namespace alicorn
