// Repacking the linear weights at load for the AVX-512 GEMM.
//
// Why: per call, the AVX-512 GEMM widens each panel of weight rows to float32 pairs
// (gemm_avx512.cpp) and reuses it for every activation row. At the row counts of a
// diffusion step (32-160) that packing is 10% of a forward at d_model 512 and more at a
// cached step's 32 rows, and it reads the weights as short pieces of rows, waiting on
// memory. Packing every weight once at load makes a forward read one sequential stream
// per panel. The floats are the ones the GEMM would have packed itself, so the
// outputs are bit for bit the same (test_ops checks it).
//
// BF16 weights stay 16-bit (a twin layout the tile widens with a mask or a shift); F32
// and F16 ones become float32 pairs.
//
// Cost: the copies are anonymous memory, 2 bytes per BF16 weight (4 for F32/F16). The
// checkpoint's mapped pages of a repacked tensor are dropped right after its copy is made
// (the loader's `release`), as weights quantized at load are: they are file pages the
// kernel may evict anyway, read again only by the other GEMM paths (tests switching
// kernels) or the CUDA upload, which never sees repacked weights. So resident memory ends
// about where a mapped checkpoint's does after its first forward (an 8B BF16 model: 16 GB
// either way), but that memory can no longer be evicted: repacking is done only when all
// copies fit in the budget, by default three quarters of the memory available at load
// (MemAvailable), otherwise an eighth of physical memory; beyond it the weights stay mapped
// and the GEMM packs per call, as before.
#ifndef _WIN32
#include <unistd.h>
#endif

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cpu_features.h"
#include "huge_pages.h"
#include "model.h"
#include "ops/kernels.h"
#include "threadpool.h"

namespace sdllm {

#ifdef _WIN32
// Not built for Windows yet (no madvise / aligned_alloc there): the GEMM packs per call.
int64_t repack_weights(Model&, ThreadPool*, int64_t, const std::function<void(const WeightView&)>&) { return 0; }
#else

namespace {

int64_t default_budget() {
  if (std::FILE* f = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    long long kb = -1;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    std::fclose(f);
    if (kb > 0) return kb * 1024 / 4 * 3;
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page / 8 : 0;
}

bool repackable(const WeightView& w) {
  return !w.empty() && w.dtype != DType::Q8_0 && w.packed == nullptr && w.packed_bf16 == nullptr;
}

// BF16 weights keep 16 bits (the layout's BF16 twin); F32 and F16 ones become float32.
int64_t packed_bytes(const WeightView& w) {
  return w.dtype == DType::BF16 ? kernels::avx512_packed_bf16_halves(w.rows, w.cols) * 2
                                : kernels::avx512_packed_floats(w.rows, w.cols) * 4;
}

}  // namespace

int64_t repack_weights(Model& model, ThreadPool* pool, int64_t budget_bytes,
                       const std::function<void(const WeightView&)>& done_with) {
  if (!use_avx512()) return 0;  // only the AVX-512 GEMM reads the layout
  const char* off = std::getenv("SDLLM_NO_REPACK");  // benchmarks: the per-call packing beside it
  if (off && *off && *off != '0') return 0;
  std::vector<WeightView*> weights;
  for (auto& L : model.layers)
    for (WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
      if (repackable(*w)) weights.push_back(w);
  if (repackable(model.lm_head)) weights.push_back(&model.lm_head);
  int64_t bytes = 0;
  for (const WeightView* w : weights) bytes += packed_bytes(*w);
  if (budget_bytes < 0) budget_bytes = default_budget();
  if (weights.empty() || bytes > budget_bytes) return 0;  // all or nothing: one speed per model

  for (WeightView* w : weights) {
    const int64_t used = packed_bytes(*w);
    // 2 MB aligned and advised as huge pages: a forward streams all of it, and with 4 KB
    // pages every 4 KB of a panel is a TLB miss the prefetchers do not run past. Each copy
    // is rounded up to whole huge pages, which costs small models memory (58 MB for the
    // 1 M-parameter one's 29 weights), but measured: huge pages only for copies of 2 MB or
    // more left d_model 128 and 512 forwards 10-15% slower, and one shared huge-page arena
    // for all copies was slower too (not understood); so each copy keeps its own.
    std::shared_ptr<void> buf(alloc_huge_pages(static_cast<size_t>(used)), [](void* p) { free_aligned(p); });
    if (!buf) return model.repacked_bytes;  // leave the rest as they are: the GEMM packs per call
    const bool bf16 = w->dtype == DType::BF16;
    const int64_t groups = bf16 ? (w->rows + 3) / 4 : (w->rows + 1) / 2;  // quads or pairs
    auto run = [&](int64_t b, int64_t e, int) {
      if (bf16)
        kernels::avx512_pack_weight_bf16(*w, b, e, static_cast<uint16_t*>(buf.get()));
      else
        kernels::avx512_pack_weight(*w, b, e, static_cast<float*>(buf.get()));
    };
    if (pool)
      pool->parallel_for(groups, 32, run);
    else
      run(0, groups, 0);
    if (bf16)
      w->packed_bf16 = static_cast<const uint16_t*>(buf.get());
    else
      w->packed = static_cast<const float*>(buf.get());
    w->packed_rows = w->rows;
    // A tied LM head is the embedding table, which the lookups still read.
    if (done_with && !(w == &model.lm_head && model.config.weight_tying)) done_with(*w);
    model.owned_buffers.push_back(std::shared_ptr<const void>(buf, buf.get()));
    model.repacked_bytes += used;
  }
  return model.repacked_bytes;
}

#endif  // _WIN32

}  // namespace sdllm
