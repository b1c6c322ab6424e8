// systemd integration through libsystemd (see systemd.hpp).
#include "master/systemd.hpp"

#include <systemd/sd-daemon.h>

#include <cstdlib>

#include "log/log.hpp"

namespace alicorn::systemd {

std::vector<int> listen_fds() {
  std::vector<int> fds;
  int n = ::sd_listen_fds(1);  // checks LISTEN_PID, unsets the variables
  ::unsetenv("LISTEN_FDNAMES");
  for (int i = 0; i < n; ++i) fds.push_back(SD_LISTEN_FDS_START + i);
  return fds;
}

void notify(const std::string& state) {
  if (std::getenv("NOTIFY_SOCKET") == nullptr) return;
  int rc = ::sd_notify(0, state.c_str());
  try {
    if (rc < 0) log::error().debug("sd_notify({}) failed: error {}", state, -rc);
  } catch (...) {
  }
}

}  // namespace alicorn::systemd
