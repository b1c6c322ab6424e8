#include "master/reloader.hpp"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "log/log.hpp"

namespace alicorn {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxDirs = 4096;  // a tree this big is not an app folder: stop adding
constexpr int64_t kScanEveryMs = 1000;
constexpr uint32_t kDirMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                              IN_DELETE | IN_ATTRIB | IN_MODIFY | IN_ONLYDIR;

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Folders that hold no app source: caches, environments, installed packages.
bool skip_dir(const fs::path& dir) {
  std::string name = dir.filename().string();
  if (name.empty()) return false;
  if (name[0] == '.' || name == "__pycache__" || name == "site-packages" ||
      name == "dist-packages" || name == "node_modules")
    return true;
  std::error_code ec;
  return fs::exists(dir / "pyvenv.cfg", ec);
}

std::string absolute(const std::string& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  if (ec) return p;
  return a.lexically_normal().string();
}

int64_t mtime_ns(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

}  // namespace

Reloader::Reloader(std::vector<std::string> roots, std::vector<std::string> extra,
                   bool use_inotify) {
  for (auto& r : roots) {
    std::string a = absolute(r);
    while (a.size() > 1 && a.back() == '/') a.pop_back();
    roots_.push_back(a);
  }
  for (auto& e : extra) extra_.insert(absolute(e));
  if (use_inotify) {
    inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd_ < 0)
      throw std::runtime_error(std::string("reload: inotify_init1() failed: ") +
                               std::strerror(errno));
    for (const auto& r : roots_) add_tree(r);
    for (const auto& e : extra_) add_dir(fs::path(e).parent_path().string());
  } else {
    scan(&mtimes_);
  }
}

Reloader::~Reloader() {
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
}

size_t Reloader::watched() const { return inotify_fd_ >= 0 ? dirs_.size() : mtimes_.size(); }

void Reloader::add_dir(const std::string& dir) {
  if (watched_dirs_.count(dir) || watched_dirs_.size() >= kMaxDirs) return;
  int wd = ::inotify_add_watch(inotify_fd_, dir.c_str(), kDirMask);
  if (wd < 0) {
    if (errno != ENOENT && errno != ENOTDIR)
      log::error().warn("reload: cannot watch {}: {}", dir, std::strerror(errno));
    return;
  }
  dirs_[wd] = dir;
  watched_dirs_.insert(dir);
}

void Reloader::add_tree(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return;
  add_dir(root);
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    if (!it->is_directory(e2) || it->is_symlink(e2)) continue;
    if (skip_dir(it->path())) {
      it.disable_recursion_pending();
      continue;
    }
    if (watched_dirs_.size() >= kMaxDirs) {
      log::error().warn("reload: more than {} folders under {}; watching the first ones only",
                        kMaxDirs, root);
      return;
    }
    add_dir(it->path().string());
  }
}

bool Reloader::interesting(const std::string& path) const {
  if (extra_.count(path)) return true;
  if (!ends_with(path, ".py")) return false;
  for (const auto& r : roots_)
    if (path.size() > r.size() && path.compare(0, r.size(), r) == 0 &&
        (r == "/" || path[r.size()] == '/'))
      return true;
  return false;
}

void Reloader::read_events() {
  alignas(inotify_event) char buf[16384];
  for (;;) {
    ssize_t n = ::read(inotify_fd_, buf, sizeof buf);
    if (n <= 0) return;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        for (const auto& e : extra_) pending_.insert(e);
        ++events_;
        continue;
      }
      auto it = dirs_.find(ev->wd);
      if (it == dirs_.end()) continue;
      if (ev->mask & IN_IGNORED) {
        watched_dirs_.erase(it->second);
        dirs_.erase(it);
        continue;
      }
      if (ev->len == 0) continue;
      std::string path = it->second + "/" + ev->name;
      if (ev->mask & IN_ISDIR) {
        if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && !skip_dir(path)) {
          for (const auto& r : roots_)
            if (path.compare(0, r.size(), r) == 0) {
              add_tree(path);
              break;
            }
        }
        continue;
      }
      if (interesting(path)) {
        pending_.insert(path);
        ++events_;
      }
    }
  }
}

void Reloader::scan(std::map<std::string, int64_t>* out) const {
  for (const auto& root : roots_) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) continue;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    size_t dirs = 0;
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      std::error_code e2;
      if (it->is_directory(e2)) {
        if (skip_dir(it->path()) || it->is_symlink(e2) || ++dirs > kMaxDirs)
          it.disable_recursion_pending();
        continue;
      }
      std::string p = it->path().string();
      if (ends_with(p, ".py")) (*out)[p] = mtime_ns(p);
    }
  }
  for (const auto& e : extra_) (*out)[e] = mtime_ns(e);
}

std::vector<std::string> Reloader::poll(int64_t now_ms) {
  uint64_t before = events_;
  if (inotify_fd_ >= 0) {
    read_events();
  } else if (now_ms >= next_scan_ms_) {
    next_scan_ms_ = now_ms + kScanEveryMs;
    std::map<std::string, int64_t> now;
    scan(&now);
    for (const auto& [path, m] : now) {
      auto it = mtimes_.find(path);
      if (it == mtimes_.end() || it->second != m) {
        pending_.insert(path);
        ++events_;
      }
    }
    for (const auto& [path, m] : mtimes_)
      if (!now.count(path)) {
        pending_.insert(path);
        ++events_;
      }
    mtimes_ = std::move(now);
  }
  if (events_ != before) settle_ms_ = now_ms + kDebounceMs;
  if (pending_.empty() || now_ms < settle_ms_) return {};
  std::vector<std::string> out(pending_.begin(), pending_.end());
  pending_.clear();
  return out;
}

}  // namespace alicorn
