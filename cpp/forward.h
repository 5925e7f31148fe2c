// The forward pass, written once: the model's computation over a batch of sequences as
// calls of ForwardOps, an interface each backend implements (the CPU ops of cpp/ops/ in
// cpu_forward_ops.cpp; the CUDA kernels and cuBLAS in cuda/forward_ops.cu). Both the addon
// and the CUDA library compile forward.cpp; neither carries its own copy of the steps.
//
// A batch holds N sequences, each with its own KV cache and request (session.h's
// ForwardRequest). The projections and the MLP run over the rows of all sequences
// together; RoPE, cache writes, attention and the confidence reduction run per sequence
// with its own positions, cache and options. Every op computes each row from that row
// alone, in an order that does not depend on the other rows (docs/ARCHITECTURE.md,
// "Batches"), so a sequence's outputs in a batch equal its outputs alone, bit for bit.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dtype.h"
#include "model.h"
#include "ops.h"

namespace sdllm {

// One sequence's forward (the N-API request of types/native.d.ts).
struct ForwardRequest {
  std::vector<int32_t> tokens;      // the rows fed to the model
  std::vector<int32_t> positions;   // their true position ids (RoPE), one per row
  int64_t cache_attend = 0;         // keys/values from cache slots [0, cache_attend)
  int64_t cache_write_start = -1;   // >= 0: rows [0, cache_write_rows) go to slots [start, start + rows)
  int64_t cache_write_rows = 0;     //       before attention (RoPE'd keys, as the references rotate them)
  bool attend_self = true;          // also attend to the new rows themselves (after the cache segment)
  std::vector<int32_t> predict_rows;  // rows whose logits and top-1/confidence are wanted
  ConfidenceKind confidence = ConfidenceKind::Prob;
  float temperature = 0.f;
  float confidence_temperature = 1.f; // confidences from softmax(logits / this) (Dream: T when T > 0)
  uint64_t seed = 0;
  uint64_t noise_counter = 0;       // distinguishes the RNG draws of successive forwards
  bool return_logits = false;
};

struct ForwardResult {
  std::vector<int32_t> token_ids;   // per predict row
  std::vector<float> confidences;   // per predict row
  std::vector<float> logits;        // [predict rows, vocab] when asked
};

// What a forward reads of a model: its dimensions and views of its weights, in host
// memory (CPU) or device memory (CUDA). Built once per model.
struct ForwardModel {
  ModelConfig config;
  WeightView embedding, final_norm, lm_head;
  std::vector<LayerWeights> layers;
};
ForwardModel forward_model_of(const Model& m);  // host views of a loaded checkpoint

// One sequence's KV cache: per layer, keys (RoPE applied) and values, [capacity, kv_dim]
// float32 each, in the backend's memory.
struct KvCacheView {
  int64_t capacity = 0;
  std::vector<float*> k, v;
};

// One sequence of a batch: its cache, what it asks, and where its answer goes (host).
struct BatchEntry {
  const KvCacheView* cache = nullptr;
  const ForwardRequest* request = nullptr;
  ForwardResult* result = nullptr;
};

struct ScratchPlan;

// The ops a forward is written in. Pointers are the backend's memory (device pointers on
// CUDA: the forward only offsets them, never dereferences them). Semantics are those of
// the CPU ops in cpp/ops.h. Calls may be asynchronous; finish() completes them all.
class ForwardOps {
 public:
  // Scratch arrays of one forward, valid until finish(). Each id is requested once.
  enum class Scratch { X, H, QKV, Att, Tmp, GateUp, Act, XF, Logits, Conf, Count };
  enum class Index { Tokens, Positions, Gather, Ids, Count };

