// SDLLM_OP_TIMES: see op_times.h.
#include "op_times.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace sdllm {

namespace {

// The timed calls; "other" is the bookkeeping (begin, scratch, segments, finish).
enum Op {
  kEmbedding, kRmsnorm, kAddRmsnorm, kGemm, kProject, kRope, kProjectRope, kGatherRows, kWriteCache,
  kAttention, kSwiglu, kAdd, kProjectSwiglu, kGemmAdd, kConfidence, kCopies, kOther, kOpCount
};
const char* const kNames[kOpCount] = {
    "embedding", "rmsnorm", "add_rmsnorm", "gemm", "project", "rope", "project_rope (q|k|v + RoPE)", "gather_rows",
    "write_cache", "attention", "swiglu", "add", "project_swiglu (gate|up + SwiGLU)", "gemm_add (down/out + residual)",
    "confidence", "upload/download/copy", "other (scratch, segments, finish)"};

// Each call's time also goes into a histogram of eighth-octave buckets (2^(1/8), ~9% wide,
// from 64 ns), for the median: on two shared vCPUs a few preempted calls move the mean of an
// op by 10-20%, and the median says what a call usually takes.
constexpr int kBuckets = 256;
constexpr double kBucketBaseNs = 64.0;

int bucket_of(int64_t ns) {
  if (ns <= static_cast<int64_t>(kBucketBaseNs)) return 0;
  const int b = static_cast<int>(8.0 * std::log2(static_cast<double>(ns) / kBucketBaseNs));
  return b < kBuckets ? b : kBuckets - 1;
}

struct Table {
  std::atomic<int64_t> calls[kOpCount] = {};
  std::atomic<int64_t> ns[kOpCount] = {};
  std::atomic<int64_t> histogram[kOpCount][kBuckets] = {};
  std::atomic<int64_t> forwards{0};

  // The geometric middle of the bucket that holds the call at quantile q (0.5: the median), in us.
  double quantile_us(int op, double q) const {
    const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * calls[op].load())));
    int64_t seen = 0;
    for (int b = 0; b < kBuckets; ++b) {
      seen += histogram[op][b].load();
      if (seen >= rank) return kBucketBaseNs * std::exp2((b + 0.5) / 8.0) / 1e3;
    }
    return 0;
  }
  double median_us(int op) const { return quantile_us(op, 0.5); }

  ~Table() {
    int64_t total = 0;
    for (int i = 0; i < kOpCount; ++i) total += ns[i].load();
    if (forwards.load() == 0 || total == 0) return;
    std::fprintf(stderr, "\nSDLLM_OP_TIMES: %lld forwards, %.1f ms in ops (%.3f ms a forward)\n",
                 static_cast<long long>(forwards.load()), total / 1e6, total / 1e6 / forwards.load());
    std::fprintf(stderr, "%-36s %10s %12s %10s %10s %8s %8s %7s\n", "op", "calls", "total ms", "us/call", "median us",
                 "p90 us", "p99 us", "share");
    for (int i = 0; i < kOpCount; ++i) {
      const int64_t c = calls[i].load(), t = ns[i].load();
      if (c == 0) continue;
      std::fprintf(stderr, "%-36s %10lld %12.1f %10.1f %10.1f %8.1f %8.1f %6.1f%%\n", kNames[i],
                   static_cast<long long>(c), t / 1e6, t / 1e3 / c, median_us(i), quantile_us(i, 0.9),
                   quantile_us(i, 0.99), 100.0 * t / total);
    }
  }
};
Table g_table;

class Timed {
 public:
  explicit Timed(Op op) : op_(op), start_(std::chrono::steady_clock::now()) {}
  ~Timed() {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_);
    g_table.calls[op_].fetch_add(1, std::memory_order_relaxed);
    g_table.ns[op_].fetch_add(ns.count(), std::memory_order_relaxed);
    g_table.histogram[op_][bucket_of(ns.count())].fetch_add(1, std::memory_order_relaxed);
  }

 private:
  Op op_;
  std::chrono::steady_clock::time_point start_;
};

