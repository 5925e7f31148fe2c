// kv_cache.cu: writes K and V rows into one layer's prefix cache, slots [start, start+n)
// of a [capacity, n_kv_heads * head_dim] buffer: append after the prefix, or overwrite a
// range (dual cache). Versions:
//   kv_write_kernel<false>: copies K (already rotated) and V.
//   kv_write_kernel<true>:  rotates K with RoPE (op_rope semantics, position ids `pos`)
//                           on the way in; the source K is left untouched.
// Slots outside [start, start+n) are never written; the launcher rejects a range beyond
// the capacity.
// Test: build/test/test/native/cuda/test_cuda_ops kv_cache (see embedding.cu for the build).
#include "common.cuh"

namespace sdllm {
namespace cuda {

template <bool kRope>
__global__ void __launch_bounds__(128) kv_write_kernel(KVWriteParams p) {
  const int64_t i = blockIdx.x;
  const int64_t width = static_cast<int64_t>(p.n_kv_heads) * p.head_dim;
  const float* k = p.k + i * p.src_stride;
  const float* v = p.v + i * p.src_stride;
  float* kc = p.k_cache + (p.start + i) * width;
  float* vc = p.v_cache + (p.start + i) * width;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) vc[c] = v[c];
  if (!kRope) {
    for (int64_t c = threadIdx.x; c < width; c += blockDim.x) kc[c] = k[c];
    return;
  }
  const int half = p.head_dim / 2;
  const float pos = static_cast<float>(p.pos[i]);
  for (int t = threadIdx.x; t < p.n_kv_heads * half; t += blockDim.x) {
    const int h = t / half, j = t % half;
    const int64_t o = static_cast<int64_t>(h) * p.head_dim;
    float a = k[o + j], b = k[o + j + half];
    rope_rotate(a, b, pos * rope_inv_freq(p.theta, j, p.head_dim));
    kc[o + j] = a;
    kc[o + j + half] = b;
  }
}

int kv_cache_write(const KVWriteParams& p, void* stream) {
  if (p.n <= 0) return 0;
  if (p.start < 0 || p.start + p.n > p.capacity) return 1;  // cudaErrorInvalidValue
  const dim3 grid(static_cast<unsigned>(p.n)), block(128);
  if (p.pos) return SDLLM_LAUNCH(kv_write_kernel<true>, grid, block, 0, stream, p);
  return SDLLM_LAUNCH(kv_write_kernel<false>, grid, block, 0, stream, p);
}

}  // namespace cuda
}  // namespace sdllm
