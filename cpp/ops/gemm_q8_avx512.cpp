// The Q8_0 GEMM with 512-bit VNNI (vpdpbusd on zmm), used when use_avx512() and the CPU
// reports AVX512-VNNI (Ice Lake, Zen 4 and later).
//
// The AVX-VNNI tile of gemm_q8_vnni_avx2.cpp with 8 activation rows per register instead
// of 4: vector k (k = 0..3) of a group holds bytes [8k, 8k + 8) of rows 0..7, biased by
// +128; the weight side is a broadcast of 8 bytes of one weight row. Every output still
// gets the exact int32 group sum, then acc = fma(float(sum), x_scale * w_scale, acc) group
// after group, so the floats equal the AVX2 and AVX-VNNI paths' bit for bit (test_ops).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "../cpu_features.h"
#include "avx512_target.h"
#include "kernels.h"

#if (defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11) || (defined(__clang__) && __clang_major__ >= 12)
#define SDLLM_Q8_VNNI512 1
#endif

namespace sdllm {
namespace kernels {

#ifdef SDLLM_Q8_VNNI512

bool q8_vnni512_available() {
  return cpu_features().avx512 && q8_vnni_available() && __builtin_cpu_supports("avx512vnni");
}

// Only the functions marked SDLLM_AVX512_VNNI (avx512_target.h) are built for AVX-512.
SDLLM_AVX512_WARNINGS_BEGIN

namespace {

constexpr int kRows = 8, kCols = 4;

SDLLM_AVX512_VNNI inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

SDLLM_AVX512_VNNI inline __m512i broadcast8(const int8_t* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return _mm512_set1_epi64(v);
}

// One group of 32 for 8 packed x rows (xp: [group][256 bytes], xsp: [group][16 floats])
// against 4 weight rows whose group g starts at src[j]: acc[j] += float(sum) * (xs * ws).
SDLLM_AVX512_VNNI inline void group_step(__m512 (&acc)[kCols], const int8_t* xp, const float* xsp, int64_t g,
                                         const int8_t* const* src, const float* const* ws, const int64_t* const* init) {
  __m512i xv[4];
  for (int v = 0; v < 4; ++v) xv[v] = _mm512_loadu_si512(xp + g * 256 + 64 * v);
  const __m512 xs = _mm512_loadu_ps(xsp + g * 16);
  for (int j = 0; j < kCols; ++j) {
    __m512i s = _mm512_set1_epi64(init[j][g]);
    for (int v = 0; v < 4; ++v) s = _mm512_dpbusd_epi32(s, xv[v], broadcast8(src[j] + 8 * v));
    s = _mm512_add_epi32(s, _mm512_shuffle_epi32(s, _MM_PERM_CDAB));  // whole sums in both lanes of a pair
    const __m512 d = _mm512_mul_ps(xs, _mm512_set1_ps(ws[j][g]));
    acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), d, acc[j]);
  }
}

// The tile: 8 x rows against 4 weight rows; the arguments otherwise as
// gemm_q8_vnni_avx2.cpp's tile4x4.
SDLLM_AVX512_VNNI void tile8x4(const int8_t* xp, const float* xsp, const int8_t* const* w, const float* const* ws,
                               const int64_t* const* init, int64_t full, bool tail, const int8_t (*wtail)[32], float* y,
                               int64_t ldy, int nr, int nc) {
  __m512 acc[kCols];
  for (int j = 0; j < kCols; ++j) acc[j] = _mm512_setzero_ps();
  const int8_t* src[kCols];
  for (int64_t g = 0; g < full; ++g) {
    for (int j = 0; j < kCols; ++j) src[j] = w[j] + g * 32;
    group_step(acc, xp, xsp, g, src, ws, init);
  }
  if (tail) {
    for (int j = 0; j < kCols; ++j) src[j] = wtail[j];
    group_step(acc, xp, xsp, full, src, ws, init);
  }
  alignas(64) float out[kCols][16];
  for (int j = 0; j < kCols; ++j) _mm512_store_ps(out[j], acc[j]);
  for (int i = 0; i < nr; ++i)
    for (int j = 0; j < nc; ++j) y[i * ldy + j] = out[j][2 * i];
}

}  // namespace

