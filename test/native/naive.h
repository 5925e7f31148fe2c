// Naive reference implementations of every CPU op (cpp/ops.h), written to be obviously
// correct rather than fast: plain loops, double accumulation, softmax in float64.
// Header-only so that any native test (the op tests, the CUDA kernel emulation tests)
// can compare against the same references. Names and parameter shapes mirror ops.h.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "dtype.h"
#include "ops.h"
#include "rng.h"

// The counter of kind Random in op_confidence (documented in cpp/ops/confidence.cpp).
constexpr uint64_t kNaiveRandomCounter = 0xFFFFFFFFFFFFull;

inline void naive_embedding(const sdllm::WeightView& table, const int32_t* ids, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < table.cols; ++c)
      out[i * table.cols + c] = (ids[i] >= 0 && ids[i] < table.rows) ? table.at(ids[i], c) : 0.f;
}

inline void naive_rmsnorm(const float* x, const sdllm::WeightView& w, int64_t n, int64_t d, float eps,
                          float* out) {
  for (int64_t i = 0; i < n; ++i) {
    double ss = 0;
    for (int64_t c = 0; c < d; ++c) ss += static_cast<double>(x[i * d + c]) * x[i * d + c];
    const double inv = 1.0 / std::sqrt(ss / d + eps);
    for (int64_t c = 0; c < d; ++c) out[i * d + c] = static_cast<float>(x[i * d + c] * inv * w.at(0, c));
  }
}

// Angles as the float32 reference computes them; the rotation itself in double.
inline void naive_rope(float* x, int64_t n, int64_t row_stride, int n_heads, int head_dim, const int32_t* pos,
                       float theta) {
  const int half = head_dim / 2;
  for (int64_t i = 0; i < n; ++i)
    for (int h = 0; h < n_heads; ++h)
      for (int j = 0; j < half; ++j) {
        const float inv_freq = 1.0f / std::pow(theta, static_cast<float>(2 * j) / static_cast<float>(head_dim));
        const double angle = static_cast<float>(pos[i]) * inv_freq;
        float* v = x + i * row_stride + static_cast<int64_t>(h) * head_dim;
        const double a = v[j], b = v[j + half];
        v[j] = static_cast<float>(a * std::cos(angle) - b * std::sin(angle));
        v[j + half] = static_cast<float>(b * std::cos(angle) + a * std::sin(angle));
      }
}

inline void naive_gemm(const float* x, int64_t m, int64_t k, const sdllm::WeightView& w,
                       const sdllm::WeightView* bias, float* y) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < w.rows; ++j) {
      double s = (bias && !bias->empty()) ? bias->at(0, j) : 0.0;
      for (int64_t c = 0; c < k; ++c) s += static_cast<double>(x[i * k + c]) * w.at(j, c);
      y[i * w.rows + j] = static_cast<float>(s);
    }
}

inline void naive_swiglu(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

inline void naive_add(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

// Full softmax over the concatenated keys of both segments, in double. No keys: zeros.
inline void naive_attention(const sdllm::AttentionParams& p) {
  const int group = p.n_heads / std::max(1, p.n_kv_heads);
  const int64_t hd = p.head_dim, nk = p.n_k0 + p.n_k1;
  auto key = [&](int64_t j, int64_t kvh) {
    return j < p.n_k0 ? p.k0 + j * p.kv0_stride + kvh * hd : p.k1 + (j - p.n_k0) * p.kv1_stride + kvh * hd;
  };
  auto val = [&](int64_t j, int64_t kvh) {
    return j < p.n_k0 ? p.v0 + j * p.kv0_stride + kvh * hd : p.v1 + (j - p.n_k0) * p.kv1_stride + kvh * hd;
  };
  std::vector<double> s(static_cast<size_t>(nk));
  for (int64_t i = 0; i < p.n_q; ++i)
    for (int h = 0; h < p.n_heads; ++h) {
      const int64_t kvh = h / group;
      const float* q = p.q + i * p.q_stride + h * hd;
      double mx = -std::numeric_limits<double>::infinity(), sum = 0;
      for (int64_t j = 0; j < nk; ++j) {
        double d = 0;
        for (int64_t c = 0; c < hd; ++c) d += static_cast<double>(q[c]) * key(j, kvh)[c];
        s[j] = d * p.scale;
        mx = std::max(mx, s[j]);
      }
      for (int64_t j = 0; j < nk; ++j) sum += (s[j] = std::exp(s[j] - mx));
      float* out = p.out + i * p.out_stride + h * hd;
      for (int64_t c = 0; c < hd; ++c) {
        double o = 0;
        for (int64_t j = 0; j < nk; ++j) o += s[j] * val(j, kvh)[c];
        out[c] = nk ? static_cast<float>(o / sum) : 0.f;
      }
    }
}

// Float64 softmax of l / confidence_temperature per row; x0 = lowest-id argmax, or the
// Gumbel-max sample argmax(l - T log(-log u)) with u = rng_uniform(seed, key, token) when T > 0.
inline void naive_confidence(const sdllm::ConfidenceParams& p) {
  for (int64_t r = 0; r < p.n_rows; ++r) {
    const float* l = p.logits + r * p.row_stride;
    const uint64_t key = p.row_keys ? p.row_keys[r] : static_cast<uint64_t>(r);
    int64_t arg = 0;
    for (int64_t t = 1; t < p.vocab; ++t)
      if (l[t] > l[arg]) arg = t;
    int64_t x0 = arg;
    if (p.temperature > 0) {
      double best = -std::numeric_limits<double>::infinity();
      for (int64_t t = 0; t < p.vocab; ++t) {
        const double u = sdllm::rng_uniform(p.seed, key, static_cast<uint64_t>(t));
        const double g = static_cast<double>(l[t]) - static_cast<double>(p.temperature) * std::log(-std::log(u));
        if (g > best) { best = g; x0 = t; }
      }
    }
    std::vector<double> prob(static_cast<size_t>(p.vocab));
    double sum = 0;
    const double ct = p.confidence_temperature > 0 ? static_cast<double>(p.confidence_temperature) : 1.0;
    for (int64_t t = 0; t < p.vocab; ++t) sum += (prob[t] = std::exp((static_cast<double>(l[t]) - l[arg]) / ct));
    for (double& v : prob) v /= sum;
    double conf = 0;
    switch (p.kind) {
      case sdllm::ConfidenceKind::Prob: conf = prob[x0]; break;
      case sdllm::ConfidenceKind::Margin: {
        std::vector<double> sorted = prob;
        std::sort(sorted.begin(), sorted.end(), std::greater<double>());
        conf = sorted[0] - (sorted.size() > 1 ? sorted[1] : 0.0);
        break;
      }
      case sdllm::ConfidenceKind::Entropy:
        for (double v : prob)
          if (v > 0) conf += v * std::log(v);
        break;
      case sdllm::ConfidenceKind::Random: conf = sdllm::rng_uniform(p.seed, key, kNaiveRandomCounter); break;
    }
    p.out_ids[r] = static_cast<int32_t>(x0);
    p.out_conf[r] = static_cast<float>(conf);
  }
}
