// The Q8_0 GEMM with AVX-VNNI (vpdpbusd, 256-bit VEX), used when the CPU reports it.
//
// dpbusd multiplies unsigned by signed bytes and adds groups of 4 products into int32
// lanes, accumulating in place. The activations are repacked per tile of 4 rows and per
// group of 32: vector k (k = 0..3) of a group holds bytes [8k, 8k + 8) of rows 0..3, biased
// by +128 (x ^ 0x80) to make them unsigned; the weight side is a broadcast of the same 8
// bytes of one weight row (vpbroadcastq from memory). Four dpbusd then leave, for each of
// the 4 rows, the group's dot product in two adjacent int32 lanes; one in-lane shuffle and
// add make it whole, and the bias 128 * sum(w) is removed by starting the sum at -that.
// So each output gets the exact int32 group sum, then float(sum) * (x_scale * w_scale)
// accumulated by an FMA, group after group: the arithmetic of the AVX2 tile
// (gemm_q8_tile.h), so both give the same floats, and the same for any m or tiling.
// GCC only: Clang ignores `#pragma GCC target`, so a Clang build takes the maddubs tile.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC target("avxvnni")
#define SDLLM_Q8_VNNI 1
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels.h"

namespace sdllm {
namespace kernels {

#ifdef SDLLM_Q8_VNNI

bool q8_vnni_available() { return __builtin_cpu_supports("avxvnni"); }

void vnni_q8_pack_x(const int8_t* xq, const float* xs, int64_t m, int64_t k, int64_t kp, int8_t* xp, float* xsp) {
  const int64_t groups = q8_groups(k);
  (void)kp;
  for (int64_t i0 = 0, t = 0; i0 < m; i0 += 4, ++t) {
    const int8_t* rows[4];
    const float* srow[4];
    for (int r = 0; r < 4; ++r) {
      const int64_t i = std::min(i0 + r, m - 1);  // a partial tile repeats its last row
      rows[r] = xq + i * kp;
      srow[r] = xs + i * groups;
    }
    int8_t* dst = xp + t * groups * 128;
    float* sd = xsp + t * groups * 8;
    const __m256i bias = _mm256_set1_epi8(-128);
    for (int64_t g = 0; g < groups; ++g) {
      // rows' 32-byte groups as 4 x 4 blocks of 8 bytes; transpose the blocks.
      __m256i v[4];
      for (int r = 0; r < 4; ++r)
        v[r] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[r] + g * 32)), bias);
      alignas(32) int64_t blk[4][4];
      for (int r = 0; r < 4; ++r) _mm256_store_si256(reinterpret_cast<__m256i*>(blk[r]), v[r]);
      int64_t* o = reinterpret_cast<int64_t*>(dst + g * 128);
      for (int kk = 0; kk < 4; ++kk)
        for (int r = 0; r < 4; ++r) o[kk * 4 + r] = blk[r][kk];
      for (int r = 0; r < 4; ++r) sd[g * 8 + 2 * r] = sd[g * 8 + 2 * r + 1] = srow[r][g];
    }
  }
}

namespace {

inline __m256i bq(const int8_t* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return _mm256_set1_epi64x(v);
}

// 128 * (sum of the 32 int8 at p), via psadbw of the biased bytes.
inline int32_t offset_of_group(const int8_t* p) {
  const __m256i b = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), _mm256_set1_epi8(-128));
  const __m256i s = _mm256_sad_epu8(b, _mm256_setzero_si256());
  const __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  const int64_t u = _mm_cvtsi128_si64(t) + _mm_extract_epi64(t, 1);
  return static_cast<int32_t>(128 * (u - 128 * 32));
}

// 4 packed x rows (xp: [group][128 bytes], xsp: [group][8 floats]) against 4 weight rows
// (w[j]: group g at w[j] + 32 g; tails read from wtail[j]), scales ws[j][g], starting
// sums init[j][g] = {-offset, 0} as int64.
void tile4x4(const int8_t* xp, const float* xsp, const int8_t* const* w, const float* const* ws,
             const int64_t* const* init, int64_t full, bool tail, const int8_t (*wtail)[32], float* y, int64_t ldy,
             int nr, int nc) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  auto step = [&](int64_t g, const int8_t* const* src) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + g * 128));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + g * 128 + 32));
    const __m256i x2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + g * 128 + 64));
    const __m256i x3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + g * 128 + 96));
    const __m256 xs = _mm256_loadu_ps(xsp + g * 8);
    for (int j = 0; j < 4; ++j) {
      __m256i s = _mm256_set1_epi64x(init[j][g]);
      s = _mm256_dpbusd_avx_epi32(s, x0, bq(src[j]));
      s = _mm256_dpbusd_avx_epi32(s, x1, bq(src[j] + 8));
      s = _mm256_dpbusd_avx_epi32(s, x2, bq(src[j] + 16));
      s = _mm256_dpbusd_avx_epi32(s, x3, bq(src[j] + 24));
      s = _mm256_add_epi32(s, _mm256_shuffle_epi32(s, 0xB1));  // whole sums in both lanes of a pair
      const __m256 d = _mm256_mul_ps(xs, _mm256_broadcast_ss(ws[j] + g));
      acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), d, acc[j]);
    }
  };
  const int8_t* src[4];
  for (int64_t g = 0; g < full; ++g) {
    for (int j = 0; j < 4; ++j) src[j] = w[j] + g * 32;
    step(g, src);
  }
  if (tail) {
    for (int j = 0; j < 4; ++j) src[j] = wtail[j];
    step(full, src);
  }
  alignas(32) float out[4][8];
  for (int j = 0; j < 4; ++j) _mm256_store_ps(out[j], acc[j]);
  for (int i = 0; i < nr; ++i)
    for (int j = 0; j < nc; ++j) y[i * ldy + j] = out[j][2 * i];
}

}  // namespace

