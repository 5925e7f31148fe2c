// Vectorised expf for the AVX2 kernels. Include only from *_avx2.cpp files (compiled
// with -mavx2 -mfma); the functions have internal linkage so no other translation unit
// can pick them up.
//
// exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two parts so
// r is exact to float rounding), exp(r) by a degree-6 polynomial on |r| <= ln2 / 2
// (Cephes' expf coefficients). Relative error about 1-2 ulp (< 2.5e-7) for x in
// [-87.3, 88.3].
#pragma once
#include <immintrin.h>

namespace sdllm {
namespace kernels {
namespace {

// exp(x) for x clamped to [-87.3, 88.3] (so 2^n stays a normal float).
inline __m256 exp_clamped(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// exp(x) for x <= 0 (max-subtracted softmax scores): arguments below -87.3, -inf and
// NaN give 0.
inline __m256 exp_nonpos(__m256 x) {
  const __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_GE_OQ);
  return _mm256_and_ps(exp_clamped(x), keep);
}

}  // namespace
}  // namespace kernels
}  // namespace sdllm
