// add.cu: residual add y[i] += x[i] (op_add), and bias add y[r, c] += bias[c] after a GEMM
// (Dream's q/k/v projections carry a bias; cuBLAS GEMMs do not add it).
// Versions: add_kernel (grid-stride, flat), bias_add_kernel (grid-stride over rows x cols,
// bias in F32/F16/BF16).
// Test: build/test/test/native/cuda/test_cuda_ops add (see embedding.cu for the build).
#include "common.cuh"

namespace sdllm {
namespace cuda {

__global__ void __launch_bounds__(256) add_kernel(AddParams p) {
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < p.n;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p.y[t] += p.x[t];
}

__global__ void __launch_bounds__(256) bias_add_kernel(BiasAddParams p) {
  const int64_t total = p.rows * p.cols;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = t / p.cols, c = t % p.cols;
    p.y[r * p.stride + c] += load_weight(p.bias.data, p.bias.dtype, c);
  }
}

static unsigned grid_for(int64_t total) {
  int64_t blocks = (total + 255) / 256;
  return static_cast<unsigned>(blocks > 65535 ? 65535 : blocks);
}

int add(const AddParams& p, void* stream) {
  if (p.n <= 0) return 0;
  return SDLLM_LAUNCH(add_kernel, dim3(grid_for(p.n)), dim3(256), 0, stream, p);
}

int bias_add(const BiasAddParams& p, void* stream) {
  if (p.rows <= 0 || p.cols <= 0) return 0;
  return SDLLM_LAUNCH(bias_add_kernel, dim3(grid_for(p.rows * p.cols)), dim3(256), 0, stream, p);
}

}  // namespace cuda
}  // namespace sdllm
