// Bidirectional attention over two key segments. With AVX2+FMA: the tiled kernel of
// attention_avx2.cpp. The scalar path below: one (query row, head) per work item.
// Keys are taken in blocks of kBlock: the block's scores are computed first, so the
// running softmax state is rescaled once per block rather than once per key.
// With no keys at all (both segments empty) the output is zero.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../cpu_features.h"
#include "../ops.h"
#include "kernels.h"

namespace sdllm {

namespace {

constexpr int64_t kBlock = 64;

float dot(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void scale(float a, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= a;
}

struct Segment {
  const float* k;
  const float* v;
  int64_t n, stride;
};

}  // namespace

void op_attention_batch(const AttentionParams* ps, size_t count, ThreadPool& pool) {
  if (use_avx2_fma()) return kernels::avx2_attention_batch(ps, count, pool);
  for (size_t i = 0; i < count; ++i) op_attention(ps[i], pool);
}

void op_attention(const AttentionParams& p, ThreadPool& pool) {
  if (p.n_q <= 0 || p.n_heads <= 0) return;
  if (use_avx2_fma()) return kernels::avx2_attention(p, pool);
  const int group = p.n_heads / std::max(1, p.n_kv_heads);
  const int64_t hd = p.head_dim;
  const Segment segs[2] = {{p.k0, p.v0, p.n_k0, p.kv0_stride}, {p.k1, p.v1, p.n_k1, p.kv1_stride}};
  const int64_t items = p.n_q * p.n_heads;
  const int64_t keys = p.n_k0 + p.n_k1;
  // Aim for work items of at least ~64k multiply-adds per chunk before splitting.
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, keys * hd * 2));

  pool.parallel_for(items, grain, [&](int64_t b, int64_t e, int) {
    thread_local std::vector<float> acc, scores;
    acc.resize(static_cast<size_t>(hd));
    scores.resize(kBlock);
    for (int64_t it = b; it < e; ++it) {
      const int64_t i = it / p.n_heads;
      const int h = static_cast<int>(it % p.n_heads);
      const int64_t kvh = h / std::max(1, group);
      const float* q = p.q + i * p.q_stride + h * hd;
      float* out = p.out + i * p.out_stride + h * hd;
      std::fill(acc.begin(), acc.end(), 0.f);
      float run_max = -std::numeric_limits<float>::infinity();
      double run_sum = 0;
      for (const Segment& s : segs) {
        for (int64_t j0 = 0; j0 < s.n; j0 += kBlock) {
          const int64_t nb = std::min(kBlock, s.n - j0);
          float bmax = -std::numeric_limits<float>::infinity();
          for (int64_t j = 0; j < nb; ++j) {
            scores[j] = dot(q, s.k + (j0 + j) * s.stride + kvh * hd, hd) * p.scale;
            bmax = std::max(bmax, scores[j]);
          }
          if (bmax > run_max) {
            if (run_sum > 0) {
              const float corr = std::exp(run_max - bmax);
              scale(corr, acc.data(), hd);
              run_sum *= corr;
            }
            run_max = bmax;
          }
          for (int64_t j = 0; j < nb; ++j) {
            const float w = std::exp(scores[j] - run_max);
            run_sum += w;
            axpy(w, s.v + (j0 + j) * s.stride + kvh * hd, acc.data(), hd);
          }
        }
      }
      const float inv = run_sum > 0 ? static_cast<float>(1.0 / run_sum) : 0.f;
      for (int64_t c = 0; c < hd; ++c) out[c] = acc[c] * inv;
    }
  });
}

}  // namespace sdllm
