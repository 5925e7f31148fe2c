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
// per 8 K-values it does 4 panel loads, 6 x broadcasts and 24 FMAs of 16 lanes. Weights
// repacked at load (cpp/repack.cpp) already lie in this layout for the whole weight, or
// for BF16 in its 16-bit twin (two pairs per 64-byte load), and are read in place.
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

// The AVX2 hsum tree ((v0+v4)+(v2+v6)) + ((v1+v5)+(v3+v7)) of every 8-lane half, computed
// for many accumulators at once: each level adds the same lane pairs as the one-register
// tree, with shuffles that gather two accumulators' halves into one register, so each
// output is the same float as before, for an eighth of the instructions (at K = 128 the
// per-accumulator tree was a quarter of the tile's work).
// Level 1, accumulators a and b: quarters [a.h0, a.h1, b.h0, b.h1], lane l = v_l + v_{l+4}.
SDLLM_AVX512 inline __m512 fold_quads(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}
// Level 2, per quarter: [p.t0 + p.t2, p.t1 + p.t3, q.t0 + q.t2, q.t1 + q.t3].
SDLLM_AVX512 inline __m512 fold_pairs(__m512 p, __m512 q) {
  return _mm512_add_ps(_mm512_shuffle_ps(p, q, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(p, q, _MM_SHUFFLE(3, 2, 3, 2)));
}
// Level 3, per quarter: [r.u0 + r.u1, r.u2 + r.u3, s.u0 + s.u1, s.u2 + s.u3].
SDLLM_AVX512 inline __m512 fold_last(__m512 r, __m512 s) {
  return _mm512_add_ps(_mm512_shuffle_ps(r, s, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(r, s, _MM_SHUFFLE(3, 1, 3, 1)));
}

// 8 outputs of one x row into y: y = v, or y + v (the K blocks' sums added in order).
SDLLM_AVX512 inline void put_row(float* y, __m256 v, __mmask8 keep, bool accumulate) {
  if (accumulate) v = _mm256_add_ps(_mm256_maskz_loadu_ps(keep, y), v);
  _mm256_mask_storeu_ps(y, keep, v);
}

// The tile's NP weight vectors of chunk ch. Float32 pairs: one load each. BF16 quads
// (weights repacked at load from BF16): one load gives two pairs, the first in the high
// 16 bits of each 32-bit word and the second in the low 16 (a BF16 value is the top half
// of its float32), so a mask and a shift widen them exactly.
template <int NP, bool kQuads>
SDLLM_AVX512 inline void load_weights(const void* wp, int64_t ldp, int64_t ch, __m512* b) {
  if (!kQuads) {
    const float* f = static_cast<const float*>(wp);
    for (int j = 0; j < NP; ++j) b[j] = _mm512_loadu_ps(f + j * ldp + ch * 16);
    return;
  }
  const uint16_t* h = static_cast<const uint16_t*>(wp);
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  for (int j = 0; j < NP; j += 2) {
    const __m512i v = _mm512_loadu_si512(h + j / 2 * ldp + ch * 32);
    b[j] = _mm512_castsi512_ps(_mm512_and_si512(v, high));
    if (j + 1 < NP) b[j + 1] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  }
}

// Levels 1 and 2 of one x row's NP accumulators (absent pairs zero).
template <int NP>
SDLLM_AVX512 inline __m512 fold_row(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  const __m512 zero = _mm512_setzero_ps();
  return fold_pairs(fold_quads(a0, NP > 1 ? a1 : zero), NP > 2 ? fold_quads(a2, NP > 3 ? a3 : zero) : zero);
}

// Rows I and I + 1 of the tile into y, then the rows after them. Each accumulator is named
// by constant indices (no pointer into c, no loop): with a pointer, GCC kept the tile's
// accumulators in a stack array (see the K loop in tile()).
template <int MR, int NP, int I>
SDLLM_AVX512 inline void store_rows(const __m512 (&c)[MR][NP], float* y, int64_t ldy, __mmask8 keep, bool accumulate) {
  if constexpr (I < MR) {
    constexpr int J = I + 1 < MR ? I + 1 : I;
    const __m512 r0 = fold_row<NP>(c[I][0], c[I][1 % NP], c[I][2 % NP], c[I][3 % NP]);
    const __m512 r1 = I + 1 < MR ? fold_row<NP>(c[J][0], c[J][1 % NP], c[J][2 % NP], c[J][3 % NP]) : _mm512_setzero_ps();
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512 out = _mm512_permutexvar_ps(order, fold_last(r0, r1));
    put_row(y + I * ldy, _mm512_castps512_ps256(out), keep, accumulate);
    if (I + 1 < MR) put_row(y + (I + 1) * ldy, _mm512_extractf32x8_ps(out, 1), keep, accumulate);
    store_rows<MR, NP, I + 2>(c, y, ldy, keep, accumulate);
  }
}

// y[i, 2q + h] (+)= sum_p x[i, p] w[2q + h, p] for i < MR, q < NP, 2q + h < cols.
// ldp: the stride of a pair (float32 layout, in floats) or of a quad (BF16, in uint16s).
// pf, pf_lines: cache lines to pull into L2 meanwhile (the next weight tile), spread over
// the K loop: issued together they filled the miss buffers and stalled the core.
template <int MR, int NP, bool kQuads>
SDLLM_AVX512 void tile(const float* x, int64_t ldx, const void* wp, int64_t ldp, int64_t kb, float* y, int64_t ldy,
          int64_t cols, bool accumulate, const char* pf, int64_t pf_lines) {
  __m512 c[MR][NP];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NP; ++j) c[i][j] = _mm512_setzero_ps();
  const int64_t full = kb / 8, chunks = (kb + 7) / 8;
  const int64_t every = pf_lines > 0 ? (chunks / pf_lines > 1 ? chunks / pf_lines : 1) : 0;
  int64_t countdown = 0;
  // One loop over every chunk; the last one, when K is not a multiple of 8, loads x masked
  // (the AVX2 tile's masked tail: absent lanes are 0 * 0). With the tail as a block of its
  // own after the loop (or with the reduction below reading c through a pointer), GCC kept
  // the accumulators in a stack array: 24 zeroing stores before the loop and 24 stores
  // after it in every 6 x 4 tile, whose whole K loop is 16 chunks at K = 128.
  const __mmask8 tail = full < chunks ? static_cast<__mmask8>(lanes(kb - full * 8)) : static_cast<__mmask8>(0xff);
  for (int64_t ch = 0; ch < chunks; ++ch) {
    if (pf_lines > 0 && --countdown <= 0) {
      _mm_prefetch(pf, _MM_HINT_T1);
      pf += 64;
      --pf_lines;
      countdown = every;
    }
    __m512 b[NP];
    load_weights<NP, kQuads>(wp, ldp, ch, b);
    const __mmask8 xm = ch < full ? static_cast<__mmask8>(0xff) : tail;
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_broadcast_f32x8(_mm256_maskz_loadu_ps(xm, x + i * ldx + ch * 8));
      for (int j = 0; j < NP; ++j) c[i][j] = _mm512_fmadd_ps(a, b[j], c[i][j]);
    }
  }
  for (; pf_lines > 0; --pf_lines, pf += 64) _mm_prefetch(pf, _MM_HINT_T1);  // a K block shorter than the lines
  // Two x rows at a time: rows i and i + 1, pairs 0-3 (absent ones zero, never mixed into
  // a present output's lanes). After the three levels lane 4q + r holds, for r = 0/1 row i's
  // pair q/2 resp. 2 + q/2 (half q % 2), r = 2/3 the same of row i + 1; the permutation puts
  // row i's 8 outputs in order in the low half and row i + 1's in the high half.
  const int64_t present = cols < 2 * NP ? cols : 2 * NP;  // the tile's outputs in y (a missing odd row at the end)
  store_rows<MR, NP, 0>(c, y, ldy, static_cast<__mmask8>((1u << present) - 1), accumulate);
}

