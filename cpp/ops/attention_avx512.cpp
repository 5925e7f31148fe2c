// The two inner tiles of the AVX2 attention (attention_avx2.cpp) in 16-lane registers,
// used when use_avx512(). Both keep one output per lane with a sequential sum, so the
// vector width does not change any float:
//   scores: s[r][j] = sum over c of q[r][c] * kt[c][j], keys j in lanes, c in order;
//   values: acc[r][c] += p[r][j] * v[j][c] for j in order, columns c in lanes.
//   softmax numerators: e = exp(s - max) with vexp_avx2.h's polynomial, op for op, and the
//   row sum accumulated 8 lanes at a time in the AVX2 loop's order (chunk j, then j + 8).
// A key count or head_dim that is not a multiple of 16 leaves a tail of 8 (or a masked
// tail under 8) to the AVX2 tiles, which do the same per-lane arithmetic. test_ops checks
// the AVX-512 attention against the AVX2 one bit for bit.
#include <immintrin.h>

#include <cstdint>

#include "kernels.h"

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

// s[r][0 .. 16*NV) = sum_c q[r][c] * kt[c][0 .. 16*NV) for MR rows.
template <int MR, int NV>
SDLLM_AVX512 inline void qk_tile16(const float* q, int64_t hd, const float* kt, int64_t ldk, float* s, int64_t lds) {
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
  store_tile<MR, NV, 0>(acc, s, lds);
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

template <int MR>
SDLLM_AVX512 int64_t qk16(const float* q, int64_t hd, const float* kt, int64_t ldk, int64_t nbp, float* s,
                          int64_t lds) {
  int64_t j = 0;
  for (; j + 32 <= nbp; j += 32) qk_tile16<MR, 2>(q, hd, kt + j, ldk, s + j, lds);
  if (j + 16 <= nbp) {
    qk_tile16<MR, 1>(q, hd, kt + j, ldk, s + j, lds);
    j += 16;
  }
  return j;
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

// exp_clamped / exp_nonpos of vexp_avx2.h in 16 lanes: the same operations per lane.
SDLLM_AVX512 inline __m512 exp_nonpos16(__m512 x) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GE_OQ);
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 y = _mm512_set1_ps(1.9875691500e-4f);
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mov_ps(keep, _mm512_mul_ps(y, _mm512_castsi512_ps(e)));
}

}  // namespace

SDLLM_AVX512 int64_t avx512_softmax_exp(float* s, int64_t nbp, float max, float* sum8) {
  const __m512 vm = _mm512_set1_ps(max);
  __m256 vs = _mm256_loadu_ps(sum8);
  int64_t j = 0;
  for (; j + 16 <= nbp; j += 16) {
    const __m512 e = exp_nonpos16(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm));
    _mm512_storeu_ps(s + j, e);
    vs = _mm256_add_ps(vs, _mm512_castps512_ps256(e));
    vs = _mm256_add_ps(vs, _mm512_extractf32x8_ps(e, 1));
  }
  _mm256_storeu_ps(sum8, vs);
  return j;
}

SDLLM_AVX512 int64_t avx512_qk_rows(int mr, const float* q, int64_t hd, const float* kt, int64_t ldk, int64_t nbp, float* s,
                       int64_t lds) {
  switch (mr) {
    case 1: return qk16<1>(q, hd, kt, ldk, nbp, s, lds);
    case 2: return qk16<2>(q, hd, kt, ldk, nbp, s, lds);
    case 3: return qk16<3>(q, hd, kt, ldk, nbp, s, lds);
    default: return qk16<4>(q, hd, kt, ldk, nbp, s, lds);
  }
}

SDLLM_AVX512 int64_t avx512_pv_rows(int mr, const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t nb, int64_t hd,
                       float* acc, int64_t lda) {
  switch (mr) {
    case 1: return pv16<1>(p, ldp, v, ldv, nb, hd, acc, lda);
    case 2: return pv16<2>(p, ldp, v, ldv, nb, hd, acc, lda);
    case 3: return pv16<3>(p, ldp, v, ldv, nb, hd, acc, lda);
    default: return pv16<4>(p, ldp, v, ldv, nb, hd, acc, lda);
  }
}

}  // namespace kernels
}  // namespace sdllm
SDLLM_AVX512_WARNINGS_END
