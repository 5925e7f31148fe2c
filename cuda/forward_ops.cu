// forward_ops.cu: ForwardOps on the GPU (see forward_ops.h). Launchers and buffers only:
// the order of the model's steps is cpp/forward.cpp's.
// GEMMs: y[m, N] = x[m, K] W[N, K]^T is, in cuBLAS's column-major terms,
// C[N, m] = op(A = W as [K, N], lda K)^T * (B = x as [K, m], ldb K), ldc N.
#include "forward_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend.h"
#include "backend_ops.h"
#include "sdllm_cuda.h"

namespace sdllm {
namespace cuda {

namespace {

using namespace backend_detail;

class CudaForwardOps final : public ForwardOps {
 public:
  explicit CudaForwardOps(SdllmCudaModel& m) : m_(m) {
    m_.last_launches = m_.last_gemms = 0;
    m_.last_replayed = false;
    m_.forwards++;
  }
  ~CudaForwardOps() override {
    if (mode_ == Mode::Capture) {  // an exception left the segment: end the capture, drop it
      cudaGraph_t graph = nullptr;
      cudaStreamEndCapture(m_.stream, &graph);
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();
    }
  }

  void begin(const ScratchPlan& plan) override { reserve_scratch(m_, plan); }
  void segment_begin(const std::string& signature) override;
  bool segment_end() override;
  float* scratch(Scratch id, size_t n) override { return m_.f32[static_cast<int>(id)].reserve(n, "activations"); }
  int32_t* index(Index id, size_t n) override { return m_.i32[static_cast<int>(id)].reserve(n, "request"); }
  uint64_t* rng_keys(size_t n) override { return m_.keys.reserve(n, "the RNG keys"); }
  // In the layers segment the data goes through page-locked staging (a graph's copy node
  // reads it when the graph runs); elsewhere straight from the caller's memory.
  void upload(void* dst, const void* host, size_t bytes) override {
    if (!in_segment_) return memcpy(dst, host, bytes, cudaMemcpyHostToDevice);
    unsigned char* staged = m_.pinned + pinned_used_;
    if (pinned_used_ + bytes > m_.pinned_bytes) throw Failure("upload staging too small (reserve_scratch)");
    std::memcpy(staged, host, bytes);
    pinned_used_ += (bytes + 7) / 8 * 8;
    run([&] { memcpy(dst, staged, bytes, cudaMemcpyHostToDevice); });
  }
  void download(void* host, const void* src, size_t bytes) override { memcpy(host, src, bytes, cudaMemcpyDeviceToHost); }
  void copy(void* dst, const void* src, size_t bytes) override {
    run([&] { memcpy(dst, src, bytes, cudaMemcpyDeviceToDevice); });
  }

