// AddressList: which peers are trusted, from a list of IP addresses and CIDR networks, or "*"
// for any (forwarded_allow_ips, proxy_allow_ips). Pure: parsed once per worker, then matched
// against every accepted connection's peer address without allocating.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace alicorn {

class AddressList {
 public:
  AddressList() = default;

  // Entries such as "127.0.0.1", "::1", "10.0.0.0/8", "2001:db8::/32", "*" (surrounding
  // whitespace ignored, empty entries skipped). Returns false with `error` naming the bad entry.
  static bool parse(const std::vector<std::string>& entries, AddressList& out, std::string& error);

  bool any() const { return any_; }
  bool empty() const { return !any_ && nets_.empty(); }
  // Whether the address is in the list. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, from a
  // dual-stack socket) matches as the IPv4 address. Not for AF_UNIX: the caller decides those.
  bool contains(const sockaddr* addr) const;
  // The same for an address in text form ("192.0.2.1", "2001:db8::1"); false if it is none.
  bool contains(std::string_view text) const;

 private:
  struct Net {
    bool v6 = false;
    std::array<uint8_t, 16> bytes{};
    unsigned prefix = 0;  // leading bits that must match
  };
  bool match(bool v6, const uint8_t* bytes) const;

  std::vector<Net> nets_;
  bool any_ = false;
};

}  // namespace alicorn
