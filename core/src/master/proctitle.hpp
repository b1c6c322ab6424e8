// Process titles, as ps and /proc/<pid>/cmdline show them:
//   alicorn: master [myproject.wsgi:application]
//   alicorn: worker [myproject.wsgi:application]
// The title is written over the memory of argv (and of the environment strings right after it,
// which are first copied elsewhere), and the short name (/proc/<pid>/comm) is set with
// prctl(PR_SET_NAME).
#pragma once

#include <string>

namespace alicorn::proctitle {

// Call once from main, after everything that reads argv has copied what it needs: argv's
// strings are overwritten by later set() calls. Moves the environment strings to the heap.
void init(int argc, char** argv);

// Set the title ("alicorn: master [app]") and the short name (its first 15 bytes). Does nothing
// before init() beyond the short name.
void set(const std::string& title);

}  // namespace alicorn::proctitle
