// swiglu.cu: out[r, c] = silu(gate[r, c]) * up[r, c], silu(g) = g / (1 + exp(-g)) (op_swiglu).
// Versions: one grid-stride kernel over rows x cols with separate input/output row strides
// (gate and up may be the halves of a fused gate|up GEMM output). expf, not __expf, to
// stay within a few ulp of the CPU op.
// Test: build/test/test/native/cuda/test_cuda_ops swiglu (see embedding.cu for the build).
#include "common.cuh"

namespace sdllm {
namespace cuda {

__global__ void __launch_bounds__(256) swiglu_kernel(SwigluParams p) {
  const int64_t total = p.rows * p.cols;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = t / p.cols, c = t % p.cols;
    const float g = p.gate[r * p.in_stride + c];
    const float u = p.up[r * p.in_stride + c];
    p.out[r * p.out_stride + c] = g / (1.0f + expf(-g)) * u;
  }
}

int swiglu(const SwigluParams& p, void* stream) {
  const int64_t total = p.rows * p.cols;
  if (total <= 0) return 0;
  int64_t blocks = (total + 255) / 256;
  if (blocks > 65535) blocks = 65535;
  return SDLLM_LAUNCH(swiglu_kernel, dim3(static_cast<unsigned>(blocks)), dim3(256), 0, stream, p);
}

}  // namespace cuda
}  // namespace sdllm
