// The forward pass of one session over its KV cache (see session.h for the contract).
// Data flow of one call: embed -> per layer [RMSNorm, Q/K/V, RoPE at the rows' true
// positions, cache write, attention over cache segment + own rows, output projection,
// residual, RMSNorm, SwiGLU MLP, residual] -> final norm and LM head on the predicted
// rows only -> fused confidence reduction.
#include "session.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace sdllm {

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

const WeightView* bias_or_null(const WeightView& b) { return b.empty() ? nullptr : &b; }

// Copies the listed rows of src [*, width] into dst [rows.size(), width].
void gather_rows(const float* src, int64_t width, const std::vector<int32_t>& rows, float* dst) {
  for (size_t i = 0; i < rows.size(); i++)
    std::memcpy(dst + i * width, src + static_cast<int64_t>(rows[i]) * width, sizeof(float) * width);
}

}  // namespace

Session::Session(std::shared_ptr<const Model> model, int64_t capacity)
    : model_(std::move(model)), capacity_(capacity) {
  const ModelConfig& c = model_->config;
  if (capacity_ <= 0) throw std::invalid_argument("session capacity must be positive");
  kv_dim_ = c.n_kv_heads * c.head_dim;
  k_cache_.resize(c.n_layers);
  v_cache_.resize(c.n_layers);
  for (int64_t l = 0; l < c.n_layers; l++) {
    k_cache_[l].reset(new float[capacity_ * kv_dim_]);
    v_cache_[l].reset(new float[capacity_ * kv_dim_]);
  }
}

