// The Q8_0 GEMM with 512-bit VNNI (vpdpbusd on zmm), used when use_avx512() and the CPU
// reports AVX512-VNNI (Ice Lake, Zen 4 and later).
//
// Why this layout: a vector lane is one output column (one weight row), so a lane
// accumulates a whole group's 32 products in 8 dpbusd and the float part (convert, scale,
// FMA) is done once per output and group, on 16 outputs at a time, with no horizontal
// sums. (The AVX-VNNI tile of gemm_q8_vnni_avx2.cpp spreads a group over 2 lanes and
// needs a shuffle and an add per output and group: at 512 bits its float and shuffle work
// had been as many instructions as its dpbusd.)
//
// dpbusd multiplies unsigned bytes (a register) by signed bytes (here a 4-byte broadcast
// from memory, the `{1to16}` operand) and adds each 4 products to an int32 lane. So:
// - the weights are the unsigned side: per call, each 16-row block of the panel is packed
//   per group into 8 vectors, vector q holding bytes [4q, 4q + 4) of the 16 rows, biased by
//   +128 (w ^ 0x80), with the 16 rows' scales of the group behind them (pack_block);
// - the activations stay the quantizer's signed rows; the bias adds 128 * sum(x) of the
//   group to every lane, so each sum starts at -128 * sum(x) (vnni512_q8_x_offsets).
// Each output thus gets the exact int32 group sum, then acc = fma(float(sum), x_scale *
// w_scale, acc) group after group from acc = 0: the arithmetic of the AVX2 and AVX-VNNI
// tiles, so the floats are theirs bit for bit (test_ops), for any m and any tiling.
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <vector>

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

namespace {

// The thread's buffer of packed weight blocks. Outside the AVX-512 region: code the
// compiler instantiates from library templates (std::vector) must not be built for
// AVX-512, or the linker may keep that copy for the whole program (gemm_avx512.cpp).
uint8_t* pack_buffer(int64_t bytes) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < static_cast<size_t>(bytes)) buf.resize(static_cast<size_t>(bytes));
  return buf.data();
}

}  // namespace

// Only the functions marked SDLLM_AVX512_VNNI (avx512_target.h) are built for AVX-512.
SDLLM_AVX512_WARNINGS_BEGIN

