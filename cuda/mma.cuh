// mma.cuh: warp-level BF16 tensor-core helpers for the kernels of cuda/*.cu.
//
// mma_m16n8k16_bf16 is one `mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32`:
// D (16x8, f32) = A (16x16, bf16) * B (16x8, bf16) + C (16x8, f32), executed by the 32
// lanes of a warp together. Each lane holds a fragment of each matrix, in the layouts of
// the PTX ISA ("Matrix Fragments for mma.m16n8k16 with floating point type"), with
// g = lane >> 2 (groupID) and t = lane % 4 (threadID_in_group), (row, col):
//   a[0] = {A(g, 2t),   A(g, 2t+1)}     a[1] = {A(g+8, 2t),   A(g+8, 2t+1)}
//   a[2] = {A(g, 2t+8), A(g, 2t+9)}     a[3] = {A(g+8, 2t+8), A(g+8, 2t+9)}
//   b[0] = {B(2t, g),   B(2t+1, g)}     b[1] = {B(2t+8, g),   B(2t+9, g)}
//   c[0] = C(g, 2t)  c[1] = C(g, 2t+1)  c[2] = C(g+8, 2t)  c[3] = C(g+8, 2t+1)   (D alike)
// where {x, y} is a 32-bit register holding bf16 x in its low and y in its high half.
// Needs sm_80 or newer (the library is built for sm_80/86/89/90).
//
// Under nvcc it is the inline-asm instruction; under the CPU emulator
// (SDLLM_CUDA_EMULATION, test/native/cuda/cuda_emu.h) the same per-lane registers go to
// sdllm_emu::mma_m16n8k16_bf16, a warp rendezvous that builds A, B, C from the 32 lanes'
// fragments with the layouts above and scatters D back. test_cuda_ops checks that
// emulation against a plain matrix product ("mma" cases).
#pragma once
#include <cstdint>

#include "common.cuh"

namespace sdllm {
namespace cuda {

// Two floats rounded to bf16 (round to nearest even) in one register: lo in bits 0-15.
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  uint32_t r;
  memcpy(&r, &v, sizeof r);
  return r;
}

// The halves of a packed pair, widened to float (exact).
__device__ __forceinline__ float bf16x2_lo(uint32_t v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float bf16x2_hi(uint32_t v) { return __uint_as_float(v & 0xffff0000u); }

// d = a * b + c for one warp (all 32 lanes must call it with the same control flow).
// d may be the same array as c.
__device__ __forceinline__ void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                                  const float (&c)[4]) {
#ifndef SDLLM_CUDA_EMULATION
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // bf16 mma.sync needs sm_80
#else
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
#endif
#else
  ::sdllm_emu::mma_m16n8k16_bf16(d, a, b, c);
#endif
}

}  // namespace cuda
}  // namespace sdllm