  virtual ~ForwardOps() = default;
  // Called first, with the scratch the forward will ask for: backends size every buffer
  // here, so that nothing is allocated between the forward's first and last kernel.
  virtual void begin(const ScratchPlan& plan) = 0;
  virtual float* scratch(Scratch id, size_t floats) = 0;
  virtual int32_t* index(Index id, size_t n) = 0;
  virtual uint64_t* rng_keys(size_t n) = 0;
  // Host -> backend and backend -> host copies (host memory stays valid until finish()).
  virtual void upload(void* dst, const void* host, size_t bytes) = 0;
  virtual void download(void* host, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // within the backend

  virtual void embedding(const WeightView& table, const int32_t* ids, int64_t n, float* out) = 0;
  virtual void rmsnorm(const float* x, const WeightView& w, int64_t n, int64_t d, float eps, float* out) = 0;
  // residual += delta, then out = rmsnorm(residual) * w (op_add then op_rmsnorm).
  virtual void add_rmsnorm(float* residual, const float* delta, const WeightView& w, int64_t n, int64_t d, float eps,
                           float* out) = 0;
  // y[m, w.rows] = x[m, k] w^T (+ bias).
  virtual void gemm(const float* x, int64_t m, int64_t k, const WeightView& w, const WeightView* bias, float* y) = 0;
  // Projections of one input written side by side: y[:, o_j : o_j + w_j.rows] = x w_j^T
  // (+ bias_j), o_j = sum of the earlier w_i.rows, row stride ldy. Weights whose rows are
  // contiguous in memory (fused at upload) may run as one GEMM; each output element is the
  // same dot product either way. bias may be nullptr or hold nullptr entries.
  virtual void project(const float* x, int64_t m, int64_t k, const WeightView* const* w, const WeightView* const* bias,
                       int count, float* y, int64_t ldy) = 0;
  virtual void rope(float* x, int64_t n, int64_t row_stride, int n_heads, int head_dim, const int32_t* pos,
                    float theta) = 0;
  // project(), then rope() on the first rope_heads heads of each row of y (q and k, which
  // lead a q|k|v row). A backend may fuse the two; the floats are the same.
  virtual void project_rope(const float* x, int64_t m, int64_t k, const WeightView* const* w,
                            const WeightView* const* bias, int count, float* y, int64_t ldy, int rope_heads,
                            int head_dim, const int32_t* pos, float theta) {
    project(x, m, k, w, bias, count, y, ldy);
    rope(y, m, ldy, rope_heads, head_dim, pos, theta);
  }
  // dst[i, 0:width) = src row rows[i] (row stride src_stride), i < n; dst is contiguous and
  // must not alias src.
  virtual void gather_rows(const float* src, int64_t src_stride, int64_t width, const int32_t* rows, int64_t n,
                           float* dst) = 0;
  // Cache write: rows x width keys and values (row stride src_stride) to contiguous cache
  // rows at k_cache and v_cache.
  virtual void write_cache(float* k_cache, float* v_cache, const float* k, const float* v, int64_t src_stride,
                           int64_t rows, int64_t width) = 0;
  virtual void attention(const AttentionParams& p) = 0;
  // The attention of every sequence of a batch (independent calls): by default one
  // attention() each; a backend may run them as one job.
  virtual void attention_batch(const AttentionParams* p, size_t count) {
    for (size_t i = 0; i < count; i++) attention(p[i]);
  }
  // out[r, c] = silu(gate[r * in_stride + c]) * up[r * in_stride + c]; out is [rows, cols].
  virtual void swiglu(const float* gate, const float* up, int64_t rows, int64_t cols, int64_t in_stride, float* out) = 0;
  virtual void add(float* y, const float* x, int64_t n) = 0;
  // The MLP's input half: gate_up[:, 0:n) = x gate^T, gate_up[:, n:2n) = x up^T (n =
  // gate.rows = up.rows, row stride 2n), then act[m, n] = swiglu of the two halves.
  virtual void project_swiglu(const float* x, int64_t m, int64_t k, const WeightView& gate, const WeightView& up,
                              float* gate_up, float* act) {
    const WeightView* w[2] = {&gate, &up};
    const int64_t n = gate.rows;
    project(x, m, k, w, nullptr, 2, gate_up, 2 * n);
    swiglu(gate_up, gate_up + n, m, n, 2 * n, act);
  }
  // y[m, w.rows] += x w^T (a residual), with tmp [m, w.rows] as scratch.
  virtual void gemm_add(const float* x, int64_t m, int64_t k, const WeightView& w, float* tmp, float* y) {
    gemm(x, m, k, w, nullptr, tmp);
    add(y, tmp, m * w.rows);
  }
  // ConfidenceParams as cpp/ops.h; out_ids/out_conf are backend memory.
  virtual void confidence(const ConfidenceParams& p) = 0;
  // The calls between segment_begin and segment_end (embedding, every layer up to the last
  // layer's cache writes) are the same, parameters and all, for any two forwards with the
  // same signature; only the uploaded tokens and positions differ. A backend may record
  // them once and replay the recording (the CUDA backend's graphs); the forward issues
  // every call either way.
  // segment_end() false: the backend recorded the segment without running it (a capture
  // it could not use) and the forward issues it again, once.
  virtual void segment_begin(const std::string& signature) = 0;
  virtual bool segment_end() = 0;
  // Completes every call since begin(), the downloads included.
  virtual void finish() = 0;
};

// The scratch a forward over `rows` rows with `predicted` predicted rows (all sequences
// together) asks for: floats per Scratch id, ints per Index id, RNG keys. Backends use it
// to size their buffers before the first forward (the CUDA session at creation).
struct ScratchPlan {
  size_t floats[static_cast<int>(ForwardOps::Scratch::Count)] = {};
  size_t ints[static_cast<int>(ForwardOps::Index::Count)] = {};
  size_t keys = 0;
};
ScratchPlan scratch_plan(const ModelConfig& config, int64_t rows, int64_t predicted);

// Throws std::invalid_argument, with the one set of messages both backends give, when a
// request does not fit the model or its cache.
void validate_request(const ForwardRequest& req, const ModelConfig& config, int64_t capacity);

// Validates every entry (and that no cache appears twice), then runs the batch and fills
// each entry's result. Nothing runs when any entry is invalid.
void run_forward(ForwardOps& ops, const ForwardModel& model, const BatchEntry* entries, size_t count);

}  // namespace sdllm
