// Plugin host: finding, loading and negotiating with worker plugins. Uses the small plugins in
// tests/plugins, built into ALICORN_TEST_PLUGIN_DIR, and its own host table so that it does not
// depend on the real host API.

#include <alicorn/worker.h>

#include "plugin/plugin_host.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using alicorn::PluginError;

namespace {

const fs::path kPluginDir = ALICORN_TEST_PLUGIN_DIR;

fs::path plugin_file(const std::string& name) { return kPluginDir / (name + ".so"); }

// A host table long enough for v1.0; the plugins only check its size during negotiation.
const alicorn_host_api* test_host() {
  static const alicorn_host_api host = [] {
    alicorn_host_api h{};
    h.struct_size = sizeof(alicorn_host_api);
    h.abi_major = ALICORN_ABI_MAJOR;
    h.abi_minor = ALICORN_ABI_MINOR;
    h.server_version = "test";
    return h;
  }();
  return &host;
}

// Loads `file` expecting a refusal; returns the PluginError's message.
std::string refusal(const fs::path& file, const alicorn_host_api* host = test_host()) {
  try {
    alicorn::Plugin plugin = alicorn::load_plugin_file(file, host);
    ADD_FAILURE() << file << " loaded as " << plugin.name() << " but should have been refused";
  } catch (const PluginError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected PluginError, got another exception: " << e.what();
  }
  return {};
}

// True if `file` is currently mapped into the process (dlopen with RTLD_NOLOAD).
bool is_loaded(const fs::path& file) {
  void* h = dlopen(file.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (h == nullptr) return false;
  dlclose(h);
  return true;
}

std::string abi_text(uint32_t major, uint32_t minor) {
  return "ABI " + std::to_string(major) + "." + std::to_string(minor);
}

}  // namespace

TEST(PluginHost, GoodPluginLoads) {
  const fs::path file = plugin_file("good");
  {
    alicorn::Plugin plugin = alicorn::load_plugin_file(file, test_host());
    EXPECT_EQ(plugin.name(), "good");
    EXPECT_EQ(plugin.path(), file);
    EXPECT_EQ(plugin.abi_major(), static_cast<uint32_t>(ALICORN_ABI_MAJOR));
    EXPECT_EQ(plugin.abi_minor(), static_cast<uint32_t>(ALICORN_ABI_MINOR));

    const alicorn_worker_vtable& vt = plugin.vtable();
    EXPECT_EQ(vt.struct_size, sizeof(alicorn_worker_vtable));
    EXPECT_STREQ(vt.name, "good");
    EXPECT_STREQ(vt.version, "1.2.3");
    ASSERT_NE(vt.description, nullptr);
    EXPECT_EQ(vt.capabilities, static_cast<uint64_t>(ALICORN_CAP_THREADS));
    ASSERT_NE(vt.create, nullptr);
    ASSERT_NE(vt.run, nullptr);
    ASSERT_NE(vt.destroy, nullptr);

    void* worker = &worker;
    std::array<char, 128> err{};
    EXPECT_EQ(vt.create(test_host(), nullptr, &worker, err.data(), err.size()), 0);
    EXPECT_EQ(vt.run(worker), 0);
    vt.destroy(worker);
    EXPECT_TRUE(is_loaded(file));
  }
  EXPECT_FALSE(is_loaded(file)) << "~Plugin must dlclose the plugin";
}

TEST(PluginHost, PluginMoves) {
  alicorn::Plugin a = alicorn::load_plugin_file(plugin_file("good"), test_host());
  alicorn::Plugin b(std::move(a));
  EXPECT_EQ(b.name(), "good");
  EXPECT_TRUE(a.path().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty

  alicorn::Plugin c = alicorn::load_plugin_file(plugin_file("frozen_v1_0"), test_host());
  c = std::move(b);  // closes frozen_v1_0, takes over good
  EXPECT_EQ(c.name(), "good");
  EXPECT_FALSE(is_loaded(plugin_file("frozen_v1_0")));
  EXPECT_TRUE(is_loaded(plugin_file("good")));
}

TEST(PluginHost, FrozenV10PluginLoads) {
  alicorn::Plugin plugin = alicorn::load_plugin_file(plugin_file("frozen_v1_0"), test_host());
  EXPECT_EQ(plugin.name(), "frozen_v1_0");
  EXPECT_EQ(plugin.abi_major(), 1u);
  EXPECT_EQ(plugin.abi_minor(), 0u);
  EXPECT_GE(plugin.vtable().struct_size, ALICORN_WORKER_VTABLE_MIN_SIZE);
  EXPECT_EQ(plugin.vtable().run(nullptr), 0);
}

TEST(PluginHost, WrongMajorRefused) {
  const fs::path file = plugin_file("wrong_major");
  const std::string msg = refusal(file);
  EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find(abi_text(ALICORN_ABI_MAJOR + 1, 0)), std::string::npos) << msg;
  EXPECT_NE(msg.find(abi_text(ALICORN_ABI_MAJOR, ALICORN_ABI_MINOR)), std::string::npos) << msg;
  EXPECT_FALSE(is_loaded(file)) << "a refused plugin must be dlclosed";
}

TEST(PluginHost, ShortTableRefused) {
  const fs::path file = plugin_file("short_table");
  const std::string msg = refusal(file);
  EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
  EXPECT_NE(
      msg.find("vtable is " + std::to_string(offsetof(alicorn_worker_vtable, run)) +
               " bytes, at least " + std::to_string(ALICORN_WORKER_VTABLE_MIN_SIZE) + " required"),
      std::string::npos)
      << msg;
  EXPECT_FALSE(is_loaded(file));
}

TEST(PluginHost, MissingSymbolRefused) {
  const fs::path file = plugin_file("missing_symbol");
  const std::string msg = refusal(file);
  EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not export alicorn_worker_negotiate"), std::string::npos) << msg;
  EXPECT_FALSE(is_loaded(file));
}

TEST(PluginHost, NullEntryRefused) {
  const fs::path file = plugin_file("null_entry");
  const std::string msg = refusal(file);
  EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("'run'"), std::string::npos) << msg;
  EXPECT_FALSE(is_loaded(file));
}

