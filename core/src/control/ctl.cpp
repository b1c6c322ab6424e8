#include "control/ctl.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "util/unique_fd.hpp"

namespace alicorn::control {
namespace {

constexpr const char* kUsage =
    "usage: alicorn ctl [-s PATH] [--json] COMMAND...\n"
    "  -s, --socket PATH  the server's control socket [default: $ALICORN_CONTROL_SOCKET or "
    "alicorn.ctl]\n"
    "  --json             answer as JSON\n"
    "commands: show workers | show stats | show config | show listeners | worker add [N] |\n"
    "          worker remove [N] | reload | reopen | shutdown [graceful|quick] | help\n";

}  // namespace

int ctl_main(int argc, char** argv) {
  const char* env = std::getenv("ALICORN_CONTROL_SOCKET");
  std::string path = env && *env ? env : "alicorn.ctl";
  bool json = false;
  std::string line;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-s" || a == "--socket") && i + 1 < argc) {
      path = argv[++i];
    } else if (a.rfind("--socket=", 0) == 0) {
      path = a.substr(9);
    } else if (a == "--json") {
      json = true;
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (!a.empty() && a[0] == '-' && line.empty()) {
      std::fprintf(stderr, "alicorn ctl: unknown option '%s'\n%s", a.c_str(), kUsage);
      return 2;
    } else {
      line += (line.empty() ? "" : " ") + a;
    }
  }
  if (line.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (line.find('\n') != std::string::npos) {
    std::fputs("alicorn ctl: a command cannot contain a newline\n", stderr);
    return 2;
  }
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.size() >= sizeof sun.sun_path) {
    std::fprintf(stderr, "alicorn ctl: socket path '%s' is too long\n", path.c_str());
    return 2;
  }
  std::memcpy(sun.sun_path, path.c_str(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    std::fprintf(stderr,
                 "alicorn ctl: cannot connect to %s: %s (is the server running with this "
                 "control_socket?)\n",
                 path.c_str(), std::strerror(errno));
    return 1;
  }
  std::string request = (json ? "--json " : "") + line + "\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    std::fprintf(stderr, "alicorn ctl: send to %s failed: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  std::string answer;
  char buf[4096];
  for (;;) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) {
      std::fprintf(stderr, "alicorn ctl: no answer from %s within 10 s\n", path.c_str());
      return 1;
    }
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  auto nl = answer.find('\n');
  std::string status = answer.substr(0, nl);
  std::string body = nl == std::string::npos ? "" : answer.substr(nl + 1);
  if (status == "ok") {
    std::fputs(body.c_str(), stdout);
    return 0;
  }
  if (status == "error") {
    std::fputs(json ? body.c_str() : ("alicorn ctl: " + body).c_str(), json ? stdout : stderr);
    return 1;
  }
  std::fprintf(stderr, "alicorn ctl: unexpected answer from %s\n", path.c_str());
  return 1;
}

}  // namespace alicorn::control
