// rope.cu: in-place rotate-half RoPE from explicit position ids (op_rope):
// for j < head_dim/2, angle = float(pos[i]) * (1 / theta^(2j/head_dim)) in float32,
// (a, b) = (x[j], x[j + half]) -> (a cos - b sin, b cos + a sin).
// Versions: one kernel; one block per row, threads over (head, j) pairs. Position ids
// need not be contiguous (the streaming trailing position carries id N-1).
// Test: build/test/test/native/cuda/test_cuda_ops rope (see embedding.cu for the build).
#include "common.cuh"

namespace sdllm {
namespace cuda {

__global__ void __launch_bounds__(128) rope_kernel(RopeParams p) {
  const int64_t i = blockIdx.x;
  const int half = p.head_dim / 2;
  const float pos = static_cast<float>(p.pos[i]);
  float* row = p.x + i * p.row_stride;
  for (int t = threadIdx.x; t < p.n_heads * half; t += blockDim.x) {
    const int h = t / half, j = t % half;
    float* v = row + static_cast<int64_t>(h) * p.head_dim;
    rope_rotate(v[j], v[j + half], pos * rope_inv_freq(p.theta, j, p.head_dim));
  }
}

int rope(const RopeParams& p, void* stream) {
  if (p.n <= 0 || p.n_heads <= 0 || p.head_dim < 2) return 0;
  return SDLLM_LAUNCH(rope_kernel, dim3(static_cast<unsigned>(p.n)), dim3(128), 0, stream, p);
}

}  // namespace cuda
}  // namespace sdllm
