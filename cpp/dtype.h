// Element types of checkpoint tensors and their scalar conversions.
// Weights stay in their file dtype; kernels widen to float32 on the fly.
#pragma once
#include <cstdint>
#include <cstring>

namespace sdllm {

// Q8_0: symmetric 8-bit weights in groups of kQ8Group consecutive values along a row
// (along K of a linear weight [out, in]). WeightView::data points at the int8 values,
// row-major [rows, cols] with no padding, and WeightView::scales at one float32 scale per
// group, row-major [rows, q8_groups(cols)]; value (r, c) = data[r, c] * scales[r, c / 32].
// Quantization (q8_quantize_row): scale = max|w| / 127 over the group, q = round-to-nearest-
// even(w * (1 / scale)) clamped to [-127, 127]; an all-zero group has scale 0 and q = 0.
// When cols is not a multiple of 32 the last group of each row is shorter (cols % 32
// values) and its scale covers only those. The CPU backend only: the CUDA backend refuses it.
enum class DType : int32_t { F32 = 0, F16 = 1, BF16 = 2, Q8_0 = 3 };

constexpr int64_t kQ8Group = 32;
inline int64_t q8_groups(int64_t cols) { return (cols + kQ8Group - 1) / kQ8Group; }

// Bytes per element of the value array (Q8_0: the int8 values only, scales not counted).
inline int64_t dtype_size(DType t) { return t == DType::F32 ? 4 : (t == DType::Q8_0 ? 1 : 2); }
inline const char* dtype_name(DType t) {
  return t == DType::F32 ? "F32" : (t == DType::F16 ? "F16" : (t == DType::BF16 ? "BF16" : "Q8_0"));
}

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round-to-nearest-even, the rounding torch uses when casting to bfloat16.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float f16_to_f32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) { mant <<= 1; exp--; }
      u = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// A row-major matrix [rows, cols] in its storage dtype, usually a view into a mapped file.
// Linear weights are [out, in], as in PyTorch. 1-D tensors use rows = 1.
// Q8_0 views also carry `scales` (see DType::Q8_0); it is null for the other dtypes.
struct WeightView {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const float* scales = nullptr;  // Q8_0 only: [rows, q8_groups(cols)]
  // Weights repacked at load for the AVX-512 GEMM (cpp/repack.cpp), or null: F32/F16 ones
  // in the layout that GEMM otherwise builds per call (float32 pairs of rows per K block),
  // BF16 ones in that layout's 16-bit twin (packed_bf16). packed_rows: the rows packed
  // (first_rows keeps the layout).
  const float* packed = nullptr;
  const uint16_t* packed_bf16 = nullptr;
  int64_t packed_rows = 0;

  bool empty() const { return data == nullptr; }
  float at(int64_t r, int64_t c) const {
    const int64_t i = r * cols + c;
    switch (dtype) {
      case DType::F32: return static_cast<const float*>(data)[i];
      case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
      case DType::Q8_0:
        return static_cast<float>(static_cast<const int8_t*>(data)[i]) * scales[r * q8_groups(cols) + c / kQ8Group];
      default: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    }
  }
  // The first n rows: the LM head uses this to skip embedding rows beyond the vocabulary.
  WeightView first_rows(int64_t n) const { WeightView v = *this; v.rows = n; return v; }
};

// Quantizes n values (one row) to Q8_0: q[n] int8 and scales[q8_groups(n)]. The AVX2
// GEMM quantizes its activations with exactly this arithmetic (same results bit for bit).
inline void q8_quantize_row(const float* x, int64_t n, int8_t* q, float* scales) {
  for (int64_t g0 = 0, gi = 0; g0 < n; g0 += kQ8Group, ++gi) {
    const int64_t len = n - g0 < kQ8Group ? n - g0 : kQ8Group;
    float amax = 0.f;
    for (int64_t c = 0; c < len; ++c) {
      const float a = x[g0 + c] < 0 ? -x[g0 + c] : x[g0 + c];
      amax = a > amax ? a : amax;
    }
    const float scale = amax / 127.f;
    const float inv = scale != 0.f ? 1.f / scale : 0.f;
    scales[gi] = scale;
    for (int64_t c = 0; c < len; ++c) {
      float v = x[g0 + c] * inv;
      if (!(v == v)) v = 0.f;  // NaN
      // Round to nearest, ties to even (what _mm256_cvtps_epi32 does in the default mode),
      // without <cmath> so that this header stays usable from device code.
      v = v > 127.f ? 127.f : (v < -127.f ? -127.f : v);
      const float big = 12582912.f;  // 1.5 * 2^23: adding it rounds |v| < 2^22 to an integer
      const float r = (v + big) - big;
      q[g0 + c] = static_cast<int8_t>(static_cast<int32_t>(r));
    }
  }
}

}  // namespace sdllm
