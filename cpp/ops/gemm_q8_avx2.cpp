// AVX2 kernels of the Q8_0 GEMM (gemm_q8.cpp): activation quantization and the int8 tile.
//
// One group of 32 values of an x row and of a weight row is one ymm each. The signed x
// signed product uses the sign trick: maddubs(|x|, sign(w, x)) multiplies the unsigned
// |x| by w carrying x's sign into 16 int16 pair sums (at most 2 * 127 * 127, no
// saturation) and madd with ones widens them to 8 int32 lanes. (CPUs with AVX-VNNI take
// gemm_q8_vnni_avx2.cpp instead, same results bit for bit.) A tile is 4 x rows by 4 weight rows: the 16 products of a group are
// reduced horizontally in int32 (exact, so the grouping does not matter) and packed two
// tiles' worth of 8 outputs per ymm, then converted to float and accumulated with the
// group's scale product x_scale * w_scale by one FMA per 8 outputs. Each output thus
// owns one float lane that runs over the groups in order: the same operations whatever
// m is and wherever its row falls in a tile (missing rows of a partial tile repeat a real
// one and are not stored), so a GEMM of m rows equals the GEMMs of each row alone.
// The tail group of a K that is not a multiple of 32 reads the weights through a
// zero-padded copy (the x rows are padded by the quantizer).
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "gemm_q8_tile.h"
#include "kernels.h"

namespace sdllm {
namespace kernels {

namespace {

using namespace q8tile;

struct DotMaddubs {
  static constexpr bool kOffset = false;
  static inline __m256i prep(__m256i x) { return _mm256_sign_epi8(x, x); }  // |x|; x is never -128
  static inline __m256i dot(__m256i ux, __m256i x, __m256i w) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ux, _mm256_sign_epi8(w, x)), _mm256_set1_epi16(1));
  }
};

// -1: not decided; 0: maddubs; 1: VNNI (when the CPU has it). SDLLM_NO_VNNI=1 or
// set_q8_vnni(false) keeps the maddubs tile.
std::atomic<int> g_vnni{-1};

TileKernel pick_tile() {
  TileKernel k;
  k.fn = tile<DotMaddubs>;
  return k;
}

}  // namespace

bool set_q8_vnni(bool on) {
  g_vnni.store(on ? 1 : 0);
  return on && q8_vnni_available();
}

bool q8_use_vnni() {
  int v = g_vnni.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* e = std::getenv("SDLLM_NO_VNNI");
    v = (e && e[0] == '1') ? 0 : 1;
    g_vnni.store(v);
  }
  return v == 1 && q8_vnni_available();
}

void avx2_q8_quantize_row(const float* x, int64_t n, int8_t* q, float* scales) {
  const int64_t full = n / kQ8Group;
  const __m256 sign = _mm256_set1_ps(-0.f), hi = _mm256_set1_ps(127.f), lo = _mm256_set1_ps(-127.f);
  for (int64_t g = 0; g < full; ++g) {
    const float* s = x + g * kQ8Group;
    __m256 v[4];
    for (int u = 0; u < 4; ++u) v[u] = _mm256_loadu_ps(s + 8 * u);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float scale = amax / 127.f;
    const float inv = scale != 0.f ? 1.f / scale : 0.f;
    scales[g] = scale;
    const __m256 vi = _mm256_set1_ps(inv);
    __m256i r[4];
    for (int u = 0; u < 4; ++u) {
      __m256 t = _mm256_mul_ps(v[u], vi);
      t = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
      r[u] = _mm256_cvtps_epi32(t);  // round to nearest even
    }
    // int32 -> int16 -> int8; packs interleave the 128-bit lanes, the permute undoes it.
    const __m256i p01 = _mm256_packs_epi32(r[0], r[1]), p23 = _mm256_packs_epi32(r[2], r[3]);
    __m256i p = _mm256_packs_epi16(p01, p23);
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + g * kQ8Group), p);
  }
  if (full * kQ8Group < n)
    q8_quantize_row(x + full * kQ8Group, n - full * kQ8Group, q + full * kQ8Group, scales + full);
}

// 128 * (sum of the 32 int8 in p): psadbw of the biased bytes against 0 sums them unsigned.
inline int32_t offset_of_group(const int8_t* p) {
  const __m256i b = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), _mm256_set1_epi8(-128));
  const __m256i s = _mm256_sad_epu8(b, _mm256_setzero_si256());
  const __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  const int64_t u = _mm_cvtsi128_si64(t) + _mm_extract_epi64(t, 1);
  return static_cast<int32_t>(128 * (u - 128 * 32));
}

