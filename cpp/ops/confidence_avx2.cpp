// The max pass and the softmax sums of op_confidence in AVX2 (kernels.h avx2_block_max,
// avx2_exp_sums). The max pass: 8 float lanes, each with the scalar loop's state. The sums:
// 8 double lanes as two halves of 4, exp of vexp_f64.h; confidence_avx512.cpp does the
// same operations in one 8-lane register, and test_ops checks that the two agree bit for
// bit.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels.h"
#include "vexp_f64.h"

// No mul + add fused into an FMA by the compiler (GCC does so by default, and would not
// do it the same way in the AVX-512 file): the FMAs here are the written ones.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace sdllm {
namespace kernels {

namespace {

// exp(d) in 4 lanes for d in [kLow, 0]; other lanes are patched by the caller.
inline __m256d exp4(__m256d d, const double* table) {
  using namespace vexp_f64;
  const __m256d n = _mm256_round_pd(_mm256_mul_pd(d, _mm256_set1_pd(kInvStep)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(kStepHi), d);
  r = _mm256_fnmadd_pd(n, _mm256_set1_pd(kStepLo), r);
  __m256d p = _mm256_set1_pd(kC6);
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(kC5));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(kC4));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(kC3));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(kC2));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0));
  const __m128i ni = _mm256_cvtpd_epi32(n);
  // The masked form: GCC 12 warns on the plain one's undefined source register.
  const __m256d frac = _mm256_mask_i32gather_pd(_mm256_setzero_pd(), table, _mm_and_si128(ni, _mm_set1_epi32(63)),
                                                _mm256_castsi256_pd(_mm256_set1_epi64x(-1)), 8);
  const __m256i scale = _mm256_slli_epi64(_mm256_cvtepi32_epi64(_mm_add_epi32(_mm_srai_epi32(ni, 6), _mm_set1_epi32(1023))), 52);
  return _mm256_mul_pd(_mm256_mul_pd(frac, p), _mm256_castsi256_pd(scale));
}

// Adds the terms of 4 lanes (those set in `valid`) to the lane sums.
inline void add_terms(__m256d d, __m256d valid, const double* table, __m256d& sum, __m256d& ent) {
  __m256d e = exp4(d, table);
  const __m256d ok = _mm256_cmp_pd(d, _mm256_set1_pd(vexp_f64::kLow), _CMP_GE_OQ);
  const int need = _mm256_movemask_pd(_mm256_andnot_pd(ok, valid));
  if (need) {  // below kLow, -inf or NaN: std::exp, as every path does
    alignas(32) double dd[4], ee[4];
    _mm256_store_pd(dd, d);
    _mm256_store_pd(ee, e);
    for (int i = 0; i < 4; ++i)
      if (need >> i & 1) ee[i] = std::exp(dd[i]);
    e = _mm256_load_pd(ee);
  }
  sum = _mm256_blendv_pd(sum, _mm256_add_pd(sum, e), valid);
  const __m256d pos = _mm256_and_pd(valid, _mm256_cmp_pd(e, _mm256_setzero_pd(), _CMP_GT_OQ));
  ent = _mm256_blendv_pd(ent, _mm256_fmadd_pd(e, d, ent), pos);
}

// (a0 + a2) + (a1 + a3) of lanes that already hold (i) + (i + 4).
inline double reduce4(__m256d v) {
  const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

}  // namespace

ExpSums avx2_exp_sums(const float* l, int64_t n, double m, double inv) {
  const double* table = exp2_frac64();
  const __m256d vm = _mm256_set1_pd(m), vinv = _mm256_set1_pd(inv);
  const __m256d lane = _mm256_setr_pd(0, 1, 2, 3);
  __m256d sum_lo = _mm256_setzero_pd(), sum_hi = sum_lo, ent_lo = sum_lo, ent_hi = sum_lo;
  for (int64_t t = 0; t < n; t += 8) {
    const int64_t k = std::min<int64_t>(8, n - t);
    __m256 x;
    if (k == 8) {
      x = _mm256_loadu_ps(l + t);
    } else {
      alignas(32) float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      std::copy(l + t, l + t + k, buf);
      x = _mm256_load_ps(buf);
    }
    const __m256d d_lo = _mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), vm), vinv);
    const __m256d d_hi = _mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), vm), vinv);
    const __m256d valid_lo = _mm256_cmp_pd(lane, _mm256_set1_pd(static_cast<double>(k)), _CMP_LT_OQ);
    const __m256d valid_hi = _mm256_cmp_pd(_mm256_add_pd(lane, _mm256_set1_pd(4)), _mm256_set1_pd(static_cast<double>(k)), _CMP_LT_OQ);
    add_terms(d_lo, valid_lo, table, sum_lo, ent_lo);
    add_terms(d_hi, valid_hi, table, sum_hi, ent_hi);
  }
  ExpSums out;
  out.sum = reduce4(_mm256_add_pd(sum_lo, sum_hi));
  out.ent = reduce4(_mm256_add_pd(ent_lo, ent_hi));
  return out;
}

void avx2_block_max(const float* l, int64_t n, LaneMax& out) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 m1 = ninf, m2 = ninf;
  __m256i arg = _mm256_set1_epi32(-1), t = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int64_t b = 0; b < n; b += 8) {
    __m256 v;
    if (n - b >= 8) {
      v = _mm256_loadu_ps(l + b);
    } else {  // the lanes past n read -inf, which changes no lane's state
      alignas(32) float buf[8];
      for (int i = 0; i < 8; ++i) buf[i] = b + i < n ? l[b + i] : -std::numeric_limits<float>::infinity();
      v = _mm256_load_ps(buf);
    }
    const __m256 gt = _mm256_cmp_ps(v, m1, _CMP_GT_OQ);
    // max(v, m2) returns m2 when v is NaN; a new max pushes the old one down.
    m2 = _mm256_blendv_ps(_mm256_max_ps(v, m2), m1, gt);
    m1 = _mm256_blendv_ps(m1, v, gt);
    arg = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(arg), _mm256_castsi256_ps(t), gt));
    t = _mm256_add_epi32(t, _mm256_set1_epi32(8));
  }
  _mm256_storeu_ps(out.max, m1);
  _mm256_storeu_ps(out.second, m2);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.arg), arg);
  out.lanes = 8;
}

}  // namespace kernels
}  // namespace sdllm