using TileFn = void (*)(const float*, int64_t, const void*, int64_t, int64_t, float*, int64_t, int64_t, bool, const char*,
                        int64_t);

template <int MR, bool kQuads>
constexpr TileFn row_of(int np) {
  return np == 1 ? tile<MR, 1, kQuads> : np == 2 ? tile<MR, 2, kQuads> : np == 3 ? tile<MR, 3, kQuads> : tile<MR, 4, kQuads>;
}

template <bool kQuads>
struct Tiles {
  static constexpr TileFn at[kRows][kPairs] = {
      {row_of<1, kQuads>(1), row_of<1, kQuads>(2), row_of<1, kQuads>(3), row_of<1, kQuads>(4)},
      {row_of<2, kQuads>(1), row_of<2, kQuads>(2), row_of<2, kQuads>(3), row_of<2, kQuads>(4)},
      {row_of<3, kQuads>(1), row_of<3, kQuads>(2), row_of<3, kQuads>(3), row_of<3, kQuads>(4)},
      {row_of<4, kQuads>(1), row_of<4, kQuads>(2), row_of<4, kQuads>(3), row_of<4, kQuads>(4)},
      {row_of<5, kQuads>(1), row_of<5, kQuads>(2), row_of<5, kQuads>(3), row_of<5, kQuads>(4)},
      {row_of<6, kQuads>(1), row_of<6, kQuads>(2), row_of<6, kQuads>(3), row_of<6, kQuads>(4)},
  };
};