  void embedding(const WeightView& table, const int32_t* ids, int64_t n, float* out) override {
    run([&] {
      EmbeddingParams p;
      p.table = table;
      p.ids = ids;
      p.n = n;
      p.out = out;
      launched(cuda::embedding(p, m_.stream), "embedding kernel");
    });
  }
  void rmsnorm(const float* x, const WeightView& w, int64_t n, int64_t d, float eps, float* out) override {
    norm(x, nullptr, w, n, d, eps, out);
  }
  // The fused kernel: residual += delta, then out = rmsnorm(residual).
  void add_rmsnorm(float* residual, const float* delta, const WeightView& w, int64_t n, int64_t d, float eps,
                   float* out) override {
    norm(delta, residual, w, n, d, eps, out);
  }
  void gemm(const float* x, int64_t m, int64_t k, const WeightView& w, const WeightView* bias, float* y) override {
    gemm_into(x, m, k, w, bias, y, w.rows);
  }
  // Weights uploaded back to back (upload_group in backend.cu) run as one GEMM.
  void project(const float* x, int64_t m, int64_t k, const WeightView* const* w, const WeightView* const* bias,
               int count, float* y, int64_t ldy) override {
    const WeightView fused = rows_back_to_back(w, count);
    if (!fused.empty()) {
      const WeightView* b = nullptr;
      WeightView fused_bias;
      if (bias) {
        fused_bias = bias_back_to_back(bias, count);
        b = fused_bias.empty() ? nullptr : &fused_bias;
      }
      if (!bias || b || all_null(bias, count)) {
        gemm_into(x, m, k, fused, b, y, ldy);
        return;
      }
    }
    int64_t col = 0;
    for (int j = 0; j < count; j++) {
      gemm_into(x, m, k, *w[j], bias ? bias[j] : nullptr, y + col, ldy);
      col += w[j]->rows;
    }
  }
  void rope(float* x, int64_t n, int64_t stride, int heads, int head_dim, const int32_t* pos, float theta) override {
    run([&] {
      RopeParams p;
      p.x = x;
      p.n = n;
      p.row_stride = stride;
      p.n_heads = heads;
      p.head_dim = head_dim;
      p.pos = pos;
      p.theta = theta;
      launched(cuda::rope(p, m_.stream), "rope kernel");
    });
  }
  void gather_rows(const float* src, int64_t src_stride, int64_t width, const int32_t* rows, int64_t n,
                   float* dst) override {
    run([&] {
      launched(cuda::gather_rows(src, src_stride, width, rows, n, dst, m_.stream), "gather kernel");
    });
  }
  void write_cache(float* k_cache, float* v_cache, const float* k, const float* v, int64_t src_stride, int64_t rows,
                   int64_t width) override {
    run([&] {
      KVWriteParams p;  // keys arrive rotated (pos == nullptr): a strided copy of both
      p.k = k;
      p.v = v;
      p.n = rows;
      p.src_stride = src_stride;
      p.k_cache = k_cache;
      p.v_cache = v_cache;
      p.start = 0;
      p.capacity = rows;
      p.n_kv_heads = 1;
      p.head_dim = static_cast<int>(width);
      launched(kv_cache_write(p, m_.stream), "kv cache kernel");
    });
  }
  // BF16 precision: the tensor-core kernel where it applies (head_dim 64/128); the exact
  // mode keeps the float32 kernel, whose arithmetic follows the CPU op.
  void attention(const AttentionParams& p) override {
    run([&] {
      const int sms = global().sm_count;
      AttentionLaunch l;
      l.sm_count = sms;
      const bool tc = m_.gemm_mode == SDLLM_CUDA_GEMM_WEIGHT_DTYPE && attention_tc_supported(p);
      l.splits = tc ? attention_tc_auto_splits(p, sms) : attention_auto_splits(p, sms);
      l.workspace_bytes = tc ? attention_tc_workspace_bytes(p, l.splits) : attention_workspace_bytes(p, l.splits);
      l.workspace = l.workspace_bytes ? m_.attn_ws.reserve(l.workspace_bytes, "attention workspace") : nullptr;
      launched(tc ? attention_tc(p, l, m_.stream) : cuda::attention(p, l, m_.stream), "attention kernel");
    });
  }
  void swiglu(const float* gate, const float* up, int64_t rows, int64_t cols, int64_t in_stride, float* out) override {
    run([&] {
      SwigluParams p;
      p.gate = gate;
      p.up = up;
      p.rows = rows;
      p.cols = cols;
      p.in_stride = in_stride;
      p.out_stride = cols;
      p.out = out;
      launched(cuda::swiglu(p, m_.stream), "swiglu kernel");
    });
  }
  void add(float* y, const float* x, int64_t n) override {
    run([&] {
      AddParams p;
      p.y = y;
      p.x = x;
      p.n = n;
      launched(cuda::add(p, m_.stream), "add kernel");
    });
  }
  void confidence(const ConfidenceParams& p) override;
  void finish() override { check(static_cast<int>(cudaStreamSynchronize(m_.stream)), "the forward pass"); }

