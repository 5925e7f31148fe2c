// kernel_napkin.h: the shapes, byte/FLOP counts and H100 bounds shared by the two kernel
// benchmarks, bench/native/bench_kernels.cpp (CPU backend) and bench/cuda/bench_kernels.cu
// (CUDA backend), so that both print the same napkin math. Plain C++, no CUDA.
//
// Conventions (the same for every kernel, so the columns compare):
// - bytes = what the kernel must read plus what it must write, each byte once: the ideal
//   traffic of a perfectly fused, cache-friendly kernel. Activations are float32 (both
//   backends keep them so); weights are BF16 (LLaDA-8B's file dtype).
// - FLOPs count multiply and add as one each (a GEMM is 2*m*k*n). Transcendentals
//   (exp, sin, cos, pow) and compares count as one FLOP each: a rough figure; these
//   kernels are memory-bound by orders of magnitude anyway.
// - Attention FLOPs = 4 * n_q * n_k * head_dim * n_heads (Q.K^T and P.V), the softmax
//   is left out; attention bytes = Q + K + V + out read/written once (flash-style).
// - The H100 bound of a kernel is max(bytes / 3.35 TB/s, FLOPs / 989 TFLOP/s): HBM3 of
//   an H100 SXM5 and its dense BF16 tensor-core peak. The CUDA backend's own kernels
//   (attention included) run in float32 on the CUDA cores, whose peak is ~67 TFLOP/s;
//   kFp32Flops gives that floor where it matters (attention).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace sdllm_bench {

constexpr double kH100Bytes = 3.35e12;   // B/s, HBM3, H100 SXM5
constexpr double kH100Flops = 989e12;    // FLOP/s, dense BF16 tensor cores
constexpr double kFp32Flops = 67e12;     // FLOP/s, FP32 on CUDA cores (no tensor cores)

// LLaDA-8B and the Streaming-dLLM step of docs/decoding.md: block 32, window 96, one
// trailing position, against a prefix cache.
struct Shapes {
  int64_t d = 4096, n_heads = 32, n_kv = 32, head_dim = 128, mlp = 12288, vocab = 126464;
  int64_t block = 32, window = 96, tail = 1;
  int64_t kv_dim() const { return n_kv * head_dim; }
  int64_t step_rows() const { return block + window + tail; }  // 129 at the defaults
  // --quick: same structure, small enough for a smoke run of a few seconds.
  static Shapes quick() {
    Shapes s;
    s.d = 512;
    s.n_heads = 4;
    s.n_kv = 4;
    s.head_dim = 128;
    s.mlp = 1536;
    s.vocab = 8192;
    return s;
  }
};

struct Cost {
  double bytes = 0, flops = 0;
  Cost& operator+=(const Cost& o) {
    bytes += o.bytes;
    flops += o.flops;
    return *this;
  }
};

// Gather n rows of a BF16 table into float32: read 2 B, write 4 B per element (+ ids).
inline Cost cost_embedding(int64_t n, int64_t d) { return {n * d * (2.0 + 4.0) + n * 4.0, 0}; }
// Read x, write out (float32), read the BF16 weight once; ~4 FLOPs per element.
inline Cost cost_rmsnorm(int64_t n, int64_t d) { return {n * d * 8.0 + d * 2.0, n * d * 4.0}; }
// In place on one tensor of n rows x heads*head_dim: read + write each float; per pair a
// frequency (pow, div), an angle, cos, sin and the 6-FLOP rotation: ~11.
inline Cost cost_rope(int64_t n, int64_t heads, int64_t hd) {
  return {n * heads * hd * 8.0 + n * 4.0, n * heads * (hd / 2) * 11.0};
}
// Read gate and up, write out; silu(g)*u = g / (1 + exp(-g)) * u: ~5 FLOPs.
inline Cost cost_swiglu(int64_t n, int64_t cols) { return {n * cols * 12.0, n * cols * 5.0}; }
inline Cost cost_attention(int64_t n_q, int64_t n_k, int64_t heads, int64_t n_kv, int64_t hd) {
  const double q = n_q * heads * hd * 4.0, kv = 2.0 * n_k * n_kv * hd * 4.0;
  return {2 * q + kv, 4.0 * n_q * n_k * hd * heads};
}
// One pass over each float32 logits row: max, exp, sum (~4 FLOPs per logit).
inline Cost cost_confidence(int64_t rows, int64_t vocab) { return {rows * vocab * 4.0 + rows * 8.0, rows * vocab * 4.0}; }
// Copy n rows of K and of V (float32) into the cache: read + write each.
inline Cost cost_kv_write(int64_t n, int64_t kv_dim) { return {2.0 * n * kv_dim * 8.0, 0}; }
// y[m, n] = x[m, k] W^T: weight read once at `wbytes` per element, x read, y written (float32).
inline Cost cost_gemm(int64_t m, int64_t k, int64_t n, double wbytes, double act_bytes = 4.0) {
  return {n * k * wbytes + m * k * act_bytes + m * n * 4.0, 2.0 * m * k * n};
}

inline double h100_seconds(const Cost& c) { return std::max(c.bytes / kH100Bytes, c.flops / kH100Flops); }
inline const char* h100_limiter(const Cost& c) {
  return c.bytes / kH100Bytes >= c.flops / kH100Flops ? "HBM" : "BF16 TC";
}

struct Result {
  std::string kernel, shape, note;
  double seconds = 0;  // best of the rounds
  Cost cost;
};

// The markdown table. `vs` chooses the last column: "x bound" (measured / H100 bound, the
// CPU bench: how far this machine is from an H100 at its limit) or "% of bound" (bound /
// measured, the CUDA bench run on an H100).
inline void print_table(const std::vector<Result>& rows, bool percent_of_bound) {
  std::printf("| kernel | shape | note | best ms | MB moved | MFLOP | GB/s | GFLOP/s | H100 bound us | limit | %s |\n",
              percent_of_bound ? "% of bound" : "x bound");
  std::printf("|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|\n");
  for (const Result& r : rows) {
    const double b = h100_seconds(r.cost);
    char last[32];
    if (percent_of_bound)
      std::snprintf(last, sizeof last, "%.1f%%", 100.0 * b / r.seconds);
    else
      std::snprintf(last, sizeof last, "%.0fx", r.seconds / b);
    std::printf("| %s | %s | %s | %.3f | %.2f | %.1f | %.1f | %.1f | %.2f | %s | %s |\n", r.kernel.c_str(),
                r.shape.c_str(), r.note.c_str(), r.seconds * 1e3, r.cost.bytes / 1e6, r.cost.flops / 1e6,
                r.cost.bytes / r.seconds / 1e9, r.cost.flops / r.seconds / 1e9, b * 1e6, h100_limiter(r.cost), last);
  }
}

inline void print_conventions() {
  std::printf(
      "\nnapkin math (bench/cuda/kernel_napkin.h): MB moved = ideal read + write traffic, float32 activations,\n"
      "BF16 weights; FLOPs: GEMM 2*m*k*n, attention 4*n_q*n_k*head_dim*heads (softmax left out).\n"
      "H100 bound = max(bytes / 3.35 TB/s, FLOPs / 989 TFLOP/s BF16 dense); 'limit' names the term that wins.\n"
      "cuda/attention.cu computes in float32 on CUDA cores (~67 TFLOP/s), see the attention floors below.\n");
}

}  // namespace sdllm_bench
