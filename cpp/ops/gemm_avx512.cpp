// The F32/BF16/F16 GEMM with AVX-512 (op_gemm when use_avx512()): the AVX2 tile's
// arithmetic, two of its 8-lane accumulators per zmm register.
//
// Why it exists: on CPUs with full-width 512-bit FMA units (Zen 5, Intel server cores)
// the AVX2 tile can reach only half of the FMA peak. Why it looks like this: the AVX2
// kernel (gemm_avx2.cpp) fixes every output's order of operations: lane l of an 8-lane
// accumulator sums x[p] w[p] for p = l mod 8 over one K block of kDepth, FMA after FMA;
// the 8 lanes are then reduced by the tree ((v0+v4)+(v2+v6)) + ((v1+v5)+(v3+v7)), and
// the K blocks' sums are added in order. Here a zmm holds the accumulators of two weight
// rows side by side (lanes 0-7: row j, 8-15: row j+1); the x chunk is broadcast to both
// halves, so each half performs exactly the AVX2 lane sequence, and the reduction runs the
// same tree in each half (IEEE addition is commutative, so a + b and b + a are equal).
// The outputs are therefore bit-identical to the AVX2 path for any m, n, k, dtype and
// tiling (test_ops checks it), and the token-exact tests do not depend on the ISA.
//
// Layout: per K block the panel of weight rows is widened (BF16/F16) or copied (F32) into
// pairs: pair q, chunk c holds 16 floats [w[2q][8c..8c+8) | w[2q+1][8c..8c+8)], zero past
// the row end and for a missing odd row. A 6 x-row by 4-pair tile keeps 24 accumulators;
// per 8 K-values it does 4 panel loads, 6 x broadcasts and 24 FMAs of 16 lanes.
#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "avx512_target.h"
#include "kernels.h"

namespace sdllm {
namespace kernels {

namespace {

// The thread's panel buffer, 64-byte aligned so every panel load is one cache line.
// Outside the AVX-512 region: code the compiler instantiates from library templates
// (std::vector here) must not be built for AVX-512, or the linker may keep that copy
// for the whole program and an AVX2-only CPU would fault in it.
float* panel_buffer(int64_t floats) {
  thread_local std::vector<float> buf;
  buf.resize(static_cast<size_t>(floats + 16));
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t{63});
}

}  // namespace

// Only the functions marked SDLLM_AVX512 (avx512_target.h) are compiled for AVX-512.
SDLLM_AVX512_WARNINGS_BEGIN

namespace {

SDLLM_AVX512 inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

constexpr int64_t kDepth = 1024;  // must equal gemm_avx2.cpp's K block: it fixes the sums' order
constexpr int kRows = 6;          // x rows per tile
constexpr int kPairs = 4;         // weight-row pairs per tile
// x rows of one K block kept in L2 while every weight tile of the panel passes over them
// (L2 is 1 MB a core on Zen 4/5, 1-2 MB on Intel server cores; the panel needs up to
// 48 rows x 1024 x 4 B = 192 KB beside it).
constexpr int64_t kRowBlockBytes = 384 * 1024;

SDLLM_AVX512 inline __mmask16 lanes(int64_t rem) { return static_cast<__mmask16>((1u << rem) - 1); }  // 0 < rem <= 8

// 8 weight elements of one row as floats; `rem` (1..8) of them valid, 8 = an unmasked load.
template <DType T>
SDLLM_AVX512 inline __m256 load_row8(const void* base, int64_t at, int64_t rem) {
  const __mmask8 m = static_cast<__mmask8>(lanes(rem));
  if (T == DType::F32) {
    const float* p = static_cast<const float*>(base) + at;
    return rem == 8 ? _mm256_loadu_ps(p) : _mm256_maskz_loadu_ps(m, p);
  }
  const uint16_t* p = static_cast<const uint16_t*>(base) + at;
  const __m128i h = rem == 8 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)) : _mm_maskz_loadu_epi16(m, p);
  if (T == DType::F16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// Writes weight rows [j0, j1) x [k0, k0 + kb) as pairs into `out` (pair stride `chunks` * 16).
template <DType T>
SDLLM_AVX512 void pack_pairs_t(const WeightView& w, int64_t j0, int64_t j1, int64_t k0, int64_t kb, int64_t chunks, float* out) {
  const int64_t k = w.cols, full = kb / 8;
  for (int64_t j = j0, q = 0; j < j1; j += 2, ++q) {
    float* dst = out + q * chunks * 16;
    const int64_t a = j * k + k0, b = (j + 1) * k + k0;
    if (j + 1 < j1) {
      for (int64_t c = 0; c < full; ++c)
        _mm512_storeu_ps(dst + c * 16, _mm512_insertf32x8(_mm512_zextps256_ps512(load_row8<T>(w.data, a + 8 * c, 8)),
                                                          load_row8<T>(w.data, b + 8 * c, 8), 1));
      if (full < chunks)
        _mm512_storeu_ps(dst + full * 16,
                         _mm512_insertf32x8(_mm512_zextps256_ps512(load_row8<T>(w.data, a + 8 * full, kb - 8 * full)),
                                            load_row8<T>(w.data, b + 8 * full, kb - 8 * full), 1));
    } else {  // a missing odd row: zeros in the upper half
      for (int64_t c = 0; c < chunks; ++c)
        _mm512_storeu_ps(dst + c * 16,
                         _mm512_zextps256_ps512(load_row8<T>(w.data, a + 8 * c, c < full ? 8 : kb - 8 * full)));
    }
  }
}

SDLLM_AVX512 void pack_pairs(const WeightView& w, int64_t j0, int64_t j1, int64_t k0, int64_t kb, int64_t chunks, float* out) {
  if (w.dtype == DType::BF16) return pack_pairs_t<DType::BF16>(w, j0, j1, k0, kb, chunks, out);
  if (w.dtype == DType::F16) return pack_pairs_t<DType::F16>(w, j0, j1, k0, kb, chunks, out);
  return pack_pairs_t<DType::F32>(w, j0, j1, k0, kb, chunks, out);
}

// The AVX2 hsum tree in both halves at once: lane 0 gets half 0's sum, lane 8 half 1's.
SDLLM_AVX512 inline __m512 hsum_halves(__m512 v) {
  __m512 t = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));  // v_l + v_{l+4}
  t = _mm512_add_ps(t, _mm512_permute_ps(t, _MM_SHUFFLE(1, 0, 3, 2)));              // t_l + t_{l+2}
  return _mm512_add_ps(t, _mm512_movehdup_ps(t));                                     // t_0 + t_1
}

