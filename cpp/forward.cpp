// The forward pass over a batch of sequences (see forward.h for the contract).
// Data flow: embed all rows -> per layer [RMSNorm, Q/K/V GEMMs over all rows, RoPE at
// each row's true position, per sequence: cache write and attention over its cache
// segment + its own rows, output GEMM, residual + RMSNorm, SwiGLU MLP, residual] ->
// final norm and LM head on the predicted rows -> per sequence: confidence reduction.
// On the last layer only the predicted rows continue (nothing reads the others).
#include "forward.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <unordered_set>

namespace sdllm {

ForwardModel forward_model_of(const Model& m) {
  return ForwardModel{m.config, m.embedding, m.final_norm, m.lm_head, m.layers};
}

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

const WeightView* bias_or_null(const WeightView& b) { return b.empty() ? nullptr : &b; }

// What decides the calls of the layers segment (ForwardOps::segment_begin): each
// sequence's cache, rows and cache use. Predicted rows and confidence options only act
// after it.
std::string layers_signature(const BatchEntry* entries, size_t count) {
  std::string sig;
  for (size_t i = 0; i < count; i++) {
    const ForwardRequest& r = *entries[i].request;
    const KvCacheView& kc = *entries[i].cache;  // by its memory: a new session may reuse a freed view
    const int64_t fields[] = {reinterpret_cast<int64_t>(kc.k.empty() ? nullptr : kc.k[0]),
                              reinterpret_cast<int64_t>(kc.v.empty() ? nullptr : kc.v[0]), kc.capacity,
                              static_cast<int64_t>(r.tokens.size()), r.cache_attend, r.cache_write_start,
                              r.cache_write_rows, r.attend_self ? 1 : 0};
    sig.append(reinterpret_cast<const char*>(fields), sizeof(fields));
  }
  return sig;
}

}  // namespace

ScratchPlan scratch_plan(const ModelConfig& c, int64_t rows, int64_t predicted) {
  using S = ForwardOps::Scratch;
  using I = ForwardOps::Index;
  const size_t R = static_cast<size_t>(rows), P = static_cast<size_t>(predicted);
  const size_t d = static_cast<size_t>(c.d_model), kvd = static_cast<size_t>(c.n_kv_heads * c.head_dim);
  const size_t mlp = static_cast<size_t>(c.mlp_hidden);
  ScratchPlan p;
  auto f = [&](S id, size_t n) { p.floats[static_cast<int>(id)] = n; };
  auto i = [&](I id, size_t n) { p.ints[static_cast<int>(id)] = n; };
  f(S::X, R * d);
  f(S::H, R * d);
  // Q, K and V of a row sit side by side in one row of qkv (one fused GEMM where the
  // backend can), gate and up likewise in gate_up.
  f(S::QKV, R * (d + 2 * kvd));
  f(S::Att, R * d);
  f(S::Tmp, R * d);
  f(S::GateUp, R * 2 * mlp);
  f(S::Act, R * mlp);
  f(S::XF, P * d);
  f(S::Logits, P * static_cast<size_t>(c.vocab_size));
  f(S::Conf, P);
  i(I::Tokens, R);
  i(I::Positions, R);
  i(I::Gather, P);
  i(I::Ids, P);
  p.keys = P;
  return p;
}

