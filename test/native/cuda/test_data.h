// Seeded test data shared by the CUDA test programs (test_cuda_ops, test_cuda_forward):
// a xorshift generator and float -> F16 rounding for weights written in that dtype.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace sdllm {
namespace cuda_test_data {

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ull + 1) {}
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  float uniform(float lo, float hi) { return lo + (hi - lo) * static_cast<float>((next() >> 40) * (1.0 / 16777216.0)); }
  int32_t below(int64_t n) { return static_cast<int32_t>(next() % static_cast<uint64_t>(n)); }
  std::vector<float> vec(int64_t n, float lo = -1.f, float hi = 1.f) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = uniform(lo, hi);
    return v;
  }
};

// Round to nearest even, for the finite normal and subnormal F16 range (|f| < 65504).
inline uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const float a = std::fabs(f);
  if (a < 6.1035156e-05f) return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(a / 5.9604645e-08f)));
  int e;
  const float m = std::frexp(a, &e);  // a = m 2^e, m in [0.5, 1)
  uint32_t mant = static_cast<uint32_t>(std::nearbyint((m * 2.f - 1.f) * 1024.f));
  int ex = e - 1 + 15;
  if (mant == 1024) {
    mant = 0;
    ex++;
  }
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(ex) << 10) | mant);
}

}  // namespace cuda_test_data
}  // namespace sdllm
