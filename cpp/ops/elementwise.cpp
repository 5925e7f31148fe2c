// SwiGLU and residual add: plain loops the compiler vectorises well enough;
// they are memory-bound and small next to the GEMMs around them.
#include <cmath>

#include "../ops.h"

namespace sdllm {

void op_swiglu(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void op_add(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace sdllm
