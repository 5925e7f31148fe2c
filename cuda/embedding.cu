// embedding.cu: token embedding gather, out[i, :] = table[ids[i], :] widened to float32.
// Versions: one kernel, one block per row, F32/F16/BF16 tables (dtype branch is uniform
// per launch). An out-of-range id gives a zero row, as op_embedding.
// Test (CPU execution of this source against op_embedding):
//   cmake -S . -B build/test -DSDLLM_BUILD_TESTS=ON -DSDLLM_CUDA=OFF
//   cmake --build build/test -j2 --target test_cuda_ops && build/test/test/native/cuda/test_cuda_ops embedding
#include "common.cuh"

namespace sdllm {
namespace cuda {

__global__ void __launch_bounds__(256) embedding_kernel(EmbeddingParams p) {
  const int64_t i = blockIdx.x, d = p.table.cols;
  const int64_t r = p.ids[i];
  float* o = p.out + i * d;
  const bool valid = r >= 0 && r < p.table.rows;
  for (int64_t c = threadIdx.x; c < d; c += blockDim.x)
    o[c] = valid ? load_weight(p.table.data, p.table.dtype, r * d + c) : 0.f;
}

int embedding(const EmbeddingParams& p, void* stream) {
  if (p.n <= 0) return 0;
  return SDLLM_LAUNCH(embedding_kernel, dim3(static_cast<unsigned>(p.n)), dim3(256), 0, stream, p);
}

}  // namespace cuda
}  // namespace sdllm