ForwardResult Session::forward(const ForwardRequest& req, ThreadPool& pool) {
  const Model& m = *model_;
  const ModelConfig& c = m.config;
  const int64_t n = static_cast<int64_t>(req.tokens.size());
  const int64_t d = c.d_model, kvd = kv_dim_, hd = c.head_dim, mlp = c.mlp_hidden;

  require(n > 0, "forward needs at least one token");
  require(static_cast<int64_t>(req.positions.size()) == n, "positions must have one entry per token");
  for (int64_t i = 0; i < n; i++) {
    require(req.tokens[i] >= 0 && req.tokens[i] < c.embedding_size,
            "token id " + std::to_string(req.tokens[i]) + " is outside the embedding table");
    require(req.positions[i] >= 0, "position ids must be non-negative");
  }
  require(req.cache_attend >= 0 && req.cache_attend <= capacity_, "cacheAttend is outside the cache");
  const bool writes = req.cache_write_start >= 0;
  if (writes) {
    require(req.cache_write_rows >= 0 && req.cache_write_rows <= n, "cacheWrite.rows exceeds the input rows");
    require(req.cache_write_start + req.cache_write_rows <= capacity_, "cacheWrite range exceeds the cache capacity");
  }
  require(req.attend_self || req.cache_attend > 0, "a forward must attend to something");
  require(!req.predict_rows.empty(), "predictRows must not be empty");
  for (int32_t r : req.predict_rows) require(r >= 0 && r < n, "predictRows entry outside the input rows");

  const int64_t np = static_cast<int64_t>(req.predict_rows.size());
  std::vector<float> x(n * d), h(n * d), q(n * d), k(n * kvd), v(n * kvd), att(n * d), tmp(n * d);
  std::vector<float> gate(n * mlp), up(n * mlp);

  op_embedding(m.embedding, req.tokens.data(), n, x.data());

  // Rows that still need a residual stream; on the last layer only the predicted ones do,
  // since no later layer reads the others (their keys/values are already computed).
  int64_t rows = n;
  for (int64_t l = 0; l < c.n_layers; l++) {
    const LayerWeights& w = m.layers[l];
    const bool last = l == c.n_layers - 1;

    op_rmsnorm(x.data(), w.attn_norm, n, d, c.rms_norm_eps, h.data());
    op_gemm(h.data(), n, d, w.wq, bias_or_null(w.bq), q.data(), pool);
    op_gemm(h.data(), n, d, w.wk, bias_or_null(w.bk), k.data(), pool);
    op_gemm(h.data(), n, d, w.wv, bias_or_null(w.bv), v.data(), pool);
    op_rope(q.data(), n, d, static_cast<int>(c.n_heads), static_cast<int>(hd), req.positions.data(), c.rope_theta);
    op_rope(k.data(), n, kvd, static_cast<int>(c.n_kv_heads), static_cast<int>(hd), req.positions.data(),
            c.rope_theta);

    float* kc = k_cache_[l].get();
    float* vc = v_cache_[l].get();
    if (writes && req.cache_write_rows > 0) {
      std::memcpy(kc + req.cache_write_start * kvd, k.data(), sizeof(float) * req.cache_write_rows * kvd);
      std::memcpy(vc + req.cache_write_start * kvd, v.data(), sizeof(float) * req.cache_write_rows * kvd);
    }

    const float* qrows = q.data();
    if (last && np < n) {
      gather_rows(q.data(), d, req.predict_rows, att.data());
      std::memcpy(q.data(), att.data(), sizeof(float) * np * d);
      gather_rows(x.data(), d, req.predict_rows, att.data());
      std::memcpy(x.data(), att.data(), sizeof(float) * np * d);
      rows = np;
    }

    AttentionParams ap;
    ap.q = qrows;
    ap.n_q = rows;
    ap.q_stride = d;
    ap.k0 = kc;
    ap.v0 = vc;
    ap.n_k0 = req.cache_attend;
    ap.kv0_stride = kvd;
    ap.k1 = k.data();
    ap.v1 = v.data();
    ap.n_k1 = req.attend_self ? n : 0;
    ap.kv1_stride = kvd;
    ap.n_heads = static_cast<int>(c.n_heads);
    ap.n_kv_heads = static_cast<int>(c.n_kv_heads);
    ap.head_dim = static_cast<int>(hd);
    ap.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    ap.out = att.data();
    ap.out_stride = d;
    op_attention(ap, pool);

    op_gemm(att.data(), rows, d, w.wo, nullptr, tmp.data(), pool);
    op_add(x.data(), tmp.data(), rows * d);

    op_rmsnorm(x.data(), w.ff_norm, rows, d, c.rms_norm_eps, h.data());
    op_gemm(h.data(), rows, d, w.w_gate, nullptr, gate.data(), pool);
    op_gemm(h.data(), rows, d, w.w_up, nullptr, up.data(), pool);
    op_swiglu(gate.data(), up.data(), rows * mlp, gate.data());
    op_gemm(gate.data(), rows, mlp, w.w_down, nullptr, tmp.data(), pool);
    op_add(x.data(), tmp.data(), rows * d);
  }

  // Final norm and LM head on the predicted rows only.
  std::vector<float> xf(np * d);
  if (rows == np) {
    std::memcpy(xf.data(), x.data(), sizeof(float) * np * d);
  } else {
    gather_rows(x.data(), d, req.predict_rows, xf.data());
  }
  op_rmsnorm(xf.data(), m.final_norm, np, d, c.rms_norm_eps, xf.data());
  const int64_t vocab = c.vocab_size;
  std::vector<float> logits(np * vocab);
  op_gemm(xf.data(), np, d, m.lm_head.first_rows(vocab), nullptr, logits.data(), pool);

  // RNG stream per (forward, position): the same seed and schedule give the same draws.
  std::vector<uint64_t> keys(np);
  for (int64_t i = 0; i < np; i++)
    keys[i] = (req.noise_counter << 32) ^ static_cast<uint64_t>(req.positions[req.predict_rows[i]]);

  ForwardResult out;
  out.token_ids.resize(np);
  out.confidences.resize(np);
  ConfidenceParams cp;
  cp.logits = logits.data();
  cp.n_rows = np;
  cp.vocab = vocab;
  cp.row_stride = vocab;
  cp.kind = req.confidence;
  cp.temperature = req.temperature;
  cp.confidence_temperature = req.confidence_temperature;
  cp.seed = req.seed;
  cp.row_keys = keys.data();
  cp.out_ids = out.token_ids.data();
  cp.out_conf = out.confidences.data();
  op_confidence(cp, pool);
  if (req.return_logits) out.logits = std::move(logits);
  return out;
}

}  // namespace sdllm
