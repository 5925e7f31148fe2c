// RMSNorm in float32 with a double sum of squares: rows of 4096 values would
// otherwise lose a few bits against the float64 references the tests use.
// The AVX2 path sums the squares in 4 + 4 double lanes (a different order of the same
// double sum) and scales exactly as the scalar path, (x * inv) * w in float32.
#include <algorithm>
#include <cmath>

#include "../cpu_features.h"
#include "../ops.h"
#include "kernels.h"

namespace sdllm {

namespace {

void rmsnorm_row(const float* xi, const WeightView& w, int64_t d, float eps, float* oi, bool avx2) {
  if (avx2) return kernels::avx2_rmsnorm_row(xi, w, d, eps, oi);
  double ss = 0;
  for (int64_t c = 0; c < d; ++c) ss += static_cast<double>(xi[c]) * xi[c];
  const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(d) + eps));
  // Reads xi[c] before writing oi[c]: out may alias x.
  if (w.dtype == DType::F32) {
    const float* wf = static_cast<const float*>(w.data);
    for (int64_t c = 0; c < d; ++c) oi[c] = xi[c] * inv * wf[c];
  } else {
    for (int64_t c = 0; c < d; ++c) oi[c] = xi[c] * inv * w.at(0, c);
  }
}

}  // namespace

void op_rmsnorm(const float* x, const WeightView& w, int64_t n, int64_t d, float eps, float* out) {
  const bool avx2 = use_avx2_fma();
  for (int64_t i = 0; i < n; ++i) rmsnorm_row(x + i * d, w, d, eps, out + i * d, avx2);
}

void op_rmsnorm(const float* x, const WeightView& w, int64_t n, int64_t d, float eps, float* out, ThreadPool& pool) {
  const int64_t grain = std::max<int64_t>(1, kPoolMinElements / std::max<int64_t>(1, d));
  if (n <= grain || pool.size() == 1) return op_rmsnorm(x, w, n, d, eps, out);
  const bool avx2 = use_avx2_fma();
  pool.parallel_for(n, grain, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) rmsnorm_row(x + i * d, w, d, eps, out + i * d, avx2);
  });
}

void op_add_rmsnorm(float* residual, const float* delta, const WeightView& w, int64_t n, int64_t d, float eps,
                    float* out, ThreadPool& pool) {
  const bool avx2 = use_avx2_fma();
  auto rows = [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      op_add(residual + i * d, delta + i * d, d);
      rmsnorm_row(residual + i * d, w, d, eps, out + i * d, avx2);
    }
  };
  const int64_t grain = std::max<int64_t>(1, kPoolMinElements / std::max<int64_t>(1, d));
  if (n <= grain || pool.size() == 1) return rows(0, n, 0);
  pool.parallel_for(n, grain, rows);
}

}  // namespace sdllm
