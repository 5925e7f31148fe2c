// Rotate-half RoPE, angles in float32 as the reference (HF/LLaDA) computes them:
// inv_freq = 1 / theta^(2j/d) in float32, angle = float(pos) * inv_freq, then cos/sin.
#include <cmath>
#include <vector>

#include "../cpu_features.h"
#include "../ops.h"
#include "kernels.h"

namespace sdllm {

void op_rope_angles(const int32_t* pos, int64_t n, int head_dim, float theta, float* cs, float* sn) {
  const int half = head_dim / 2;
  std::vector<float> inv_freq(half);
  for (int j = 0; j < half; ++j) {
    // torch: 1.0 / (base ** (arange(0, d, 2).float() / d)), all in float32.
    const float e = static_cast<float>(2 * j) / static_cast<float>(head_dim);
    inv_freq[j] = 1.0f / std::pow(theta, e);
  }
  for (int64_t i = 0; i < n; ++i) {
    const float p = static_cast<float>(pos[i]);
    for (int j = 0; j < half; ++j) {
      const float a = p * inv_freq[j];
      cs[i * half + j] = std::cos(a);
      sn[i * half + j] = std::sin(a);
    }
  }
}

void op_rope_apply(float* x, int64_t n, int64_t row_stride, int n_heads, int head_dim, const float* cs,
                   const float* sn) {
  const int half = head_dim / 2;
  const bool avx512 = use_avx512();
  for (int64_t i = 0; i < n; ++i) {
    const float* c = cs + i * half;
    const float* s = sn + i * half;
    float* row = x + i * row_stride;
    for (int h = 0; h < n_heads; ++h) {
      float* v = row + static_cast<int64_t>(h) * head_dim;
      if (avx512) {
        kernels::avx512_rope_head(v, c, s, half);
        continue;
      }
      for (int j = 0; j < half; ++j) {
        const float a = v[j], b = v[j + half];
        v[j] = a * c[j] - b * s[j];
        v[j + half] = b * c[j] + a * s[j];
      }
    }
  }
}

void op_rope(float* x, int64_t n, int64_t row_stride, int n_heads, int head_dim, const int32_t* pos,
             float theta) {
  const int64_t half = head_dim / 2;
  std::vector<float> cs(static_cast<size_t>(n * half)), sn(cs.size());
  op_rope_angles(pos, n, head_dim, theta, cs.data(), sn.data());
  op_rope_apply(x, n, row_stride, n_heads, head_dim, cs.data(), sn.data());
}

}  // namespace sdllm
