// Process titles by overwriting argv (see proctitle.hpp). The area available runs from argv[0]
// to the end of the last environment string that follows argv contiguously; the environment
// itself is copied to the heap first so getenv() keeps working.
#include "master/proctitle.hpp"

#include <sys/prctl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace alicorn::proctitle {
namespace {

char* g_begin = nullptr;  // argv[0]
char* g_end = nullptr;    // one past the last byte we may write

}  // namespace

void init(int argc, char** argv) {
  if (argc <= 0 || argv == nullptr || argv[0] == nullptr || g_begin != nullptr) return;
  char* end = argv[0] + std::strlen(argv[0]) + 1;
  for (int i = 1; i < argc && argv[i] != nullptr; ++i) {
    if (argv[i] != end) break;  // not contiguous: stop here
    end = argv[i] + std::strlen(argv[i]) + 1;
  }
  // Take over the environment strings that follow, after copying them.
  size_t count = 0;
  while (environ != nullptr && environ[count] != nullptr) ++count;
  char** copy = static_cast<char**>(std::calloc(count + 1, sizeof(char*)));
  if (copy != nullptr) {
    bool contiguous = true;
    for (size_t i = 0; i < count; ++i) {
      if (contiguous && environ[i] == end) end = environ[i] + std::strlen(environ[i]) + 1;
      else contiguous = false;
      copy[i] = ::strdup(environ[i]);
      if (copy[i] == nullptr) copy[i] = environ[i];
    }
    environ = copy;
  }
  g_begin = argv[0];
  g_end = end;
  // argv[1..] now point into memory the title will overwrite; nobody may read them after this.
  for (int i = 1; i < argc; ++i) argv[i] = nullptr;
}

void set(const std::string& title) {
  char comm[16];
  std::strncpy(comm, title.c_str(), sizeof comm - 1);
  comm[sizeof comm - 1] = '\0';
  ::prctl(PR_SET_NAME, comm, 0, 0, 0);
  if (g_begin == nullptr) return;
  size_t room = static_cast<size_t>(g_end - g_begin);
  if (room < 2) return;
  size_t n = std::min(title.size(), room - 1);
  std::memcpy(g_begin, title.data(), n);
  std::memset(g_begin + n, 0, room - n);
}

}  // namespace alicorn::proctitle