void validate_request(const ForwardRequest& req, const ModelConfig& c, int64_t capacity) {
  const int64_t n = static_cast<int64_t>(req.tokens.size());
  require(n > 0, "forward needs at least one token");
  require(static_cast<int64_t>(req.positions.size()) == n, "positions must have one entry per token");
  for (int64_t i = 0; i < n; i++) {
    require(req.tokens[i] >= 0 && req.tokens[i] < c.embedding_size,
            "token id " + std::to_string(req.tokens[i]) + " is outside the embedding table");
    require(req.positions[i] >= 0, "position ids must be non-negative");
  }
  require(req.cache_attend >= 0 && req.cache_attend <= capacity, "cacheAttend is outside the cache");
  if (req.cache_write_start >= 0) {
    require(req.cache_write_rows >= 0 && req.cache_write_rows <= n, "cacheWrite.rows exceeds the input rows");
    require(req.cache_write_start + req.cache_write_rows <= capacity, "cacheWrite range exceeds the cache capacity");
  }
  require(req.attend_self || req.cache_attend > 0, "a forward must attend to something");
  require(!req.predict_rows.empty(), "predictRows must not be empty");
  for (int32_t r : req.predict_rows) require(r >= 0 && r < n, "predictRows entry outside the input rows");
  const int32_t kind = static_cast<int32_t>(req.confidence);
  require(kind >= 0 && kind <= 3, "confidence kind must be 0..3");
  require(req.confidence_temperature > 0.f, "confidenceTemperature must be > 0");
}

