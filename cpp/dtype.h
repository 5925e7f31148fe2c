// Element types of checkpoint tensors and their scalar conversions.
// Weights stay in their file dtype; kernels widen to float32 on the fly.
#pragma once
#include <cstdint>
#include <cstring>

namespace sdllm {

enum class DType : int32_t { F32 = 0, F16 = 1, BF16 = 2 };

inline int64_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }
inline const char* dtype_name(DType t) {
  return t == DType::F32 ? "F32" : (t == DType::F16 ? "F16" : "BF16");
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
struct WeightView {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;

  bool empty() const { return data == nullptr; }
  float at(int64_t r, int64_t c) const {
    const int64_t i = r * cols + c;
    switch (dtype) {
      case DType::F32: return static_cast<const float*>(data)[i];
      case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
      default: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    }
  }
  // The first n rows: the LM head uses this to skip embedding rows beyond the vocabulary.
  WeightView first_rows(int64_t n) const { WeightView v = *this; v.rows = n; return v; }
};

}  // namespace sdllm
