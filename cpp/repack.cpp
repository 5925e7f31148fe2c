// Repacking the linear weights at load for the AVX-512 GEMM.
//
// Why: per call, the AVX-512 GEMM widens each panel of weight rows to float32 pairs
// (gemm_avx512.cpp) and reuses it for every activation row. At the row counts of a
// diffusion step (32-160) that packing is 10% of a forward at d_model 512 and more at a
// cached step's 32 rows, and it reads the weights as short pieces of rows, waiting on
// memory. Packing every weight once at load makes a forward read one sequential float32
// stream per panel. The floats are the ones the GEMM would have packed itself, so the
// outputs are bit for bit the same (test_ops checks it).
//
// Cost: 4 bytes per weight beside the checkpoint's own (mapped) tensors, which stay the
// source for the embedding lookups, the other GEMM paths and the CUDA upload. So it is
// done only within a budget: the default is an eighth of physical memory, at most 4 GiB
// (a 170 M-parameter model takes 0.7 GB; an 8B one would take 32 GB and is left as it is).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "cpu_features.h"
#include "model.h"
#include "ops/kernels.h"
#include "threadpool.h"

namespace sdllm {

namespace {

int64_t default_budget() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const int64_t ram = pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
  return std::min<int64_t>(int64_t{4} << 30, ram / 8);
}

bool repackable(const WeightView& w) { return !w.empty() && w.dtype != DType::Q8_0 && w.packed == nullptr; }

}  // namespace

int64_t repack_weights(Model& model, ThreadPool* pool, int64_t budget_bytes) {
  if (!use_avx512()) return 0;  // only the AVX-512 GEMM reads the layout
  const char* off = std::getenv("SDLLM_NO_REPACK");  // benchmarks: the per-call packing beside it
  if (off && *off && *off != '0') return 0;
  std::vector<WeightView*> weights;
  for (auto& L : model.layers)
    for (WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
      if (repackable(*w)) weights.push_back(w);
  if (repackable(model.lm_head)) weights.push_back(&model.lm_head);
  int64_t bytes = 0;
  for (const WeightView* w : weights) bytes += kernels::avx512_packed_floats(w->rows, w->cols) * 4;
  if (budget_bytes < 0) budget_bytes = default_budget();
  if (weights.empty() || bytes > budget_bytes) return 0;  // all or nothing: one speed per model

  for (WeightView* w : weights) {
    const int64_t floats = kernels::avx512_packed_floats(w->rows, w->cols);
    // 2 MB aligned and advised as huge pages: a forward streams all of it, and with 4 KB
    // pages every 4 KB of a panel is a TLB miss the prefetchers do not run past.
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t size = (static_cast<size_t>(floats) * 4 + kHuge - 1) / kHuge * kHuge;
    std::shared_ptr<float> buf(static_cast<float*>(std::aligned_alloc(kHuge, size)), [](float* p) { std::free(p); });
    if (!buf) return 0;  // leave the rest as they are: the GEMM packs per call
    madvise(buf.get(), size, MADV_HUGEPAGE);  // advice only: without it the layout still works
    const int64_t pairs = (w->rows + 1) / 2;
    auto run = [&](int64_t b, int64_t e, int) { kernels::avx512_pack_weight(*w, b, e, buf.get()); };
    if (pool)
      pool->parallel_for(pairs, 64, run);
    else
      run(0, pairs, 0);
    w->packed = buf.get();
    w->packed_rows = w->rows;
    model.owned_buffers.push_back(std::shared_ptr<const void>(buf, buf.get()));
    model.repacked_bytes += floats * 4;
  }
  return model.repacked_bytes;
}

}  // namespace sdllm
