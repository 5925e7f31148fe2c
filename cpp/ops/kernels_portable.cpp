// Stand-ins for the x86 kernels of *_avx2.cpp and *_avx512.cpp where those files are not
// compiled (arm64 and other non-x86 builds define SDLLM_NO_AVX2_SOURCES). There
// use_avx2_fma() and use_avx512() are false, so the portable ops never call these; they
// exist so that the ops' dispatch links. On x86 this file compiles to nothing.
#if defined(SDLLM_NO_AVX2_SOURCES)
#include <cstdlib>

#include "kernels.h"

namespace sdllm {
namespace kernels {

namespace {
[[noreturn]] void x86_kernel_called() { std::abort(); }
}  // namespace

void avx2_gemm_rows(const float*, int64_t, int64_t, const WeightView&, int64_t, int64_t, float*, int64_t) {
  x86_kernel_called();
}
void avx512_gemm_rows(const float*, int64_t, int64_t, const WeightView&, int64_t, int64_t, float*, int64_t) {
  x86_kernel_called();
}
int64_t avx512_packed_floats(int64_t, int64_t) { x86_kernel_called(); }
void avx512_pack_weight(const WeightView&, int64_t, int64_t, float*) { x86_kernel_called(); }
int64_t avx512_packed_bf16_halves(int64_t, int64_t) { x86_kernel_called(); }
void avx512_pack_weight_bf16(const WeightView&, int64_t, int64_t, uint16_t*) { x86_kernel_called(); }
void avx2_widen(const WeightView&, int64_t, int64_t, float*) { x86_kernel_called(); }
float avx2_dot(const float*, const float*, int64_t) { x86_kernel_called(); }
void avx2_axpy(float, const float*, float*, int64_t) { x86_kernel_called(); }
void avx2_scale(float, float*, int64_t) { x86_kernel_called(); }
void avx2_attention(const AttentionParams&, ThreadPool&) { x86_kernel_called(); }
void avx2_attention_batch(const AttentionParams*, size_t, ThreadPool&) { x86_kernel_called(); }
void avx2_rmsnorm_row(const float*, const WeightView&, int64_t, float, float*) { x86_kernel_called(); }
void avx2_swiglu(const float*, const float*, int64_t, float*) { x86_kernel_called(); }
void avx512_swiglu(const float*, const float*, int64_t, float*) { x86_kernel_called(); }
void avx512_rope_head(float*, const float*, const float*, int) { x86_kernel_called(); }
ExpSums avx2_exp_sums(const float*, int64_t, double, double) { x86_kernel_called(); }
ExpSums avx512_exp_sums(const float*, int64_t, double, double) { x86_kernel_called(); }
void avx2_block_max(const float*, int64_t, LaneMax&) { x86_kernel_called(); }
void avx512_block_max(const float*, int64_t, LaneMax&) { x86_kernel_called(); }
void avx2_q8_quantize_row(const float*, int64_t, int8_t*, float*) { x86_kernel_called(); }
bool set_q8_vnni(bool) { return false; }
bool q8_use_vnni() { return false; }
bool q8_vnni_available() { return false; }
void vnni_q8_pack_x(const int8_t*, const float*, int64_t, int64_t, int64_t, int8_t*, float*) { x86_kernel_called(); }
void vnni_q8_gemm_rows(const int8_t*, const float*, int64_t, int64_t, const WeightView&, int64_t, int64_t, float*,
                       int64_t) {
  x86_kernel_called();
}
Q8PanelPrep vnni_q8_panel_prep(const WeightView&, int64_t, int64_t, int64_t) { x86_kernel_called(); }
bool q8_vnni512_available() { return false; }
void vnni512_q8_x_offsets(const int8_t*, int64_t, int64_t, int64_t, int32_t*) { x86_kernel_called(); }
void vnni512_q8_gemm_rows(const int8_t*, const float*, const int32_t*, int64_t, int64_t, int64_t, const WeightView&,
                          int64_t, int64_t, float*, int64_t) {
  x86_kernel_called();
}
void avx2_q8_scale_pattern(const float*, int64_t, int64_t, float*) { x86_kernel_called(); }
void avx2_q8_gemm_rows(const int8_t*, const float*, int64_t, int64_t, int64_t, const WeightView&, int64_t, int64_t,
                       float*, int64_t) {
  x86_kernel_called();
}

}  // namespace kernels
}  // namespace sdllm
#endif
