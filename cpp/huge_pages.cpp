#include "huge_pages.h"

#include <cstdlib>

#ifdef _WIN32
#include <malloc.h>
#else
#include <sys/mman.h>
#endif

namespace sdllm {

namespace {
void* alloc_aligned(size_t bytes, size_t align) {
#ifdef _WIN32
  return _aligned_malloc(round_up(bytes, align), align);
#else
  return std::aligned_alloc(align, round_up(bytes, align));  // the size must be a multiple of align
#endif
}
}  // namespace

void* alloc_huge_pages(size_t bytes) {
  void* p = alloc_aligned(bytes, kHugePageBytes);
#ifdef MADV_HUGEPAGE  // Linux only (macOS and Windows have no such advice)
  if (p) madvise(p, round_up(bytes, kHugePageBytes), MADV_HUGEPAGE);
#endif
  return p;
}

void* alloc_cache_lines(size_t bytes) { return alloc_aligned(bytes, 64); }

void free_aligned(void* p) {
#ifdef _WIN32
  _aligned_free(p);
#else
  std::free(p);
#endif
}

}  // namespace sdllm