SDLLM_AVX512_VNNI void vnni512_q8_pack_x(const int8_t* xq, const float* xs, int64_t m, int64_t k, int64_t kp, int8_t* xp, float* xsp) {
  const int64_t groups = q8_groups(k);
  for (int64_t i0 = 0, t = 0; i0 < m; i0 += kRows, ++t) {
    const int8_t* rows[kRows];
    const float* srow[kRows];
    for (int r = 0; r < kRows; ++r) {
      const int64_t i = min64(i0 + r, m - 1);  // a partial tile repeats its last row
      rows[r] = xq + i * kp;
      srow[r] = xs + i * groups;
    }
    int8_t* dst = xp + t * groups * 256;
    float* sd = xsp + t * groups * 16;
    for (int64_t g = 0; g < groups; ++g) {
      for (int v = 0; v < 4; ++v)
        for (int r = 0; r < kRows; ++r) {
          uint64_t b;
          std::memcpy(&b, rows[r] + g * 32 + 8 * v, 8);
          b ^= 0x8080808080808080ull;  // +128: unsigned bytes for dpbusd
          std::memcpy(dst + g * 256 + 64 * v + 8 * r, &b, 8);
        }
      for (int r = 0; r < kRows; ++r) sd[g * 16 + 2 * r] = sd[g * 16 + 2 * r + 1] = srow[r][g];
    }
  }
}

SDLLM_AVX512_VNNI void vnni512_q8_gemm_rows(const int8_t* xp, const float* xsp, int64_t m, int64_t k, const WeightView& w, int64_t n0,
                          int64_t n1, float* y, int64_t ldy) {
  const int64_t n = ldy, groups = q8_groups(k), full = k / kQ8Group;
  const bool tail = full < groups;
  const int8_t* wq = static_cast<const int8_t*>(w.data);
  const Q8PanelPrep prep = vnni_q8_panel_prep(w, n0, n1, k);
  for (int64_t j0 = n0; j0 < n1; j0 += kCols) {
    const int nc = static_cast<int>(min64(kCols, n1 - j0));
    const int8_t* wr[kCols];
    const float* wsr[kCols];
    const int64_t* ir[kCols];
    alignas(32) int8_t tails[kCols][32];
    for (int jj = 0; jj < kCols; ++jj) {
      const int64_t r = min64(n1 - 1, j0 + jj) - n0;  // a partial tile repeats its last row
      wr[jj] = wq + (n0 + r) * k;
      wsr[jj] = w.scales + (n0 + r) * groups;
      ir[jj] = prep.init + r * groups;
      if (tail) std::memcpy(tails[jj], prep.tails + r * 32, 32);
    }
    // The weight tile's 4 rows stay in L1 while every x tile passes over them.
    for (int64_t i0 = 0, t = 0; i0 < m; i0 += kRows, ++t) {
      const int nr = static_cast<int>(min64(kRows, m - i0));
      tile8x4(xp + t * groups * 256, xsp + t * groups * 16, wr, wsr, ir, full, tail, tail ? tails : nullptr,
              y + i0 * n + j0, n, nr, nc);
    }
  }
}

SDLLM_AVX512_WARNINGS_END

#else

bool q8_vnni512_available() { return false; }
void vnni512_q8_pack_x(const int8_t*, const float*, int64_t, int64_t, int64_t, int8_t*, float*) {}
void vnni512_q8_gemm_rows(const int8_t*, const float*, int64_t, int64_t, const WeightView&, int64_t, int64_t, float*, int64_t) {}

#endif

}  // namespace kernels
}  // namespace sdllm