namespace {

// A packed 16-row block, per group: 8 vectors of 64 bytes, then 16 float scales.
constexpr int64_t kBlockCols = 16, kGroupBytes = 8 * 64 + 16 * 4;
// The tile: up to kRows activation rows against kPair packed blocks (32 columns).
constexpr int kRows = 4, kPair = 2;

SDLLM_AVX512_VNNI inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Row r of a 16-row block (src: its group in row 0) as unsigned bytes (w ^ 0x80), the
// bytes of a short last group and the rows past nr zero (0x80).
SDLLM_AVX512_VNNI inline __m256i biased_row(const int8_t* src, int64_t k, int r, int64_t nr, __mmask32 lm) {
  const __m256i bias = _mm256_set1_epi8(-128);
  if (r >= nr) return bias;
  return _mm256_xor_si256(_mm256_maskz_loadu_epi8(lm, src + r * k), bias);
}

// Packs weight rows [r0, r0 + nr) (nr <= 16; missing rows are zero) of every group into
// `out` (groups * kGroupBytes). The 16 x 8 dword transpose of a group: A_i holds rows i
// and i + 4 (i < 4) or rows i + 4 and i + 8 (i >= 4) as its two 256-bit halves; two
// unpack rounds transpose each 128-bit lane's 4 x 4 dwords, and one lane shuffle per
// output vector puts rows 0..15 in lane order.
SDLLM_AVX512_VNNI void pack_block(const int8_t* wq, const float* wscales, int64_t k, int64_t groups, int64_t r0,
                                  int64_t nr, uint8_t* out) {
  const int64_t full = k / kQ8Group;
  static const int kRowOf[8][2] = {{0, 4}, {1, 5}, {2, 6}, {3, 7}, {8, 12}, {9, 13}, {10, 14}, {11, 15}};
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t len = g < full ? kQ8Group : k - full * kQ8Group;
    const __mmask32 lm = len == kQ8Group ? ~__mmask32(0) : (__mmask32(1) << len) - 1;
    const int8_t* src = wq + r0 * k + g * kQ8Group;
    __m512i a[8];
    for (int i = 0; i < 8; ++i)
      a[i] = _mm512_inserti64x4(_mm512_castsi256_si512(biased_row(src, k, kRowOf[i][0], nr, lm)),
                                biased_row(src, k, kRowOf[i][1], nr, lm), 1);
    __m512i t[8], u[8];
    for (int h = 0; h < 2; ++h) {  // rows of a[4h .. 4h + 3]
      __m512i* s = a + 4 * h;
      t[4 * h + 0] = _mm512_unpacklo_epi32(s[0], s[1]);
      t[4 * h + 1] = _mm512_unpackhi_epi32(s[0], s[1]);
      t[4 * h + 2] = _mm512_unpacklo_epi32(s[2], s[3]);
      t[4 * h + 3] = _mm512_unpackhi_epi32(s[2], s[3]);
      u[4 * h + 0] = _mm512_unpacklo_epi64(t[4 * h + 0], t[4 * h + 2]);  // dwords 0 (lanes 0, 2) and 4 (lanes 1, 3)
      u[4 * h + 1] = _mm512_unpackhi_epi64(t[4 * h + 0], t[4 * h + 2]);  // 1 and 5
      u[4 * h + 2] = _mm512_unpacklo_epi64(t[4 * h + 1], t[4 * h + 3]);  // 2 and 6
      u[4 * h + 3] = _mm512_unpackhi_epi64(t[4 * h + 1], t[4 * h + 3]);  // 3 and 7
    }
    uint8_t* dst = out + g * kGroupBytes;
    for (int q = 0; q < 4; ++q) {
      // Lanes 0 and 2 of u[q] and u[4 + q] hold dword q of rows 0-3, 4-7 and 8-11, 12-15;
      // lanes 1 and 3 dword q + 4.
      const __m512i lo = _mm512_shuffle_i32x4(u[q], u[4 + q], _MM_SHUFFLE(2, 0, 2, 0));
      const __m512i hi = _mm512_shuffle_i32x4(u[q], u[4 + q], _MM_SHUFFLE(3, 1, 3, 1));
      _mm512_storeu_si512(dst + 64 * q, lo);
      _mm512_storeu_si512(dst + 64 * (q + 4), hi);
    }
    float* sc = reinterpret_cast<float*>(dst + 8 * 64);
    for (int r = 0; r < kBlockCols; ++r) sc[r] = r < nr ? wscales[(r0 + r) * groups + g] : 0.f;
  }
}

// Output I = (r, c) of a tile: columns [0, nc) of block c of row r, then the outputs after
// it, one per template instance: with a loop here GCC kept the accumulators in a stack
// array, zeroed there and copied back around the tile's group loop.
template <int R, int C, int I>
SDLLM_AVX512_VNNI inline void store_cols(const __m512 (&acc)[R][C], float* y, int64_t ldy, int nc) {
  if constexpr (I < R * C) {
    constexpr int r = I / C, c = I % C;
    const int left = nc - c * static_cast<int>(kBlockCols);
    if (left > 0) {
      const __mmask16 mask = left >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << left) - 1);
      _mm512_mask_storeu_ps(y + r * ldy + c * kBlockCols, mask, acc[r][c]);
    }
    store_cols<R, C, I + 1>(acc, y, ldy, nc);
  }
}

// R activation rows (row r at x + r * kp, scales xs + r * groups, offsets xo + r * groups)
// against C packed blocks (block c at blk + c * block_bytes). Stores rows [0, R) and
// columns [0, nc) of the R x 16C result at y (row stride ldy).
template <int R, int C>
SDLLM_AVX512_VNNI void tile(const int8_t* x, int64_t kp, const float* xs, const int32_t* xo, int64_t groups,
                            const uint8_t* blk, int64_t block_bytes, float* y, int64_t ldy, int nc) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    __m512i s[R][C];
    for (int r = 0; r < R; ++r) {
      const __m512i o = _mm512_set1_epi32(xo[r * groups + g]);
      for (int c = 0; c < C; ++c) s[r][c] = o;
    }
    const uint8_t* wg = blk + g * kGroupBytes;
    for (int q = 0; q < 8; ++q) {
      __m512i wv[C];
      for (int c = 0; c < C; ++c) wv[c] = _mm512_loadu_si512(wg + c * block_bytes + 64 * q);
      for (int r = 0; r < R; ++r) {
        int32_t xb;
        std::memcpy(&xb, x + r * kp + g * kQ8Group + 4 * q, 4);
        const __m512i xv = _mm512_set1_epi32(xb);
        for (int c = 0; c < C; ++c) s[r][c] = _mm512_dpbusd_epi32(s[r][c], wv[c], xv);
      }
    }
    __m512 ws[C];
    for (int c = 0; c < C; ++c) ws[c] = _mm512_loadu_ps(reinterpret_cast<const float*>(wg + c * block_bytes + 8 * 64));
    for (int r = 0; r < R; ++r) {
      const __m512 xsv = _mm512_set1_ps(xs[r * groups + g]);
      for (int c = 0; c < C; ++c)
        acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r][c]), _mm512_mul_ps(xsv, ws[c]), acc[r][c]);
    }
  }
  store_cols<R, C, 0>(acc, y, ldy, nc);
}

