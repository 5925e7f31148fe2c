// The CPU backend's ops: the reference every other backend is tested against.
// Each op has a CUDA twin in cuda/<op>.cu with the same parameter struct.
// Activations are float32 row-major; weights are WeightViews in their file dtype.
#pragma once
#include <cstdint>
#include <functional>

#include "dtype.h"
#include "rng.h"
#include "threadpool.h"

namespace sdllm {

// out[i, :] = table[ids[i], :] widened to float32.
void op_embedding(const WeightView& table, const int32_t* ids, int64_t n, float* out);

// out[i, :] = x[i, :] / sqrt(mean(x[i, :]^2) + eps) * w; out may alias x.
void op_rmsnorm(const float* x, const WeightView& w, int64_t n, int64_t d, float eps, float* out);

// In-place rotate-half RoPE on x[n, n_heads * head_dim] (row stride `row_stride` floats):
// for j < head_dim/2, angle = pos[i] * theta^(-2j/head_dim) in float32,
// (a, b) = (x[j], x[j + head_dim/2]) -> (a cos - b sin, b cos + a sin).
void op_rope(float* x, int64_t n, int64_t row_stride, int n_heads, int head_dim, const int32_t* pos,
             float theta);
// op_rope in two parts, so that a forward computes each row's cos/sin once for q and k of
// every layer: the tables cs, sn [n][head_dim / 2], then the rotation (same floats).
void op_rope_angles(const int32_t* pos, int64_t n, int head_dim, float theta, float* cs, float* sn);
void op_rope_apply(float* x, int64_t n, int64_t row_stride, int n_heads, int head_dim, const float* cs,
                   const float* sn);

// y[m, w.rows] = x[m, k] * w^T (+ bias), w = [w.rows, k]. Threads split the output.
// Q8_0 weights quantize x per row and group of 32 first (cpp/ops/gemm_q8.cpp). For every
// dtype, row i of y does not depend on m or on the other rows, bit for bit.
void op_gemm(const float* x, int64_t m, int64_t k, const WeightView& w, const WeightView* bias, float* y,
             ThreadPool& pool);
// The same with y's rows ldy >= w.rows floats apart: the columns past w.rows are not touched,
// so several GEMMs can write their outputs side by side (fused q|k|v, gate|up).
void op_gemm(const float* x, int64_t m, int64_t k, const WeightView& w, const WeightView* bias, float* y,
             int64_t ldy, ThreadPool& pool);

// Several GEMMs of one input, side by side, in one job over the pool: weight j's outputs
// are y[:, o_j : o_j + w[j]->rows] (o_j the sum of the earlier weights' rows, row stride
// ldy), plus bias[j] when bias and bias[j] are not null; each element is op_gemm's, bit for
// bit. Q8_0 activations are quantized once for all the weights.
// The epilogue, when given, runs on each block of finished outputs, on the thread that
// computed it while the block is in its cache: block(weight, i0, i1, c0, c1) for rows
// [i0, i1) and weight columns [c0, c1) (paired: weight is -1 and columns [c0, c1) of every
// weight are done). A block's column range starts at a multiple of `align` (0: any) and
// ends at one or at the weight's end; the blocks of one call partition all outputs.
// paired: every weight has the same rows, and a block holds the same columns of each
// (gate and up for SwiGLU); otherwise a block lies within one weight.
struct ProjectEpilogue {
  int64_t align = 0;
  bool paired = false;
  std::function<void(int weight, int64_t i0, int64_t i1, int64_t c0, int64_t c1)> block;
};
void op_project(const float* x, int64_t m, int64_t k, const WeightView* const* w, const WeightView* const* bias,
                int count, float* y, int64_t ldy, ThreadPool& pool, const ProjectEpilogue* epilogue = nullptr);

// out[i] = silu(gate[i]) * up[i]
void op_swiglu(const float* gate, const float* up, int64_t n, float* out);

// y[i] += x[i]
void op_add(float* y, const float* x, int64_t n);

// Row-wise and elementwise ops go on the pool from this many elements: below it, waking a
// thread costs more than it saves (a job is ~1-2 us to hand over in this project's VM).
constexpr int64_t kPoolMinElements = 1 << 11;

// The same four ops split over a pool (rows, or chunks of 8-aligned elements): results are
// those of the single-threaded calls above, bit for bit, whatever the pool size. Small
// inputs run on the calling thread.
void op_embedding(const WeightView& table, const int32_t* ids, int64_t n, float* out, ThreadPool& pool);
void op_rmsnorm(const float* x, const WeightView& w, int64_t n, int64_t d, float eps, float* out, ThreadPool& pool);
void op_swiglu(const float* gate, const float* up, int64_t n, float* out, ThreadPool& pool);
void op_add(float* y, const float* x, int64_t n, ThreadPool& pool);
// residual += delta, then out = rmsnorm(residual) * w, row by row in one pass over the
// pool: the same floats as op_add then op_rmsnorm, with one job and one read of each row.
void op_add_rmsnorm(float* residual, const float* delta, const WeightView& w, int64_t n, int64_t d, float eps,
                    float* out, ThreadPool& pool);

// Bidirectional (no mask) attention of n_q query rows over two key/value segments:
// segment 0 (usually the KV cache) then segment 1 (usually the new rows themselves).
// Either segment may be empty (n = 0). Rows are [n_heads * head_dim] for q/out and
// [n_kv_heads * head_dim] for k/v with the given row strides (in floats).
// GQA: query head h reads kv head h / (n_heads / n_kv_heads). Online softmax.
struct AttentionParams {
  const float* q = nullptr;
  int64_t n_q = 0, q_stride = 0;
  const float* k0 = nullptr;
  const float* v0 = nullptr;
  int64_t n_k0 = 0, kv0_stride = 0;
  const float* k1 = nullptr;
  const float* v1 = nullptr;
  int64_t n_k1 = 0, kv1_stride = 0;
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float scale = 0.f;  // usually 1/sqrt(head_dim)
  float* out = nullptr;
  int64_t out_stride = 0;
};
void op_attention(const AttentionParams& p, ThreadPool& pool);
// op_attention of each of `count` calls (they must not write each other's inputs); the
// outputs equal the calls made one by one, bit for bit.
void op_attention_batch(const AttentionParams* ps, size_t count, ThreadPool& pool);

// Confidence kinds of decoding.md: prob = softmax(l)[x0]; margin = p(top1) - p(top2);
// entropy = sum p log p (higher is more certain); random = U(0,1) from the counter RNG.
enum class ConfidenceKind : int32_t { Prob = 0, Margin = 1, Entropy = 2, Random = 3 };

// One pass over each requested logits row: x0 (argmax, lowest id on ties; or the
// Gumbel-max sample argmax(l - T*log(-log u)) when temperature > 0) and its confidence
// from the un-noised softmax of l / confidence_temperature (1 = the raw logits, as
// LLaDA's references; Dream's sample_tokens divides the logits by T before its softmax).
// Softmax sums are max-subtracted and accumulated in double.
struct ConfidenceParams {
  const float* logits = nullptr;
  int64_t n_rows = 0, vocab = 0, row_stride = 0;
  ConfidenceKind kind = ConfidenceKind::Prob;
  float temperature = 0.f;
  float confidence_temperature = 1.f;  // > 0; confidences from softmax(l / confidence_temperature)
  uint64_t seed = 0;
  const uint64_t* row_keys = nullptr;  // per-row RNG stream id (used when temperature > 0 or kind == Random)
  int32_t* out_ids = nullptr;
  float* out_conf = nullptr;
};
void op_confidence(const ConfidenceParams& p, ThreadPool& pool);

// op_confidence's max pass over one row of n logits, on the current path (scalar, AVX2 or
// AVX-512): the max, its first index (-1 if none is above -inf) and the runner-up. For
// test_ops, which checks that every path finds the same.
struct ConfidenceMax {
  float max, second;
  int64_t arg;
};
ConfidenceMax confidence_max_pass(const float* l, int64_t n);

}  // namespace sdllm