TEST(PluginHost, NotASharedObjectRefused) {
  const fs::path file = plugin_file("not_a_plugin");
  ASSERT_TRUE(fs::is_regular_file(file));
  const std::string msg = refusal(file);
  EXPECT_EQ(msg.rfind("cannot load worker plugin " + file.string() + ": ", 0), 0u) << msg;
}

TEST(PluginHost, MissingFileRefused) {
  const fs::path file = kPluginDir / "does_not_exist.so";
  const std::string msg = refusal(file);
  EXPECT_EQ(msg.rfind("cannot load worker plugin " + file.string() + ": ", 0), 0u) << msg;

  try {
    alicorn::find_plugin(file.string(), {kPluginDir});
    ADD_FAILURE() << "find_plugin accepted a missing file";
  } catch (const PluginError& e) {
    EXPECT_EQ(std::string(e.what()), "worker class '" + file.string() + "': no such file");
  }
}

TEST(PluginHost, PluginRefusalMessageReported) {
  // good.so checks that the host table covers v1.0 and refuses a short one.
  alicorn_host_api short_host{};
  short_host.struct_size = offsetof(alicorn_host_api, log);
  const fs::path file = plugin_file("good");
  const std::string msg = refusal(file, &short_host);
  EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("refused"), std::string::npos) << msg;
  EXPECT_FALSE(is_loaded(file));
}

TEST(PluginHost, FindPluginByName) {
  const std::vector<fs::path> path{"/nonexistent/alicorn/one", kPluginDir,
                                   "/nonexistent/alicorn/two"};
  EXPECT_EQ(alicorn::find_plugin("good", path), kPluginDir / "good.so");

  // Through the environment variable: its folders come first.
  const std::vector<fs::path> from_env =
      alicorn::plugin_search_path("/nonexistent/alicorn:" + kPluginDir.string());
  ASSERT_GE(from_env.size(), 2u);
  EXPECT_EQ(from_env[0], fs::path("/nonexistent/alicorn"));
  EXPECT_EQ(from_env[1], kPluginDir.lexically_normal());
  EXPECT_EQ(alicorn::find_plugin("frozen_v1_0", from_env), from_env[1] / "frozen_v1_0.so");

  // A path is used as is.
  const fs::path direct = plugin_file("good");
  EXPECT_EQ(alicorn::find_plugin(direct.string(), {}), direct);
}