// y[i, 2q + h] (+)= sum_p x[i, p] w[2q + h, p] for i < MR, q < NP, 2q + h < cols.
template <int MR, int NP>
SDLLM_AVX512 void tile(const float* x, int64_t ldx, const float* wp, int64_t ldp, int64_t kb, float* y, int64_t ldy,
          int64_t cols, bool accumulate) {
  __m512 c[MR][NP];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NP; ++j) c[i][j] = _mm512_setzero_ps();
  const int64_t full = kb / 8;
  for (int64_t ch = 0; ch < full; ++ch) {
    __m512 b[NP];
    for (int j = 0; j < NP; ++j) b[j] = _mm512_loadu_ps(wp + j * ldp + ch * 16);
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_broadcast_f32x8(_mm256_loadu_ps(x + i * ldx + ch * 8));
      for (int j = 0; j < NP; ++j) c[i][j] = _mm512_fmadd_ps(a, b[j], c[i][j]);
    }
  }
  if (full * 8 < kb) {  // the AVX2 tile's masked tail: absent lanes are 0 * 0
    const __mmask8 m = static_cast<__mmask8>(lanes(kb - full * 8));
    __m512 b[NP];
    for (int j = 0; j < NP; ++j) b[j] = _mm512_loadu_ps(wp + j * ldp + full * 16);
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_broadcast_f32x8(_mm256_maskz_loadu_ps(m, x + i * ldx + full * 8));
      for (int j = 0; j < NP; ++j) c[i][j] = _mm512_fmadd_ps(a, b[j], c[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NP; ++j) {
      const __m512 s = hsum_halves(c[i][j]);
      const float half[2] = {_mm512_cvtss_f32(s), _mm_cvtss_f32(_mm512_extractf32x4_ps(s, 2))};
      for (int h = 0; h < 2 && 2 * j + h < cols; ++h) {
        float& out = y[i * ldy + 2 * j + h];
        out = accumulate ? out + half[h] : half[h];
      }
    }
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t, int64_t, bool);

template <int MR>
constexpr TileFn row_of(int np) {
  return np == 1 ? tile<MR, 1> : np == 2 ? tile<MR, 2> : np == 3 ? tile<MR, 3> : tile<MR, 4>;
}

const TileFn kTiles[kRows][kPairs] = {
    {row_of<1>(1), row_of<1>(2), row_of<1>(3), row_of<1>(4)},
    {row_of<2>(1), row_of<2>(2), row_of<2>(3), row_of<2>(4)},
    {row_of<3>(1), row_of<3>(2), row_of<3>(3), row_of<3>(4)},
    {row_of<4>(1), row_of<4>(2), row_of<4>(3), row_of<4>(4)},
    {row_of<5>(1), row_of<5>(2), row_of<5>(3), row_of<5>(4)},
    {row_of<6>(1), row_of<6>(2), row_of<6>(3), row_of<6>(4)},
};

}  // namespace

