// Forwarded headers, as Gunicorn reads them: what a trusted front-end proxy says about the
// request it passed on. Pure (no Python, no sockets): the session asks read_forwarded() once per
// request and the environ takes the answer.
//
//   forwarded_allow_ips    peers whose headers are believed (addresses, CIDR networks, "*");
//                          connections on unix sockets always are, as in Gunicorn
//   secure_scheme_headers  NAME -> VALUE: when NAME is present, the URL scheme is "https" if
//                          its value is exactly VALUE, else "http"; two of them that disagree
//                          (or one repeated with different answers) are a 400
//   forwarder_headers      header names (with '_', which nginx never passes from a client by
//                          default) a trusted proxy uses to set SCRIPT_NAME, PATH_INFO or
//                          REMOTE_USER
//   root_path              the SCRIPT_NAME the app is mounted at (default: $SCRIPT_NAME)
// From an untrusted peer none of these headers changes anything.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/http_parser.hpp"
#include "net/address_list.hpp"

namespace alicorn {

struct Config;

struct ForwardedSettings {
  AddressList allow;
  std::vector<std::pair<std::string, std::string>> secure_scheme_headers;  // name, value
  std::vector<std::string> forwarder_headers;                              // upper-case
  std::string root_path;  // without a trailing '/'; "" = mounted at the root
  bool refuse_underscore = false;  // header_map = refuse: a 400 for a name with '_'

  // From the resolved settings; false with `error` naming the setting and the bad value.
  static bool from_config(const Config& c, ForwardedSettings& out, std::string& error);
  // Whether a connection from `peer` (accept()'s address; AF_UNIX or nullptr for a unix
  // socket) may set these headers.
  bool trusts(const struct sockaddr* peer) const;
};

// What the headers of one request say, when the peer is trusted.
struct ForwardedView {
  bool https = false;                       // the request's URL scheme
  std::optional<std::string_view> script_name, path_info, remote_user;  // views into headers
  int error_status = 0;                     // 400 for conflicting scheme headers
  std::string error;
};

// `trusted`: ForwardedSettings::trusts(peer) for the connection.
ForwardedView read_forwarded(const ForwardedSettings& settings, bool trusted,
                             const std::vector<HttpHeader>& headers);

// header_map = refuse: the first header name with '_' that is not a forwarder header of a
// trusted peer, or nullptr.
const HttpHeader* refused_underscore_header(const ForwardedSettings& settings, bool trusted,
                                            const std::vector<HttpHeader>& headers);

// Whether `name` (a header name with '_') is one of the forwarder headers the trusted proxy may
// send; such a header is otherwise dropped from the environ.
bool is_forwarder_header(const ForwardedSettings& settings, std::string_view name);

}  // namespace alicorn
