// Finding, loading and negotiating with worker-class plugins.
//
// A worker class is named either by a path containing '/' or ending in ".so" (loaded as is) or
// by a name looked up as <dir>/<name>.so in, in order: each folder of $ALICORN_PLUGIN_PATH
// (colon-separated), <dir of the alicorn binary>/../<libdir>/alicorn/workers (the build tree and
// a relocated install look alike), and the configured install folder. The plugin is loaded with
// RTLD_NOW | RTLD_LOCAL and must pass negotiation; every refusal is a PluginError whose message
// says which file and why, and nothing the plugin does can crash the host during loading.
#pragma once

#include <alicorn/worker.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace alicorn {

class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Plugin {
 public:
  Plugin() = default;
  Plugin(Plugin&&) noexcept;
  Plugin& operator=(Plugin&&) noexcept;
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;
  ~Plugin();  // dlclose

  const alicorn_worker_vtable& vtable() const { return *vtable_; }
  const std::filesystem::path& path() const { return path_; }
  uint32_t abi_major() const { return abi_major_; }
  uint32_t abi_minor() const { return abi_minor_; }  // the minor both sides agreed on
  std::string name() const { return vtable_->name; }

 private:
  friend Plugin load_plugin_file(const std::filesystem::path&, const alicorn_host_api*);
  void* handle_ = nullptr;
  const alicorn_worker_vtable* vtable_ = nullptr;
  std::filesystem::path path_;
  uint32_t abi_major_ = 0;
  uint32_t abi_minor_ = 0;
};

// The host API table this build of the core serves (also used for negotiation).
const alicorn_host_api* host_api();

// Folders searched for a worker class name, in order, for the given environment value of
// ALICORN_PLUGIN_PATH (may be empty).
std::vector<std::filesystem::path> plugin_search_path(const std::string& env_plugin_path);

// Resolve a worker class (name or path) to a file. Throws PluginError listing the folders tried.
std::filesystem::path find_plugin(const std::string& worker_class,
                                  const std::vector<std::filesystem::path>& search_path);

// dlopen + negotiate + validate. `host` defaults to host_api(); tests pass their own tables.
Plugin load_plugin_file(const std::filesystem::path& file, const alicorn_host_api* host = nullptr);

// find_plugin + load_plugin_file.
Plugin load_plugin(const std::string& worker_class, const std::string& env_plugin_path);

}  // namespace alicorn
