// RoPE's rotation of one head in AVX-512 (op_rope_apply when use_avx512()): rope.cpp's loop
// 16 pairs at a time, with the same operations per element (a product, a product, a subtraction or
// an addition, each rounded: no fused multiply-add), so every output is the float the
// portable loop gives; a half head that is not a multiple of 16 runs its last lanes
// masked. The portable loop, built for baseline x86-64, runs 4 lanes of SSE.
#include <immintrin.h>

#include <cstdint>

#include "kernels.h"

#include "avx512_target.h"

SDLLM_AVX512_WARNINGS_BEGIN

namespace sdllm {
namespace kernels {

namespace {

// The product as computed, hidden from the optimizer: GCC contracts a vector product and
// the sum it feeds into one fused multiply-add (-ffp-contract=fast, its default in GNU
// C++), which rounds once where the portable loop, and PyTorch's rotation, round twice.
SDLLM_AVX512 inline __m512 rounded_product(__m512 a, __m512 b) {
  __m512 p = _mm512_mul_ps(a, b);
#if defined(__GNUC__) || defined(__clang__)
  __asm__("" : "+v"(p));
#endif
  return p;
}

}  // namespace

SDLLM_AVX512 void avx512_rope_head(float* v, const float* c, const float* s, int half) {
  for (int j = 0; j < half; j += 16) {
    const __mmask16 m = half - j >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (half - j)) - 1);
    const __m512 a = _mm512_maskz_loadu_ps(m, v + j), b = _mm512_maskz_loadu_ps(m, v + j + half);
    const __m512 cj = _mm512_maskz_loadu_ps(m, c + j), sj = _mm512_maskz_loadu_ps(m, s + j);
    _mm512_mask_storeu_ps(v + j, m, _mm512_sub_ps(rounded_product(a, cj), rounded_product(b, sj)));
    _mm512_mask_storeu_ps(v + j + half, m, _mm512_add_ps(rounded_product(b, cj), rounded_product(a, sj)));
  }
}

}  // namespace kernels
}  // namespace sdllm

SDLLM_AVX512_WARNINGS_END
