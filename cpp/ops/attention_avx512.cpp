// The inner tiles of the AVX2 attention (attention_avx2.cpp) in 16-lane registers and for
// micro-tiles of up to 8 query rows, used when use_avx512(). Each keeps one output per
// lane with a sequential sum, so neither the vector width nor the tile changes any float:
//   scores: s[r][j] = sum over c of q[r][c] * kt[c][j], keys j in lanes, c in order;
//   softmax: each row's block max, rescale and numerators e = exp(s - max) with
//   vexp_avx2.h's polynomial, op for op, the row sum accumulated 8 lanes at a time in the
//   AVX2 loop's order (chunk j, then j + 8); the rows' chains interleaved;
//   values: acc[r][c] += p[r][j] * v[j][c] for j in order, columns c in lanes.
// A head_dim that is not a multiple of 16 leaves a tail of value columns to the AVX2
// tiles, which do the same per-lane arithmetic. test_ops checks the AVX-512 attention
// against the AVX2 one bit for bit.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels.h"
#include "vexp_avx512.h"

#include "avx512_target.h"

SDLLM_AVX512_WARNINGS_BEGIN

namespace sdllm {
namespace kernels {

namespace {

// A tile's registers from / to rows of memory (row i at m + i * ld, 16 * NV floats), one
// element per template instance: with loops here GCC kept the accumulators in a stack
// array, zeroed or loaded there and copied back around the tile's main loop.
template <int MR, int NV, int I>
SDLLM_AVX512 inline void load_tile(__m512 (&t)[MR][NV], const float* m, int64_t ld) {
  if constexpr (I < MR * NV) {
    t[I / NV][I % NV] = _mm512_loadu_ps(m + (I / NV) * ld + 16 * (I % NV));
    load_tile<MR, NV, I + 1>(t, m, ld);
  }
}

template <int MR, int NV, int I>
SDLLM_AVX512 inline void store_tile(const __m512 (&t)[MR][NV], float* m, int64_t ld) {
  if constexpr (I < MR * NV) {
    _mm512_storeu_ps(m + (I / NV) * ld + 16 * (I % NV), t[I / NV][I % NV]);
    store_tile<MR, NV, I + 1>(t, m, ld);
  }
}

// s[r][0 .. 16*NV) = sum_c q[r][c] * kt[c][0 .. 16*NV) for MR rows; of the last vector
// only the lanes in `last` are stored (the lanes past it read Kt columns that are not keys).
template <int MR, int NV>
SDLLM_AVX512 inline void qk_tile16(const float* q, int64_t hd, const float* kt, int64_t ldk, float* s, int64_t lds,
                                   __mmask16 last = 0xffff) {
  __m512 acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t c = 0; c < hd; ++c) {
    __m512 k[NV];
    for (int v = 0; v < NV; ++v) k[v] = _mm512_loadu_ps(kt + c * ldk + 16 * v);
    for (int r = 0; r < MR; ++r) {
      const __m512 qb = _mm512_set1_ps(q[r * hd + c]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(qb, k[v], acc[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int v = 0; v + 1 < NV; ++v) _mm512_storeu_ps(s + r * lds + 16 * v, acc[r][v]);
    _mm512_mask_storeu_ps(s + r * lds + 16 * (NV - 1), last, acc[r][NV - 1]);
  }
}

// acc[r][0 .. 16*NV) += sum_j p[r][j] * v[j][0 .. 16*NV) for MR rows.
template <int MR, int NV>
SDLLM_AVX512 inline void pv_tile16(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t nb, float* acc,
                                   int64_t lda) {
  __m512 a[MR][NV];
  load_tile<MR, NV, 0>(a, acc, lda);
  for (int64_t j = 0; j < nb; ++j) {
    __m512 x[NV];
    for (int u = 0; u < NV; ++u) x[u] = _mm512_loadu_ps(v + j * ldv + 16 * u);
    for (int r = 0; r < MR; ++r) {
      const __m512 pb = _mm512_set1_ps(p[r * ldp + j]);
      for (int u = 0; u < NV; ++u) a[r][u] = _mm512_fmadd_ps(pb, x[u], a[r][u]);
    }
  }
  store_tile<MR, NV, 0>(a, acc, lda);
}

// All nbp scores (a multiple of 8, at most ldk): 32 keys a tile while more than 48 are
// left, then one tile of 1-3 vectors for the rest, its last vector stored in part. (With
// the rest in a 16-key tile of 4 accumulators and an AVX2 tile of 8 keys, as before, both
// waited on the FMA latency: a fifth of the attention at the shipped model's 22 + 76 keys.)
// Every lane's sum is the same sequence of FMAs whatever the tile, so the same floats.
template <int MR>
SDLLM_AVX512 int64_t qk16(const float* q, int64_t hd, const float* kt, int64_t ldk, int64_t nbp, float* s,
                          int64_t lds) {
  int64_t j = 0;
  for (; nbp - j > 48; j += 32) qk_tile16<MR, 2>(q, hd, kt + j, ldk, s + j, lds);
  const int64_t rest = nbp - j;
  if (rest <= 0) return j;
  const int64_t in_last = rest - (rest - 1) / 16 * 16;  // 8 or 16
  const __mmask16 last = static_cast<__mmask16>((1u << in_last) - 1);
  if (rest > 32)
    qk_tile16<MR, 3>(q, hd, kt + j, ldk, s + j, lds, last);
  else if (rest > 16)
    qk_tile16<MR, 2>(q, hd, kt + j, ldk, s + j, lds, last);
  else
    qk_tile16<MR, 1>(q, hd, kt + j, ldk, s + j, lds, last);
  return nbp;
}

template <int MR>
SDLLM_AVX512 int64_t pv16(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t nb, int64_t hd,
                          float* acc, int64_t lda) {
  int64_t c = 0;
  for (; c + 32 <= hd; c += 32) pv_tile16<MR, 2>(p, ldp, v + c, ldv, nb, acc + c, lda);
  if (c + 16 <= hd) {
    pv_tile16<MR, 1>(p, ldp, v + c, ldv, nb, acc + c, lda);
    c += 16;
  }
  return c;
}

// hmax / hsum of attention_avx2.cpp: the same instructions, so the same float (max of a
// NaN lane included).
SDLLM_AVX512 inline float hmax8(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_shuffle_ps(x, x, 1));
  return _mm_cvtss_f32(x);
}

SDLLM_AVX512 inline float hsum8(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
  return _mm_cvtss_f32(x);
}

// The AVX2 kernel's per-row softmax step (run_item in attention_avx2.cpp) for the MR rows
// of a micro-tile at once: each row's operations and their order are unchanged (the
// 8-lane max chain, the rescale, the exp of 16 then 8 keys, the 8-lane sum chain and its
// tree), but the rows' chains are interleaved. One row at a time, each step waited on the
// latency of the one before (max, shuffle and add chains, a call per row): at the shipped
// model's shapes that was a third of the attention's time.
template <int MR>
SDLLM_AVX512 void softmax_tile(float* s, int64_t lds, int64_t nb, int64_t nbp, float* max, double* sum, float* acc,
                               int64_t lda) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256 vmax[MR];
  for (int r = 0; r < MR; ++r) vmax[r] = ninf;
  for (int64_t j = 0; j < nbp; j += 8) {
    if (j + 8 > nb) {  // padded keys: -inf, so that they count for nothing
      const __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(nb - j)), lane));
      for (int r = 0; r < MR; ++r) {
        const __m256 x = _mm256_blendv_ps(ninf, _mm256_loadu_ps(s + r * lds + j), valid);
        _mm256_storeu_ps(s + r * lds + j, x);
        vmax[r] = _mm256_max_ps(vmax[r], x);
      }
    } else {
      for (int r = 0; r < MR; ++r) vmax[r] = _mm256_max_ps(vmax[r], _mm256_loadu_ps(s + r * lds + j));
    }
  }
  __m512 vm[MR];
  for (int r = 0; r < MR; ++r) {
    const float bmax = hmax8(vmax[r]), old = max[r];
    if (bmax > old) {
      if (sum[r] > 0) {
        const float corr = std::exp(old - bmax);
        const __m256 vc = _mm256_set1_ps(corr);
        for (int64_t c = 0; c < lda; c += 8)
          _mm256_storeu_ps(acc + r * lda + c, _mm256_mul_ps(_mm256_loadu_ps(acc + r * lda + c), vc));
        sum[r] *= corr;
      }
      max[r] = bmax;
    }
    vm[r] = _mm512_set1_ps(max[r]);
  }
  __m256 vs[MR];
  for (int r = 0; r < MR; ++r) vs[r] = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= nbp; j += 16)
    for (int r = 0; r < MR; ++r) {
      const __m512 e = exp_nonpos16(_mm512_sub_ps(_mm512_loadu_ps(s + r * lds + j), vm[r]));
      _mm512_storeu_ps(s + r * lds + j, e);
      vs[r] = _mm256_add_ps(vs[r], _mm512_castps512_ps256(e));
      vs[r] = _mm256_add_ps(vs[r], _mm512_extractf32x8_ps(e, 1));
    }
  if (j < nbp)  // 8 keys left (nbp is a multiple of 8): the same lanes' arithmetic, the upper half unused
    for (int r = 0; r < MR; ++r) {
      const __m512 x = _mm512_zextps256_ps512(_mm256_loadu_ps(s + r * lds + j));
      const __m256 e = _mm512_castps512_ps256(exp_nonpos16(_mm512_sub_ps(x, vm[r])));
      _mm256_storeu_ps(s + r * lds + j, e);
      vs[r] = _mm256_add_ps(vs[r], e);
    }
  for (int r = 0; r < MR; ++r) sum[r] += hsum8(vs[r]);
}

}  // namespace