Q8PanelPrep vnni_q8_panel_prep(const WeightView& w, int64_t n0, int64_t n1, int64_t k) {
  const int64_t groups = q8_groups(k), full = k / kQ8Group;
  const bool tail = full < groups;
  const int8_t* wq = static_cast<const int8_t*>(w.data);
  const int64_t rows = n1 - n0;
  thread_local std::vector<int64_t> init_buf;
  thread_local std::vector<int8_t> tail_buf;
  if (init_buf.size() < static_cast<size_t>(rows * groups)) init_buf.resize(static_cast<size_t>(rows * groups));
  if (tail && tail_buf.size() < static_cast<size_t>(rows * 32)) tail_buf.resize(static_cast<size_t>(rows * 32));
  for (int64_t r = 0; r < rows; ++r) {
    const int8_t* wj = wq + (n0 + r) * k;
    int64_t* in = init_buf.data() + r * groups;
    for (int64_t g = 0; g < full; ++g) in[g] = static_cast<int64_t>(static_cast<uint32_t>(-offset_of_group(wj + g * 32)));
    if (tail) {
      int8_t* tb = tail_buf.data() + r * 32;
      std::memset(tb, 0, 32);
      std::memcpy(tb, wj + full * kQ8Group, static_cast<size_t>(k - full * kQ8Group));
      in[full] = static_cast<int64_t>(static_cast<uint32_t>(-offset_of_group(tb)));
    }
  }
  return Q8PanelPrep{init_buf.data(), tail ? tail_buf.data() : nullptr};
}

void vnni_q8_gemm_rows(const int8_t* xp, const float* xsp, int64_t m, int64_t k, const WeightView& w, int64_t n0,
                       int64_t n1, float* y, int64_t ldy) {
  const int64_t n = ldy, groups = q8_groups(k), full = k / kQ8Group;
  const bool tail = full < groups;
  const int8_t* wq = static_cast<const int8_t*>(w.data);
  const Q8PanelPrep prep = vnni_q8_panel_prep(w, n0, n1, k);
  for (int64_t i0 = 0, t = 0; i0 < m; i0 += 4, ++t) {
    const int nr = static_cast<int>(std::min<int64_t>(4, m - i0));
    for (int64_t j0 = n0; j0 < n1; j0 += 4) {
      const int nc = static_cast<int>(std::min<int64_t>(4, n1 - j0));
      const int8_t* wr[4];
      const float* wsr[4];
      const int64_t* ir[4];
      int8_t(*wt)[32] = nullptr;
      alignas(32) int8_t tails[4][32];
      for (int jj = 0; jj < 4; ++jj) {
        const int64_t r = std::min(n1 - 1, j0 + jj) - n0;  // a partial tile repeats its last row
        wr[jj] = wq + (n0 + r) * k;
        wsr[jj] = w.scales + (n0 + r) * groups;
        ir[jj] = prep.init + r * groups;
        if (tail) std::memcpy(tails[jj], prep.tails + r * 32, 32);
      }
      if (tail) wt = tails;
      tile4x4(xp + t * groups * 128, xsp + t * groups * 8, wr, wsr, ir, full, tail, wt, y + i0 * n + j0, n, nr, nc);
    }
  }
}

#else

bool q8_vnni_available() { return false; }
void vnni_q8_pack_x(const int8_t*, const float*, int64_t, int64_t, int64_t, int8_t*, float*) {}
void vnni_q8_gemm_rows(const int8_t*, const float*, int64_t, int64_t, const WeightView&, int64_t, int64_t, float*, int64_t) {}
Q8PanelPrep vnni_q8_panel_prep(const WeightView&, int64_t, int64_t, int64_t) { return {}; }

#endif

}  // namespace kernels
}  // namespace sdllm
