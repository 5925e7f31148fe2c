// What the op tests (test_ops.cpp, test_ops_gemm.cpp) share: random inputs, weights in
// each dtype, output buffers with sentinels behind them, the NMSE comparison and the
// pass/fail tally, and the switches between the scalar, AVX2 and AVX-512 paths. Each test
// program is one translation unit that includes this once.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "dtype.h"
#include "ops.h"

namespace op_test {

using namespace sdllm;

inline int g_passed = 0, g_failed = 0;
inline std::mt19937 g_rng(1234);

inline std::vector<float> randn(int64_t n, float scale = 1.f) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(g_rng);
  return v;
}

// Weights stored in their dtype; values are rounded to it first so that the naive
// reference and the op see the same numbers.
struct Weights {
  std::vector<float> f;
  std::vector<uint16_t> h;
  WeightView view;
  Weights(DType t, int64_t rows, int64_t cols, float scale = 1.f) {
    f = randn(rows * cols, scale);
    if (t != DType::F32) {
      h.resize(f.size());
      for (size_t i = 0; i < f.size(); ++i) {
        if (t == DType::BF16) {
          h[i] = f32_to_bf16(f[i]);
        } else {  // F16 via bf16-free route: keep values in f16 range and round through the f16 grid
          const float v = std::max(-60000.f, std::min(60000.f, f[i]));
          h[i] = f32_to_f16(v);
        }
      }
    }
    view.data = t == DType::F32 ? static_cast<const void*>(f.data()) : static_cast<const void*>(h.data());
    view.dtype = t;
    view.rows = rows;
    view.cols = cols;
  }
  static uint16_t f32_to_f16(float v) {  // round-to-nearest by search on the f16 grid; tests only
    uint16_t best = 0;
    float bd = INFINITY;
    const uint16_t sign = v < 0 ? 0x8000 : 0;
    uint16_t lo = 0, hi = 0x7bff;
    const float a = std::fabs(v);
    while (lo < hi) {  // f16 magnitudes are monotone in their bit pattern
      const uint16_t mid = static_cast<uint16_t>((lo + hi) / 2);
      if (f16_to_f32(mid) < a) lo = static_cast<uint16_t>(mid + 1); else hi = mid;
    }
    for (int c = std::max(0, lo - 1); c <= std::min(0x7bff, lo + 1); ++c) {
      const float d = std::fabs(f16_to_f32(static_cast<uint16_t>(c)) - a);
      if (d < bd) { bd = d; best = static_cast<uint16_t>(c); }
    }
    return static_cast<uint16_t>(best | sign);
  }
};

// An output buffer followed by sentinels.
constexpr int kGuard = 16;
constexpr float kSentinel = -7.77e33f;
struct Out {
  std::vector<float> v;
  int64_t n;
  explicit Out(int64_t n_) : v(static_cast<size_t>(n_ + kGuard), kSentinel), n(n_) {}
  float* data() { return v.data(); }
  bool guards_ok() const {
    for (int i = 0; i < kGuard; ++i)
      if (std::memcmp(&v[static_cast<size_t>(n + i)], &kSentinel, 4) != 0) return false;
    return true;
  }
};

inline void report(const std::string& name, bool ok, const std::string& detail) {
  std::printf("%-4s %-72s %s\n", ok ? "ok" : "FAIL", name.c_str(), detail.c_str());
  (ok ? g_passed : g_failed)++;
}

// Compares got (with guards) to want by normalised MSE.
inline void compare(const std::string& name, const Out& got, const std::vector<float>& want, double tol) {
  double num = 0, den = 0;
  bool finite = true;
  for (int64_t i = 0; i < got.n; ++i) {
    const double a = got.v[static_cast<size_t>(i)], b = want[static_cast<size_t>(i)];
    if (!std::isfinite(a)) finite = false;
    num += (a - b) * (a - b);
    den += b * b;
  }
  const double nmse = den > 0 ? num / den : num;
  const bool guards = got.guards_ok();
  char buf[128];
  std::snprintf(buf, sizeof buf, "nmse=%.2e tol=%.0e%s%s", nmse, tol, finite ? "" : " NON-FINITE",
                guards ? "" : " GUARD-OVERWRITTEN");
  report(name, finite && guards && nmse <= tol, buf);
}

inline const char* path_name() { return use_avx2_fma() ? "avx2" : "scalar"; }

inline std::vector<bool> paths() {
  std::vector<bool> p = {true};  // force scalar
  set_force_scalar(false);
  if (use_avx2_fma()) p.push_back(false);
  else std::printf("note: AVX2+FMA+F16C not available, only the scalar path is tested\n");
  return p;
}

inline const DType kTypes[3] = {DType::F32, DType::BF16, DType::F16};

// The GEMM's kernels: scalar, AVX2 and, where the CPU has it, AVX-512.
enum class GemmPath { Scalar, Avx2, Avx512 };
inline std::vector<GemmPath> gemm_paths() {
  std::vector<GemmPath> p = {GemmPath::Scalar};
  set_force_scalar(false);
  if (use_avx2_fma()) p.push_back(GemmPath::Avx2);
  if (set_avx512(true)) p.push_back(GemmPath::Avx512);
  else std::printf("note: AVX-512 not available, the AVX-512 GEMM is not tested\n");
  return p;
}
inline void use_gemm_path(GemmPath p) {
  set_force_scalar(p == GemmPath::Scalar);
  set_avx512(p == GemmPath::Avx512);
}
inline void reset_gemm_path() {
  set_force_scalar(false);
  set_avx512(true);
}
inline const char* gemm_path_name() { return use_avx512() ? "avx512" : path_name(); }

}  // namespace op_test
