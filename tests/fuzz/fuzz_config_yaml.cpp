// libFuzzer target for the YAML configuration loader: alicorn::load_config reading `-c FILE`
// (core/src/config/config.cpp and what it needs, compiled in; yaml-cpp as Debian ships it).
//
// The input is the YAML file's text. Invariants (a violation aborts):
//   - load_config either returns or throws alicorn::ConfigError: no other exception (a yaml-cpp
//     exception, std::out_of_range from a number conversion, ...) may escape, since the CLI
//     turns only ConfigError into a clean "Error: ..." exit before fork;
//   - a configuration it accepts is printed by to_yaml (--print-config) as YAML that loads
//     again, to the same text (the round trip --print-config promises).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "config/config.hpp"

namespace {

[[noreturn]] void violated(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "\n*** config loader invariant violated: %s\n%s\n", what, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// A file holding `text`, named /proc/self/fd/N (no disk involved).
struct MemFile {
  int fd = -1;
  std::string path;
  explicit MemFile(const std::string& text) {
    fd = memfd_create("alicorn-fuzz.yaml", MFD_CLOEXEC);
    if (fd < 0) violated("memfd_create failed");
    size_t off = 0;
    while (off < text.size()) {
      ssize_t n = write(fd, text.data() + off, text.size() - off);
      if (n <= 0) violated("write to memfd failed");
      off += static_cast<size_t>(n);
    }
    path = "/proc/self/fd/" + std::to_string(fd);
  }
  ~MemFile() { close(fd); }
};

bool load(const std::string& text, alicorn::LoadedConfig& out, std::string& error) {
  MemFile file(text);
  const char* argv[] = {"alicorn", "-c", file.path.c_str(), nullptr};
  try {
    out = alicorn::load_config(3, argv, alicorn::Environment{});
    return true;
  } catch (const alicorn::ConfigError& e) {
    error = e.what();
    return false;
  } catch (const std::exception& e) {
    violated("an exception other than ConfigError escaped load_config", e.what());
  } catch (...) {
    violated("a non-std exception escaped load_config");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  alicorn::LoadedConfig first;
  std::string error;
  if (!load(text, first, error)) return 0;
  std::string printed = alicorn::to_yaml(first.config);
  alicorn::LoadedConfig second;
  if (!load(printed, second, error))
    violated("--print-config output does not load again", printed + "\nerror: " + error);
  std::string again = alicorn::to_yaml(second.config);
  if (again != printed) violated("--print-config round trip changed the settings",
                                 printed + "\n--- became ---\n" + again);
  return 0;
}
