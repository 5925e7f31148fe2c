#include "kv_memory.h"

#include <algorithm>
#include <new>

#include "huge_pages.h"

#ifndef _WIN32
#include <unistd.h>
#endif

namespace sdllm {

namespace {
int64_t default_keep_bytes() {
#ifndef _WIN32
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) return static_cast<int64_t>(pages) * page / 8;
#endif
  return int64_t{256} << 20;
}
}  // namespace

std::shared_ptr<KvMemory> KvMemory::create(int64_t keep_bytes) {
  return std::shared_ptr<KvMemory>(new KvMemory(keep_bytes < 0 ? default_keep_bytes() : keep_bytes));
}

KvMemory::~KvMemory() {
  for (const Block& b : kept_) release(b);
}

KvMemory::Block KvMemory::allocate(size_t bytes) {
  // From 2 MB up: whole huge pages (rounding a block up by less than 2 MB); below, lines.
  const bool huge = bytes >= kHugePageBytes;
  void* p = huge ? alloc_huge_pages(bytes) : alloc_cache_lines(bytes);
  if (!p) throw std::bad_alloc();
  return Block{p, round_up(bytes, huge ? kHugePageBytes : 64)};
}

void KvMemory::release(Block b) { free_aligned(b.data); }

std::shared_ptr<float> KvMemory::acquire(int64_t floats) {
  const size_t bytes = static_cast<size_t>(std::max<int64_t>(floats, 1)) * sizeof(float);
  Block b{nullptr, 0};
  {
    std::lock_guard<std::mutex> lk(mu_);
    size_t best = kept_.size();
    for (size_t i = 0; i < kept_.size(); ++i)
      if (kept_[i].bytes >= bytes && kept_[i].bytes / 2 <= bytes && (best == kept_.size() || kept_[i].bytes < kept_[best].bytes))
        best = i;
    if (best < kept_.size()) {
      b = kept_[best];
      kept_.erase(kept_.begin() + static_cast<std::ptrdiff_t>(best));
      kept_total_ -= static_cast<int64_t>(b.bytes);
    }
  }
  if (!b.data) b = allocate(bytes);
  std::weak_ptr<KvMemory> home = weak_from_this();
  try {
    return std::shared_ptr<float>(static_cast<float*>(b.data), [home, b](float*) {
      if (std::shared_ptr<KvMemory> m = home.lock())
        m->give_back(b);
      else
        release(b);
    });
  } catch (...) {  // the control block's allocation failed (the deleter was not run)
    release(b);
    throw;
  }
}

void KvMemory::give_back(Block b) {
  std::vector<Block> dropped;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (static_cast<int64_t>(b.bytes) > keep_bytes_) {
      dropped.push_back(b);
    } else {
      kept_.push_back(b);
      kept_total_ += static_cast<int64_t>(b.bytes);
      while (kept_total_ > keep_bytes_) {
        dropped.push_back(kept_.front());
        kept_total_ -= static_cast<int64_t>(kept_.front().bytes);
        kept_.erase(kept_.begin());
      }
    }
  }
  for (const Block& d : dropped) release(d);  // outside the lock: freeing a large block unmaps it
}

int64_t KvMemory::kept_bytes() const {
  std::lock_guard<std::mutex> lk(mu_);
  return kept_total_;
}

}  // namespace sdllm
