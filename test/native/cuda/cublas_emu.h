// cublas_emu.h: a CPU stand-in for the few cuBLAS entry points the CUDA backend calls
// (cuda/cublas_loader.h), for test_cuda_forward only. cublas_emu.cpp defines
// sdllm::cuda::cublas_load() (instead of cuda/cublas_loader.cpp) returning function
// pointers to a naive column-major cublasGemmEx with cuBLAS's argument checks.
#pragma once
#include <cstdint>

namespace sdllm_cublas_emu {

struct Stats {
  int64_t gemm_f32 = 0;   // A = B = F32
  int64_t gemm_bf16 = 0;  // A = B = BF16
  int64_t gemm_f16 = 0;   // A = B = F16
  int64_t rejected = 0;   // calls answered with an error status
  int64_t handles = 0;    // live handles
};
Stats& stats();

}  // namespace sdllm_cublas_emu
