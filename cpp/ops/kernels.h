// Internal interface between the ops (scalar, portable) and their AVX2+FMA kernels
// in *_avx2.cpp. Only call the avx2_* functions when use_avx2_fma() is true.
#pragma once
#include <cstdint>

#include "dtype.h"
#include "ops.h"
#include "threadpool.h"

namespace sdllm {
namespace kernels {

// y[m, n] = x[m, k] * w^T for the weight rows [n0, n1), without bias.
void avx2_gemm_rows(const float* x, int64_t m, int64_t k, const WeightView& w, int64_t n0, int64_t n1,
                    float* y);
// Converts `count` contiguous weight elements starting at element `offset` to float32.
void avx2_widen(const WeightView& w, int64_t offset, int64_t count, float* out);

// Attention inner loops on one head: dot products and out += p * v.
float avx2_dot(const float* a, const float* b, int64_t n);
void avx2_axpy(float a, const float* x, float* y, int64_t n);
void avx2_scale(float a, float* y, int64_t n);

// op_attention's AVX2 path (attention_avx2.cpp): any head_dim, GQA, either segment empty.
void avx2_attention(const AttentionParams& p, ThreadPool& pool);

// out[i] = silu(gate[i]) * up[i] with a vectorised exp (elementwise_avx2.cpp).
void avx2_swiglu(const float* gate, const float* up, int64_t n, float* out);

}  // namespace kernels
}  // namespace sdllm
