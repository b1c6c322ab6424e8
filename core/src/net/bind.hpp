// Listening addresses as Gunicorn spells them: HOST:PORT, HOST (port 8000), [IPv6]:PORT,
// [IPv6], unix:PATH, fd://N. Parsing is pure; binding lives in listeners.hpp.
#pragma once

#include <string>
#include <string_view>

namespace alicorn {

struct BindAddress {
  enum class Kind { Tcp, Unix, Fd };
  Kind kind = Kind::Tcp;
  std::string host;  // Tcp: hostname or literal address, without brackets ("" = all, as 0.0.0.0)
  int port = 0;      // Tcp: 0..65535
  std::string path;  // Unix: filesystem path
  int fd = -1;       // Fd: an already-open listening socket inherited from the parent
  std::string spec;  // the text it was parsed from

  // Canonical text: "127.0.0.1:8000", "[::1]:8000", "unix:/run/app.sock", "fd://3".
  std::string to_string() const;
  bool operator==(const BindAddress&) const = default;
};

// Throws ConfigError("bind: ...") naming the bad part (bad port, empty path, unclosed bracket).
BindAddress parse_bind(std::string_view spec);

}  // namespace alicorn
