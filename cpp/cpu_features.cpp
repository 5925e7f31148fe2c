// CPUID-based detection of the instruction sets the *_avx2.cpp kernels use.
// AVX state must also be enabled by the OS (OSXSAVE + XCR0 bits for XMM and YMM),
// otherwise the first ymm instruction faults even though CPUID advertises AVX2.
#include "cpu_features.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#if defined(_MSC_VER)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#define SDLLM_X86 1
#endif

namespace sdllm {

namespace {

#ifdef SDLLM_X86
void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
#if defined(_MSC_VER)
  int v[4];
  __cpuidex(v, static_cast<int>(leaf), static_cast<int>(sub));
  for (int i = 0; i < 4; ++i) r[i] = static_cast<uint32_t>(v[i]);
#else
  __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
#endif
}

uint64_t xgetbv0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  uint32_t lo, hi;
  // Raw encoding of xgetbv, so this file needs no -mxsave.
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
#endif
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#ifdef SDLLM_X86
  uint32_t r[4];
  cpuid(0, 0, r);
  const uint32_t max_leaf = r[0];
  if (max_leaf < 1) return f;
  cpuid(1, 0, r);
  const bool osxsave = (r[2] >> 27) & 1, avx = (r[2] >> 28) & 1;
  const bool fma = (r[2] >> 12) & 1, f16c = (r[2] >> 29) & 1;
  if (!osxsave || !avx) return f;
  if ((xgetbv0() & 0x6) != 0x6) return f;  // OS does not save XMM+YMM state
  bool avx2 = false;
  if (max_leaf >= 7) {
    cpuid(7, 0, r);
    avx2 = (r[1] >> 5) & 1;
    // F (ebx 16), DQ (17), BW (30), VL (31); XCR0 bits 5-7: opmask, upper zmm0-15, zmm16-31.
    const uint32_t need = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);
    f.avx512 = avx2 && (r[1] & need) == need && (xgetbv0() & 0xE0) == 0xE0;
  }
  f.avx2 = avx2;
  f.fma = fma;
  f.f16c = f16c;
#endif
  return f;
}

// -1: not decided yet; 0/1: forced by set_force_scalar or decided from the env.
std::atomic<int> g_force_scalar{-1};
// Same for SDLLM_NO_AVX512 / set_avx512 (1 = AVX-512 turned off).
std::atomic<int> g_avx512_off{-1};

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

void set_force_scalar(bool force) { g_force_scalar.store(force ? 1 : 0); }

// The value of an on/off switch: its run-time override, else its environment variable
// (set, non-empty and not "0" = on), decided once.
bool switch_on(std::atomic<int>& state, const char* env_name) {
  int v = state.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* env = std::getenv(env_name);
    int expected = -1;
    state.compare_exchange_strong(expected, (env && std::strcmp(env, "0") != 0 && env[0] != '\0') ? 1 : 0);
    v = state.load();
  }
  return v == 1;
}

bool use_avx2_fma() {
#if defined(SDLLM_NO_AVX2_SOURCES)
  return false;
#else
  // The AVX2 files are compiled with -mf16c too, so F16C is part of the contract.
  const CpuFeatures& f = cpu_features();
  return !switch_on(g_force_scalar, "SDLLM_FORCE_SCALAR") && f.avx2 && f.fma && f.f16c;
#endif
}

bool use_avx512() {
#if defined(SDLLM_NO_AVX2_SOURCES)
  return false;
#else
  return !switch_on(g_avx512_off, "SDLLM_NO_AVX512") && cpu_features().avx512 && use_avx2_fma();
#endif
}

bool set_avx512(bool on) {
  g_avx512_off.store(on ? 0 : 1);
  return use_avx512();
}

const char* cpu_kernels_name() { return use_avx512() ? "avx512" : use_avx2_fma() ? "avx2-fma" : "scalar"; }

}  // namespace sdllm
