// op_gemm: y = x w^T (+ bias). Threads split the output features (weight rows) in
// panels, so each thread streams a disjoint part of the weights exactly once — the
// weights are what is large here (hundreds of MB), the activations are small; where the
// weight is the smaller operand (small models, batches) they split the x rows instead.
// The AVX2 kernel is in gemm_avx2.cpp; this file holds the portable scalar path.
#include <algorithm>
#include <vector>

#include "../cpu_features.h"
#include "../ops.h"
#include "kernels.h"

namespace sdllm {

namespace {

constexpr int64_t kPanel = 48;   // weight rows per work item (a multiple of the AVX2 tile's 3 and the AVX-512 one's 8)
constexpr int64_t kDepth = 512;  // K block of the scalar path: a widened panel stays in L2

// Scalar path: widen a panel of weight rows once, then reuse it for every x row.
// Eight partial sums give the compiler independent chains to vectorise with SSE2.
void scalar_gemm_rows(const float* x, int64_t m, int64_t k, const WeightView& w, int64_t n0, int64_t n1,
                      float* y, int64_t ldy) {
  const int64_t n = ldy;  // y's row stride
  thread_local std::vector<float> buf;
  buf.resize(static_cast<size_t>(kPanel * kDepth));
  for (int64_t i = 0; i < m; ++i) std::fill(y + i * n + n0, y + i * n + n1, 0.f);
  for (int64_t k0 = 0; k0 < k; k0 += kDepth) {
    const int64_t kb = std::min(kDepth, k - k0);
    for (int64_t j = n0; j < n1; ++j) {
      float* dst = buf.data() + (j - n0) * kDepth;
      for (int64_t c = 0; c < kb; ++c) dst[c] = w.at(j, k0 + c);
    }
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * k + k0;
      for (int64_t j = n0; j < n1; ++j) {
        const float* wj = buf.data() + (j - n0) * kDepth;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t c = 0;
        for (; c + 8 <= kb; c += 8)
          for (int u = 0; u < 8; ++u) acc[u] += xi[c + u] * wj[c + u];
        for (; c < kb; ++c) acc[0] += xi[c] * wj[c];
        y[i * n + j] += ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
      }
    }
  }
}

}  // namespace

void op_gemm(const float* x, int64_t m, int64_t k, const WeightView& w, const WeightView* bias, float* y,
             ThreadPool& pool) {
  op_gemm(x, m, k, w, bias, y, w.rows, pool);
}

void op_gemm(const float* x, int64_t m, int64_t k, const WeightView& w, const WeightView* bias, float* y,
             int64_t ldy, ThreadPool& pool) {
  if (w.dtype == DType::Q8_0) return op_gemm_q8(x, m, k, w, bias, y, ldy, pool);
  const int64_t n = w.rows;
  if (m <= 0 || n <= 0) return;
  const bool avx2 = use_avx2_fma(), avx512 = use_avx512();
  // Outputs [i0, i1) x [n0, n1): the range cut into equal panels of at most kPanel weight
  // rows (multiples of `unit`, the kernel's tile: 8 rows for AVX-512, 3 for AVX2), then the
  // bias. Panels and ranges only partition the outputs; each output's arithmetic is the same.
  const int64_t unit = avx512 ? 8 : 3;
  auto outputs = [&](int64_t i0, int64_t i1, int64_t n0, int64_t n1) {
    const float* xi = x + i0 * k;
    float* yi = y + i0 * ldy;
    const int64_t count = (n1 - n0 + kPanel - 1) / kPanel;
    const int64_t panel = ((n1 - n0 + count - 1) / count + unit - 1) / unit * unit;
    for (int64_t p = n0; p < n1; p += panel) {
      const int64_t q = std::min(n1, p + panel);
      if (avx512)
        kernels::avx512_gemm_rows(xi, i1 - i0, k, w, p, q, yi, ldy);
      else if (avx2)
        kernels::avx2_gemm_rows(xi, i1 - i0, k, w, p, q, yi, ldy);
      else
        scalar_gemm_rows(xi, i1 - i0, k, w, p, q, yi, ldy);
    }
    if (bias && !bias->empty())
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = n0; j < n1; ++j) y[i * ldy + j] += bias->at(0, j);
  };
  // Tiny products (the small test models) are not worth waking a thread for.
  const int64_t work = m * k * n;
  if (work < (1 << 18) || pool.size() == 1) return outputs(0, m, 0, n);
  // Which operand the threads share. Split by weight rows (below), each thread streams a
  // disjoint part of the weights once, and every thread's outputs are a column strip of y
  // that the next op, working row by row, must fetch from the other cores. Split by x rows,
  // every thread reads all the weights, and its rows of y stay in its cache for the
  // row-wise ops that follow (norms, SwiGLU, residual adds, the next projection): cheaper
  // when the weight is smaller than the activations it touches, as in small models (d_model
  // 128: a 2-thread vanilla step 10-15% faster) and in batched forwards; with ranges of
  // whole tiles (6 x rows for AVX-512, 4 for AVX2) and at least two tiles a thread.
  const int64_t tile_rows = avx512 ? 6 : 4;
  const int64_t weight_bytes = n * k * dtype_size(w.dtype), activation_bytes = m * (n + k) * 4;
  if (weight_bytes < activation_bytes && m >= 2 * tile_rows * pool.size()) {
    pool.parallel_for((m + tile_rows - 1) / tile_rows, 1, [&](int64_t b, int64_t e, int) {
      outputs(b * tile_rows, std::min(m, e * tile_rows), 0, n);
    });
    return;
  }
  // Threads get equal contiguous ranges of weight rows, in units of the kernel's tile: a
  // split in whole 48-row panels left one of 2 threads a panel more than the other at
  // n = 512 (11 panels), 9% of a forward idle.
  pool.parallel_for((n + unit - 1) / unit, 1, [&](int64_t b, int64_t e, int) {
    outputs(0, m, b * unit, std::min(n, e * unit));
  });
}

}  // namespace sdllm
