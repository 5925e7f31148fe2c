// rmsnorm.cu: RMSNorm over rows, out = x / sqrt(mean(x^2) + eps) * w.
// Versions:
//   rmsnorm_kernel<false>: plain (op_rmsnorm); out may alias x.
//   rmsnorm_kernel<true>:  fused residual add: residual += x, out = rmsnorm(residual) * w
//                          (op_add then op_rmsnorm), one read of each input.
// One block of 256 threads per row; the sum of squares is accumulated in double, as the
// CPU op does, reduced with warp shuffles then across warps through shared memory.
// Each thread touches the same columns in both loops, so out may alias x.
// Test: build/test/test/native/cuda/test_cuda_ops rmsnorm (see embedding.cu for the build).
#include "common.cuh"

namespace sdllm {
namespace cuda {

template <bool kResidual>
__global__ void __launch_bounds__(256) rmsnorm_kernel(RMSNormParams p) {
  __shared__ double scratch[32];
  const int64_t i = blockIdx.x;
  const float* x = p.x + i * p.d;
  float* res = kResidual ? p.residual + i * p.d : nullptr;
  float* o = p.out + i * p.d;
  double ss = 0;
  for (int64_t c = threadIdx.x; c < p.d; c += blockDim.x) {
    float v = x[c];
    if (kResidual) {
      v += res[c];
      res[c] = v;
    }
    ss += static_cast<double>(v) * v;
  }
  ss = block_sum(ss, scratch);
  const float inv = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(p.d) + p.eps));
  for (int64_t c = threadIdx.x; c < p.d; c += blockDim.x) {
    const float v = kResidual ? res[c] : x[c];
    o[c] = v * inv * load_weight(p.w.data, p.w.dtype, c);
  }
}

int rmsnorm(const RMSNormParams& p, void* stream) {
  if (p.n <= 0) return 0;
  const dim3 grid(static_cast<unsigned>(p.n)), block(256);
  if (p.residual) return SDLLM_LAUNCH(rmsnorm_kernel<true>, grid, block, 0, stream, p);
  return SDLLM_LAUNCH(rmsnorm_kernel<false>, grid, block, 0, stream, p);
}

}  // namespace cuda
}  // namespace sdllm