// The tiles of mr = 1 .. kAvx512AttentionRows rows (kernels.h), one instance each.
namespace {
using SoftmaxFn = void (*)(float*, int64_t, int64_t, int64_t, float*, double*, float*, int64_t);
using QkFn = int64_t (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t);
using PvFn = int64_t (*)(const float*, int64_t, const float*, int64_t, int64_t, int64_t, float*, int64_t);
constexpr SoftmaxFn kSoftmax[8] = {softmax_tile<1>, softmax_tile<2>, softmax_tile<3>, softmax_tile<4>,
                                   softmax_tile<5>, softmax_tile<6>, softmax_tile<7>, softmax_tile<8>};
constexpr QkFn kQk16[8] = {qk16<1>, qk16<2>, qk16<3>, qk16<4>, qk16<5>, qk16<6>, qk16<7>, qk16<8>};
constexpr PvFn kPv16[8] = {pv16<1>, pv16<2>, pv16<3>, pv16<4>, pv16<5>, pv16<6>, pv16<7>, pv16<8>};
static_assert(kAvx512AttentionRows == 8, "one instance per row count");
}  // namespace

SDLLM_AVX512 void avx512_softmax_rows(int mr, float* s, int64_t lds, int64_t nb, int64_t nbp, float* max, double* sum,
                                      float* acc, int64_t lda) {
  kSoftmax[mr - 1](s, lds, nb, nbp, max, sum, acc, lda);
}

SDLLM_AVX512 int64_t avx512_qk_rows(int mr, const float* q, int64_t hd, const float* kt, int64_t ldk, int64_t nbp,
                                    float* s, int64_t lds) {
  return kQk16[mr - 1](q, hd, kt, ldk, nbp, s, lds);
}

SDLLM_AVX512 int64_t avx512_pv_rows(int mr, const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t nb,
                                    int64_t hd, float* acc, int64_t lda) {
  return kPv16[mr - 1](p, ldp, v, ldv, nb, hd, acc, lda);
}

}  // namespace kernels
}  // namespace sdllm
SDLLM_AVX512_WARNINGS_END