SDLLM_AVX512 void avx512_gemm_rows(const float* x, int64_t m, int64_t k, const WeightView& w, int64_t n0, int64_t n1,
                      float* y, int64_t ldy) {
  const int64_t n = w.rows;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = n0; j < n1; ++j) y[i * ldy + j] = 0.f;
    return;
  }
  const int64_t pairs = (n1 - n0 + 1) / 2;
  const int64_t max_chunks = (min64(kDepth, k) + 7) / 8;
  float* panel = panel_buffer(pairs * max_chunks * 16);
  for (int64_t k0 = 0; k0 < k; k0 += kDepth) {
    const int64_t kb = min64(kDepth, k - k0);
    const int64_t chunks = (kb + 7) / 8, ldp = chunks * 16;
    pack_pairs(w, n0, n1, k0, kb, chunks, panel);
    // While this block computes, pull the weights packed next into L2: the next K block of
    // these rows, or the first block of the rows after them (this thread's next panel, as
    // op_gemm hands each thread consecutive panels). Without it the packing waits on DRAM
    // for every line (a third of a forward's time at d_model 512).
    const char* next;
    int64_t next_rows, next_bytes;
    const int64_t es = w.dtype == DType::F32 ? 4 : 2;
    if (k0 + kDepth < k) {
      next = static_cast<const char*>(w.data) + (n0 * k + k0 + kDepth) * es;
      next_rows = n1 - n0;
      next_bytes = min64(kDepth, k - k0 - kDepth) * es;
    } else {
      next = static_cast<const char*>(w.data) + n1 * k * es;
      next_rows = min64(n1 - n0, n - n1);
      next_bytes = min64(kDepth, k) * es;
    }
    const int64_t row_lines = (next_bytes + 63) / 64, lines = next_rows * row_lines;
    // Spread over the tiles, a few lines each: bursts would fill the miss buffers and stall.
    const int64_t tiles = ((m + kRows - 1) / kRows) * ((pairs + kPairs - 1) / kPairs);
    const int64_t per_tile = (lines + tiles - 1) / tiles;
    int64_t pf_row = 0, pf_line = 0;  // the next line to prefetch, without divisions
    // Weight tiles outside, x tiles inside: a weight tile (8 rows of the block) stays in L1
    // while the x rows stream past it from L2, once per weight tile. The rows go in blocks
    // of at most kRowBlockBytes of x: a batch of sequences (or a long prefill) has more x
    // than L2 holds, and every weight tile would then stream all of it from L3 again.
    const int64_t fit = kRowBlockBytes / (kb * 4) / kRows * kRows, row_block = fit > kRows ? fit : kRows;
    for (int64_t m0 = 0; m0 < m; m0 += row_block) {
      const int64_t m1 = min64(m, m0 + row_block);
      for (int64_t q0 = 0; q0 < pairs; q0 += kPairs) {
        const int64_t np = min64(kPairs, pairs - q0);
        const int64_t j0 = n0 + 2 * q0;
        for (int64_t i0 = m0; i0 < m1; i0 += kRows) {
          const int64_t mr = min64(kRows, m1 - i0);
          for (int64_t t = 0; t < per_tile && pf_row < next_rows; ++t) {
            _mm_prefetch(next + pf_row * k * es + pf_line * 64, _MM_HINT_T1);
            if (++pf_line == row_lines) pf_line = 0, ++pf_row;
          }
          kTiles[mr - 1][np - 1](x + i0 * k + k0, k, panel + q0 * ldp, ldp, kb, y + i0 * ldy + j0, ldy, n1 - j0,
                                 k0 > 0);
        }
      }
    }
  }
}

SDLLM_AVX512_WARNINGS_END

}  // namespace kernels
}  // namespace sdllm
