// AVX2+FMA attention (op_attention when use_avx2_fma()): a tiled online softmax.
//
// Work item = (kv head, chunk of up to kChunk "query rows"), where the rows of a kv
// head are the (query, head) pairs of its GQA group, so the query heads of a group
// share every K/V tile. Per item:
//   Q rows are gathered and pre-multiplied by the scale into a thread-local buffer;
//   for each block of up to kb keys (segment 0, then segment 1):
//     K block is transposed to Kt[hd][kb] (keys in lanes, zero-padded to 8),
//     per micro-tile of up to 4 rows (8 with AVX-512, attention_avx512.cpp):
//     S = Q Kt (rows x 16 keys of registers), the running max/sum are updated once per
//     block, P = exp(S - max) with a vectorised exp, acc = acc * corr + P V (broadcast
//     p x V-row FMAs over hd).
//   out = acc / sum.
// Items are handed out dynamically (atomic counter) so a busy core does not stall the
// others; avx2_attention_batch puts the items of several calls (a batch's sequences) in
// one list, so a batch's attention is one pool job, not one per sequence. Accumulation is
// float32 except the per-row softmax sum (double).
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "../cpu_features.h"
#include "../ops.h"
#include "kernels.h"
#include "vexp_avx2.h"

namespace sdllm {
namespace kernels {

namespace {

// Most query rows per work item (a multiple of 8). Every chunk transposes and copies its
// head's keys and values again; with at most 64, a one-thread forward of 128 rows did that
// twice per head (the bench:torch S model's attention: 8% slower than with 128).
constexpr int64_t kChunk = 128;
constexpr int kMr = 4;  // rows per micro-tile

// A tile's registers from / to rows of memory (row i at m + i * ld, 8 * NV floats), one
// element per template instance: with loops here GCC kept the accumulators in a stack
// array, zeroed or loaded there and copied back around the tile's main loop.
template <int MR, int NV, int I>
inline void load_tile(__m256 (&t)[MR][NV], const float* m, int64_t ld) {
  if constexpr (I < MR * NV) {
    t[I / NV][I % NV] = _mm256_loadu_ps(m + (I / NV) * ld + 8 * (I % NV));
    load_tile<MR, NV, I + 1>(t, m, ld);
  }
}

template <int MR, int NV, int I>
inline void store_tile(const __m256 (&t)[MR][NV], float* m, int64_t ld) {
  if constexpr (I < MR * NV) {
    _mm256_storeu_ps(m + (I / NV) * ld + 8 * (I % NV), t[I / NV][I % NV]);
    store_tile<MR, NV, I + 1>(t, m, ld);
  }
}

// s[r][0 .. 8*NV) = sum_c q[r][c] * kt[c][0 .. 8*NV) for MR rows.
template <int MR, int NV>
inline void qk_tile(const float* q, int64_t hd, const float* kt, int64_t ldk, float* s, int64_t lds) {
  __m256 acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t c = 0; c < hd; ++c) {
    __m256 k[NV];
    for (int v = 0; v < NV; ++v) k[v] = _mm256_loadu_ps(kt + c * ldk + 8 * v);
    for (int r = 0; r < MR; ++r) {
      const __m256 qb = _mm256_broadcast_ss(q + r * hd + c);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(qb, k[v], acc[r][v]);
    }
  }
  store_tile<MR, NV, 0>(acc, s, lds);
}

template <int MR>
void qk_rows(const float* q, int64_t hd, const float* kt, int64_t ldk, int64_t nbp, float* s, int64_t lds) {
  int64_t j = 0;
  for (; j + 16 <= nbp; j += 16) qk_tile<MR, 2>(q, hd, kt + j, ldk, s + j, lds);
  if (j < nbp) qk_tile<MR, 1>(q, hd, kt + j, ldk, s + j, lds);
}

// acc[r][c0 .. c0+8*NV) += sum_j p[r][j] * v[j][c0 ..] for MR rows; `mask` (NV == 1
// only) limits the columns to a tail of fewer than 8.
template <int MR, int NV, bool kMasked>
inline void pv_tile(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t nb, float* acc,
                    int64_t lda, __m256i mask) {
  __m256 a[MR][NV];
  load_tile<MR, NV, 0>(a, acc, lda);
  for (int64_t j = 0; j < nb; ++j) {
    __m256 x[NV];
    for (int u = 0; u < NV; ++u)
      x[u] = kMasked ? _mm256_maskload_ps(v + j * ldv + 8 * u, mask) : _mm256_loadu_ps(v + j * ldv + 8 * u);
    for (int r = 0; r < MR; ++r) {
      const __m256 pb = _mm256_broadcast_ss(p + r * ldp + j);
      for (int u = 0; u < NV; ++u) a[r][u] = _mm256_fmadd_ps(pb, x[u], a[r][u]);
    }
  }
  store_tile<MR, NV, 0>(a, acc, lda);
}

template <int MR>
void pv_rows(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t nb, int64_t hd, float* acc,
             int64_t lda) {
  const __m256i none = _mm256_setzero_si256();
  int64_t c = 0;
  for (; c + 16 <= hd; c += 16) pv_tile<MR, 2, false>(p, ldp, v + c, ldv, nb, acc + c, lda, none);
  if (c + 8 <= hd) {
    pv_tile<MR, 1, false>(p, ldp, v + c, ldv, nb, acc + c, lda, none);
    c += 8;
  }
  if (c < hd) {  // acc rows are padded to a multiple of 8, so only V needs the mask
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(hd - c)), lane);
    pv_tile<MR, 1, true>(p, ldp, v + c, ldv, nb, acc + c, lda, mask);
  }
}

using QkFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t);
using PvFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, int64_t, float*, int64_t);
constexpr QkFn kQk[kMr] = {qk_rows<1>, qk_rows<2>, qk_rows<3>, qk_rows<4>};
constexpr PvFn kPv[kMr] = {pv_rows<1>, pv_rows<2>, pv_rows<3>, pv_rows<4>};

inline float hmax(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_shuffle_ps(x, x, 1));
  return _mm_cvtss_f32(x);
}

inline float hsum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
  return _mm_cvtss_f32(x);
}

// dst[c][j] = src[j][c] for j < nb, c < hd (rows of src `lds` apart, of dst `ldd`), and
// 0 for nb <= j < nbp (nbp a multiple of 8): 8x8 register transposes, the keys past nb
// read from `zeros` (hd floats), scalar only for a head_dim that is not a multiple of 8.
void transpose_block(const float* src, int64_t lds, int64_t nb, int64_t nbp, int64_t hd, const float* zeros, float* dst,
                     int64_t ldd) {
  for (int64_t j = 0; j < nbp; j += 8) {
    const float* row[8];
    for (int i = 0; i < 8; ++i) row[i] = j + i < nb ? src + (j + i) * lds : zeros;
    int64_t c = 0;
    for (; c + 8 <= hd; c += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(row[i] + c);
      const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
      const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
      const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
      const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      _mm256_storeu_ps(dst + (c + 0) * ldd + j, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(dst + (c + 1) * ldd + j, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(dst + (c + 2) * ldd + j, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(dst + (c + 3) * ldd + j, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(dst + (c + 4) * ldd + j, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(dst + (c + 5) * ldd + j, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(dst + (c + 6) * ldd + j, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(dst + (c + 7) * ldd + j, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (; c < hd; ++c)
      for (int i = 0; i < 8; ++i) dst[c * ldd + j + i] = row[i][c];
  }
}

// dst = src, n floats (a head's row of V: a call to memcpy per row cost more than the copy).
inline void copy_row(float* dst, const float* src, int64_t n) {
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) _mm256_storeu_ps(dst + c, _mm256_loadu_ps(src + c));
  for (; c < n; ++c) dst[c] = src[c];
}

struct Segment {
  const float* k;
  const float* v;
  int64_t n, stride;
};

struct Scratch {
  std::vector<float> q, acc, kt, vb, s, zeros;
  std::vector<double> sum;
  std::vector<float> max;
};

// One AttentionParams as work items: (kv head, chunk of up to `chunk` query rows).
struct Plan {
  const AttentionParams* p;
  int group;
  int64_t hd, hdp, kb, rows, chunk, chunks_per_head, items;
};

Plan plan_of(const AttentionParams& p, int64_t threads) {
  Plan pl;
  pl.p = &p;
  pl.group = std::max(1, p.n_heads / std::max(1, p.n_kv_heads));
  const int n_kv = std::max(1, p.n_heads / pl.group);
  pl.hd = p.head_dim;
  pl.hdp = (pl.hd + 7) / 8 * 8;
  // Keys per block: Kt and the V block take 2 * hd * kb floats = 32 KB, in L1. At hd 32
  // blocks of 128 rather than 64 halve the per-row work of each block (max, rescale,
  // sums): 10-12% off the attention of a 128-query head (the shipped model's shape).
  pl.kb = pl.hd <= 32 ? 128 : pl.hd <= 64 ? 64 : 32;
  pl.rows = p.n_q * pl.group;     // query rows per kv head
  // Chunks small enough that every thread gets several items, but not below one micro-tile;
  // a head's rows cut into equal chunks (each chunk transposes the keys again: 129 rows as
  // 32 + 32 + 32 + 32 + 1 paid that five times, as 44 + 44 + 41 three).
  int64_t chunk = (pl.rows * n_kv + 4 * threads - 1) / (4 * threads);
  chunk = std::min<int64_t>(kChunk, std::max<int64_t>(kMr, (chunk + kMr - 1) / kMr * kMr));
  pl.chunks_per_head = std::max<int64_t>(1, (pl.rows + chunk - 1) / chunk);
  chunk = (pl.rows + pl.chunks_per_head - 1) / pl.chunks_per_head;
  pl.chunk = std::max<int64_t>(kMr, (chunk + kMr - 1) / kMr * kMr);
  pl.chunks_per_head = (pl.rows + pl.chunk - 1) / pl.chunk;
  pl.items = p.n_q > 0 && p.n_heads > 0 ? pl.chunks_per_head * n_kv : 0;
  return pl;
}

// The softmax step of one key block for the rows of a micro-tile (scores s, rows lds
// apart; max, sum and acc rows of the running state): padded keys set to -inf, the block
// max, the running state rescaled when the max grows, then s = exp(s - max) and the row
// sums. avx512_softmax_rows (attention_avx512.cpp) does the same operations per row.
void softmax_rows(int mr, float* s_tile, int64_t lds, int64_t nb, int64_t nbp, float* max, double* sum, float* acc_tile,
                  int64_t lda) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int r = 0; r < mr; ++r) {
    float* s = s_tile + r * lds;
    __m256 vmax = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    for (int64_t j = 0; j < nbp; j += 8) {
      __m256 x = _mm256_loadu_ps(s + j);
      if (j + 8 > nb) {
        const __m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(nb - j)), lane);
        x = _mm256_blendv_ps(_mm256_set1_ps(-std::numeric_limits<float>::infinity()), x, _mm256_castsi256_ps(valid));
        _mm256_storeu_ps(s + j, x);
      }
      vmax = _mm256_max_ps(vmax, x);
    }
    const float bmax = hmax(vmax), old = max[r];
    float* acc = acc_tile + r * lda;
    if (bmax > old) {
      if (sum[r] > 0) {
        const float corr = std::exp(old - bmax);
        const __m256 vc = _mm256_set1_ps(corr);
        for (int64_t c = 0; c < lda; c += 8) _mm256_storeu_ps(acc + c, _mm256_mul_ps(_mm256_loadu_ps(acc + c), vc));
        sum[r] *= corr;
      }
      max[r] = bmax;
    }
    const __m256 vm = _mm256_set1_ps(max[r]);
    __m256 vs = _mm256_setzero_ps();
    for (int64_t j = 0; j < nbp; j += 8) {
      const __m256 e = exp_nonpos(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
      _mm256_storeu_ps(s + j, e);
      vs = _mm256_add_ps(vs, e);
    }
    sum[r] += hsum(vs);
  }
}

// Work item `it` of one plan. Every query row's arithmetic depends only on its own q and
// the keys, never on which rows share its chunk or which items run beside it.
void run_item(const Plan& pl, int64_t it, Scratch& t, bool avx512) {
  const AttentionParams& p = *pl.p;
  const int group = pl.group;
  const int64_t hd = pl.hd, hdp = pl.hdp, kb = pl.kb, rows = pl.rows, chunk = pl.chunk;
  const int64_t chunks_per_head = pl.chunks_per_head;
  const Segment segs[2] = {{p.k0, p.v0, p.n_k0, p.kv0_stride}, {p.k1, p.v1, p.n_k1, p.kv1_stride}};
  const int kvh = static_cast<int>(it / chunks_per_head);
  const int64_t r0 = (it % chunks_per_head) * chunk, nr = std::min(chunk, rows - r0);
  const __m256 vscale = _mm256_set1_ps(p.scale);
  // The first key block of each segment into L2 now: its K and V rows are a large stride
  // apart and, in a forward, were just written by the projection on either core; read one
  // by one by the transpose and the copy, each line's trip was waited on in turn.
  for (const Segment& sg : segs)
    for (int64_t j = 0; j < std::min(kb, sg.n); ++j) {
      const char* k_row = reinterpret_cast<const char*>(sg.k + j * sg.stride + kvh * hd);
      const char* v_row = reinterpret_cast<const char*>(sg.v + j * sg.stride + kvh * hd);
      for (int64_t b = 0; b < hd * 4; b += 64) {
        _mm_prefetch(k_row + b, _MM_HINT_T1);
        _mm_prefetch(v_row + b, _MM_HINT_T1);
      }
    }
  for (int64_t r = 0; r < nr; ++r) {
    const int64_t rr = r0 + r, i = rr / group;
    const int64_t h = static_cast<int64_t>(kvh) * group + rr % group;
    const float* src = p.q + i * p.q_stride + h * hd;
    float* dst = t.q.data() + r * hd;
    int64_t c = 0;
    for (; c + 8 <= hd; c += 8) _mm256_storeu_ps(dst + c, _mm256_mul_ps(_mm256_loadu_ps(src + c), vscale));
    for (; c < hd; ++c) dst[c] = src[c] * p.scale;
  }
  std::fill(t.acc.begin(), t.acc.begin() + nr * hdp, 0.f);
  std::fill(t.sum.begin(), t.sum.begin() + nr, 0.0);
  std::fill(t.max.begin(), t.max.begin() + nr, -std::numeric_limits<float>::infinity());

  for (const Segment& sg : segs) {
    for (int64_t j0 = 0; j0 < sg.n; j0 += kb) {
      const int64_t nb = std::min(kb, sg.n - j0), nbp = (nb + 7) / 8 * 8;
      // Transpose the key block: kt[c][j] = k[j0 + j][c], zero-padded to nbp keys; copy
      // the value block to contiguous rows (source rows are a large power-of-two stride
      // apart, which maps them all onto a few L1 sets).
      const float* kbase = sg.k + j0 * sg.stride + kvh * hd;
      transpose_block(kbase, sg.stride, nb, nbp, hd, t.zeros.data(), t.kt.data(), kb);
      const float* vsrc = sg.v + j0 * sg.stride + kvh * hd;
      for (int64_t j = 0; j < nb; ++j) copy_row(t.vb.data() + j * hd, vsrc + j * sg.stride, hd);
      const float* vbase = t.vb.data();
      // Micro-tiles of query rows: 8 with AVX-512 (its 16-lane tiles hold 8 rows' scores
      // or values in registers), 4 with AVX2. A row's floats do not depend on the tile.
      const int64_t tile = avx512 ? kAvx512AttentionRows : kMr;
      for (int64_t m0 = 0; m0 < nr; m0 += tile) {
        const int mr = static_cast<int>(std::min<int64_t>(tile, nr - m0));
        const float* q = t.q.data() + m0 * hd;
        float* acc = t.acc.data() + m0 * hdp;
        if (avx512) {
          avx512_qk_rows(mr, q, hd, t.kt.data(), kb, nbp, t.s.data(), kb);
          avx512_softmax_rows(mr, t.s.data(), kb, nb, nbp, t.max.data() + m0, t.sum.data() + m0, acc, hdp);
          // Value columns past the last multiple of 16 (a head_dim such as 40): AVX2 tiles.
          const int64_t cdone = avx512_pv_rows(mr, t.s.data(), kb, vbase, hd, nb, hd, acc, hdp);
          for (int r = 0; cdone < hd && r < mr; r += kMr)
            kPv[std::min(kMr, mr - r) - 1](t.s.data() + r * kb, kb, vbase + cdone, hd, nb, hd - cdone,
                                           acc + r * hdp + cdone, hdp);
        } else {
          kQk[mr - 1](q, hd, t.kt.data(), kb, nbp, t.s.data(), kb);
          softmax_rows(mr, t.s.data(), kb, nb, nbp, t.max.data() + m0, t.sum.data() + m0, acc, hdp);
          kPv[mr - 1](t.s.data(), kb, vbase, hd, nb, hd, acc, hdp);
        }
      }
    }
  }

  for (int64_t r = 0; r < nr; ++r) {
    const int64_t rr = r0 + r, i = rr / group;
    const int64_t h = static_cast<int64_t>(kvh) * group + rr % group;
    float* out = p.out + i * p.out_stride + h * hd;
    const double s = t.sum[static_cast<size_t>(r)];
    const float inv = s > 0 ? static_cast<float>(1.0 / s) : 0.f;
    const float* acc = t.acc.data() + r * hdp;
    const __m256 vi = _mm256_set1_ps(inv);
    int64_t c = 0;
    for (; c + 8 <= hd; c += 8) _mm256_storeu_ps(out + c, _mm256_mul_ps(_mm256_loadu_ps(acc + c), vi));
    for (; c < hd; ++c) out[c] = acc[c] * inv;
  }
}

}  // namespace

void avx2_attention_batch(const AttentionParams* ps, size_t count, ThreadPool& pool) {
  const bool avx512 = use_avx512();
  const int64_t threads = pool.size();
  // The items of all calls in one list (call c owns [first[c], first[c + 1])), handed out
  // dynamically: one barrier for the batch, and no thread idles at the end of a short call.
  std::vector<Plan> plans;
  std::vector<int64_t> first{0};
  plans.reserve(count);
  size_t q = 0, acc = 0, kv = 0, s = 0, row = 0, zeros = 0;
  for (size_t c = 0; c < count; ++c) {
    const Plan pl = plan_of(ps[c], threads);
    if (pl.items == 0) continue;
    plans.push_back(pl);
    first.push_back(first.back() + pl.items);
    q = std::max(q, static_cast<size_t>(pl.chunk * pl.hd));
    acc = std::max(acc, static_cast<size_t>(pl.chunk * pl.hdp));
    kv = std::max(kv, static_cast<size_t>(pl.hd * pl.kb));
    s = std::max(s, static_cast<size_t>(std::max(kMr, kAvx512AttentionRows) * pl.kb));
    row = std::max(row, static_cast<size_t>(pl.chunk));
    zeros = std::max(zeros, static_cast<size_t>(pl.hd));
  }
  const int64_t items = first.back();
  if (items == 0) return;
  std::atomic<int64_t> next{0};
  pool.parallel_for(std::min<int64_t>(threads, items), 1, [&](int64_t, int64_t, int) {
    thread_local Scratch t;
    t.q.resize(q);
    t.acc.resize(acc);
    t.kt.resize(kv);
    t.vb.resize(kv);
    t.zeros.assign(zeros, 0.f);
    t.s.resize(s);
    t.sum.resize(row);
    t.max.resize(row);
    size_t c = 0;
    for (int64_t it = next.fetch_add(1); it < items; it = next.fetch_add(1)) {
      while (it >= first[c + 1]) ++c;  // items are taken in increasing order
      run_item(plans[c], it - first[c], t, avx512);
    }
  });
}

void avx2_attention(const AttentionParams& p, ThreadPool& pool) { avx2_attention_batch(&p, 1, pool); }

}  // namespace kernels
}  // namespace sdllm
