// SwiGLU and residual add. SwiGLU takes the AVX2 kernel (vectorised exp) when it can;
// the add is a plain loop the compiler vectorises, memory-bound either way.
#include <cmath>

#include "../cpu_features.h"
#include "../ops.h"
#include "kernels.h"

namespace sdllm {

void op_swiglu(const float* gate, const float* up, int64_t n, float* out) {
  if (use_avx2_fma()) return kernels::avx2_swiglu(gate, up, n, out);
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void op_add(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace sdllm
