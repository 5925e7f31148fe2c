// The GEMM's building blocks, shared by op_gemm and op_project (project.cpp): a block of
// outputs y[0:m, n0:n1) of one weight, by the kernel of its dtype. Which thread computes
// which block is project.cpp's business; a block's floats do not depend on it.
#pragma once
#include <cstdint>

#include "dtype.h"
#include "threadpool.h"

namespace sdllm {
namespace gemm {

// Float weights (F32, BF16, F16): y[0:m, n0:n1) = x w[n0:n1]^T, no bias, cut into panels
// of at most 48 weight rows for the AVX-512, AVX2 or scalar kernel (gemm.cpp).
void float_outputs(const float* x, int64_t m, int64_t k, const WeightView& w, int64_t n0, int64_t n1, float* y,
                   int64_t ldy);
// The weight rows a float kernel's tile covers: ranges cut at its multiples run whole tiles.
int64_t float_unit();
// x rows a float kernel's tile covers (a thread's share of x rows is a multiple of it).
int64_t float_tile_rows();

// Q8_0 weights: the activations quantized once (per row and group of 32, with the packing
// the selected kernel wants), then any number of blocks of any Q8_0 weight with k columns.
// The buffers are the calling thread's, valid until its next q8_prepare.
struct Q8Input {
  int64_t m = 0, k = 0, kp = 0, groups = 0;
  enum Path { Scalar, Avx2, Vnni, Vnni512 } path = Scalar;
  const int8_t* xq = nullptr;   // m x kp, zero padded
  const float* xs = nullptr;    // m x groups scales
  const float* xsp = nullptr;   // AVX2 scale pattern / VNNI packed scales
  const int8_t* xp = nullptr;   // VNNI packed activations
  const int32_t* xo = nullptr;  // VNNI-512 offsets
};
Q8Input q8_prepare(const float* x, int64_t m, int64_t k, ThreadPool& pool);
// y[0:m, n0:n1) = x w[n0:n1]^T (dequantized), no bias, in panels that stay in L2.
void q8_outputs(const Q8Input& in, const WeightView& w, int64_t n0, int64_t n1, float* y, int64_t ldy);
// The weight rows the selected Q8 kernel packs together.
int64_t q8_unit(const Q8Input& in);

}  // namespace gemm
}  // namespace sdllm
