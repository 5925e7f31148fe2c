// op_gemm on Q8_0 weights (dtype.h): y = x w^T with w int8 in groups of 32 along K and one
// float32 scale per group. The activations are quantized the same way, per row and group
// (q8_quantize_row), so each group's dot product is an exact int32 sum; the output is
// sum_g (x_scale[i, g] * w_scale[j, g]) * isum(i, j, g) accumulated in float32.
//
// Reduction order: the sum for output (i, j) runs over the groups in order with the same
// operations whatever m is and wherever row i falls in a tile (scalar: one float
// accumulator; AVX2: 8 float lanes reduced once at the end), so a GEMM over m rows equals,
// bit for bit, the GEMMs of each row alone. Threads split the weight rows (project.cpp);
// the activations are quantized once per projection, whatever number of weights share them.
#include <algorithm>
#include <cstring>
#include <vector>

#include "../cpu_features.h"
#include "../ops.h"
#include "gemm_blocks.h"
#include "kernels.h"

namespace sdllm {

namespace {

// Scalar path: the quantized activation rows have stride kp (groups * 32, zero padded).
void scalar_q8_rows(const int8_t* xq, const float* xs, int64_t m, int64_t k, int64_t kp, const WeightView& w,
                    int64_t n0, int64_t n1, float* y, int64_t ldy) {
  const int64_t n = ldy, groups = q8_groups(k);  // n: y's row stride
  const int8_t* wq = static_cast<const int8_t*>(w.data);
  for (int64_t j = n0; j < n1; ++j) {
    const int8_t* wj = wq + j * k;
    const float* wsj = w.scales + j * groups;
    for (int64_t i = 0; i < m; ++i) {
      const int8_t* xi = xq + i * kp;
      const float* xsi = xs + i * groups;
      float acc = 0.f;
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t c0 = g * kQ8Group, len = std::min(kQ8Group, k - c0);
        int32_t s = 0;
        for (int64_t c = 0; c < len; ++c) s += static_cast<int32_t>(xi[c0 + c]) * static_cast<int32_t>(wj[c0 + c]);
        const float d = xsi[g] * wsj[g];
        acc += static_cast<float>(s) * d;
      }
      y[i * n + j] = acc;
    }
  }
}

// Weight rows per work item. The panel is reused by every group of x rows, so it should
// stay in L2: about 256 KiB of int8, a multiple of the AVX2 tile's 4 rows.
int64_t q8_panel_rows(int64_t k) {
  int64_t p = (256 * 1024) / std::max<int64_t>(1, k);
  p = std::max<int64_t>(8, std::min<int64_t>(64, p));
  return p & ~int64_t(3);
}

}  // namespace

namespace kernels {

void q8_quantize_rows(const float* x, int64_t m, int64_t k, int8_t* xq, float* xs, ThreadPool& pool) {
  const int64_t groups = q8_groups(k), kp = groups * kQ8Group;
  const bool avx2 = use_avx2_fma();
  auto rows = [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      int8_t* qi = xq + i * kp;
      if (avx2)
        avx2_q8_quantize_row(x + i * k, k, qi, xs + i * groups);
      else
        q8_quantize_row(x + i * k, k, qi, xs + i * groups);
      if (kp > k) std::memset(qi + k, 0, static_cast<size_t>(kp - k));
    }
  };
  // A row is a few microseconds of work: not worth a thread for small batches.
  pool.parallel_for(m, m * k < (1 << 16) ? m : std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(1, k)), rows);
}

}  // namespace kernels

