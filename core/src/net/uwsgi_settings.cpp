#include "net/uwsgi_settings.hpp"

#include <cctype>

#include "config/config.hpp"
#include "http/uwsgi_parser.hpp"

namespace alicorn {
namespace {

bool resolve(const Config& c, UwsgiSettings& out, std::string& error) {
  std::string protocol = c.protocol;
  for (char& ch : protocol) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (protocol != "http" && protocol != "uwsgi") {
    error = "protocol: '" + c.protocol + "' is not a protocol (expected http or uwsgi)";
    return false;
  }
  out.enabled = protocol == "uwsgi";
  std::string why;
  if (!AddressList::parse(c.uwsgi_allow_ips, out.allow, why)) {
    error = "uwsgi_allow_ips: " + why + " (expected addresses, CIDR networks or *)";
    return false;
  }
  out.max_datasize = uwsgi_max_datasize(static_cast<size_t>(c.limit_request_line),
                                        static_cast<size_t>(c.limit_request_fields),
                                        static_cast<size_t>(c.limit_request_field_size));
  return true;
}

}  // namespace

void validate_uwsgi_settings(Config& config) {
  UwsgiSettings u;
  std::string error;
  if (!resolve(config, u, error)) throw ConfigError(error);
  config.protocol = u.enabled ? "uwsgi" : "http";
}

const UwsgiSettings& uwsgi_settings(const Config& config) {
  static const UwsgiSettings settings = [&] {
    UwsgiSettings u;
    std::string error;
    resolve(config, u, error);  // validated at load time
    return u;
  }();
  return settings;
}

}  // namespace alicorn
