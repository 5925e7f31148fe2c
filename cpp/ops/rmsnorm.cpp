// RMSNorm in float32 with a double sum of squares: rows of 4096 values would
// otherwise lose a few bits against the float64 references the tests use.
#include <cmath>

#include "../ops.h"

namespace sdllm {

void op_rmsnorm(const float* x, const WeightView& w, int64_t n, int64_t d, float eps, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x + i * d;
    float* oi = out + i * d;
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
}

}  // namespace sdllm