 private:
  void gemm_into(const float* x, int64_t m, int64_t k, const WeightView& w, const WeightView* bias, float* y,
                 int64_t ldy);
  static bool all_null(const WeightView* const* b, int n) {
    for (int j = 0; j < n; j++)
      if (b[j]) return false;
    return true;
  }
  // The weights as one [sum of rows, cols] view when their rows follow each other in
  // memory with one dtype; empty otherwise.
  static WeightView rows_back_to_back(const WeightView* const* w, int n) {
    WeightView f = *w[0];
    const unsigned char* next = static_cast<const unsigned char*>(f.data) + f.rows * f.cols * dtype_size(f.dtype);
    for (int j = 1; j < n; j++) {
      if (w[j]->data != next || w[j]->dtype != f.dtype || w[j]->cols != f.cols) return WeightView{};
      next += w[j]->rows * w[j]->cols * dtype_size(f.dtype);
      f.rows += w[j]->rows;
    }
    return f;
  }
  // [1, n] biases as one [1, sum of n] view when contiguous; empty if any is absent.
  static WeightView bias_back_to_back(const WeightView* const* b, int n) {
    if (!b[0] || b[0]->empty()) return WeightView{};
    WeightView f = *b[0];
    const unsigned char* next = static_cast<const unsigned char*>(f.data) + f.cols * dtype_size(f.dtype);
    for (int j = 1; j < n; j++) {
      if (!b[j] || b[j]->data != next || b[j]->dtype != f.dtype) return WeightView{};
      next += b[j]->cols * dtype_size(f.dtype);
      f.cols += b[j]->cols;
    }
    return f;
  }
  enum class Mode { Direct, Capture, Replay };
  // An op's launches: skipped while the layers segment is replayed; while it is captured, a
  // failure marks the capture unusable instead of throwing (the stream must leave capture).
  template <class Issue>
  void run(Issue&& issue) {
    if (mode_ == Mode::Replay) return;
    if (mode_ != Mode::Capture) return issue();
    try {
      issue();
    } catch (const std::exception&) {
      capture_failed_ = true;
    }
  }
  // The addresses of every buffer a recorded segment uses: a graph is valid only as long
  // as none of them moved (grew).
  std::string buffer_addresses() const {
    std::vector<const void*> a;
    for (const auto& b : m_.f32) a.push_back(b.p);
    for (const auto& b : m_.i32) a.push_back(b.p);
    a.insert(a.end(), {m_.keys.p, m_.widen.p, m_.narrow.p, m_.attn_ws.p, m_.pinned});
    return std::string(reinterpret_cast<const char*>(a.data()), sizeof(const void*) * a.size());
  }

  // Every kernel launch, copy and cuBLAS call of a forward goes through these two: they
  // count what the benchmark reports as launches per forward.
  void launched(int err, const char* what) {
    m_.last_launches++;
    check(err, what);
  }
  void blas(int status, const char* what) {
    m_.last_launches++;
    m_.last_gemms++;
    check_blas(status, what);
  }
  void memcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    launched(static_cast<int>(cudaMemcpyAsync(dst, src, bytes, kind, m_.stream)), "copy");
  }
  void norm(const float* x, float* residual, const WeightView& w, int64_t n, int64_t d, float eps, float* out) {
    run([&] {
      RMSNormParams p;
      p.x = x;
      p.residual = residual;
      p.w = w;
      p.n = n;
      p.d = d;
      p.eps = eps;
      p.out = out;
      launched(cuda::rmsnorm(p, m_.stream), "rmsnorm kernel");
    });
  }

