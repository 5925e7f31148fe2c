// The float-weight GEMM block (gemm_blocks.h): panels of weight rows for the AVX-512
// (gemm_avx512.cpp), AVX2 (gemm_avx2.cpp) or portable scalar kernel (here). op_gemm is
// op_project (project.cpp) with one weight: how threads share the work is decided there.
#include <algorithm>
#include <vector>

#include "../cpu_features.h"
#include "../ops.h"
#include "gemm_blocks.h"
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

namespace gemm {

int64_t float_unit() { return use_avx512() ? 8 : 3; }
int64_t float_tile_rows() { return use_avx512() ? 6 : 4; }

void float_outputs(const float* x, int64_t m, int64_t k, const WeightView& w, int64_t n0, int64_t n1, float* y,
                   int64_t ldy) {
  if (m <= 0 || n1 <= n0) return;
  const bool avx2 = use_avx2_fma(), avx512 = use_avx512();
  // Equal panels of at most kPanel weight rows, multiples of the kernel's tile (8 rows for
  // AVX-512, 3 for AVX2). Panels only partition the outputs; each output's arithmetic is the same.
  const int64_t unit = float_unit();
  const int64_t count = (n1 - n0 + kPanel - 1) / kPanel;
  const int64_t panel = ((n1 - n0 + count - 1) / count + unit - 1) / unit * unit;
  for (int64_t p = n0; p < n1; p += panel) {
    const int64_t q = std::min(n1, p + panel);
    if (avx512)
      kernels::avx512_gemm_rows(x, m, k, w, p, q, y, ldy);
    else if (avx2)
      kernels::avx2_gemm_rows(x, m, k, w, p, q, y, ldy);
    else
      scalar_gemm_rows(x, m, k, w, p, q, y, ldy);
  }
}

}  // namespace gemm

void op_gemm(const float* x, int64_t m, int64_t k, const WeightView& w, const WeightView* bias, float* y,
             ThreadPool& pool) {
  op_gemm(x, m, k, w, bias, y, w.rows, pool);
}

void op_gemm(const float* x, int64_t m, int64_t k, const WeightView& w, const WeightView* bias, float* y,
             int64_t ldy, ThreadPool& pool) {
  const WeightView* ws[1] = {&w};
  const WeightView* bs[1] = {bias};
  op_project(x, m, k, ws, bs, 1, y, ldy, pool);
}

}  // namespace sdllm
