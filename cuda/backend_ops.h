// backend_ops.h: the small kernels the forward of cuda/backend.cu needs besides the ops
// of sdllm_cuda.h: row gather (last layer), dtype conversions around cuBLAS, and the
// logits scaling behind confidence_temperature. Device pointers; each launcher returns
// the cudaError_t of its launch as an int and does not synchronise.
#pragma once
#include <cstdint>

#include "../cpp/dtype.h"

namespace sdllm {
namespace cuda {

// dst[i, 0:width) = src[rows[i] * src_stride + 0:width) for i < n (in floats; dst is
// contiguous and must not alias src).
int gather_rows(const float* src, int64_t src_stride, int64_t width, const int32_t* rows, int64_t n, float* dst,
                void* stream);

// dst[i] = float(src[i]) for n elements of a weight in dtype t (exact widening).
int widen_to_f32(const void* src, DType t, int64_t n, float* dst, void* stream);

// dst[i] = src[i] rounded to nearest even in t (F16 or BF16; F32 copies), stored as
// 2-byte (or 4-byte) elements: the activations of a WEIGHT_DTYPE GEMM.
int narrow_from_f32(const float* src, int64_t n, DType t, void* dst, void* stream);

// dst[i] = src[i] * s (float32).
int scale(const float* src, int64_t n, float s, float* dst, void* stream);

}  // namespace cuda
}  // namespace sdllm
