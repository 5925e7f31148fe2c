// The max pass and the softmax sums of op_confidence in AVX-512 (kernels.h avx512_block_max,
// avx512_exp_sums). The max pass: 16 lanes, each with the state of avx2_block_max's. The
// sums: the 8 double lanes of confidence_avx2.cpp in one register, the same operations
// lane for lane.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels.h"
#include "vexp_f64.h"

#include "avx512_target.h"

// As in confidence_avx2.cpp: only the written FMAs.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

SDLLM_AVX512_WARNINGS_BEGIN

namespace sdllm {
namespace kernels {

namespace {

SDLLM_AVX512 inline __m512d exp8(__m512d d, const double* table) {
  using namespace vexp_f64;
  const __m512d n = _mm512_roundscale_pd(_mm512_mul_pd(d, _mm512_set1_pd(kInvStep)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(kStepHi), d);
  r = _mm512_fnmadd_pd(n, _mm512_set1_pd(kStepLo), r);
  __m512d p = _mm512_set1_pd(kC6);
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(kC5));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(kC4));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(kC3));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(kC2));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
  const __m256i ni = _mm512_cvtpd_epi32(n);
  const __m512d frac = _mm512_i32gather_pd(_mm256_and_si256(ni, _mm256_set1_epi32(63)), table, 8);
  const __m512i scale = _mm512_slli_epi64(_mm512_cvtepi32_epi64(_mm256_add_epi32(_mm256_srai_epi32(ni, 6), _mm256_set1_epi32(1023))), 52);
  return _mm512_mul_pd(_mm512_mul_pd(frac, p), _mm512_castsi512_pd(scale));
}

// ((0 + 4) + (2 + 6)) + ((1 + 5) + (3 + 7)), as confidence_avx2.cpp.
SDLLM_AVX512 inline double reduce8(__m512d v) {
  const __m256d q = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
  const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(q), _mm256_extractf128_pd(q, 1));
  return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

}  // namespace

SDLLM_AVX512 ExpSums avx512_exp_sums(const float* l, int64_t n, double m, double inv) {
  const double* table = exp2_frac64();
  const __m512d vm = _mm512_set1_pd(m), vinv = _mm512_set1_pd(inv);
  __m512d sum = _mm512_setzero_pd(), ent = sum;
  for (int64_t t = 0; t < n; t += 8) {
    const int64_t k = std::min<int64_t>(8, n - t);
    const __mmask8 valid = static_cast<__mmask8>((1u << k) - 1);
    const __m256 x = _mm256_maskz_loadu_ps(valid, l + t);
    const __m512d d = _mm512_mul_pd(_mm512_sub_pd(_mm512_cvtps_pd(x), vm), vinv);
    __m512d e = exp8(d, table);
    const __mmask8 need = static_cast<__mmask8>(valid & ~_mm512_cmp_pd_mask(d, _mm512_set1_pd(vexp_f64::kLow), _CMP_GE_OQ));
    if (need) {  // below kLow, -inf or NaN: std::exp, as every path does
      alignas(64) double dd[8], ee[8];
      _mm512_store_pd(dd, d);
      _mm512_store_pd(ee, e);
      for (int i = 0; i < 8; ++i)
        if (need >> i & 1) ee[i] = std::exp(dd[i]);
      e = _mm512_load_pd(ee);
    }
    sum = _mm512_mask_add_pd(sum, valid, sum, e);
    const __mmask8 pos = static_cast<__mmask8>(valid & _mm512_cmp_pd_mask(e, _mm512_setzero_pd(), _CMP_GT_OQ));
    ent = _mm512_mask3_fmadd_pd(e, d, ent, pos);
  }
  ExpSums out;
  out.sum = reduce8(sum);
  out.ent = reduce8(ent);
  return out;
}

SDLLM_AVX512 void avx512_block_max(const float* l, int64_t n, LaneMax& out) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 m1 = ninf, m2 = ninf;
  __m512i arg = _mm512_set1_epi32(-1);
  __m512i t = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int64_t b = 0; b < n; b += 16) {
    const int64_t k = std::min<int64_t>(16, n - b);
    // The lanes past n read -inf, which changes no lane's state.
    const __m512 v = _mm512_mask_loadu_ps(ninf, static_cast<__mmask16>((1u << k) - 1), l + b);
    const __mmask16 gt = _mm512_cmp_ps_mask(v, m1, _CMP_GT_OQ);
    // max(v, m2) returns m2 when v is NaN; a new max pushes the old one down.
    m2 = _mm512_mask_blend_ps(gt, _mm512_max_ps(v, m2), m1);
    m1 = _mm512_mask_blend_ps(gt, m1, v);
    arg = _mm512_mask_blend_epi32(gt, arg, t);
    t = _mm512_add_epi32(t, _mm512_set1_epi32(16));
  }
  _mm512_storeu_ps(out.max, m1);
  _mm512_storeu_ps(out.second, m2);
  _mm512_storeu_si512(out.arg, arg);
  out.lanes = 16;
}

}  // namespace kernels
}  // namespace sdllm
SDLLM_AVX512_WARNINGS_END
