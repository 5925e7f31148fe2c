// Blocks advised as transparent huge pages: 2 MB aligned, their size rounded up to whole
// huge pages, madvise(MADV_HUGEPAGE) where the system has it (advice only: the memory
// works the same without it). For memory a forward streams through (the repacked weights,
// the KV caches): with 4 KB pages every 4 KB is a TLB miss and, the first time, a page
// fault. Also the 64-byte aligned blocks beside them, freed the same way.
#pragma once
#include <cstddef>

namespace sdllm {

constexpr size_t kHugePageBytes = size_t{2} << 20;

// `bytes` rounded up to a multiple of `align`.
inline size_t round_up(size_t bytes, size_t align) { return (bytes + align - 1) / align * align; }

// round_up(bytes, kHugePageBytes) bytes, 2 MB aligned and advised as huge pages; nullptr
// when the allocation fails.
void* alloc_huge_pages(size_t bytes);
// round_up(bytes, 64) bytes, 64-byte aligned; nullptr when the allocation fails.
void* alloc_cache_lines(size_t bytes);
// Frees what either of the two returned.
void free_aligned(void* p);

}  // namespace sdllm
