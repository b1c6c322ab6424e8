// systemd integration: socket activation (LISTEN_FDS / LISTEN_PID) and sd_notify status
// messages (READY=1, RELOADING=1, STOPPING=1, MAINPID=...). Both are no-ops outside systemd:
// notify() does nothing when $NOTIFY_SOCKET is unset.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace alicorn::systemd {

// The listening sockets systemd passed to this process (fds 3, 4, ...), or none when LISTEN_PID
// is not this process. Unsets LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES, so neither the workers
// nor the app see them.
std::vector<int> listen_fds();

// Send one notification ("READY=1", "STOPPING=1", ...; lines joined with \n). Never throws.
void notify(const std::string& state);

}  // namespace alicorn::systemd
