// The CUDA backend's kernels, as host functions that launch them on a stream.
// Plain C++: include it from host code compiled by any compiler. All pointers in the
// parameter structs are device pointers; WeightView::data too. Every launcher returns
// the cudaError_t of its launch as an int (0 = success) and does not synchronise.
// The semantics of each op are those of its CPU twin in cpp/ops.h; the kernels are
// tested against it by running their source on the CPU (test/native/cuda/, see
// docs/CUDA_TESTING.md).
#pragma once
#include <cstddef>
#include <cstdint>

#include "../cpp/dtype.h"
#include "../cpp/ops.h"

namespace sdllm {
namespace cuda {

// cuda/embedding.cu: out[i, :] = table[ids[i], :] widened to float32 (zero row for an
// out-of-range id, as op_embedding).
struct EmbeddingParams {
  WeightView table;  // [vocab, d]
  const int32_t* ids = nullptr;
  int64_t n = 0;
  float* out = nullptr;  // [n, d]
};
int embedding(const EmbeddingParams& p, void* stream);

// cuda/rmsnorm.cu: out = rmsnorm(x) * w (op_rmsnorm); out may alias x.
// Fused variant when `residual` is set: residual += x, then out = rmsnorm(residual) * w
// (op_add then op_rmsnorm). out may alias x but not residual.
struct RMSNormParams {
  const float* x = nullptr;  // [n, d]
  float* residual = nullptr;  // optional [n, d], updated in place
  WeightView w;              // [1, d]
  int64_t n = 0, d = 0;
  float eps = 1e-5f;
  float* out = nullptr;  // [n, d]
};
int rmsnorm(const RMSNormParams& p, void* stream);

// cuda/rope.cu: in-place rotate-half RoPE from explicit position ids (op_rope).
struct RopeParams {
  float* x = nullptr;
  int64_t n = 0, row_stride = 0;  // row stride in floats
  int n_heads = 0, head_dim = 0;
  const int32_t* pos = nullptr;  // [n]
  float theta = 10000.f;
};
int rope(const RopeParams& p, void* stream);

// cuda/swiglu.cu: out[r, c] = silu(gate[r, c]) * up[r, c] (op_swiglu per row); strides in
// floats, so that gate and up may be the two halves of one fused GEMM output.
struct SwigluParams {
  const float* gate = nullptr;
  const float* up = nullptr;
  int64_t rows = 0, cols = 0, in_stride = 0, out_stride = 0;
  float* out = nullptr;  // may alias gate or up when the strides agree
};
int swiglu(const SwigluParams& p, void* stream);

// cuda/add.cu: y[i] += x[i] (op_add), and the bias add after a GEMM (Dream's QKV bias):
// y[r, c] += bias[c].
struct AddParams {
  float* y = nullptr;
  const float* x = nullptr;
  int64_t n = 0;
};
int add(const AddParams& p, void* stream);
struct BiasAddParams {
  float* y = nullptr;
  int64_t rows = 0, cols = 0, stride = 0;
  WeightView bias;  // [1, cols]
};
int bias_add(const BiasAddParams& p, void* stream);

// cuda/kv_cache.cu: writes n K and V rows into cache slots [start, start + n) of one
// layer's cache ([capacity, n_kv_heads * head_dim] each): append after the prefix, or
// overwrite a range (dual cache). With `pos` set, K is rotated (op_rope) on the way in;
// with pos == nullptr K is taken as already rotated.
struct KVWriteParams {
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t n = 0, src_stride = 0;  // row stride of k and v in floats
  float* k_cache = nullptr;
  float* v_cache = nullptr;
  int64_t start = 0, capacity = 0;
  int n_kv_heads = 0, head_dim = 0;
  const int32_t* pos = nullptr;
  float theta = 10000.f;
};
int kv_cache_write(const KVWriteParams& p, void* stream);

// cuda/attention.cu: op_attention (AttentionParams of cpp/ops.h, device pointers).
// splits == 1: one pass. splits > 1: the keys are cut into `splits` ranges
// (flash-decoding), each writes a partial (max, sum, unnormalised output) to the
// workspace and a combine kernel merges them. splits == 0 picks with
// attention_auto_splits. The workspace must hold attention_workspace_bytes(p, splits).
struct AttentionLaunch {
  int splits = 0;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  int sm_count = 0;  // for splits == 0; 0 = ask the device
  bool force_generic = false;  // tests: run the run-time head_dim kernel for 64/128 too
};
int attention_auto_splits(const AttentionParams& p, int sm_count);
size_t attention_workspace_bytes(const AttentionParams& p, int splits);
int attention(const AttentionParams& p, const AttentionLaunch& l, void* stream);

// cuda/attention_tc.cu: the same op on BF16 tensor cores (mma.sync m16n8k16, F32
// accumulation; q/k/v and the softmax weights rounded to BF16, so results differ from
// `attention` by ~1e-5 normalised MSE), for head_dim 64 and 128 with n_heads a multiple
// of n_kv_heads (attention_tc_supported) on sm_80 or newer. AttentionLaunch as above
// (force_generic is ignored); splits == 0 picks attention_tc_auto_splits(p, sm_count);
// with splits > 1 the workspace must hold attention_tc_workspace_bytes(p, splits) bytes.
bool attention_tc_supported(const AttentionParams& p);
int attention_tc_auto_splits(const AttentionParams& p, int sm_count);
size_t attention_tc_workspace_bytes(const AttentionParams& p, int splits);
int attention_tc(const AttentionParams& p, const AttentionLaunch& l, void* stream);

// cuda/confidence.cu: op_confidence for the requested rows (ConfidenceParams of
// cpp/ops.h, device pointers; confidence_temperature applied as in the CPU op). Each
// row's vocabulary is split into confidence_slices(n_rows, vocab, sm_count) slices, one
// block each, merged by a second kernel; the slices' partial states go to `workspace`,
// which must hold confidence_workspace_bytes(n_rows, vocab, sm_count) bytes (0 when one
// slice suffices; a smaller workspace gives fewer slices, none gives one per row).
// The two-argument form runs one block per row and needs no workspace.
int confidence_slices(int64_t n_rows, int64_t vocab, int sm_count);
size_t confidence_workspace_bytes(int64_t n_rows, int64_t vocab, int sm_count);
int confidence(const ConfidenceParams& p, void* workspace, size_t workspace_bytes, int sm_count, void* stream);
int confidence(const ConfidenceParams& p, void* stream);

// The error string of a launcher's return value.
const char* error_string(int err);

}  // namespace cuda
}  // namespace sdllm
