// SwiGLU and residual add. SwiGLU takes the AVX-512 or the AVX2 kernel (vectorised exp,
// the same floats) when it can; the add is a plain loop the compiler vectorises,
// memory-bound either way.
#include <algorithm>
#include <cmath>
#include <functional>

#include "../cpu_features.h"
#include "../ops.h"
#include "kernels.h"

namespace sdllm {

void op_swiglu(const float* gate, const float* up, int64_t n, float* out) {
  if (use_avx512()) return kernels::avx512_swiglu(gate, up, n, out);
  if (use_avx2_fma()) return kernels::avx2_swiglu(gate, up, n, out);
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void op_add(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

namespace {
// Splits [0, n) into chunks starting at multiples of 8, so that every element takes the
// same (vector or tail) path as in one call over all of [0, n).
void split8(int64_t n, ThreadPool& pool, const std::function<void(int64_t, int64_t)>& fn) {
  if (n < 2 * kPoolMinElements || pool.size() == 1) return fn(0, n);
  const int64_t blocks = (n + 7) / 8;
  pool.parallel_for(blocks, kPoolMinElements / 8, [&](int64_t b, int64_t e, int) { fn(b * 8, std::min(n, e * 8)); });
}
}  // namespace

void op_swiglu(const float* gate, const float* up, int64_t n, float* out, ThreadPool& pool) {
  split8(n, pool, [&](int64_t b, int64_t e) { op_swiglu(gate + b, up + b, e - b, out + b); });
}

void op_add(float* y, const float* x, int64_t n, ThreadPool& pool) {
  split8(n, pool, [&](int64_t b, int64_t e) { op_add(y + b, x + b, e - b); });
}

}  // namespace sdllm
