// Finding, loading and negotiating with worker-class plugins (see plugin_host.hpp).
//
// host_api() is defined elsewhere in the core; this file only calls it.

#include <alicorn/worker.h>

#include "plugin/plugin_host.hpp"

#include <cxxabi.h>
#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>
#include <utility>

#ifndef ALICORN_LIBDIR
#define ALICORN_LIBDIR "lib"
#endif
#ifndef ALICORN_INSTALL_WORKER_DIR
#define ALICORN_INSTALL_WORKER_DIR "/usr/local/lib/alicorn/workers"
#endif

namespace alicorn {

namespace fs = std::filesystem;

namespace {

// Closes a dlopen handle unless released: every refusal path unloads the plugin.
class HandleGuard {
 public:
  explicit HandleGuard(void* handle) : handle_(handle) {}
  HandleGuard(const HandleGuard&) = delete;
  HandleGuard& operator=(const HandleGuard&) = delete;
  ~HandleGuard() {
    if (handle_ != nullptr) dlclose(handle_);
  }
  void* get() const { return handle_; }
  void* release() { return std::exchange(handle_, nullptr); }

 private:
  void* handle_;
};

std::string last_dl_error() {
  const char* err = dlerror();
  return err != nullptr ? std::string(err) : std::string("unknown dynamic loader error");
}

// Lexically normal, without a trailing separator (so "/a/b/" and "/a/b" compare equal).
fs::path normalise(const fs::path& p) {
  fs::path n = p.lexically_normal();
  if (!n.has_filename() && n.has_relative_path()) n = n.parent_path();
  return n;
}

bool is_plugin_name(const std::string& name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

bool ends_with_so(const std::string& s) { return s.size() >= 3 && s.ends_with(".so"); }

std::string abi_string(uint32_t major, uint32_t minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

// The name of the first required vtable entry that is NULL, or nullptr if all are set.
const char* missing_required_entry(const alicorn_worker_vtable& vt) {
  if (vt.name == nullptr) return "name";
  if (vt.version == nullptr) return "version";
  if (vt.create == nullptr) return "create";
  if (vt.run == nullptr) return "run";
  if (vt.destroy == nullptr) return "destroy";
  return nullptr;
}

// A plugin that passed negotiation; the caller takes ownership of `handle`.
struct Negotiated {
  void* handle;
  const alicorn_worker_vtable* vtable;
  uint32_t abi_major;
  uint32_t abi_minor;
};

Negotiated open_and_negotiate(const fs::path& file, const alicorn_host_api* host) {
  const std::string shown = file.string();

  // A bare file name would make dlopen search the library path instead of the current folder.
  const fs::path open_path = file.has_parent_path() ? file : fs::path(".") / file;

  dlerror();  // clear any stale error
  HandleGuard handle(dlopen(open_path.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (handle.get() == nullptr)
    throw PluginError("cannot load worker plugin " + shown + ": " + last_dl_error());

  dlerror();
  void* sym = dlsym(handle.get(), ALICORN_NEGOTIATE_SYMBOL);
  if (sym == nullptr)
    throw PluginError("worker plugin " + shown +
                      " does not export " ALICORN_NEGOTIATE_SYMBOL
                      " (not an alicorn worker plugin)");
  auto negotiate = reinterpret_cast<alicorn_negotiate_fn>(sym);

  if (host == nullptr) host = host_api();
  if (host == nullptr) throw PluginError("cannot load worker plugin " + shown + ": no host API");

  std::array<char, 512> error_buffer{};
  alicorn_negotiate n{};
  n.struct_size = sizeof(alicorn_negotiate);
  n.host_abi_major = ALICORN_ABI_MAJOR;
  n.host_abi_minor_min = 0;
  n.host_abi_minor_max = ALICORN_ABI_MINOR;
  n.host = host;
  n.error = error_buffer.data();
  n.error_size = error_buffer.size();
  n.plugin_abi_major = 0;  // 0 = "the plugin did not say"
  n.plugin_abi_minor = 0;
  n.vtable = nullptr;

  int rc = 0;
  try {
    rc = negotiate(&n);
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation must keep unwinding
  } catch (...) {
    // Nothing may cross the C boundary, but a broken C++ plugin might still throw.
    throw PluginError("worker plugin " + shown +
                      " threw an exception from " ALICORN_NEGOTIATE_SYMBOL);
  }
  error_buffer.back() = '\0';
  const std::string plugin_message(error_buffer.data(),
                                   strnlen(error_buffer.data(), error_buffer.size()));
  const std::string host_abi = abi_string(ALICORN_ABI_MAJOR, ALICORN_ABI_MINOR);
  auto refused = [&] {
    std::string msg =
        "worker plugin " + shown + " refused to load (error " + std::to_string(rc) + ")";
    if (!plugin_message.empty()) msg += ": " + plugin_message;
    return PluginError(msg);
  };

  if (n.plugin_abi_major != ALICORN_ABI_MAJOR) {
    // Refused before saying which ABI it speaks: report the refusal itself.
    if (n.plugin_abi_major == 0 && rc != 0) throw refused();
    throw PluginError("worker plugin " + shown + " speaks ABI " +
                      abi_string(n.plugin_abi_major, n.plugin_abi_minor) +
                      ", this alicorn speaks ABI " + host_abi);
  }
  if (rc != 0) throw refused();
  const alicorn_worker_vtable* vt = n.vtable;
  if (vt == nullptr) throw PluginError("worker plugin " + shown + " returned no vtable");
  if (vt->struct_size < ALICORN_WORKER_VTABLE_MIN_SIZE)
    throw PluginError("worker plugin " + shown + ": vtable is " + std::to_string(vt->struct_size) +
                      " bytes, at least " + std::to_string(ALICORN_WORKER_VTABLE_MIN_SIZE) +
                      " required");
  if (const char* field = missing_required_entry(*vt))
    throw PluginError("worker plugin " + shown + ": required vtable entry '" + field + "' is NULL");
  if (n.plugin_abi_minor > ALICORN_ABI_MINOR)
    throw PluginError("worker plugin " + shown + " speaks ABI " +
                      abi_string(n.plugin_abi_major, n.plugin_abi_minor) +
                      ", this alicorn serves ABI " + host_abi + " at most");

  return Negotiated{handle.release(), vt, n.plugin_abi_major, n.plugin_abi_minor};
}

}  // namespace

Plugin::Plugin(Plugin&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      vtable_(std::exchange(other.vtable_, nullptr)),
      path_(std::move(other.path_)),
      abi_major_(std::exchange(other.abi_major_, 0)),
      abi_minor_(std::exchange(other.abi_minor_, 0)) {
  other.path_.clear();
}

Plugin& Plugin::operator=(Plugin&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) dlclose(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
    vtable_ = std::exchange(other.vtable_, nullptr);
    path_ = std::move(other.path_);
    other.path_.clear();
    abi_major_ = std::exchange(other.abi_major_, 0);
    abi_minor_ = std::exchange(other.abi_minor_, 0);
  }
  return *this;
}

Plugin::~Plugin() {
  if (handle_ != nullptr) dlclose(handle_);
}

std::vector<fs::path> plugin_search_path(const std::string& env_plugin_path) {
  std::vector<fs::path> dirs;
  auto add = [&dirs](const fs::path& p) {
    if (p.empty()) return;
    fs::path n = normalise(p);
    if (std::find(dirs.begin(), dirs.end(), n) == dirs.end()) dirs.push_back(std::move(n));
  };

  std::string::size_type start = 0;
  while (start <= env_plugin_path.size()) {
    std::string::size_type end = env_plugin_path.find(':', start);
    if (end == std::string::npos) end = env_plugin_path.size();
    add(env_plugin_path.substr(start, end - start));  // empty entries are skipped by add()
    start = end + 1;
  }

  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && exe.has_parent_path())
    add(exe.parent_path() / ".." / ALICORN_LIBDIR / "alicorn" / "workers");

  add(ALICORN_INSTALL_WORKER_DIR);
  return dirs;
}

fs::path find_plugin(const std::string& worker_class, const std::vector<fs::path>& search_path) {
  if (worker_class.find('/') != std::string::npos || ends_with_so(worker_class)) {
    const fs::path file(worker_class);
    std::error_code ec;
    if (!fs::exists(file, ec))
      throw PluginError("worker class '" + worker_class + "': no such file");
    return file;
  }
  if (!is_plugin_name(worker_class))
    throw PluginError("invalid worker class '" + worker_class +
                      "': expected a name made of letters, digits, '_', '.' and '-', or a path "
                      "to a .so file");

  const std::string file_name = worker_class + ".so";
  for (const fs::path& dir : search_path) {
    fs::path candidate = dir / file_name;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) return candidate;
  }

  std::string msg = "unknown worker class '" + worker_class + "': no " + file_name;
  if (search_path.empty()) {
    msg += " (no plugin folders to search)";
  } else {
    msg += " in ";
    for (std::size_t i = 0; i < search_path.size(); ++i) {
      if (i != 0) msg += ", ";
      msg += search_path[i].string();
    }
  }
  throw PluginError(msg);
}

Plugin load_plugin_file(const fs::path& file, const alicorn_host_api* host) {
  try {
    const Negotiated loaded = open_and_negotiate(file, host);
    Plugin plugin;
    plugin.handle_ = loaded.handle;  // from here on the Plugin owns the handle
    plugin.vtable_ = loaded.vtable;
    plugin.abi_major_ = loaded.abi_major;
    plugin.abi_minor_ = loaded.abi_minor;
    plugin.path_ = file;  // may throw bad_alloc: then ~Plugin closes the handle
    return plugin;
  } catch (const PluginError&) {
    throw;
  } catch (abi::__forced_unwind&) {
    throw;
  } catch (const std::exception& e) {
    throw PluginError("cannot load worker plugin " + file.string() + ": " + e.what());
  } catch (...) {
    throw PluginError("cannot load worker plugin " + file.string() + ": unknown error");
  }
}

Plugin load_plugin(const std::string& worker_class, const std::string& env_plugin_path) {
  try {
    return load_plugin_file(find_plugin(worker_class, plugin_search_path(env_plugin_path)));
  } catch (const PluginError&) {
    throw;
  } catch (abi::__forced_unwind&) {
    throw;
  } catch (const std::exception& e) {
    throw PluginError("cannot load worker class '" + worker_class + "': " + e.what());
  }
}

}  // namespace alicorn
