// Spare buffers: where an idle keep-alive connection's request and response buffers go, so that
// 1,000 idle connections hold no buffer memory while a busy one never waits on malloc.
//
// A session gives its strings and vectors back (`put`) when it goes idle, and takes spare ones
// (`take`) when the next request starts. The pool is per thread (the uv worker's loop, each
// gthread pool thread), so neither side locks; it keeps at most kMaxItems buffers of at most
// kMaxCapacity elements each, and frees the rest, so the pool itself stays a few tens of KiB
// and a connection that once took a large request does not pin that memory for ever.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace alicorn {

template <class Buffer, size_t kMaxCapacity>
class SpareBuffers {
 public:
  static constexpr size_t kMaxItems = 64;

  // Empties `b` and takes its memory (or frees it); `b` is left without any heap memory.
  static void put(Buffer& b) {
    b.clear();
    auto& items = pool();
    if (b.capacity() > 0 && b.capacity() <= kMaxCapacity && items.size() < kMaxItems)
      items.push_back(std::move(b));
    Buffer().swap(b);
  }
  // `b` (empty, as put() left it) gets a spare buffer's memory, when there is one.
  static void take(Buffer& b) {
    auto& items = pool();
    if (items.empty()) return;
    b.swap(items.back());
    items.pop_back();
  }

 private:
  static std::vector<Buffer>& pool() {
    thread_local std::vector<Buffer> items;
    return items;
  }
};

}  // namespace alicorn