// 8-column chunks of a row over all K blocks (each block's last chunk zero padded). Not
// marked for AVX-512: the loader and the tests size buffers with it on any CPU.
inline int64_t layout_chunks(int64_t cols) {
  int64_t chunks = 0;
  for (int64_t k0 = 0; k0 < cols; k0 += kDepth) chunks += ((cols - k0 < kDepth ? cols - k0 : kDepth) + 7) / 8;
  return chunks;
}

}  // namespace

// The whole-weight layout: K block by K block (kDepth columns each), and in each all the
// weight's row pairs, pair p at p * chunks * 16 floats; a block starts at
// pairs * k0 * 2 floats (every block before the last has kDepth / 8 chunks).
int64_t avx512_packed_floats(int64_t rows, int64_t cols) { return (rows + 1) / 2 * layout_chunks(cols) * 16; }

SDLLM_AVX512 void avx512_pack_weight(const WeightView& w, int64_t pair0, int64_t pair1, float* out) {
  const int64_t pairs = (w.rows + 1) / 2;
  for (int64_t k0 = 0; k0 < w.cols; k0 += kDepth) {
    const int64_t kb = min64(kDepth, w.cols - k0), chunks = (kb + 7) / 8;
    pack_pairs(w, 2 * pair0, min64(2 * pair1, w.rows), k0, kb, chunks, out + pairs * k0 * 2 + pair0 * chunks * 16);
  }
}

// BF16 weights repacked at load: quads of rows (two pairs) per 64-byte chunk, the first
// pair's BF16 bits in the high halves of the 32-bit words, the second's in the low halves
// (load_weights). Per K block, quad g at g * chunks * 32 uint16s; a block starts at
// quads * k0 * 4. Half the bytes of the float32 layout: a 32-row step streams its weights
// from memory, and at float32 that stream (4 bytes per 64 multiply-adds) was the bound.
int64_t avx512_packed_bf16_halves(int64_t rows, int64_t cols) { return (rows + 3) / 4 * layout_chunks(cols) * 32; }

SDLLM_AVX512 void avx512_pack_weight_bf16(const WeightView& w, int64_t quad0, int64_t quad1, uint16_t* out) {
  const int64_t quads = (w.rows + 3) / 4;
  float* pairs = panel_buffer(2 * (kDepth / 8) * 16);
  for (int64_t k0 = 0; k0 < w.cols; k0 += kDepth) {
    const int64_t kb = min64(kDepth, w.cols - k0), chunks = (kb + 7) / 8;
    for (int64_t g = quad0; g < quad1; ++g) {
      const int64_t r0 = 4 * g, r1 = min64(4 * g + 4, w.rows);
      if (r1 - r0 <= 2)  // no second pair: zeros
        for (int64_t c = 0; c < chunks; ++c) _mm512_storeu_ps(pairs + (chunks + c) * 16, _mm512_setzero_ps());
      pack_pairs_t<DType::BF16>(w, r0, r1, k0, kb, chunks, pairs);
      uint16_t* dst = out + quads * k0 * 4 + g * chunks * 32;
      for (int64_t c = 0; c < chunks; ++c) {
        const __m512i a = _mm512_castps_si512(_mm512_loadu_ps(pairs + c * 16));
        const __m512i b = _mm512_castps_si512(_mm512_loadu_ps(pairs + (chunks + c) * 16));
        _mm512_storeu_si512(dst + c * 32, _mm512_or_si512(a, _mm512_srli_epi32(b, 16)));
      }
    }
  }
}

// The first tile of rows [row0, ...) of K block k0 in a weight repacked at load: BF16 quads
// (row0 a multiple of 4) or float32 pairs (a multiple of 2). The layouts are described above.
SDLLM_AVX512 inline const char* repacked_tile(const WeightView& w, bool quads, int64_t k0, int64_t row0) {
  const int64_t chunks = (min64(kDepth, w.cols - k0) + 7) / 8;
  if (quads) return reinterpret_cast<const char*>(w.packed_bf16 + (w.packed_rows + 3) / 4 * k0 * 4 + row0 / 4 * chunks * 32);
  return reinterpret_cast<const char*>(w.packed + (w.packed_rows + 1) / 2 * k0 * 2 + row0 / 2 * chunks * 16);
}