TEST(PluginHost, SearchPathOrderAndNormalisation) {
  const std::vector<fs::path> dirs = alicorn::plugin_search_path("/a/b/::/c/./d:/a/b:/e/f/../g");
  ASSERT_GE(dirs.size(), 4u);
  EXPECT_EQ(dirs[0], fs::path("/a/b"));
  EXPECT_EQ(dirs[1], fs::path("/c/d"));
  EXPECT_EQ(dirs[2], fs::path("/e/g"));
  // Then the folder beside the binary and the install folder, without duplicates.
  std::set<fs::path> unique(dirs.begin(), dirs.end());
  EXPECT_EQ(unique.size(), dirs.size());
  EXPECT_EQ(dirs.size(), alicorn::plugin_search_path("").size() + 3);
}

TEST(PluginHost, UnknownNameListsFolders) {
  const std::vector<fs::path> path{"/nonexistent/alicorn/one", "/nonexistent/alicorn/two"};
  try {
    alicorn::find_plugin("nope", path);
    ADD_FAILURE() << "find_plugin found a plugin that does not exist";
  } catch (const PluginError& e) {
    EXPECT_EQ(std::string(e.what()),
              "unknown worker class 'nope': no nope.so in /nonexistent/alicorn/one, "
              "/nonexistent/alicorn/two");
  }

  try {
    alicorn::load_plugin("nope", "/nonexistent/alicorn/one");
    ADD_FAILURE() << "load_plugin found a plugin that does not exist";
  } catch (const PluginError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/alicorn/one"), std::string::npos)
        << e.what();
  }
}

TEST(PluginHost, InvalidNameRefused) {
  for (const char* name : {"", "bad name", "semi;colon", "star*"}) {
    EXPECT_THROW(alicorn::find_plugin(name, {kPluginDir}), PluginError) << "'" << name << "'";
  }
}

TEST(PluginHost, OnlyExportIsNegotiate) {
  const std::string cmd = "nm -D --defined-only '" + plugin_file("good").string() + "' 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 512> buf{};
  while (fgets(buf.data(), static_cast<int>(buf.size()), pipe) != nullptr) output += buf.data();
  const int status = pclose(pipe);
  if (status != 0 && output.find("not found") != std::string::npos)
    GTEST_SKIP() << "nm is not available: " << output;
  ASSERT_EQ(status, 0) << output;

  std::vector<std::string> symbols;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string address, type, name;
    if (fields >> address >> type >> name) symbols.push_back(name);
  }
  EXPECT_EQ(symbols, std::vector<std::string>{ALICORN_NEGOTIATE_SYMBOL}) << output;
}

TEST(PluginHost, PluginRefusesOtherHostMajor) {
  void* handle = dlopen(plugin_file("good").c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  auto negotiate = reinterpret_cast<alicorn_negotiate_fn>(dlsym(handle, ALICORN_NEGOTIATE_SYMBOL));
  ASSERT_NE(negotiate, nullptr);

  std::array<char, 512> err{};
  alicorn_negotiate n{};
  n.struct_size = sizeof(n);
  n.host_abi_major = 99;
  n.host_abi_minor_min = 0;
  n.host_abi_minor_max = 0;
  n.host = test_host();
  n.error = err.data();
  n.error_size = err.size();
  EXPECT_NE(negotiate(&n), 0);
  EXPECT_EQ(n.plugin_abi_major, static_cast<uint32_t>(ALICORN_ABI_MAJOR));

  // The same call with the right major succeeds.
  alicorn_negotiate ok = n;
  ok.host_abi_major = ALICORN_ABI_MAJOR;
  ok.host_abi_minor_max = ALICORN_ABI_MINOR;
  EXPECT_EQ(negotiate(&ok), 0);
  EXPECT_NE(ok.vtable, nullptr);
  dlclose(handle);
}
