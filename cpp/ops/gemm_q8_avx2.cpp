// AVX2 kernels of the Q8_0 GEMM (gemm_q8.cpp): activation quantization and the int8 tile.
//
// One group of 32 values of an x row and of a weight row is one ymm each. The signed x
// signed product uses the sign trick: maddubs(|x|, sign(w, x)) multiplies the unsigned
// |x| by w carrying x's sign into 16 int16 pair sums (at most 2 * 127 * 127, no
// saturation), madd with ones widens them to 8 int32 lanes, which are converted to float
// and accumulated with the group's scale product x_scale * w_scale by an FMA. Each
// output keeps its 8 float lanes across all groups and reduces them once at the end, the
// same operations for every tile shape: results do not depend on m or on the tiling.
// A tile is MR x rows by NR weight rows; the tail group of a K that is not a multiple of
// 32 reads the weights through a zero-padded copy (the x rows are padded already).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels.h"

namespace sdllm {
namespace kernels {

namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[i, j] = sum over groups of x rows i < MR against weight rows j < NR.
// w[j] points at weight row j; xq rows have stride kp; xs/ws rows have stride `groups`.
// `full` groups are read in place; a tail group (tail > 0 values) from wtail[j] (32 bytes).
template <int MR, int NR>
inline void group_step(const int8_t* xq, int64_t kp, const float* xs, int64_t groups, const int8_t* const* wsrc,
                       const float* const* ws, int64_t g, __m256 (&c)[MR][NR]) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i b[NR];
  __m256 bs[NR];
  for (int j = 0; j < NR; ++j) {
    b[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wsrc[j]));
    bs[j] = _mm256_broadcast_ss(ws[j] + g);
  }
  for (int i = 0; i < MR; ++i) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + i * kp + g * 32));
    const __m256i ua = _mm256_sign_epi8(a, a);  // |a|; a is never -128
    const __m256 as = _mm256_broadcast_ss(xs + i * groups + g);
    for (int j = 0; j < NR; ++j) {
      const __m256i p16 = _mm256_maddubs_epi16(ua, _mm256_sign_epi8(b[j], a));
      const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
      c[i][j] = _mm256_fmadd_ps(p, _mm256_mul_ps(as, bs[j]), c[i][j]);
    }
  }
}

// y[i, j] = sum over groups of x rows i < MR against weight rows j < NR.
// w[j] points at weight row j; xq rows have stride kp; xs/ws rows have stride `groups`.
// `full` groups are read in place; a tail group (groups > full) from wtail[j] (32 bytes).
template <int MR, int NR>
void tile(const int8_t* xq, int64_t kp, const float* xs, const int8_t* const* w, const float* const* ws,
          int64_t groups, int64_t full, const int8_t (*wtail)[32], float* y, int64_t ldy) {
  __m256 c[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i][j] = _mm256_setzero_ps();
  const int8_t* src[NR];
  for (int64_t g = 0; g < full; ++g) {
    for (int j = 0; j < NR; ++j) src[j] = w[j] + g * 32;
    group_step<MR, NR>(xq, kp, xs, groups, src, ws, g, c);
  }
  if (groups > full) {
    for (int j = 0; j < NR; ++j) src[j] = wtail[j];
    group_step<MR, NR>(xq, kp, xs, groups, src, ws, full, c);
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) y[i * ldy + j] = hsum(c[i][j]);
}

constexpr int kMR = 4, kNR = 2;
using TileFn = void (*)(const int8_t*, int64_t, const float*, const int8_t* const*, const float* const*, int64_t,
                        int64_t, const int8_t (*)[32], float*, int64_t);
const TileFn kTiles[kMR][kNR] = {
    {tile<1, 1>, tile<1, 2>},
    {tile<2, 1>, tile<2, 2>},
    {tile<3, 1>, tile<3, 2>},
    {tile<4, 1>, tile<4, 2>},
};

}  // namespace

void avx2_q8_quantize_row(const float* x, int64_t n, int8_t* q, float* scales) {
  const int64_t full = n / kQ8Group;
  const __m256 sign = _mm256_set1_ps(-0.f), hi = _mm256_set1_ps(127.f), lo = _mm256_set1_ps(-127.f);
  for (int64_t g = 0; g < full; ++g) {
    const float* s = x + g * kQ8Group;
    __m256 v[4];
    for (int u = 0; u < 4; ++u) v[u] = _mm256_loadu_ps(s + 8 * u);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float scale = amax / 127.f;
    const float inv = scale != 0.f ? 1.f / scale : 0.f;
    scales[g] = scale;
    const __m256 vi = _mm256_set1_ps(inv);
    __m256i r[4];
    for (int u = 0; u < 4; ++u) {
      __m256 t = _mm256_mul_ps(v[u], vi);
      t = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
      r[u] = _mm256_cvtps_epi32(t);  // round to nearest even
    }
    // int32 -> int16 -> int8; packs interleave the 128-bit lanes, the permute undoes it.
    const __m256i p01 = _mm256_packs_epi32(r[0], r[1]), p23 = _mm256_packs_epi32(r[2], r[3]);
    __m256i p = _mm256_packs_epi16(p01, p23);
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + g * kQ8Group), p);
  }
  if (full * kQ8Group < n)
    q8_quantize_row(x + full * kQ8Group, n - full * kQ8Group, q + full * kQ8Group, scales + full);
}

void avx2_q8_gemm_rows(const int8_t* xq, const float* xs, int64_t m, int64_t k, int64_t kp, const WeightView& w,
                       int64_t n0, int64_t n1, float* y) {
  const int64_t n = w.rows, groups = q8_groups(k), full = k / kQ8Group, tail = k - full * kQ8Group;
  const int8_t* wq = static_cast<const int8_t*>(w.data);
  for (int64_t j0 = n0; j0 < n1; j0 += kNR) {
    const int nr = static_cast<int>(std::min<int64_t>(kNR, n1 - j0));
    const int8_t* wr[kNR];
    const float* wsr[kNR];
    alignas(32) int8_t wtail[kNR][32] = {};
    for (int j = 0; j < nr; ++j) {
      wr[j] = wq + (j0 + j) * k;
      wsr[j] = w.scales + (j0 + j) * groups;
      if (tail) std::memcpy(wtail[j], wr[j] + full * kQ8Group, static_cast<size_t>(tail));
    }
    for (int64_t i0 = 0; i0 < m; i0 += kMR) {
      const int mr = static_cast<int>(std::min<int64_t>(kMR, m - i0));
      kTiles[mr - 1][nr - 1](xq + i0 * kp, kp, xs + i0 * groups, wr, wsr, groups, full, wtail, y + i0 * n + j0, n);
    }
  }
}

}  // namespace kernels
}  // namespace sdllm
