// Daemonising and privilege dropping (see process.hpp).
#include "master/process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace alicorn {
namespace {

[[noreturn]] void fail(const std::string& call) {
  throw std::runtime_error(call + " failed: " + std::strerror(errno));
}

}  // namespace

void daemonize(bool keep_stdout, bool keep_stderr) {
  pid_t pid = ::fork();
  if (pid < 0) fail("fork()");
  if (pid > 0) ::_exit(0);
  if (::setsid() < 0) ::_exit(1);
  pid = ::fork();
  if (pid < 0) ::_exit(1);
  if (pid > 0) ::_exit(0);
  ::umask(022);
  int null_fd = ::open("/dev/null", O_RDWR);
  if (null_fd >= 0) {
    ::dup2(null_fd, STDIN_FILENO);
    if (!keep_stdout) ::dup2(null_fd, STDOUT_FILENO);
    if (!keep_stderr) ::dup2(null_fd, STDERR_FILENO);
    if (null_fd > STDERR_FILENO) ::close(null_fd);
  }
}

Identity resolve_identity(const Config& config) {
  Identity id;
  id.initgroups = config.initgroups;
  if (config.user) {
    ResolvedUser u;
    try {
      u = resolve_user(*config.user);
    } catch (const ConfigError& e) {
      throw ConfigError("user: '" + *config.user + "' " + e.what());
    }
    id.uid = static_cast<uid_t>(u.uid);
    id.user_name = u.name;
    // Unlike Gunicorn (which keeps the master's group), default to the user's primary group:
    // a worker running as `nobody` in group root would keep root's group permissions.
    if (!config.group) id.gid = static_cast<gid_t>(u.primary_gid);
  }
  if (config.group) {
    try {
      id.gid = static_cast<gid_t>(resolve_group(*config.group));
    } catch (const ConfigError& e) {
      throw ConfigError("group: '" + *config.group + "' " + e.what());
    }
  }
  return id;
}

bool identity_changes(const Identity& id) {
  return (id.uid && *id.uid != ::geteuid()) || (id.gid && *id.gid != ::getegid());
}

void drop_privileges(const Identity& id) {
  if (!identity_changes(id)) return;
  gid_t gid = id.gid.value_or(::getegid());
  if (id.initgroups && !id.user_name.empty()) {
    if (::initgroups(id.user_name.c_str(), gid) != 0 && errno != EPERM)
      fail("initgroups(" + id.user_name + ")");
  } else if (::geteuid() == 0) {
    if (::setgroups(0, nullptr) != 0 && errno != EPERM) fail("setgroups()");
  }
  if (id.gid && *id.gid != ::getegid() && ::setgid(*id.gid) != 0)
    fail("setgid(" + std::to_string(*id.gid) + ")");
  if (id.uid && *id.uid != ::geteuid() && ::setuid(*id.uid) != 0)
    fail("setuid(" + std::to_string(*id.uid) + ")");
}

bool chown_for(const Identity& id, const std::string& path) {
  if (!identity_changes(id)) return true;
  uid_t uid = id.uid.value_or(static_cast<uid_t>(-1));
  gid_t gid = id.gid.value_or(static_cast<gid_t>(-1));
  return ::chown(path.c_str(), uid, gid) == 0;
}

}  // namespace alicorn
