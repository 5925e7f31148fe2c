// exp(d) in double for d in [-700, 0], shared by the AVX2 and AVX-512 softmax sums of
// op_confidence (confidence_avx2.cpp, confidence_avx512.cpp) so that both give the same
// bits lane for lane. d = (n + f) ln2/64 with n = round(d 64/ln2): exp(d) =
// 2^(n >> 6) * 2^((n & 63)/64) * exp(f ln2/64), the middle factor from a 64-entry table
// (kernels::exp2_frac64, std::exp2 at start-up), the last a degree-6 Taylor polynomial in
// |r| <= ln2/128 (its first omitted term, r^7/5040, is under 1e-19). Error about 1 ulp.
// Constants only: no inline functions here, as this header is read by files compiled for
// different instruction sets.
#pragma once

namespace sdllm {
namespace kernels {
namespace vexp_f64 {

constexpr double kLow = -700.0;                  // below (and NaN): std::exp, lane by lane
constexpr double kInvStep = 92.33248261689366;   // 64 / ln 2
constexpr double kStepHi = 0x1.62e42fef80000p-7;  // ln2/64, 35 bits: n * kStepHi is exact
constexpr double kStepLo = 0x1.1cf79abc9e3b4p-42;  // ln2/64 - kStepHi
constexpr double kC6 = 1.0 / 720, kC5 = 1.0 / 120, kC4 = 1.0 / 24, kC3 = 1.0 / 6, kC2 = 0.5;

}  // namespace vexp_f64
}  // namespace kernels
}  // namespace sdllm
