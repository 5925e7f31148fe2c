// The 4 x 4 int8 tile of the Q8_0 GEMM (see gemm_q8_avx2.cpp for the design), templated
// on the exact int32 group dot product: Dot::dot(Dot::prep(x), x, w) returns 8 int32 lanes
// summing to sum_c x[c] * w[c] (+ 128 * sum_c w[c] when Dot::kOffset). Used by
// gemm_q8_avx2.cpp (maddubs + madd); exact int32 arithmetic up to the float conversion.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace sdllm {
namespace kernels {
namespace q8tile {

constexpr int kTileRows = 4, kTileCols = 4;

// [sum p0, sum p1, sum p2, sum p3] of four 8-lane int32 vectors, as the two 128-bit halves
// of the result: lo = partial sums of lanes 0-3, hi = of lanes 4-7.
inline __m256i pack4(__m256i p0, __m256i p1, __m256i p2, __m256i p3) {
  return _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
}

// One group for a pair of x rows (a, b) against the 4 weight rows: the 8 exact sums
// [a.w0, a.w1, a.w2, a.w3, b.w0, b.w1, b.w2, b.w3] (plus Dot's offset, removed by the caller).
template <class Dot>
inline __m256i pair_sums(__m256i xa, __m256i xb, const __m256i (&w)[4]) {
  const __m256i ua = Dot::prep(xa), ub = Dot::prep(xb);
  const __m256i ha = pack4(Dot::dot(ua, xa, w[0]), Dot::dot(ua, xa, w[1]), Dot::dot(ua, xa, w[2]), Dot::dot(ua, xa, w[3]));
  const __m256i hb = pack4(Dot::dot(ub, xb, w[0]), Dot::dot(ub, xb, w[1]), Dot::dot(ub, xb, w[2]), Dot::dot(ub, xb, w[3]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(ha, hb, 0x20), _mm256_permute2x128_si256(ha, hb, 0x31));
}

// y rows x[0..3] (pointers into the padded quantized activations) against weight rows
// w[0..3]. xsp[g * 16 ..] holds the x scales of the group as [x0 x4, x1 x4, x2 x4, x3 x4],
// wst[g * 4 + j] the weight scales, and, when Dot::kOffset, wcorr[g * 4 + j] the int32 offset
// Dot::dot adds to weight row j's sums (128 * sum of its group). Stores the first nr rows
// and nc columns of the 4 x 4 result.
template <class Dot>
void tile(const int8_t* const* x, const float* xsp, const int8_t* const* w, const float* wst, const int32_t* wcorr,
          int64_t full, bool tail, const int8_t (*wtail)[32], float* y, int64_t ldy, int nr, int nc) {
  __m256 acc01 = _mm256_setzero_ps(), acc23 = _mm256_setzero_ps();
  auto step = [&](int64_t g, const __m256i (&wv)[4]) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[0] + g * 32));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[1] + g * 32));
    const __m256i x2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[2] + g * 32));
    const __m256i x3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[3] + g * 32));
    const __m256 ws = _mm256_broadcast_ps(reinterpret_cast<const __m128*>(wst + g * 4));
    const __m256 d01 = _mm256_mul_ps(_mm256_loadu_ps(xsp + g * 16), ws);
    const __m256 d23 = _mm256_mul_ps(_mm256_loadu_ps(xsp + g * 16 + 8), ws);
    __m256i s01 = pair_sums<Dot>(x0, x1, wv), s23 = pair_sums<Dot>(x2, x3, wv);
    if (Dot::kOffset) {
      const __m256i c = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wcorr + g * 4)));
      s01 = _mm256_sub_epi32(s01, c);
      s23 = _mm256_sub_epi32(s23, c);
    }
    acc01 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s01), d01, acc01);
    acc23 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s23), d23, acc23);
  };
  for (int64_t g = 0; g < full; ++g) {
    const __m256i wv[4] = {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[0] + g * 32)),
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[1] + g * 32)),
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[2] + g * 32)),
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[3] + g * 32))};
    step(g, wv);
  }
  if (tail) {
    const __m256i wv[4] = {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wtail[0])),
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wtail[1])),
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wtail[2])),
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wtail[3]))};
    step(full, wv);
  }
  alignas(32) float out[16];
  _mm256_store_ps(out, acc01);
  _mm256_store_ps(out + 8, acc23);
  for (int i = 0; i < nr; ++i)
    for (int j = 0; j < nc; ++j) y[i * ldy + j] = out[i * 4 + j];
}

using TileFn = void (*)(const int8_t* const*, const float*, const int8_t* const*, const float*, const int32_t*, int64_t,
                        bool, const int8_t (*)[32], float*, int64_t, int, int);
// A tile and whether it needs the weight-offset corrections.
struct TileKernel {
  TileFn fn = nullptr;
  bool offset = false;
};

}  // namespace q8tile
}  // namespace kernels
}  // namespace sdllm
