#include "net/address_list.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace alicorn {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "a.b.c.d" or an IPv6 address (no zone, no brackets) into 4 or 16 bytes.
bool parse_ip(std::string_view text, bool& v6, uint8_t* bytes) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  if (::inet_pton(AF_INET, buf, bytes) == 1) {
    v6 = false;
    return true;
  }
  if (::inet_pton(AF_INET6, buf, bytes) == 1) {
    v6 = true;
    return true;
  }
  return false;
}

bool is_v4_mapped(const uint8_t* b) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(b, kPrefix, sizeof kPrefix) == 0;
}

}  // namespace

bool AddressList::parse(const std::vector<std::string>& entries, AddressList& out,
                        std::string& error) {
  out = AddressList();
  for (const auto& raw : entries) {
    std::string_view entry = trim(raw);
    if (entry.empty()) continue;
    if (entry == "*") {
      out.any_ = true;
      continue;
    }
    Net net;
    std::string_view addr = entry;
    std::string_view bits;
    if (auto slash = entry.find('/'); slash != std::string_view::npos) {
      addr = entry.substr(0, slash);
      bits = entry.substr(slash + 1);
    }
    if (!parse_ip(addr, net.v6, net.bytes.data())) {
      error = "'" + std::string(entry) + "' is not an IP address or network";
      return false;
    }
    unsigned max = net.v6 ? 128 : 32;
    net.prefix = max;
    if (entry.find('/') != std::string_view::npos) {
      unsigned n = 0;
      auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), n);
      if (bits.empty() || ec != std::errc() || end != bits.data() + bits.size() || n > max) {
        error = "'" + std::string(entry) + "' has an invalid prefix length (expected 0 to " +
                std::to_string(max) + ")";
        return false;
      }
      net.prefix = n;
    }
    // An IPv4-mapped IPv6 entry means the IPv4 network.
    if (net.v6 && net.prefix >= 96 && is_v4_mapped(net.bytes.data())) {
      std::memmove(net.bytes.data(), net.bytes.data() + 12, 4);
      net.v6 = false;
      net.prefix -= 96;
    }
    out.nets_.push_back(net);
  }
  return true;
}

bool AddressList::match(bool v6, const uint8_t* bytes) const {
  if (v6 && is_v4_mapped(bytes)) {
    v6 = false;
    bytes += 12;
  }
  for (const auto& n : nets_) {
    if (n.v6 != v6) continue;
    unsigned full = n.prefix / 8, rest = n.prefix % 8;
    if (std::memcmp(n.bytes.data(), bytes, full) != 0) continue;
    if (rest != 0) {
      auto mask = static_cast<uint8_t>(0xff << (8 - rest));
      if ((n.bytes[full] & mask) != (bytes[full] & mask)) continue;
    }
    return true;
  }
  return false;
}

bool AddressList::contains(const sockaddr* addr) const {
  if (addr == nullptr) return false;
  if (addr->sa_family == AF_INET) {
    if (any_) return true;
    const auto* sin = reinterpret_cast<const sockaddr_in*>(addr);
    return match(false, reinterpret_cast<const uint8_t*>(&sin->sin_addr));
  }
  if (addr->sa_family == AF_INET6) {
    if (any_) return true;
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(addr);
    return match(true, reinterpret_cast<const uint8_t*>(&sin6->sin6_addr));
  }
  return false;
}

bool AddressList::contains(std::string_view text) const {
  uint8_t bytes[16];
  bool v6 = false;
  if (!parse_ip(trim(text), v6, bytes)) return false;
  return any_ || match(v6, bytes);
}

}  // namespace alicorn