template <int C>
SDLLM_AVX512_VNNI void tiles_over_rows(const int8_t* xq, int64_t kp, const float* xs, const int32_t* xo, int64_t m,
                                       int64_t groups, const uint8_t* blk, int64_t block_bytes, float* y, int64_t ldy,
                                       int nc) {
  int64_t i = 0;
  for (; i + kRows <= m; i += kRows)
    tile<kRows, C>(xq + i * kp, kp, xs + i * groups, xo + i * groups, groups, blk, block_bytes, y + i * ldy, ldy, nc);
  const int64_t left = m - i;
  const int8_t* xr = xq + i * kp;
  const float* sr = xs + i * groups;
  const int32_t* orr = xo + i * groups;
  if (left == 3) tile<3, C>(xr, kp, sr, orr, groups, blk, block_bytes, y + i * ldy, ldy, nc);
  if (left == 2) tile<2, C>(xr, kp, sr, orr, groups, blk, block_bytes, y + i * ldy, ldy, nc);
  if (left == 1) tile<1, C>(xr, kp, sr, orr, groups, blk, block_bytes, y + i * ldy, ldy, nc);
}

}  // namespace

SDLLM_AVX512_VNNI void vnni512_q8_x_offsets(const int8_t* xq, int64_t m, int64_t kp, int64_t groups, int32_t* xo) {
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t g = 0; g < groups; ++g) {
      // sum of 32 signed bytes: psadbw of the +128-biased bytes, less 32 * 128.
      const __m256i b = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + i * kp + g * kQ8Group)),
                                         _mm256_set1_epi8(-128));
      const __m256i sad = _mm256_sad_epu8(b, zero);
      const __m128i h = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
      const int64_t sum = _mm_cvtsi128_si64(h) + _mm_extract_epi64(h, 1) - 32 * 128;
      xo[i * groups + g] = static_cast<int32_t>(-128 * sum);
    }
}

SDLLM_AVX512_VNNI void vnni512_q8_gemm_rows(const int8_t* xq, const float* xs, const int32_t* xo, int64_t m, int64_t k,
                                            int64_t kp, const WeightView& w, int64_t n0, int64_t n1, float* y,
                                            int64_t ldy) {
  const int64_t groups = q8_groups(k), block_bytes = groups * kGroupBytes;
  const int8_t* wq = static_cast<const int8_t*>(w.data);
  // One pair of packed blocks at a time: it stays in L2 while every row tile passes.
  uint8_t* pk = pack_buffer(kPair * block_bytes);
  for (int64_t j0 = n0; j0 < n1; j0 += kPair * kBlockCols) {
    const int nc = static_cast<int>(min64(kPair * kBlockCols, n1 - j0));
    const int blocks = nc > kBlockCols ? 2 : 1;
    for (int b = 0; b < blocks; ++b)
      pack_block(wq, w.scales, k, groups, j0 + b * kBlockCols, min64(kBlockCols, n1 - j0 - b * kBlockCols),
                 pk + b * block_bytes);
    if (blocks == 2)
      tiles_over_rows<2>(xq, kp, xs, xo, m, groups, pk, block_bytes, y + j0, ldy, nc);
    else
      tiles_over_rows<1>(xq, kp, xs, xo, m, groups, pk, block_bytes, y + j0, ldy, nc);
  }
}

SDLLM_AVX512_WARNINGS_END

#else

bool q8_vnni512_available() { return false; }
void vnni512_q8_x_offsets(const int8_t*, int64_t, int64_t, int64_t, int32_t*) {}
void vnni512_q8_gemm_rows(const int8_t*, const float*, const int32_t*, int64_t, int64_t, int64_t, const WeightView&,
                          int64_t, int64_t, float*, int64_t) {}

#endif

}  // namespace kernels
}  // namespace sdllm
