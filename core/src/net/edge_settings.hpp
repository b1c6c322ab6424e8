// The settings of the edge (forwarded headers, PROXY protocol), checked once when the
// configuration is loaded and resolved once per worker process.
#pragma once

#include "http/forwarded.hpp"
#include "net/address_list.hpp"
#include "net/proxy_protocol.hpp"

namespace alicorn {

struct Config;

// Check and normalise (proxy_protocol "true" -> "auto", ...): throws ConfigError naming the
// setting and the bad value. Called by load_config, so a bad value stops the start before fork.
void validate_edge_settings(Config& config);

struct EdgeSettings {
  ForwardedSettings forwarded;
  ProxyMode proxy_mode = ProxyMode::Off;
  AddressList proxy_allow;
};

// Resolved from the worker's configuration on first use (the process's configuration does not
// change: a reload starts new workers). Thread-safe.
const EdgeSettings& edge_settings(const Config& config);

}  // namespace alicorn
