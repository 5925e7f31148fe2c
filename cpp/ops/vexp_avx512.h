// vexp_avx2.h's expf in 16 lanes for the *_avx512.cpp kernels: the same operations per
// lane, so a value computed here is the float the AVX2 kernels compute (their results must
// not depend on the vector width; test_ops compares them bit for bit).
#pragma once
#include <immintrin.h>

#include "avx512_target.h"

SDLLM_AVX512_WARNINGS_BEGIN

namespace sdllm {
namespace kernels {
namespace {

// exp(x) for x clamped to [-87.3, 88.3] (vexp_avx2.h exp_clamped).
SDLLM_AVX512 inline __m512 exp_clamped16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 y = _mm512_set1_ps(1.9875691500e-4f);
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
}

// exp(x) for x <= 0 (vexp_avx2.h exp_nonpos): below -87.3, -inf and NaN give 0.
SDLLM_AVX512 inline __m512 exp_nonpos16(__m512 x) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GE_OQ);
  return _mm512_maskz_mov_ps(keep, exp_clamped16(x));
}

}  // namespace
}  // namespace kernels
}  // namespace sdllm

SDLLM_AVX512_WARNINGS_END
