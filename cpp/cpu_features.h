// Run-time CPU feature detection: the AVX2+FMA kernels are chosen only when the
// processor has them, so one x86-64 binary runs everywhere on a scalar fallback.
#pragma once

namespace sdllm {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
};

const CpuFeatures& cpu_features();
// True when the AVX2+FMA path is in use (detected, and not disabled by SDLLM_FORCE_SCALAR=1).
bool use_avx2_fma();
// Test hook: overrides SDLLM_FORCE_SCALAR at run time (true = scalar kernels only).
void set_force_scalar(bool force);

}  // namespace sdllm