// Each call timed, then handed to the inner backend's own implementation (its fused
// overrides included: project_rope is timed as one call, not as project + rope).
class TimedForwardOps final : public ForwardOps {
 public:
  explicit TimedForwardOps(std::unique_ptr<ForwardOps> inner) : in_(std::move(inner)) {
    g_table.forwards.fetch_add(1, std::memory_order_relaxed);
  }
  void begin(const ScratchPlan& plan) override { Timed t(kOther); in_->begin(plan); }
  float* scratch(Scratch id, size_t floats) override { Timed t(kOther); return in_->scratch(id, floats); }
  int32_t* index(Index id, size_t n) override { Timed t(kOther); return in_->index(id, n); }
  uint64_t* rng_keys(size_t n) override { Timed t(kOther); return in_->rng_keys(n); }
  void upload(void* dst, const void* host, size_t bytes) override { Timed t(kCopies); in_->upload(dst, host, bytes); }
  void download(void* host, const void* src, size_t bytes) override { Timed t(kCopies); in_->download(host, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override { Timed t(kCopies); in_->copy(dst, src, bytes); }
  void embedding(const WeightView& table, const int32_t* ids, int64_t n, float* out) override {
    Timed t(kEmbedding);
    in_->embedding(table, ids, n, out);
  }
  void rmsnorm(const float* x, const WeightView& w, int64_t n, int64_t d, float eps, float* out) override {
    Timed t(kRmsnorm);
    in_->rmsnorm(x, w, n, d, eps, out);
  }
  void add_rmsnorm(float* residual, const float* delta, const WeightView& w, int64_t n, int64_t d, float eps,
                   float* out) override {
    Timed t(kAddRmsnorm);
    in_->add_rmsnorm(residual, delta, w, n, d, eps, out);
  }
  void gemm(const float* x, int64_t m, int64_t k, const WeightView& w, const WeightView* bias, float* y) override {
    Timed t(kGemm);
    in_->gemm(x, m, k, w, bias, y);
  }
  void project(const float* x, int64_t m, int64_t k, const WeightView* const* w, const WeightView* const* bias,
               int count, float* y, int64_t ldy) override {
    Timed t(kProject);
    in_->project(x, m, k, w, bias, count, y, ldy);
  }
  void rope(float* x, int64_t n, int64_t row_stride, int n_heads, int head_dim, const int32_t* pos,
            float theta) override {
    Timed t(kRope);
    in_->rope(x, n, row_stride, n_heads, head_dim, pos, theta);
  }
  void project_rope(const float* x, int64_t m, int64_t k, const WeightView* const* w, const WeightView* const* bias,
                    int count, float* y, int64_t ldy, int rope_heads, int head_dim, const int32_t* pos,
                    float theta) override {
    Timed t(kProjectRope);
    in_->project_rope(x, m, k, w, bias, count, y, ldy, rope_heads, head_dim, pos, theta);
  }
  void gather_rows(const float* src, int64_t src_stride, int64_t width, const int32_t* rows, int64_t n,
                   float* dst) override {
    Timed t(kGatherRows);
    in_->gather_rows(src, src_stride, width, rows, n, dst);
  }
  void write_cache(float* k_cache, float* v_cache, const float* k, const float* v, int64_t src_stride, int64_t rows,
                   int64_t width) override {
    Timed t(kWriteCache);
    in_->write_cache(k_cache, v_cache, k, v, src_stride, rows, width);
  }
  void attention(const AttentionParams& p) override {
    Timed t(kAttention);
    in_->attention(p);
  }
  void attention_batch(const AttentionParams* p, size_t count) override {
    Timed t(kAttention);
    in_->attention_batch(p, count);
  }
  void swiglu(const float* gate, const float* up, int64_t rows, int64_t cols, int64_t in_stride, float* out) override {
    Timed t(kSwiglu);
    in_->swiglu(gate, up, rows, cols, in_stride, out);
  }
  void add(float* y, const float* x, int64_t n) override {
    Timed t(kAdd);
    in_->add(y, x, n);
  }
  void project_swiglu(const float* x, int64_t m, int64_t k, const WeightView& gate, const WeightView& up,
                      float* gate_up, float* act) override {
    Timed t(kProjectSwiglu);
    in_->project_swiglu(x, m, k, gate, up, gate_up, act);
  }
  void gemm_add(const float* x, int64_t m, int64_t k, const WeightView& w, float* tmp, float* y) override {
    Timed t(kGemmAdd);
    in_->gemm_add(x, m, k, w, tmp, y);
  }
  void confidence(const ConfidenceParams& p) override {
    Timed t(kConfidence);
    in_->confidence(p);
  }
  void segment_begin(const std::string& signature) override { in_->segment_begin(signature); }
  bool segment_end() override { return in_->segment_end(); }
  void finish() override {
    Timed t(kOther);
    in_->finish();
  }

 private:
  std::unique_ptr<ForwardOps> in_;
};

}  // namespace

bool op_times_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("SDLLM_OP_TIMES");
    return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
  }();
  return on;
}

std::unique_ptr<ForwardOps> timed_forward_ops(std::unique_ptr<ForwardOps> inner) {
  return std::make_unique<TimedForwardOps>(std::move(inner));
}

}  // namespace sdllm
