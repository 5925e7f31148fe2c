// The register-only FMA loop behind fma_peak.h.
#include "fma_peak.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "cpu_features.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define SDLLM_FMA_PEAK_X86 1
#endif

namespace sdllm {

namespace {

#ifdef SDLLM_FMA_PEAK_X86
// 12 independent chains: 2 FMA pipes x 4 cycles of latency need 8 to stay busy.
__attribute__((target("avx2,fma"))) double fma_loop(int64_t iters) {
  __m256 a[12];
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int u = 0; u < 12; ++u) a[u] = _mm256_set1_ps(1.f + static_cast<float>(u));
  for (int64_t i = 0; i < iters; ++i)
    for (int u = 0; u < 12; ++u) a[u] = _mm256_fmadd_ps(a[u], m, c);
  __m256 s = a[0];
  for (int u = 1; u < 12; ++u) s = _mm256_add_ps(s, a[u]);
  float out[8];
  _mm256_storeu_ps(out, s);
  volatile float sink = out[0];  // keeps the loop alive
  (void)sink;
  return static_cast<double>(iters) * 12 * 8 * 2;
}

// The same with 16 lanes, for CPUs where the GEMM runs AVX-512 (full-width FMA units
// double the peak there; on double-pumped ones such as Zen 4 it equals the AVX2 loop's).
__attribute__((target("avx512f"))) double fma_loop_512(int64_t iters) {
  __m512 a[12];
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int u = 0; u < 12; ++u) a[u] = _mm512_set1_ps(1.f + static_cast<float>(u));
  for (int64_t i = 0; i < iters; ++i)
    for (int u = 0; u < 12; ++u) a[u] = _mm512_fmadd_ps(a[u], m, c);
  __m512 s = a[0];
  for (int u = 1; u < 12; ++u) s = _mm512_add_ps(s, a[u]);
  float out[16];
  _mm512_storeu_ps(out, s);
  volatile float sink = out[0];  // keeps the loop alive
  (void)sink;
  return static_cast<double>(iters) * 12 * 16 * 2;
}
#endif

}  // namespace

double fma_peak_flops(ThreadPool& pool, int64_t iters, int threads) {
#ifdef SDLLM_FMA_PEAK_X86
  if (!cpu_features().avx2 || !cpu_features().fma) return 0;
  const int n = threads > 0 ? std::min(threads, pool.size()) : pool.size();
  const bool wide = use_avx512();
  std::vector<double> flops(static_cast<size_t>(n), 0);
  pool.parallel_for(n, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) flops[static_cast<size_t>(i)] = wide ? fma_loop_512(iters) : fma_loop(iters);
  });
  double total = 0;
  for (double f : flops) total += f;
  return total;
#else
  (void)pool;
  (void)iters;
  (void)threads;
  return 0;
#endif
}

double fma_peak_gflops(ThreadPool& pool, double seconds, int rounds, int threads) {
  using clock = std::chrono::steady_clock;
  // Calibrate the iteration count to about `seconds` per round.
  int64_t iters = 100000;
  for (;;) {
    const auto t0 = clock::now();
    if (fma_peak_flops(pool, iters, threads) == 0) return 0;
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    if (s >= seconds / 4 || iters > (int64_t{1} << 40)) {
      iters = static_cast<int64_t>(static_cast<double>(iters) * seconds / std::max(s, 1e-6));
      break;
    }
    iters *= 4;
  }
  double best = 0;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = clock::now();
    const double f = fma_peak_flops(pool, iters, threads);
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::max(best, f / s / 1e9);
  }
  return best;
}

}  // namespace sdllm
