// Run-time CPU feature detection: the AVX2+FMA kernels are chosen only when the
// processor has them, so one x86-64 binary runs everywhere on a scalar fallback.
#pragma once

namespace sdllm {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  // AVX-512 F+VL+BW+DQ with the OS saving opmask and zmm state (Skylake-X, Zen 4 and later).
  bool avx512 = false;
};

const CpuFeatures& cpu_features();
// True when the AVX2+FMA path is in use (detected, and not disabled by SDLLM_FORCE_SCALAR=1).
bool use_avx2_fma();
// Test hook: overrides SDLLM_FORCE_SCALAR at run time (true = scalar kernels only).
void set_force_scalar(bool force);
// True when the AVX-512 kernels are in use: use_avx2_fma(), AVX-512 detected, and not
// disabled by SDLLM_NO_AVX512=1. Each (the GEMMs, the attention tiles, the confidence's
// sums, SwiGLU, RoPE's rotation: cpp/ops/*_avx512.cpp) gives the results of the path it
// replaces bit for bit, so this only changes speed; the other kernels are AVX2 only.
bool use_avx512();
// Test/bench hook: overrides SDLLM_NO_AVX512 at run time; returns use_avx512() after it.
bool set_avx512(bool on);
// The kernel family in use: "avx512", "avx2-fma" or "scalar".
const char* cpu_kernels_name();

}  // namespace sdllm
