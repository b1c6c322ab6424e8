#include "net/edge_settings.hpp"

#include "config/config.hpp"

namespace alicorn {
namespace {

bool resolve(const Config& c, EdgeSettings& out, std::string& error) {
  if (!ForwardedSettings::from_config(c, out.forwarded, error)) return false;
  if (!parse_proxy_mode(c.proxy_protocol, out.proxy_mode)) {
    error = "proxy_protocol: '" + c.proxy_protocol + "' is not a PROXY protocol mode (expected "
            "off, v1, v2 or auto)";
    return false;
  }
  std::string why;
  if (!AddressList::parse(c.proxy_allow_ips, out.proxy_allow, why)) {
    error = "proxy_allow_ips: " + why + " (expected addresses, CIDR networks or *)";
    return false;
  }
  return true;
}

}  // namespace

void validate_edge_settings(Config& config) {
  EdgeSettings e;
  std::string error;
  if (!resolve(config, e, error)) throw ConfigError(error);
  config.proxy_protocol = std::string(proxy_mode_name(e.proxy_mode));
}

const EdgeSettings& edge_settings(const Config& config) {
  static const EdgeSettings settings = [&] {
    EdgeSettings e;
    std::string error;
    resolve(config, e, error);  // validated at load time
    return e;
  }();
  return settings;
}

}  // namespace alicorn
