// Internal interface between the ops (scalar, portable) and their AVX2+FMA kernels
// in *_avx2.cpp. Only call the avx2_* functions when use_avx2_fma() is true.
#pragma once
#include <cstdint>

#include "dtype.h"
#include "ops.h"
#include "threadpool.h"

namespace sdllm {
namespace kernels {

// y[m, n] = x[m, k] * w^T for the weight rows [n0, n1), without bias.
// y's rows are ldy floats apart (ldy >= w.rows: a GEMM can write beside others' outputs).
void avx2_gemm_rows(const float* x, int64_t m, int64_t k, const WeightView& w, int64_t n0, int64_t n1,
                    float* y, int64_t ldy);
// The same outputs, bit for bit, with AVX-512 (gemm_avx512.cpp); only when use_avx512().
void avx512_gemm_rows(const float* x, int64_t m, int64_t k, const WeightView& w, int64_t n0, int64_t n1,
                      float* y, int64_t ldy);
// The AVX-512 GEMM's weight layout for a whole weight (the loader's repack): how many
// floats it takes, and packing the row pairs [pair0, pair1) of it into `out` (the whole
// layout's base). avx512_gemm_rows reads w.packed instead of packing when it is set;
// the floats are the ones it would have packed, so the outputs do not change.
int64_t avx512_packed_floats(int64_t rows, int64_t cols);
void avx512_pack_weight(const WeightView& w, int64_t pair0, int64_t pair1, float* out);
// The same for BF16 weights, kept 16-bit (WeightView::packed_bf16): uint16s of the layout,
// and packing the row quads [quad0, quad1).
int64_t avx512_packed_bf16_halves(int64_t rows, int64_t cols);
void avx512_pack_weight_bf16(const WeightView& w, int64_t quad0, int64_t quad1, uint16_t* out);
// Converts `count` contiguous weight elements starting at element `offset` to float32.
void avx2_widen(const WeightView& w, int64_t offset, int64_t count, float* out);

// Attention inner loops on one head: dot products and out += p * v.
float avx2_dot(const float* a, const float* b, int64_t n);
void avx2_axpy(float a, const float* x, float* y, int64_t n);
void avx2_scale(float a, float* y, int64_t n);

// op_attention's AVX2 path (attention_avx2.cpp): any head_dim, GQA, either segment empty.
void avx2_attention(const AttentionParams& p, ThreadPool& pool);
// Several independent calls (the sequences of a batch) as one job over all their items.
void avx2_attention_batch(const AttentionParams* ps, size_t count, ThreadPool& pool);

// The attention's tiles in 16 lanes (attention_avx512.cpp; only when use_avx512()), for
// micro-tiles of mr = 1 .. kAvx512AttentionRows query rows. Same floats as the AVX2 ones.
constexpr int kAvx512AttentionRows = 8;
// Scores of all nbp keys (nbp a multiple of 8, at most ldk); returns nbp.
int64_t avx512_qk_rows(int mr, const float* q, int64_t hd, const float* kt, int64_t ldk, int64_t nbp, float* s,
                       int64_t lds);
// Values for the first multiple of 16 of hd columns; returns it (the AVX2 tiles do the rest).
int64_t avx512_pv_rows(int mr, const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t nb, int64_t hd,
                       float* acc, int64_t lda);
// The softmax step of one key block (scores s, rows lds apart): padded keys to -inf, each
// row's running max / sum / acc (lda floats a row) updated and its scores replaced by
// exp(s - max), as the AVX2 loop does row by row.
void avx512_softmax_rows(int mr, float* s, int64_t lds, int64_t nb, int64_t nbp, float* max, double* sum,
                         float* acc, int64_t lda);

// The softmax sums of op_confidence over one block of a logits row: with
// d = (l[t] - m) * inv for t < n (m the row's running max, so d <= 0), sum = sum exp(d)
// and ent = sum exp(d) d over the terms with exp(d) > 0, in 8 double lanes (term t in
// lane t % 8, exp of vexp_f64.h, ent by FMA), the lanes added as (0+4)+(2+6) + (1+5)+(3+7).
// The AVX2 (confidence_avx2.cpp) and AVX-512 (confidence_avx512.cpp) versions give the
// same bits.
struct ExpSums {
  double sum = 0, ent = 0;
};
ExpSums avx2_exp_sums(const float* l, int64_t n, double m, double inv);
ExpSums avx512_exp_sums(const float* l, int64_t n, double m, double inv);
// The max pass of op_confidence over one block of a logits row (n < 2^31), split by lane:
// lane i takes the values at t = i mod `lanes` (8 with AVX2, 16 with AVX-512) in order and
// keeps the scalar loop's state for them (confidence.cpp reduce): `max` its largest value,
// `arg` the first index holding it (-1, and max -inf, when no value is above -inf),
// `second` the largest value at any other of its indices. NaNs are skipped, as there.
// confidence.cpp merges the lanes.
struct LaneMax {
  float max[16], second[16];
  int32_t arg[16];
  int lanes;
};
void avx2_block_max(const float* l, int64_t n, LaneMax& out);
void avx512_block_max(const float* l, int64_t n, LaneMax& out);
// 2^(j/64) for j = 0..63 (confidence.cpp), the table of vexp_f64.h.
const double* exp2_frac64();

// One RMSNorm row (elementwise_avx2.cpp); out may alias x.
void avx2_rmsnorm_row(const float* x, const WeightView& w, int64_t d, float eps, float* out);

// out[i] = silu(gate[i]) * up[i] with a vectorised exp (elementwise_avx2.cpp).
void avx2_swiglu(const float* gate, const float* up, int64_t n, float* out);
// The same floats 16 lanes at a time (elementwise_avx512.cpp).
void avx512_swiglu(const float* gate, const float* up, int64_t n, float* out);

// op_rope_apply's rotation of one head (v[0, half) with v[half, 2 half) by the angles' cos
// c and sin s), the same floats 16 pairs at a time (rope_avx512.cpp).
void avx512_rope_head(float* v, const float* c, const float* s, int half);

// Q8_0 (gemm_q8.cpp, gemm_q8_avx2.cpp). Quantizes m activation rows of k values into
// xq (row stride q8_groups(k) * 32, zero padded) and xs (row stride q8_groups(k)).
void q8_quantize_rows(const float* x, int64_t m, int64_t k, int8_t* xq, float* xs, ThreadPool& pool);
// q8_quantize_row (dtype.h) with AVX2, identical results.
void avx2_q8_quantize_row(const float* x, int64_t n, int8_t* q, float* scales);
// Test/bench hook: use the AVX-VNNI tile when the CPU has it (default, unless SDLLM_NO_VNNI=1)
// or the maddubs one; returns whether VNNI is now in use. Both give identical results.
bool set_q8_vnni(bool on);
// Whether the Q8 GEMM takes the VNNI path now (AVX-VNNI present and not disabled).
bool q8_use_vnni();
// gemm_q8_vnni_avx2.cpp: the CPU has AVX-VNNI; the activations repacked per tile of 4 rows
// (xp: ceil(m/4) * groups * 128 bytes, xsp: ceil(m/4) * groups * 8 floats); the GEMM rows.
bool q8_vnni_available();
void vnni_q8_pack_x(const int8_t* xq, const float* xs, int64_t m, int64_t k, int64_t kp, int8_t* xp, float* xsp);
void vnni_q8_gemm_rows(const int8_t* xp, const float* xsp, int64_t m, int64_t k, const WeightView& w, int64_t n0,
                       int64_t n1, float* y, int64_t ldy);
// Per weight row of a panel [n0, n1): the VNNI tiles' starting sums {-128 * sum of each
// group, 0} (init, groups per row) and the zero-padded tail group (tails, 32 bytes per row;
// null when k is a whole number of groups). Thread-local storage, valid until the next call.
struct Q8PanelPrep {
  const int64_t* init = nullptr;
  const int8_t* tails = nullptr;
};
Q8PanelPrep vnni_q8_panel_prep(const WeightView& w, int64_t n0, int64_t n1, int64_t k);
// The same GEMM with 512-bit VNNI (gemm_q8_avx512.cpp): a lane per output column, weight
// blocks of 16 rows packed per call. It reads the quantized activations as they are
// (stride kp) with their scales xs and, per row and group, xo = -128 * (sum of the group's
// values) from vnni512_q8_x_offsets (xo: m * groups int32). Identical results.
bool q8_vnni512_available();
void vnni512_q8_x_offsets(const int8_t* xq, int64_t m, int64_t kp, int64_t groups, int32_t* xo);
void vnni512_q8_gemm_rows(const int8_t* xq, const float* xs, const int32_t* xo, int64_t m, int64_t k, int64_t kp,
                          const WeightView& w, int64_t n0, int64_t n1, float* y, int64_t ldy);
// The activation scales xs [m, groups] laid out for the AVX2 tile: per tile of 4 rows and
// group, 16 floats [s0 x4, s1 x4, s2 x4, s3 x4] (a partial tile repeats its last row).
// xsp holds ceil(m / 4) * groups * 16 floats.
void avx2_q8_scale_pattern(const float* xs, int64_t m, int64_t groups, float* xsp);
// y[m, n0:n1) from quantized activations (stride kp, scales as avx2_q8_scale_pattern lays
// them out) and Q8_0 weight rows [n0, n1).
void avx2_q8_gemm_rows(const int8_t* xq, const float* xsp, int64_t m, int64_t k, int64_t kp, const WeightView& w,
                       int64_t n0, int64_t n1, float* y, int64_t ldy);

}  // namespace kernels

}  // namespace sdllm
