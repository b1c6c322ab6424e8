// The uwsgi protocol settings (protocol, uwsgi_allow_ips), checked once when the configuration
// is loaded and resolved once per worker process. The protocol itself: http/uwsgi_parser.hpp.
#pragma once

#include <cstddef>

#include "net/address_list.hpp"

namespace alicorn {

struct Config;

// Check and normalise (protocol lower-cased): throws ConfigError naming the setting and the bad
// value. Called by load_config, so a bad value stops the start before fork.
void validate_uwsgi_settings(Config& config);

struct UwsgiSettings {
  bool enabled = false;  // protocol = uwsgi
  AddressList allow;     // peers that may talk uwsgi (unix-socket peers always may)
  size_t max_datasize = 65535;
};

// Resolved from the worker's configuration on first use. Thread-safe.
const UwsgiSettings& uwsgi_settings(const Config& config);

}  // namespace alicorn