namespace gemm {

Q8Input q8_prepare(const float* x, int64_t m, int64_t k, ThreadPool& pool) {
  Q8Input in;
  in.m = m;
  in.k = k;
  in.groups = q8_groups(k);
  in.kp = in.groups * kQ8Group;
  const int64_t groups = in.groups, kp = in.kp;
  // Scratch of the calling thread, reused across calls (never zero-filled: every byte
  // used is written by the quantizer).
  thread_local std::vector<int8_t> xq_buf;
  thread_local std::vector<float> xs_buf;
  thread_local std::vector<float> xsp_buf;
  thread_local std::vector<int8_t> xp_buf;
  thread_local std::vector<int32_t> xo_buf;
  if (xq_buf.size() < static_cast<size_t>(m * kp + 32)) xq_buf.resize(static_cast<size_t>(m * kp + 32));
  if (xs_buf.size() < static_cast<size_t>(m * groups)) xs_buf.resize(static_cast<size_t>(m * groups));
  kernels::q8_quantize_rows(x, m, k, xq_buf.data(), xs_buf.data(), pool);
  const bool avx2 = use_avx2_fma();
  const bool vnni = avx2 && kernels::q8_use_vnni();
  const bool vnni512 = vnni && use_avx512() && kernels::q8_vnni512_available();
  const int64_t tiles = (m + 3) / 4;
  if (vnni512) {
    in.path = Q8Input::Vnni512;
    if (xo_buf.size() < static_cast<size_t>(m * groups)) xo_buf.resize(static_cast<size_t>(m * groups));
    kernels::vnni512_q8_x_offsets(xq_buf.data(), m, kp, groups, xo_buf.data());
  } else if (vnni) {
    in.path = Q8Input::Vnni;
    if (xsp_buf.size() < static_cast<size_t>(tiles * groups * 8)) xsp_buf.resize(static_cast<size_t>(tiles * groups * 8));
    if (xp_buf.size() < static_cast<size_t>(tiles * groups * 128)) xp_buf.resize(static_cast<size_t>(tiles * groups * 128));
    kernels::vnni_q8_pack_x(xq_buf.data(), xs_buf.data(), m, k, kp, xp_buf.data(), xsp_buf.data());
  } else if (avx2) {
    in.path = Q8Input::Avx2;
    const size_t need = static_cast<size_t>(tiles * groups * 16);
    if (xsp_buf.size() < need) xsp_buf.resize(need);
    kernels::avx2_q8_scale_pattern(xs_buf.data(), m, groups, xsp_buf.data());
  }
  in.xq = xq_buf.data();
  in.xs = xs_buf.data();
  in.xsp = xsp_buf.data();
  in.xp = xp_buf.data();
  in.xo = xo_buf.data();
  return in;
}

// The VNNI-512 tile packs weight rows 32 at a time: ranges are best whole multiples.
int64_t q8_unit(const Q8Input& in) { return in.path == Q8Input::Vnni512 ? 32 : 4; }

void q8_outputs(const Q8Input& in, const WeightView& w, int64_t n0, int64_t n1, float* y, int64_t ldy) {
  const int64_t m = in.m, k = in.k;
  if (m <= 0 || n1 <= n0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i) std::fill(y + i * ldy + n0, y + i * ldy + n1, 0.f);
    return;
  }
  const int64_t unit = q8_unit(in);
  const int64_t panel = std::max(unit, q8_panel_rows(k) / unit * unit);
  for (int64_t p = n0; p < n1; p += panel) {
    const int64_t q = std::min(n1, p + panel);
    switch (in.path) {
      case Q8Input::Vnni512:
        kernels::vnni512_q8_gemm_rows(in.xq, in.xs, in.xo, m, k, in.kp, w, p, q, y, ldy);
        break;
      case Q8Input::Vnni:
        kernels::vnni_q8_gemm_rows(in.xp, in.xsp, m, k, w, p, q, y, ldy);
        break;
      case Q8Input::Avx2:
        kernels::avx2_q8_gemm_rows(in.xq, in.xsp, m, k, in.kp, w, p, q, y, ldy);
        break;
      case Q8Input::Scalar:
        scalar_q8_rows(in.xq, in.xs, m, k, in.kp, w, p, q, y, ldy);
        break;
    }
  }
}

}  // namespace gemm

}  // namespace sdllm