SDLLM_AVX512 void avx512_gemm_rows(const float* x, int64_t m, int64_t k, const WeightView& w, int64_t n0, int64_t n1,
                      float* y, int64_t ldy) {
  const int64_t n = w.rows;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = n0; j < n1; ++j) y[i * ldy + j] = 0.f;
    return;
  }
  const int64_t pairs = (n1 - n0 + 1) / 2;
  // Repacked at load: the panel is a slice of the whole-weight layout (panels start at rows
  // that are multiples of 8, op_gemm's units), read as it lies: float32 pairs, or BF16 quads.
  const bool quads = w.packed_bf16 != nullptr && n0 % 4 == 0;
  const bool prepacked = quads || (w.packed != nullptr && n0 % 2 == 0);
  const int64_t max_chunks = (min64(kDepth, k) + 7) / 8;
  float* buffer = prepacked ? nullptr : panel_buffer(pairs * max_chunks * 16);
  const TileFn(&tiles_of)[kRows][kPairs] = quads ? Tiles<true>::at : Tiles<false>::at;
  for (int64_t k0 = 0; k0 < k; k0 += kDepth) {
    const int64_t kb = min64(kDepth, k - k0);
    const int64_t chunks = (kb + 7) / 8;
    // ldp: a pair's stride in floats, or a quad's in uint16s; pair_bytes: one pair's bytes.
    const int64_t ldp = quads ? chunks * 32 : chunks * 16, pair_bytes = quads ? chunks * 32 : chunks * 64;
    const char* panel = prepacked ? repacked_tile(w, quads, k0, n0) : reinterpret_cast<const char*>(buffer);
    if (!prepacked) pack_pairs(w, n0, n1, k0, kb, chunks, buffer);
    // Repacked weights: what this panel computes after its last tile of this K block is its
    // first tile of the next block, and after the last block the next panel's first tile of
    // block 0 (op_gemm hands a thread consecutive panels): those are prefetched then.
    const char* after_panel = nullptr;
    if (prepacked && k0 + kDepth < k)
      after_panel = repacked_tile(w, quads, k0 + kDepth, n0);
    else if (prepacked && n1 < n)
      after_panel = repacked_tile(w, quads, 0, n1);
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
    const int64_t row_lines = (next_bytes + 63) / 64, lines = prepacked ? 0 : next_rows * row_lines;
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
        // Repacked weights: pull the next weight tile into L2 across this tile's x tiles, on
        // the first pass over the rows (later passes find it in L2). Within the panel it lies
        // right after this one; after the panel's last tile, see after_panel.
        const char* ahead = q0 + kPairs < pairs ? panel + (q0 + kPairs) * pair_bytes : after_panel;
        const int64_t ahead_lines = prepacked && m0 == 0 && ahead ? kPairs * pair_bytes / 64 : 0;
        // The block's rows in as few tiles as 6-row tiles need, of near-equal heights (32
        // rows: 6, 6, 5, 5, 5, 5 rather than five of 6 and one of 2, whose 8 accumulators
        // cannot hide the FMA latency behind the tile's loads and reduction).
        const int64_t row_tiles = (m1 - m0 + kRows - 1) / kRows, short_rows = (m1 - m0) / row_tiles;
        const int64_t tall_tiles = (m1 - m0) % row_tiles;
        const int64_t ahead_per_tile = (ahead_lines + row_tiles - 1) / row_tiles;
        int64_t ahead_at = 0;
        for (int64_t i0 = m0, r = 0; i0 < m1; i0 += short_rows + (r < tall_tiles ? 1 : 0), ++r) {
          const int64_t mr = short_rows + (r < tall_tiles ? 1 : 0);
          for (int64_t t = 0; t < per_tile && pf_row < next_rows; ++t) {
            _mm_prefetch(next + pf_row * k * es + pf_line * 64, _MM_HINT_T1);
            if (++pf_line == row_lines) pf_line = 0, ++pf_row;
          }
          const int64_t pf_lines = min64(ahead_per_tile, ahead_lines - ahead_at);
          tiles_of[mr - 1][np - 1](x + i0 * k + k0, k, panel + q0 * pair_bytes, ldp, kb, y + i0 * ldy + j0, ldy,
                                   n1 - j0, k0 > 0, ahead + ahead_at * 64, pf_lines);
          ahead_at += pf_lines;
        }
      }
    }
  }
}

SDLLM_AVX512_WARNINGS_END

}  // namespace kernels
}  // namespace sdllm
