// --reload: the master watches the app's Python source and says which files changed.
//
// Watched: every *.py file in the folder tree of the app (chdir or the working directory, and
// each pythonpath entry), skipping hidden folders, __pycache__, site-packages/dist-packages and
// virtual environments, plus each reload_extra_files entry. Engines: inotify (the Linux API,
// folders watched so that editors which write a new file and rename it are seen too) or poll
// (stat every second). Changes are gathered until none came for kDebounceMs, then handed over
// at once.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace alicorn {

class Reloader {
 public:
  static constexpr int64_t kDebounceMs = 200;

  // roots: folders watched recursively for *.py; extra: files watched by name. Throws
  // std::runtime_error when inotify cannot be set up.
  Reloader(std::vector<std::string> roots, std::vector<std::string> extra, bool use_inotify);
  ~Reloader();
  Reloader(const Reloader&) = delete;
  Reloader& operator=(const Reloader&) = delete;

  // Called every round of the arbiter's loop: the files changed, once they have settled
  // (sorted, each once); empty otherwise.
  std::vector<std::string> poll(int64_t now_ms);

  int fd() const { return inotify_fd_; }  // -1 with poll; closed by forked children
  size_t watched() const;  // folders (inotify) or files (poll)
  const char* engine() const { return inotify_fd_ >= 0 ? "inotify" : "poll"; }

 private:
  void add_tree(const std::string& dir);
  void add_dir(const std::string& dir);
  void read_events();
  void scan(std::map<std::string, int64_t>* out) const;
  bool interesting(const std::string& path) const;

  std::vector<std::string> roots_;
  std::set<std::string> extra_;       // absolute paths
  int inotify_fd_ = -1;
  std::map<int, std::string> dirs_;   // inotify watch descriptor -> folder
  std::set<std::string> watched_dirs_;
  std::map<std::string, int64_t> mtimes_;  // poll: file -> mtime (ns), -1 missing
  int64_t next_scan_ms_ = 0;
  std::set<std::string> pending_;
  uint64_t events_ = 0;    // every change seen: the debounce restarts at each
  int64_t settle_ms_ = 0;  // hand pending_ over after this
};

}  // namespace alicorn
