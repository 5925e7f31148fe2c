// AVX2+FMA kernels (compiled with -mavx2 -mfma -mf16c; only called when
// use_avx2_fma() is true).
//
// GEMM design: y = x w^T with both x rows and w rows contiguous in K, so each output
// is a dot product along K. A 4x3 tile (4 x rows by 3 weight rows) keeps 12 ymm
// accumulators of 8 K-lanes each; per 8 K-values it does 3 weight loads, 4 x loads
// and 12 FMAs, and reduces the lanes horizontally once per K block. Working on dot
// products means a BF16/F16 panel only has to be widened (no transpose) into a
// thread-local float32 buffer, which is then reused by every group of 4 x rows.
// F32 weights are read in place. The K block keeps that panel in L2 while the
// 4 x rows of a tile (4 * kDepth floats) stay in L1.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels.h"

namespace sdllm {
namespace kernels {

namespace {

constexpr int64_t kDepth = 1024;  // K block
constexpr int64_t kPad = 16;      // breaks the 4 KiB stride between widened rows

alignas(32) const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

inline __m256i tail_mask(int64_t rem) {  // first `rem` lanes on, 0 < rem < 8
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - rem));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[i, j] (+)= the horizontal sum of accumulator (i, j), for I = i * NR + j and the ones
// after it, one per template instance: with a loop here GCC kept the accumulators in a
// stack array, zeroed there and copied back around the tile's K loop.
template <int MR, int NR, int I>
inline void store_sums(const __m256 (&c)[MR][NR], float* y, int64_t ldy, bool accumulate) {
  if constexpr (I < MR * NR) {
    const float s = hsum(c[I / NR][I % NR]);
    float& out = y[(I / NR) * ldy + I % NR];
    out = accumulate ? out + s : s;
    store_sums<MR, NR, I + 1>(c, y, ldy, accumulate);
  }
}

// y[i, j] (+)= sum_p x[i, p] w[j, p] for i < MR, j < NR, p < kb.
// kTail: kb is not a multiple of 8. A tile without that block (every real model's K)
// keeps its accumulators in registers; with it GCC keeps them in a stack array, stored and
// reloaded around the K loop.
template <int MR, int NR, bool kTail>
void tile(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t kb, float* y, int64_t ldy,
          bool accumulate) {
  __m256 c[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i][j] = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 8 <= kb; p += 8) {
    __m256 b[NR];
    for (int j = 0; j < NR; ++j) b[j] = _mm256_loadu_ps(w + j * ldw + p);
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_loadu_ps(x + i * ldx + p);
      for (int j = 0; j < NR; ++j) c[i][j] = _mm256_fmadd_ps(a, b[j], c[i][j]);
    }
  }
  if (kTail && p < kb) {  // masked loads never touch memory past the row end
    const __m256i mask = tail_mask(kb - p);
    __m256 b[NR];
    for (int j = 0; j < NR; ++j) b[j] = _mm256_maskload_ps(w + j * ldw + p, mask);
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_maskload_ps(x + i * ldx + p, mask);
      for (int j = 0; j < NR; ++j) c[i][j] = _mm256_fmadd_ps(a, b[j], c[i][j]);
    }
  }
  store_sums<MR, NR, 0>(c, y, ldy, accumulate);
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t, bool);
template <bool kTail>
struct Tiles {
  static constexpr TileFn at[4][3] = {
      {tile<1, 1, kTail>, tile<1, 2, kTail>, tile<1, 3, kTail>},
      {tile<2, 1, kTail>, tile<2, 2, kTail>, tile<2, 3, kTail>},
      {tile<3, 1, kTail>, tile<3, 2, kTail>, tile<3, 3, kTail>},
      {tile<4, 1, kTail>, tile<4, 2, kTail>, tile<4, 3, kTail>},
  };
};

}  // namespace

void avx2_widen(const WeightView& w, int64_t offset, int64_t count, float* out) {
  const uint16_t* s = static_cast<const uint16_t*>(w.data) + offset;
  int64_t i = 0;
  if (w.dtype == DType::BF16) {
    for (; i + 8 <= count; i += 8) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
      _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
    }
    for (; i < count; ++i) out[i] = bf16_to_f32(s[i]);
  } else if (w.dtype == DType::F16) {
    for (; i + 8 <= count; i += 8)
      _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
    for (; i < count; ++i) out[i] = f16_to_f32(s[i]);
  } else {
    const float* f = static_cast<const float*>(w.data) + offset;
    std::copy(f, f + count, out);
  }
}

void avx2_gemm_rows(const float* x, int64_t m, int64_t k, const WeightView& w, int64_t n0, int64_t n1,
                    float* y, int64_t ldy) {
  const int64_t n = ldy;  // y's row stride
  const bool widen = w.dtype != DType::F32;
  thread_local std::vector<float> buf;
  if (widen) buf.resize(static_cast<size_t>((n1 - n0) * (kDepth + kPad)));
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i) std::fill(y + i * n + n0, y + i * n + n1, 0.f);
    return;
  }
  for (int64_t k0 = 0; k0 < k; k0 += kDepth) {
    const int64_t kb = std::min(kDepth, k - k0);
    const float* wp;
    int64_t ldw;
    if (widen) {
      ldw = kDepth + kPad;
      for (int64_t j = n0; j < n1; ++j) avx2_widen(w, j * k + k0, kb, buf.data() + (j - n0) * ldw);
      wp = buf.data();
    } else {
      ldw = k;
      wp = static_cast<const float*>(w.data) + n0 * k + k0;
    }
    const TileFn(&tiles)[4][3] = kb % 8 ? Tiles<true>::at : Tiles<false>::at;
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
      const int64_t mr = std::min<int64_t>(4, m - i0);
      for (int64_t j0 = n0; j0 < n1; j0 += 3) {
        const int64_t nr = std::min<int64_t>(3, n1 - j0);
        tiles[mr - 1][nr - 1](x + i0 * k + k0, k, wp + (j0 - n0) * ldw, ldw, kb, y + i0 * n + j0, n, k0 > 0);
      }
    }
  }
}

float avx2_dot(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  if (i + 8 <= n) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    i += 8;
  }
  float s = hsum(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void avx2_axpy(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

void avx2_scale(float a, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] *= a;
}

}  // namespace kernels
}  // namespace sdllm
