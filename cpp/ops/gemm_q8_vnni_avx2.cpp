// The Q8_0 tile with AVX-VNNI (vpdpbusd, 256-bit VEX): one instruction per group dot
// product instead of sign + maddubs + madd. Exact int32 arithmetic either way, so the
// results are those of the AVX2 tile bit for bit. Used only when the CPU reports AVX-VNNI.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 || defined(__clang__) && __clang_major__ >= 12
#pragma GCC target("avxvnni")
#define SDLLM_Q8_VNNI 1
#endif
#include "gemm_q8_tile.h"

namespace sdllm {
namespace kernels {

#ifdef SDLLM_Q8_VNNI
namespace {
// dpbusd multiplies unsigned by signed bytes: x + 128 (x ^ 0x80) is unsigned, and the
// extra 128 * sum(w) of each weight group is subtracted by the tile (wcorr).
struct DotVnni {
  static constexpr bool kOffset = true;
  static inline __m256i prep(__m256i x) { return _mm256_xor_si256(x, _mm256_set1_epi8(-128)); }
  static inline __m256i dot(__m256i ux, __m256i, __m256i w) {
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), ux, w);
  }
};
}  // namespace

q8tile::TileKernel q8_vnni_tile() {
  q8tile::TileKernel k;
  if (__builtin_cpu_supports("avxvnni")) {
    k.fn = q8tile::tile<DotVnni>;
    k.offset = true;
  }
  return k;
}
#else
q8tile::TileKernel q8_vnni_tile() { return {}; }
#endif

}  // namespace kernels
}  // namespace sdllm
