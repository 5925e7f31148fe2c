// Counter-based RNG shared by the CPU and CUDA backends, so that a seed gives the same
// draws on both: a uniform in (0, 1) from (seed, key, counter) by SplitMix64-style mixing.
#pragma once
#include <cstdint>

#if defined(__CUDACC__) || defined(SDLLM_CUDA_EMULATION)
#define SDLLM_HD __host__ __device__
#else
#define SDLLM_HD
#endif

namespace sdllm {

SDLLM_HD inline uint64_t rng_mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Never exactly 0 or 1, so log(-log u) is always finite.
SDLLM_HD inline double rng_uniform(uint64_t seed, uint64_t key, uint64_t counter) {
  const uint64_t z = rng_mix64(seed ^ rng_mix64(key ^ rng_mix64(counter)));
  return (static_cast<double>(z >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

}  // namespace sdllm
