// op_project (and op_gemm, its one-weight case): how the threads share a projection's
// outputs. Split by weight rows, each thread streams a disjoint part of the weights once —
// the weights are what is large in a big model, the activations small — and its outputs
// are a column strip of y. Split by x rows, every thread reads all the weights and its rows
// of y stay in its cache for the row-wise ops that follow: cheaper when the weights are
// smaller than the activations they touch (small models, batched forwards). Either way
// each output is the same dot product (gemm_blocks.h), so the split never changes a float.
//
// The epilogue runs on the thread that computed a block, right after it: SwiGLU on gate and
// up columns, RoPE on whole heads, a residual add. Run as separate ops, each would be a
// pool job of its own that reads, row by row, what the other core wrote (a cache line
// from the other vCPU is ~0.3 us in this machine's VM); fused, the block is still in L1/L2.
#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "../ops.h"
#include "gemm_blocks.h"

namespace sdllm {

void op_project(const float* x, int64_t m, int64_t k, const WeightView* const* w, const WeightView* const* bias,
                int count, float* y, int64_t ldy, ThreadPool& pool, const ProjectEpilogue* epilogue) {
  if (m <= 0 || count <= 0) return;
  const bool paired = epilogue && epilogue->paired;
  std::vector<int64_t> offset(static_cast<size_t>(count) + 1, 0);
  bool any_q8 = false;
  int64_t weight_bytes = 0;
  for (int j = 0; j < count; j++) {
    offset[j + 1] = offset[j] + w[j]->rows;
    any_q8 = any_q8 || w[j]->dtype == DType::Q8_0;
    weight_bytes += w[j]->rows * k * static_cast<int64_t>(dtype_size(w[j]->dtype));
  }
  const int64_t n_total = offset[count];
  if (n_total <= 0) return;
  if (paired)
    for (int j = 1; j < count; j++)
      if (w[j]->rows != w[0]->rows) throw std::invalid_argument("op_project: paired weights need the same rows");
  gemm::Q8Input q8;
  if (any_q8 && k > 0) q8 = gemm::q8_prepare(x, m, k, pool);

  // Weight j's outputs for rows [i0, i1) and its columns [c0, c1), bias included.
  auto compute = [&](int j, int64_t i0, int64_t i1, int64_t c0, int64_t c1) {
    const WeightView& wj = *w[j];
    float* yj = y + offset[j];
    if (k == 0) {
      for (int64_t i = i0; i < i1; ++i) std::fill(yj + i * ldy + c0, yj + i * ldy + c1, 0.f);
    } else if (wj.dtype == DType::Q8_0) {
      gemm::q8_outputs(q8, wj, c0, c1, yj, ldy);  // the Q8 split is by columns only: i0 = 0, i1 = m
    } else {
      gemm::float_outputs(x + i0 * k, i1 - i0, k, wj, c0, c1, yj + i0 * ldy, ldy);
    }
    const WeightView* b = bias ? bias[j] : nullptr;
    if (b && !b->empty())
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t c = c0; c < c1; ++c) yj[i * ldy + c] += b->at(0, c);
    if (epilogue && !paired) epilogue->block(j, i0, i1, c0, c1);
  };
  // The same columns of every weight (paired), then the epilogue once.
  auto compute_paired = [&](int64_t i0, int64_t i1, int64_t c0, int64_t c1) {
    for (int j = 0; j < count; j++) compute(j, i0, i1, c0, c1);
    epilogue->block(-1, i0, i1, c0, c1);
  };
  auto all_columns = [&](int64_t i0, int64_t i1) {
    if (paired)
      compute_paired(i0, i1, 0, w[0]->rows);
    else
      for (int j = 0; j < count; j++) compute(j, i0, i1, 0, w[j]->rows);
  };

  // Tiny products (the small test models) are not worth waking a thread for, and a thread
  // gets at least as much work as that: on a many-core host a small model's projection
  // would otherwise be cut into sub-microsecond slices for every core, each paying the
  // hand-off (a guess at the break-even, not measured on many cores: this machine has two).
  constexpr int64_t kMinMacsPerThread = int64_t{1} << 18;
  const int64_t macs = m * k * n_total;
  if (macs < kMinMacsPerThread || pool.size() == 1) return all_columns(0, m);
  const int max_threads = static_cast<int>(std::min<int64_t>(pool.size(), macs / kMinMacsPerThread));

  // Split by x rows: ranges of whole kernel tiles, at least two tiles a thread.
  const int64_t tile_rows = gemm::float_tile_rows();
  const int64_t activation_bytes = m * (n_total + k) * 4;
  if (!any_q8 && weight_bytes < activation_bytes && m >= 2 * tile_rows * pool.size()) {
    pool.parallel_for((m + tile_rows - 1) / tile_rows, 1, [&](int64_t b, int64_t e, int) {
      all_columns(b * tile_rows, std::min(m, e * tile_rows));
    }, max_threads);
    return;
  }

  // Split by weight rows: equal contiguous ranges in units of the kernel's tile (a split in
  // whole 48-row panels left one of 2 threads a panel more than the other at n = 512, 9% of
  // a forward idle), made multiples of the epilogue's alignment where that costs at most a
  // few partial tiles.
  int64_t unit = any_q8 && k > 0 ? gemm::q8_unit(q8) : gemm::float_unit();
  if (epilogue && epilogue->align > 0) {
    const int64_t a = epilogue->align, both = std::lcm(unit, a);
    unit = both <= 4 * a ? both : a;
  }
  if (paired) {
    const int64_t n = w[0]->rows;
    pool.parallel_for((n + unit - 1) / unit, 1, [&](int64_t b, int64_t e, int) {
      compute_paired(0, m, b * unit, std::min(n, e * unit));
    }, max_threads);
    return;
  }
  // Units of each weight in turn, each weight's starting at its column 0.
  std::vector<int64_t> first_unit(static_cast<size_t>(count) + 1, 0);
  for (int j = 0; j < count; j++) first_unit[j + 1] = first_unit[j] + (w[j]->rows + unit - 1) / unit;
  pool.parallel_for(first_unit[count], 1, [&](int64_t b, int64_t e, int) {
    for (int j = 0; j < count; j++) {
      const int64_t s = std::max(b, first_unit[j]), t = std::min(e, first_unit[j + 1]);
      if (s < t) compute(j, 0, m, (s - first_unit[j]) * unit, std::min(w[j]->rows, (t - first_unit[j]) * unit));
    }
  }, max_threads);
}

}  // namespace sdllm
