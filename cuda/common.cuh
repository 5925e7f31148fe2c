// Shared device helpers of the kernels in cuda/*.cu: the launch macro (real <<<>>> under
// nvcc, the CPU emulator of test/native/cuda/cuda_emu.h under SDLLM_CUDA_EMULATION),
// dynamic shared memory, weight loads in the file dtype, and warp/block reductions
// built only from intrinsics the emulator implements (__shfl_*_sync, __syncthreads).
#pragma once
#if defined(SDLLM_CUDA_EMULATION)
// cuda_emu.h is force-included (-include cuda_emu.h) by test/native/cuda/CMakeLists.txt.
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

#include <cstdint>

#include "sdllm_cuda.h"

#if defined(SDLLM_CUDA_EMULATION)
#define SDLLM_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::sdllm_emu::launch((kernel), (grid), (block), (smem), __VA_ARGS__)
#define SDLLM_DYN_SMEM(T, name) T* name = reinterpret_cast<T*>(::sdllm_emu::dyn_smem())
#else
#define SDLLM_LAUNCH(kernel, grid, block, smem, stream, ...)                                        \
  (kernel<<<(grid), (block), (smem), static_cast<cudaStream_t>(stream)>>>(__VA_ARGS__), \
   static_cast<int>(cudaGetLastError()))
#define SDLLM_DYN_SMEM(T, name)                               \
  extern __shared__ __align__(16) unsigned char sdllm_dyn_smem_[]; \
  T* name = reinterpret_cast<T*>(sdllm_dyn_smem_)
#endif

namespace sdllm {
namespace cuda {

constexpr unsigned kFullMask = 0xffffffffu;

// Element i of a weight in its storage dtype, widened to float32 (exact).
__device__ __forceinline__ float load_weight(const void* data, DType t, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(data)[i];
    case DType::F16: return __half2float(static_cast<const __half*>(data)[i]);
    default: return __bfloat162float(static_cast<const __nv_bfloat16*>(data)[i]);
  }
}

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. `scratch` is 32 elements of shared memory; the function starts with a barrier,
// so that it may be called again with the same scratch.
template <class T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T r = lane < n_warps ? scratch[lane] : T(0);
  r = warp_sum(r);
  return r;
}

// RoPE's inverse frequency of pair j, in float32 as op_rope and torch compute it:
// 1 / theta^(2j / head_dim).
__device__ __forceinline__ float rope_inv_freq(float theta, int j, int head_dim) {
  return 1.0f / powf(theta, static_cast<float>(2 * j) / static_cast<float>(head_dim));
}

// Rotates the pair (v[j], v[j + half]) of one head by `angle` (rotate-half convention).
__device__ __forceinline__ void rope_rotate(float& a, float& b, float angle) {
  const float c = cosf(angle), s = sinf(angle);
  const float ra = a * c - b * s, rb = b * c + a * s;
  a = ra;
  b = rb;
}

inline unsigned ceil_div(int64_t a, int64_t b) { return static_cast<unsigned>((a + b - 1) / b); }

}  // namespace cuda
}  // namespace sdllm
