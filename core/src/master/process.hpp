// Process-level operations of the master and its workers: detaching (--daemon), dropping
// privileges in workers (--user, --group, --initgroups).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "config/config.hpp"

namespace alicorn {

// Detach from the terminal as Gunicorn does: fork (the parent exits 0), setsid, fork again (the
// session leader exits), umask 022, stdin on /dev/null, and stdout / stderr on /dev/null too
// unless a log is written there (`keep_stdout` / `keep_stderr`). The working directory stays.
// Returns in the daemon; throws std::runtime_error if a call fails before the first fork.
void daemonize(bool keep_stdout, bool keep_stderr);

// Who the workers run as: resolved from --user / --group once (in the master).
struct Identity {
  std::optional<uid_t> uid;  // switch to this user (unset: stay)
  std::optional<gid_t> gid;  // switch to this group (unset: stay)
  std::string user_name;     // for initgroups
  bool initgroups = false;
};
// Throws ConfigError naming the setting.
Identity resolve_identity(const Config& config);
// True when the identity differs from the process's own (so a switch is needed).
bool identity_changes(const Identity& id);

// In a worker after fork: setgroups / initgroups, setgid, setuid. Throws std::runtime_error
// naming the failing call (e.g. "setuid(65534) failed: Operation not permitted").
void drop_privileges(const Identity& id);

// chown a path the workers must use (a unix socket, a log file) to the identity; no-op when the
// identity changes nothing. Returns false (errno set) on failure.
bool chown_for(const Identity& id, const std::string& path);

}  // namespace alicorn