void avx2_q8_scale_pattern(const float* xs, int64_t m, int64_t groups, float* xsp) {
  for (int64_t i0 = 0, t = 0; i0 < m; i0 += 4, ++t) {
    float* dst = xsp + t * groups * 16;
    for (int i = 0; i < 4; ++i) {
      const float* src = xs + std::min(i0 + i, m - 1) * groups;  // a partial tile repeats its last row
      for (int64_t g = 0; g < groups; ++g)
        for (int u = 0; u < 4; ++u) dst[g * 16 + i * 4 + u] = src[g];
    }
  }
}

void avx2_q8_gemm_rows(const int8_t* xq, const float* xsp, int64_t m, int64_t k, int64_t kp, const WeightView& w,
                       int64_t n0, int64_t n1, float* y, int64_t ldy) {
  const TileKernel kernel = pick_tile();
  const int64_t n = ldy, groups = q8_groups(k), full = k / kQ8Group;  // n: y's row stride
  const bool tail = full < groups;
  const int8_t* wq = static_cast<const int8_t*>(w.data);
  // Per tile of 4 weight rows of the panel: the scales transposed, [tile][group][4], the
  // zero-padded tail groups and, for the VNNI tile, the offsets [tile][group][4].
  const int64_t tiles = (n1 - n0 + kTileCols - 1) / kTileCols;
  const size_t per = static_cast<size_t>(tiles * groups * 4 + 8);
  thread_local std::vector<float> wst_buf;
  thread_local std::vector<int32_t> corr_buf;
  thread_local std::vector<int8_t> tail_buf;
  if (wst_buf.size() < per) wst_buf.resize(per);
  if (kernel.offset && corr_buf.size() < per) corr_buf.resize(per);
  if (tail && tail_buf.size() < static_cast<size_t>(tiles * 4 * 32)) tail_buf.resize(static_cast<size_t>(tiles * 4 * 32));
  for (int64_t t = 0; t < tiles; ++t)
    for (int jj = 0; jj < kTileCols; ++jj) {
      const int64_t j = std::min(n1 - 1, n0 + t * kTileCols + jj);  // a partial tile repeats its last row
      const int8_t* wj = wq + j * k;
      float* dst = wst_buf.data() + t * groups * 4 + jj;
      for (int64_t g = 0; g < groups; ++g) dst[g * 4] = w.scales[j * groups + g];
      int8_t* tb = tail ? tail_buf.data() + (t * 4 + jj) * 32 : nullptr;
      if (tail) {
        std::memset(tb, 0, 32);
        std::memcpy(tb, wj + full * kQ8Group, static_cast<size_t>(k - full * kQ8Group));
      }
      if (kernel.offset) {
        int32_t* c = corr_buf.data() + t * groups * 4 + jj;
        for (int64_t g = 0; g < full; ++g) c[g * 4] = offset_of_group(wj + g * kQ8Group);
        if (tail) c[full * 4] = offset_of_group(tb);
      }
    }
  for (int64_t i0 = 0; i0 < m; i0 += kTileRows) {
    const int nr = static_cast<int>(std::min<int64_t>(kTileRows, m - i0));
    const int8_t* xr[kTileRows];
    for (int i = 0; i < kTileRows; ++i) xr[i] = xq + (i0 + std::min(i, nr - 1)) * kp;  // partial tile: repeat
    const float* xspt = xsp + (i0 / kTileRows) * groups * 16;
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t j0 = n0 + t * kTileCols;
      const int nc = static_cast<int>(std::min<int64_t>(kTileCols, n1 - j0));
      const int8_t* wr[kTileCols];
      for (int jj = 0; jj < kTileCols; ++jj) wr[jj] = wq + std::min(n1 - 1, j0 + jj) * k;
      kernel.fn(xr, xspt, wr, wst_buf.data() + t * groups * 4, kernel.offset ? corr_buf.data() + t * groups * 4 : nullptr,
                full, tail, reinterpret_cast<const int8_t(*)[32]>(tail ? tail_buf.data() + t * 4 * 32 : nullptr),
                y + i0 * n + j0, n, nr, nc);
    }
  }
}

}  // namespace kernels
}  // namespace sdllm