void run_forward(ForwardOps& ops, const ForwardModel& m, const BatchEntry* entries, size_t count) {
  const ModelConfig& c = m.config;
  require(count > 0, "a batch needs at least one sequence");
  std::unordered_set<const KvCacheView*> caches;
  for (size_t i = 0; i < count; i++) {
    const BatchEntry& e = entries[i];
    require(e.cache && e.request && e.result, "a batch entry needs a cache, a request and a result");
    validate_request(*e.request, c, e.cache->capacity);
    require(caches.insert(e.cache).second, "a session appears more than once in the batch");
  }

  const int64_t d = c.d_model, kvd = c.n_kv_heads * c.head_dim, hd = c.head_dim, mlp = c.mlp_hidden;
  const int64_t vocab = c.vocab_size;
  const float eps = c.rms_norm_eps, theta = c.rope_theta;

  // Layout: sequence i owns batch rows [row0[i], row0[i] + n_i) and, after the last
  // layer's gather, the compact rows [pred0[i], pred0[i] + np_i) (its predicted rows).
  std::vector<int64_t> row0(count), pred0(count);
  int64_t total_rows = 0, total_pred = 0;
  for (size_t i = 0; i < count; i++) {
    row0[i] = total_rows;
    pred0[i] = total_pred;
    total_rows += static_cast<int64_t>(entries[i].request->tokens.size());
    total_pred += static_cast<int64_t>(entries[i].request->predict_rows.size());
  }
  std::vector<int32_t> tokens, positions, gather;
  std::vector<uint64_t> keys;
  tokens.reserve(total_rows);
  positions.reserve(total_rows);
  gather.reserve(total_pred);
  keys.reserve(total_pred);
  bool gather_is_identity = total_pred == total_rows;
  for (size_t i = 0; i < count; i++) {
    const ForwardRequest& r = *entries[i].request;
    tokens.insert(tokens.end(), r.tokens.begin(), r.tokens.end());
    positions.insert(positions.end(), r.positions.begin(), r.positions.end());
    for (int32_t p : r.predict_rows) {
      const int64_t row = row0[i] + p;
      gather_is_identity = gather_is_identity && row == static_cast<int64_t>(gather.size());
      gather.push_back(static_cast<int32_t>(row));
      // RNG stream per (forward, position): the same seed and schedule give the same draws.
      keys.push_back((r.noise_counter << 32) ^ static_cast<uint64_t>(r.positions[p]));
    }
  }
  // The last layer runs on the predicted rows only when there are fewer of them.
  const bool compact = total_pred < total_rows;

  using S = ForwardOps::Scratch;
  using I = ForwardOps::Index;
  const size_t R = static_cast<size_t>(total_rows), P = static_cast<size_t>(total_pred);
  const int64_t ldqkv = d + 2 * kvd;
  const ScratchPlan plan = scratch_plan(c, total_rows, total_pred);
  ops.begin(plan);
  auto scratch = [&](S id) { return ops.scratch(id, plan.floats[static_cast<int>(id)]); };
  auto index = [&](I id) { return ops.index(id, plan.ints[static_cast<int>(id)]); };
  float* x = scratch(S::X);
  float* h = scratch(S::H);
  float* qkv = scratch(S::QKV);
  float* att = scratch(S::Att);
  float* tmp = scratch(S::Tmp);
  float* gate_up = scratch(S::GateUp);
  float* act = scratch(S::Act);
  float* xf = compact || gather_is_identity ? x : scratch(S::XF);
  float* logits = scratch(S::Logits);
  float* conf = scratch(S::Conf);
  int32_t* dev_tokens = index(I::Tokens);
  int32_t* dev_positions = index(I::Positions);
  int32_t* dev_gather = index(I::Gather);
  int32_t* dev_ids = index(I::Ids);
  uint64_t* dev_keys = ops.rng_keys(plan.keys);
  float* const q = qkv;
  float* const k = qkv + d;
  float* const v = qkv + d + kvd;

  // Layer l up to its cache writes, on every row: norm, q|k|v, RoPE at each row's own
  // position id (one call covers all sequences), each sequence's cache range.
  auto layer_front = [&](int64_t l) {
    const LayerWeights& w = m.layers[l];
    ops.rmsnorm(x, w.attn_norm, total_rows, d, eps, h);
    const WeightView* qkv_w[3] = {&w.wq, &w.wk, &w.wv};
    const WeightView* qkv_b[3] = {bias_or_null(w.bq), bias_or_null(w.bk), bias_or_null(w.bv)};
    // k's heads follow q's in a qkv row, so one rotation covers both.
    ops.project_rope(h, total_rows, d, qkv_w, qkv_b, 3, qkv, ldqkv, static_cast<int>(c.n_heads + c.n_kv_heads),
                     static_cast<int>(hd), dev_positions, theta);
    for (size_t i = 0; i < count; i++) {
      const ForwardRequest& r = *entries[i].request;
      if (r.cache_write_start < 0 || r.cache_write_rows == 0) continue;
      const KvCacheView& kc = *entries[i].cache;
      ops.write_cache(kc.k[l] + r.cache_write_start * kvd, kc.v[l] + r.cache_write_start * kvd, k + row0[i] * ldqkv,
                      v + row0[i] * ldqkv, ldqkv, r.cache_write_rows, kvd);
    }
  };
  std::vector<AttentionParams> attention_params;
  // The rest of layer l: per sequence, attention of its query rows (all its rows, or with
  // `predicted_only` its predicted rows, compact at qrows) over its cache segment and its
  // own keys/values; then the output projection, residual, norm and MLP over `rows` rows.
  auto layer_back = [&](int64_t l, const float* qrows, int64_t qstride, bool predicted_only) {
    const LayerWeights& w = m.layers[l];
    const int64_t rows = predicted_only ? total_pred : total_rows;
    attention_params.resize(count);
    for (size_t i = 0; i < count; i++) {
      const ForwardRequest& r = *entries[i].request;
      const KvCacheView& kc = *entries[i].cache;
      const int64_t n = static_cast<int64_t>(r.tokens.size());
      const int64_t qrow = predicted_only ? pred0[i] : row0[i];
      AttentionParams& ap = attention_params[i];
      ap.q = qrows + qrow * qstride;
      ap.n_q = predicted_only ? static_cast<int64_t>(r.predict_rows.size()) : n;
      ap.q_stride = qstride;
      ap.k0 = kc.k[l];
      ap.v0 = kc.v[l];
      ap.n_k0 = r.cache_attend;
      ap.kv0_stride = kvd;
      ap.k1 = k + row0[i] * ldqkv;
      ap.v1 = v + row0[i] * ldqkv;
      ap.n_k1 = r.attend_self ? n : 0;
      ap.kv1_stride = ldqkv;
      ap.n_heads = static_cast<int>(c.n_heads);
      ap.n_kv_heads = static_cast<int>(c.n_kv_heads);
      ap.head_dim = static_cast<int>(hd);
      ap.scale = 1.0f / std::sqrt(static_cast<float>(hd));
      ap.out = att + qrow * d;
      ap.out_stride = d;
    }
    ops.attention_batch(attention_params.data(), count);
    ops.gemm(att, rows, d, w.wo, nullptr, tmp);
    ops.add_rmsnorm(x, tmp, w.ff_norm, rows, d, eps, h);
    ops.project_swiglu(h, rows, d, w.w_gate, w.w_up, gate_up, act);
    ops.gemm_add(act, rows, mlp, w.w_down, tmp, x);
  };

  // The layers segment: the same calls for every forward with the same signature, up to
  // the last layer's cache writes (ForwardOps::segment_begin). A backend that recorded
  // without running it (a failed graph capture) asks for it once more.
  const std::string signature = layers_signature(entries, count);
  const int64_t last = c.n_layers - 1;
  for (int attempt = 0;; attempt++) {
    ops.segment_begin(signature);
    ops.upload(dev_tokens, tokens.data(), sizeof(int32_t) * R);
    ops.upload(dev_positions, positions.data(), sizeof(int32_t) * R);
    ops.embedding(m.embedding, dev_tokens, total_rows, x);
    for (int64_t l = 0; l < last; l++) {
      layer_front(l);
      layer_back(l, q, ldqkv, false);
    }
    layer_front(last);
    if (ops.segment_end()) break;
    if (attempt > 0) throw std::runtime_error("the backend could not run the layers of a forward it asked to rerun");
  }

  // The last layer goes on with the predicted rows only when there are fewer of them:
  // every row's keys and values are written, nothing reads the others. Their queries are
  // gathered into tmp (free until the output projection).
  ops.upload(dev_gather, gather.data(), sizeof(int32_t) * P);
  ops.upload(dev_keys, keys.data(), sizeof(uint64_t) * P);
  if (compact) {
    ops.gather_rows(q, ldqkv, d, dev_gather, total_pred, tmp);
    ops.gather_rows(x, d, d, dev_gather, total_pred, att);
    ops.copy(x, att, sizeof(float) * P * d);
    layer_back(last, tmp, d, true);
  } else {
    layer_back(last, q, ldqkv, false);
  }

  // Final norm and LM head on the predicted rows, in predictRows order.
  if (xf != x) ops.gather_rows(x, d, d, dev_gather, total_pred, xf);
  ops.rmsnorm(xf, m.final_norm, total_pred, d, eps, xf);
  ops.gemm(xf, total_pred, d, m.lm_head.first_rows(vocab), nullptr, logits);

  for (size_t i = 0; i < count; i++) {
    const ForwardRequest& r = *entries[i].request;
    ConfidenceParams cp;
    cp.logits = logits + pred0[i] * vocab;
    cp.n_rows = static_cast<int64_t>(r.predict_rows.size());
    cp.vocab = vocab;
    cp.row_stride = vocab;
    cp.kind = r.confidence;
    cp.temperature = r.temperature;
    cp.confidence_temperature = r.confidence_temperature;
    cp.seed = r.seed;
    cp.row_keys = dev_keys + pred0[i];
    cp.out_ids = dev_ids + pred0[i];
    cp.out_conf = conf + pred0[i];
    ops.confidence(cp);
  }
  for (size_t i = 0; i < count; i++) {
    const ForwardRequest& r = *entries[i].request;
    ForwardResult& out = *entries[i].result;
    const size_t np = r.predict_rows.size();
    out.token_ids.resize(np);
    out.confidences.resize(np);
    ops.download(out.token_ids.data(), dev_ids + pred0[i], sizeof(int32_t) * np);
    ops.download(out.confidences.data(), conf + pred0[i], sizeof(float) * np);
    if (r.return_logits) {
      out.logits.resize(np * static_cast<size_t>(vocab));
      ops.download(out.logits.data(), logits + pred0[i] * vocab, sizeof(float) * np * vocab);
    } else {
      out.logits.clear();
    }
  }
  ops.finish();
}

}  // namespace sdllm