  SdllmCudaModel& m_;
  Mode mode_ = Mode::Direct;
  bool in_segment_ = false, capture_failed_ = false;
  size_t pinned_used_ = 0;
  std::string key_;
};

constexpr size_t kMaxGraphs = 64;       // captured segments kept per model
constexpr size_t kMaxSightings = 4096;  // signatures remembered while waiting for a second sighting

void CudaForwardOps::segment_begin(const std::string& signature) {
  in_segment_ = true;
  pinned_used_ = 0;
  capture_failed_ = false;
  mode_ = Mode::Direct;
  if (!m_.graphs_enabled) return;
  key_ = signature + buffer_addresses();
  if (m_.graphs.count(key_)) {
    mode_ = Mode::Replay;
    return;
  }
  if (m_.sightings.size() >= kMaxSightings) m_.sightings.clear();
  int& seen = m_.sightings[key_];
  if (seen < 0 || ++seen < 2) return;  // the first sighting runs directly (and sizes every buffer)
  if (cudaStreamBeginCapture(m_.stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
    cudaGetLastError();
    seen = -1;
    return;
  }
  mode_ = Mode::Capture;
}

bool CudaForwardOps::segment_end() {
  in_segment_ = false;
  const Mode mode = mode_;
  mode_ = Mode::Direct;
  if (mode == Mode::Replay) {
    launched(static_cast<int>(cudaGraphLaunch(m_.graphs[key_], m_.stream)), "graph launch");
    m_.graph_replays++;
    m_.last_replayed = true;
    return true;
  }
  if (mode != Mode::Capture) return true;
  cudaGraph_t graph = nullptr;
  const bool ended = cudaStreamEndCapture(m_.stream, &graph) == cudaSuccess;
  cudaGraphExec_t exec = nullptr;
  const bool ok = ended && !capture_failed_ && graph && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
  if (graph) cudaGraphDestroy(graph);
  if (!ok) {  // the recorded calls never ran: the forward issues them again, directly
    cudaGetLastError();
    m_.sightings[key_] = -1;
    return false;
  }
  if (m_.graphs.size() >= kMaxGraphs) m_.drop_graphs();
  m_.graphs[key_] = exec;
  m_.graph_captures++;
  launched(static_cast<int>(cudaGraphLaunch(exec, m_.stream)), "graph launch");
  return true;
}

void CudaForwardOps::gemm_into(const float* x, int64_t m, int64_t k, const WeightView& w, const WeightView* bias,
                               float* y, int64_t ldy) {
  run([&] {
    const Cublas& b = *global().cublas;
    const int64_t n_out = w.rows;
    if (m > 0x7fffffff || k > 0x7fffffff || n_out > 0x7fffffff)
      throw Failure("GEMM dimensions exceed cuBLAS's int range");
    const float one = 1.f, zero = 0.f;
    const int mi = static_cast<int>(m), ki = static_cast<int>(k), ni = static_cast<int>(n_out);
    const int ldc = static_cast<int>(ldy);
    if (w.dtype == DType::F32) {
      blas(b.gemm_ex(m_.blas, kCublasOpT, kCublasOpN, ni, mi, ki, &one, w.data, kCudaR32F, ki, x, kCudaR32F, ki,
                           &zero, y, kCudaR32F, ldc, kCublasCompute32F, kCublasGemmDefault),
                 "GemmEx (F32)");
    } else if (m_.gemm_mode == SDLLM_CUDA_GEMM_WEIGHT_DTYPE) {
      uint16_t* xn = m_.narrow.reserve(static_cast<size_t>(m * k), "GEMM activations");
      launched(narrow_from_f32(x, m * k, w.dtype, xn, m_.stream), "narrow kernel");
      const int t = w.dtype == DType::BF16 ? kCudaR16BF : kCudaR16F;
      blas(b.gemm_ex(m_.blas, kCublasOpT, kCublasOpN, ni, mi, ki, &one, w.data, t, ki, xn, t, ki, &zero, y,
                           kCudaR32F, ldc, kCublasCompute32F, kCublasGemmDefault),
                 "GemmEx (16-bit)");
    } else {  // EXACT: widen a bounded chunk of weight rows at a time, then an F32 GEMM
      int64_t rows_per = m_.widen_chunk / k;
      if (rows_per < 1) rows_per = 1;
      if (rows_per > n_out) rows_per = n_out;
      float* wf = m_.widen.reserve(static_cast<size_t>(rows_per * k), "widened weights");
      const unsigned char* base = static_cast<const unsigned char*>(w.data);
      for (int64_t r0 = 0; r0 < n_out; r0 += rows_per) {
        const int64_t rc = n_out - r0 < rows_per ? n_out - r0 : rows_per;
        launched(widen_to_f32(base + r0 * k * dtype_size(w.dtype), w.dtype, rc * k, wf, m_.stream), "widen kernel");
        blas(b.gemm_ex(m_.blas, kCublasOpT, kCublasOpN, static_cast<int>(rc), mi, ki, &one, wf, kCudaR32F, ki, x,
                             kCudaR32F, ki, &zero, y + r0, kCudaR32F, ldc, kCublasCompute32F, kCublasGemmDefault),
                   "GemmEx (widened)");
      }
    }
    if (bias && !bias->empty()) {
      BiasAddParams bp;
      bp.y = y;
      bp.rows = m;
      bp.cols = n_out;
      bp.stride = ldy;
      bp.bias = *bias;
      launched(bias_add(bp, m_.stream), "bias_add kernel");
    }
  });
}

// The sliced reduction (confidence.cu v2): each row's vocabulary over several blocks and
// a combine pass; the confidence temperature is applied in the kernel, as the CPU op does.
void CudaForwardOps::confidence(const ConfidenceParams& p) {
  const int sms = global().sm_count;
  const size_t bytes = confidence_workspace_bytes(p.n_rows, p.vocab, sms);
  void* ws = bytes ? m_.conf_ws.reserve(bytes, "confidence workspace") : nullptr;
  launched(cuda::confidence(p, ws, bytes, sms, m_.stream), "confidence kernel");
}

}  // namespace

std::unique_ptr<ForwardOps> cuda_forward_ops(SdllmCudaModel& model) { return std::make_unique<CudaForwardOps>(model); }

void reserve_scratch(SdllmCudaModel& m, const ScratchPlan& plan) {
  for (int i = 0; i < static_cast<int>(ForwardOps::Scratch::Count); ++i)
    if (plan.floats[i]) m.f32[i].reserve(plan.floats[i], "activations");
  for (int i = 0; i < static_cast<int>(ForwardOps::Index::Count); ++i)
    if (plan.ints[i]) m.i32[i].reserve(plan.ints[i], "request");
  if (plan.keys) m.keys.reserve(plan.keys, "the RNG keys");
  const ModelConfig& c = m.weights.config;
  const int64_t rows = static_cast<int64_t>(plan.ints[static_cast<int>(ForwardOps::Index::Tokens)]);
  const int64_t predicted = static_cast<int64_t>(plan.keys);
  const int64_t widest_k = c.mlp_hidden > c.d_model ? c.mlp_hidden : c.d_model;
  if (m.gemm_mode == SDLLM_CUDA_GEMM_WEIGHT_DTYPE && rows > 0)
    m.narrow.reserve(static_cast<size_t>(rows * widest_k), "GEMM activations");
  const size_t conf = confidence_workspace_bytes(predicted, c.vocab_size, global().sm_count);
  if (conf) m.conf_ws.reserve(conf, "confidence workspace");
  // Staging of the layers segment's uploads: tokens and positions, 8-byte aligned each.
  const size_t staged = 2 * ((static_cast<size_t>(rows) * sizeof(int32_t) + 7) / 8 * 8);
  if (staged > m.pinned_bytes) {
    const size_t grown = std::max(staged, 2 * m.pinned_bytes);
    if (m.pinned) cudaFreeHost(m.pinned);
    m.pinned = nullptr;
    m.pinned_bytes = 0;
    void* p = nullptr;
    check(static_cast<int>(cudaMallocHost(&p, grown)), "page-locked staging");
    m.pinned = static_cast<unsigned char*>(p);
    m.pinned_bytes = grown;
  }
}

}  // namespace cuda
}  // namespace sdllm
