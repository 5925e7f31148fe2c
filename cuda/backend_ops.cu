// backend_ops.cu: gather, dtype conversions and scaling for cuda/backend.cu (see
// backend_ops.h). Grid-stride elementwise kernels; the conversions are bit
// manipulations (no cuda_fp16/cuda_bf16 intrinsics), so the CPU emulator runs the same
// code as the device and the rounding matches cpp/dtype.h's f32_to_bf16.
// Test: test/native/cuda/test_cuda_forward (the whole forward against the CPU Session).
#include "backend_ops.h"
#include "common.cuh"

namespace sdllm {
namespace cuda {

namespace {

__device__ __forceinline__ uint32_t f32_bits(float f) { return __float_as_uint(f); }

// Round to nearest even, NaN stays NaN (as cpp/dtype.h f32_to_bf16).
__device__ __forceinline__ uint16_t to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// IEEE binary16, round to nearest even; overflow to inf, subnormals kept.
__device__ __forceinline__ uint16_t to_f16(float f) {
  const uint32_t u = f32_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (a < 0x38800000u) {  // below 2^-14: subnormal half (or zero)
    if (a < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25: rounds to 0
    const uint32_t e = a >> 23, mant = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // value = mant * 2^(e - 150); half ulp = 2^-24
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) h++;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = ((a >> 13) - (112u << 10));  // rebias exponent 127 -> 15
  const uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
  return static_cast<uint16_t>(sign | h);
}

unsigned grid_for(int64_t total, int threads) {
  int64_t blocks = (total + threads - 1) / threads;
  return static_cast<unsigned>(blocks > 65535 ? 65535 : (blocks < 1 ? 1 : blocks));
}

}  // namespace

__global__ void __launch_bounds__(256) gather_rows_kernel(const float* src, int64_t src_stride, int64_t width,
                                                          const int32_t* rows, float* dst) {
  const int64_t i = blockIdx.x;
  const float* s = src + static_cast<int64_t>(rows[i]) * src_stride;
  float* d = dst + i * width;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) d[c] = s[c];
}

__global__ void __launch_bounds__(256) widen_kernel(const void* src, DType t, int64_t n, float* dst) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = load_weight(src, t, i);
}

__global__ void __launch_bounds__(256) narrow_kernel(const float* src, int64_t n, DType t, void* dst) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (t == DType::F32)
      static_cast<float*>(dst)[i] = src[i];
    else
      static_cast<uint16_t*>(dst)[i] = t == DType::BF16 ? to_bf16(src[i]) : to_f16(src[i]);
  }
}

__global__ void __launch_bounds__(256) scale_kernel(const float* src, int64_t n, float s, float* dst) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = src[i] * s;
}

int gather_rows(const float* src, int64_t src_stride, int64_t width, const int32_t* rows, int64_t n, float* dst,
                void* stream) {
  if (n <= 0 || width <= 0) return 0;
  if (n > 0x7fffffff) return 1;  // cudaErrorInvalidValue
  return SDLLM_LAUNCH(gather_rows_kernel, dim3(static_cast<unsigned>(n)), dim3(256), 0, stream, src, src_stride, width,
                      rows, dst);
}

int widen_to_f32(const void* src, DType t, int64_t n, float* dst, void* stream) {
  if (n <= 0) return 0;
  return SDLLM_LAUNCH(widen_kernel, dim3(grid_for(n, 256)), dim3(256), 0, stream, src, t, n, dst);
}

int narrow_from_f32(const float* src, int64_t n, DType t, void* dst, void* stream) {
  if (n <= 0) return 0;
  return SDLLM_LAUNCH(narrow_kernel, dim3(grid_for(n, 256)), dim3(256), 0, stream, src, n, t, dst);
}

int scale(const float* src, int64_t n, float s, float* dst, void* stream) {
  if (n <= 0) return 0;
  return SDLLM_LAUNCH(scale_kernel, dim3(grid_for(n, 256)), dim3(256), 0, stream, src, n, s, dst);
}

}  // namespace cuda
}  // namespace sdllm
