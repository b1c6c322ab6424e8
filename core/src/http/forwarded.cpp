#include "http/forwarded.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cctype>

#include "config/config.hpp"

namespace alicorn {

bool ForwardedSettings::from_config(const Config& c, ForwardedSettings& out, std::string& error) {
  out = ForwardedSettings();
  out.refuse_underscore = iequals(c.header_map, "refuse");
  std::string why;
  if (!AddressList::parse(c.forwarded_allow_ips, out.allow, why)) {
    error = "forwarded_allow_ips: " + why + " (expected addresses, CIDR networks or *)";
    return false;
  }
  for (const auto& [name, value] : c.secure_scheme_headers) {
    if (!is_token(name)) {
      error = "secure_scheme_headers: '" + name + "' is not a header name";
      return false;
    }
    std::string upper = name;
    for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    out.secure_scheme_headers.emplace_back(std::move(upper), value);
  }
  for (const auto& name : c.forwarder_headers) {
    if (!is_token(name)) {
      error = "forwarder_headers: '" + name + "' is not a header name";
      return false;
    }
    std::string upper = name;
    for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    out.forwarder_headers.push_back(std::move(upper));
  }
  if (c.root_path) {
    std::string root = *c.root_path;
    if (root.front() != '/') {
      error = "root_path: '" + root + "' does not start with '/' (expected a path like /app)";
      return false;
    }
    while (!root.empty() && root.back() == '/') root.pop_back();
    out.root_path = std::move(root);
  }
  return true;
}

bool ForwardedSettings::trusts(const sockaddr* peer) const {
  if (peer == nullptr || peer->sa_family == AF_UNIX) return true;  // a unix socket
  return allow.contains(peer);
}

bool is_forwarder_header(const ForwardedSettings& settings, std::string_view name) {
  return std::any_of(settings.forwarder_headers.begin(), settings.forwarder_headers.end(),
                     [&](const std::string& f) { return f == "*" || iequals(f, name); });
}

const HttpHeader* refused_underscore_header(const ForwardedSettings& settings, bool trusted,
                                            const std::vector<HttpHeader>& headers) {
  for (const auto& h : headers)
    if (h.name.find('_') != std::string_view::npos &&
        !(trusted && is_forwarder_header(settings, h.name)))
      return &h;
  return nullptr;
}

ForwardedView read_forwarded(const ForwardedSettings& settings, bool trusted,
                             const std::vector<HttpHeader>& headers) {
  ForwardedView v;
  if (!trusted) return v;
  const bool scheme_headers = !settings.secure_scheme_headers.empty();
  const bool forwarders = !settings.forwarder_headers.empty();
  bool scheme_seen = false;
  for (const auto& h : headers) {
    if (scheme_headers) {
      for (const auto& [name, secure_value] : settings.secure_scheme_headers) {
        if (!iequals(h.name, name)) continue;
        bool https = h.value == secure_value;
        if (scheme_seen && https != v.https) {
          v.error_status = 400;
          v.error = "conflicting scheme headers (" + std::string(h.name) + ": " +
                    std::string(h.value) + " says " + (https ? "https" : "http") +
                    ", an earlier one the opposite)";
          return v;
        }
        scheme_seen = true;
        v.https = https;
      }
    }
    if (forwarders && h.name.find('_') != std::string_view::npos &&
        is_forwarder_header(settings, h.name)) {
      if (iequals(h.name, "SCRIPT_NAME")) v.script_name = h.value;
      else if (iequals(h.name, "PATH_INFO")) v.path_info = h.value;
      else if (iequals(h.name, "REMOTE_USER")) v.remote_user = h.value;
    }
  }
  return v;
}

}  // namespace alicorn
