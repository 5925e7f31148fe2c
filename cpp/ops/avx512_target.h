// Marks the functions of the *_avx512.cpp files that are compiled for AVX-512. A function
// attribute rather than `#pragma GCC target`: Clang ignores the pragma, and only marked
// functions get AVX-512 code (code instantiated from library templates in these files
// stays generic, so the linker can never keep an AVX-512 copy of it for the whole program).
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define SDLLM_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))
#define SDLLM_AVX512_VNNI __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")))
#else
#define SDLLM_AVX512
#define SDLLM_AVX512_VNNI
#endif

// GCC 12 warns inside its own AVX-512 headers (their _mm512_undefined_* placeholders):
// wrap a file's AVX-512 code in these.
#if defined(__GNUC__) && !defined(__clang__)
#define SDLLM_AVX512_WARNINGS_BEGIN                                  \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define SDLLM_AVX512_WARNINGS_END _Pragma("GCC diagnostic pop")
#else
#define SDLLM_AVX512_WARNINGS_BEGIN
#define SDLLM_AVX512_WARNINGS_END
#endif
