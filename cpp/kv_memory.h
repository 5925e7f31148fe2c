// KvMemory: the memory of a model's KV caches (one block per session: every layer's keys
// and values), kept for the model's next session when one ends.
//
// Why: lib/model.ts keeps two idle sessions of a model for the next generations; every
// other session (a server's further concurrent requests, a longer prompt than the idle
// ones hold) was a fresh block, and fresh pages: this project's development VM pays
// ~6-11 us a 4 KB page the first time a page is written (measured: 3 s to touch 1 GiB, an
// LLaDA-8B cache of 1024 positions), inside the session's first cache write, on one
// thread. A kept block is already mapped; blocks of 2 MB or more are also 2 MB aligned
// and advised as huge pages, so even a first touch is a few hundred faults, not
// hundreds of thousands.
//
// What is kept: freed blocks, newest last, at most `keep_bytes` in all (the oldest freed
// first beyond it). A session takes the smallest kept block that fits and is at most
// twice its size (a short prompt does not pin a long context's block); otherwise a new
// one. Per model (Model::kv_memory): the kept memory goes with the model's last reference.
// A reused block holds the previous session's floats; the forward attends only to the
// slots it has written (session.h), as with a fresh, uninitialised block.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace sdllm {

class KvMemory : public std::enable_shared_from_this<KvMemory> {
 public:
  // keep_bytes < 0: the default, an eighth of physical memory (256 MB when unknown); 0 keeps nothing.
  static std::shared_ptr<KvMemory> create(int64_t keep_bytes = -1);
  ~KvMemory();

  // An uninitialised block of at least `floats` floats, 64-byte aligned; it returns here
  // (or is freed, if this KvMemory is gone) when the last copy of the pointer is dropped.
  // Throws std::bad_alloc when memory is short.
  std::shared_ptr<float> acquire(int64_t floats);

  int64_t kept_bytes() const;
  int64_t keep_limit() const { return keep_bytes_; }

 private:
  struct Block {
    void* data;
    size_t bytes;
  };
  explicit KvMemory(int64_t keep_bytes) : keep_bytes_(keep_bytes) {}
  void give_back(Block b);
  static Block allocate(size_t bytes);
  static void release(Block b);

  const int64_t keep_bytes_;
  mutable std::mutex mu_;
  std::vector<Block> kept_;  // freed blocks, oldest first
  int64_t kept_total_ = 0;
};

}  // namespace sdllm
