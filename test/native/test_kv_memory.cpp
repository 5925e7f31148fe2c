// KvMemory (cpp/kv_memory.h): the KV cache blocks a model's sessions take and give back.
// A freed block is handed to the next session that fits it (same memory, no new pages),
// not to one under half its size; the kept bytes stay within the limit, oldest dropped
// first; a block outliving its KvMemory is still usable and freed on its own; blocks are
// aligned (huge-page aligned from 2 MB). Sessions over reused blocks are covered by the
// model tests, which run many generations on one model against fixed references.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "kv_memory.h"
#include "loader_test_harness.h"

using namespace sdllm;
using sdllm_test::check;

namespace {
bool aligned(const void* p, uintptr_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }
}  // namespace

int main() {
  {
    auto mem = KvMemory::create(int64_t{64} << 20);
    float* first = nullptr;
    {
      std::shared_ptr<float> a = mem->acquire(100000);
      first = a.get();
      check(aligned(first, 64), "a small block is cache-line aligned");
      for (int i = 0; i < 100000; ++i) a.get()[i] = static_cast<float>(i);  // the whole block is writable
      check(mem->kept_bytes() == 0, "nothing kept while the block is in use");
    }
    check(mem->kept_bytes() >= 400000, "a freed block is kept");
    {
      std::shared_ptr<float> b = mem->acquire(90000);
      check(b.get() == first, "the next session that fits gets the kept block");
      check(mem->kept_bytes() == 0, "a reused block is no longer counted as kept");
      std::shared_ptr<float> c = mem->acquire(90000);
      check(c.get() != first, "a block in use is not handed out twice");
    }
    {
      std::shared_ptr<float> small = mem->acquire(1000);
      check(small.get() != first, "a block over twice the request is not pinned by a small session");
      std::shared_ptr<float> big = mem->acquire(200000);
      check(big.get() != first, "a block too small for the request is not used");
    }
  }
  {
    // The limit: kept blocks, oldest dropped first; a block larger than the limit is freed.
    auto mem = KvMemory::create(int64_t{3} << 20);
    std::shared_ptr<float> a = mem->acquire(262144), b = mem->acquire(262144);  // 1 MB each
    float* pa = a.get();
    float* pb = b.get();
    a.reset();
    b.reset();
    check(mem->kept_bytes() == int64_t{2} << 20, "two 1 MB blocks kept under a 3 MB limit");
    std::shared_ptr<float> c = mem->acquire(524288);  // 2 MB: huge-page aligned
    check(aligned(c.get(), uintptr_t{2} << 20), "a 2 MB block is 2 MB aligned");
    c.reset();
    check(mem->kept_bytes() == int64_t{3} << 20, "the oldest kept block dropped past the limit");
    std::shared_ptr<float> again = mem->acquire(262144);
    check(again.get() == pb && again.get() != pa, "the newer 1 MB block survived, the older one was freed");
    std::shared_ptr<float> huge = mem->acquire(int64_t{2} << 20);  // 8 MB, over the limit
    huge.reset();
    check(mem->kept_bytes() == int64_t{2} << 20, "a block over the limit is freed, not kept");
  }
  {
    auto none = KvMemory::create(0);
    std::shared_ptr<float> a = none->acquire(1000);
    a.reset();
    check(none->kept_bytes() == 0, "a limit of 0 keeps nothing");
    check(KvMemory::create()->keep_limit() > 0, "the default limit is an eighth of physical memory");
  }
  {
    // A block that outlives its KvMemory (a session kept after its model's last other
    // reference) stays valid, and is freed when it goes (run under ASan/valgrind to see).
    std::shared_ptr<float> orphan;
    {
      auto mem = KvMemory::create();
      orphan = mem->acquire(4096);
    }
    orphan.get()[4095] = 1.f;
    check(orphan.get()[4095] == 1.f, "a block outliving its KvMemory is still usable");
    orphan.reset();
  }
  return sdllm_test::finish("kv_memory");
}
