// test_cuda_ops, the attention family: the f32 attention kernel, the emulated m16n8k16
// mma.sync and attention on tensor cores, each against op_attention (cuda_ops_test.h holds
// the harness; test_cuda_ops.cpp the table and the driver).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cuda_ops_test.h"
#include "mma.cuh"

namespace sdllm {
namespace cuda_ops_test {

namespace {

// The shape's attention over a cache segment (k0/v0, rows of n_kv * hd + pad floats) and the
// query rows' own K/V, which live in the fused q|k|v rows as a session produces them.
AttentionParams attention_params(const AttnShape& s, const float* qkv, const float* k0, const float* v0, float* out) {
  const int64_t qw = static_cast<int64_t>(s.n_heads) * s.hd, kvw = static_cast<int64_t>(s.n_kv) * s.hd;
  AttentionParams p;
  p.q = qkv;
  p.n_q = s.n_q;
  p.q_stride = qw + 2 * kvw + s.pad;
  p.k0 = k0;
  p.v0 = v0;
  p.n_k0 = s.n_k0;
  p.kv0_stride = kvw + s.pad;
  p.k1 = qkv + qw;
  p.v1 = qkv + qw + kvw;
  p.n_k1 = s.n_k1;
  p.kv1_stride = p.q_stride;
  p.n_heads = s.n_heads;
  p.n_kv_heads = s.n_kv;
  p.head_dim = s.hd;
  p.scale = 1.0f / std::sqrt(static_cast<float>(s.hd));
  p.out = out;
  p.out_stride = qw + s.pad;
  return p;
}

}  // namespace

// ---- attention ------------------------------------------------------------------------------

void add_attention(const AttnShape& s) {
  Case c;
  c.op = "attention";
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: heads=%d/%d hd=%d n_q=%lld n_k0=%lld n_k1=%lld splits=%d%s%s", s.what,
                s.n_heads, s.n_kv, s.hd, (long long)s.n_q, (long long)s.n_k0, (long long)s.n_k1, s.splits,
                s.generic ? " generic" : "", s.pad ? " padded strides" : "");
  c.desc = buf;
  c.tol = 1e-10;
  const int64_t qw = static_cast<int64_t>(s.n_heads) * s.hd, kvw = static_cast<int64_t>(s.n_kv) * s.hd;
  // Segment 1 lives in a fused q|k|v row as the session produces it; segment 0 is a cache.
  const int64_t qkv_stride = qw + 2 * kvw + s.pad, cache_stride = kvw + s.pad, out_stride = qw + s.pad;
  Rng r(s.n_q * 131 + s.n_k0 * 7 + s.hd + s.n_heads);
  const auto qkv = r.vec(s.n_q * qkv_stride, -2.f, 2.f);
  const auto k0 = r.vec(s.n_k0 * cache_stride, -2.f, 2.f), v0 = r.vec(s.n_k0 * cache_stride);
  auto params = [=](const float* qkvp, const float* k0p, const float* v0p, float* out) {
    return attention_params(s, qkvp, k0p, v0p, out);
  };
  c.cpu = [=](Out& o) {
    o.f.assign(static_cast<size_t>(s.n_q * out_stride), 0.f);
    o.written.assign(o.f.size(), 0);
    for (int64_t i = 0; i < s.n_q; ++i)
      for (int64_t j = 0; j < qw; ++j) o.written[static_cast<size_t>(i * out_stride + j)] = 1;
    op_attention(params(qkv.data(), k0.data(), v0.data(), o.f.data()), pool());
  };
  c.gpu = [=](Out& o, Errors& e) {
    DevBuf<float> dqkv(s.n_q * qkv_stride), dk0(s.n_k0 * cache_stride), dv0(s.n_k0 * cache_stride),
        dout(s.n_q * out_stride);
    dqkv.upload(qkv);
    dk0.upload(k0);
    dv0.upload(v0);
    const AttentionParams p = params(dqkv.ptr(), dk0.ptr(), dv0.ptr(), dout.ptr());
    cuda::AttentionLaunch l;
    l.splits = s.splits;
    l.sm_count = 8;
    l.force_generic = s.generic;
    const int splits = s.splits > 0 ? s.splits : cuda::attention_auto_splits(p, l.sm_count);
    if (s.splits == 0 && splits < 2) e.add("auto splits chose " + std::to_string(splits) + ", expected a split");
    const int64_t ws_floats = static_cast<int64_t>(cuda::attention_workspace_bytes(p, splits) / 4);
    DevBuf<float> ws(ws_floats > 0 ? ws_floats : 1);
    l.workspace = ws.ptr();
    l.workspace_bytes = static_cast<size_t>(ws_floats) * 4;
    check_launch(cuda::attention(p, l, nullptr), e, "attention");
    ws.check_guards(e, "workspace");
    collect(o, dout, e, "out");
  };
  g_cases.push_back(c);
}

// ---- mma.sync emulation ---------------------------------------------------------------------
// The emulated m16n8k16 bf16 mma against a plain matrix product. The fragments are built
// here register by register from the figures of the PTX ISA (a[0] = {A(g, 2t), A(g, 2t+1)},
// ...; g = lane >> 2, t = lane % 4), independently of the element-wise formulas in
// cuda_emu.cpp, from matrices with all-distinct entries: any error in either layout (a
// swapped half, row/col, a g+8 or 2t+8 offset) changes D. Each warp of the block runs
// `reps` chained mma (D of one is C of the next) on its own matrices.
__global__ void mma_test_kernel(const uint16_t* A, const uint16_t* B, const float* C, float* D, int reps) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane % 4;
  const uint16_t* a = A + warp * reps * 256;
  const uint16_t* b = B + warp * reps * 128;
  auto pk = [](uint16_t lo, uint16_t hi) { return static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16); };
  auto at = [&](int rep, int r, int c) { return a[rep * 256 + r * 16 + c]; };  // A row-major 16x16
  auto bt = [&](int rep, int r, int c) { return b[rep * 128 + r * 8 + c]; };   // B row-major 16x8 (k, n)
  const float* c = C + warp * 128;
  float acc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
  for (int rep = 0; rep < reps; ++rep) {
    const uint32_t fa[4] = {pk(at(rep, g, 2 * t), at(rep, g, 2 * t + 1)), pk(at(rep, g + 8, 2 * t), at(rep, g + 8, 2 * t + 1)),
                            pk(at(rep, g, 2 * t + 8), at(rep, g, 2 * t + 9)),
                            pk(at(rep, g + 8, 2 * t + 8), at(rep, g + 8, 2 * t + 9))};
    const uint32_t fb[2] = {pk(bt(rep, 2 * t, g), bt(rep, 2 * t + 1, g)), pk(bt(rep, 2 * t + 8, g), bt(rep, 2 * t + 9, g))};
    sdllm::cuda::mma_m16n8k16_bf16(acc, fa, fb, acc);
  }
  float* d = D + warp * 128;
  d[g * 8 + 2 * t] = acc[0];
  d[g * 8 + 2 * t + 1] = acc[1];
  d[(g + 8) * 8 + 2 * t] = acc[2];
  d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

void add_mma(int warps, int reps) {
  Case c;
  c.op = "mma";
  c.desc = "mma.sync m16n8k16 bf16->f32 vs matrix product, " + std::to_string(warps) + " warp(s), " +
           std::to_string(reps) + " chained";
  c.tol = 0;  // the emulator sums the exact bf16 products in double, as the reference does
  Rng r(warps * 100 + reps);
  // Distinct values: a permutation of 0..n-1, scaled and signed, each exact in bf16.
  auto distinct = [&](int64_t n, float scale) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i + 1);
    for (int64_t i = n - 1; i > 0; --i) std::swap(v[static_cast<size_t>(i)], v[r.next() % static_cast<uint64_t>(i + 1)]);
    for (auto& x : v) x = bf16_to_f32(f32_to_bf16((r.next() & 1 ? -x : x) * scale));
    return v;
  };
  const auto af = distinct(static_cast<int64_t>(warps) * reps * 256, 1.f / 64);
  const auto bfv = distinct(static_cast<int64_t>(warps) * reps * 128, 1.f / 32);
  const auto cf = r.vec(static_cast<int64_t>(warps) * 128, -4.f, 4.f);
  std::vector<uint16_t> ab(af.size()), bb(bfv.size());
  for (size_t i = 0; i < af.size(); ++i) ab[i] = f32_to_bf16(af[i]);
  for (size_t i = 0; i < bfv.size(); ++i) bb[i] = f32_to_bf16(bfv[i]);
  c.cpu = [=](Out& o) {
    o.f.assign(static_cast<size_t>(warps) * 128, 0.f);
    for (int w = 0; w < warps; ++w) {
      std::vector<float> acc(cf.begin() + w * 128, cf.begin() + (w + 1) * 128);
      for (int rep = 0; rep < reps; ++rep) {
        const float* a = af.data() + (w * reps + rep) * 256;
        const float* b = bfv.data() + (w * reps + rep) * 128;
        for (int m = 0; m < 16; ++m)
          for (int n = 0; n < 8; ++n) {
            double sum = acc[static_cast<size_t>(m * 8 + n)];
            for (int k = 0; k < 16; ++k) sum += static_cast<double>(a[m * 16 + k]) * b[k * 8 + n];
            acc[static_cast<size_t>(m * 8 + n)] = static_cast<float>(sum);
          }
      }
      std::copy(acc.begin(), acc.end(), o.f.begin() + w * 128);
    }
  };
  c.gpu = [=](Out& o, Errors& e) {
    void *da = nullptr, *db = nullptr;
    cudaMalloc(&da, 2 * ab.size());
    cudaMalloc(&db, 2 * bb.size());
    cudaMemcpy(da, ab.data(), 2 * ab.size(), cudaMemcpyHostToDevice);
    cudaMemcpy(db, bb.data(), 2 * bb.size(), cudaMemcpyHostToDevice);
    DevBuf<float> dc(warps * 128), dd(warps * 128);
    dc.upload(cf);
    check_launch(sdllm_emu::launch(mma_test_kernel, dim3(1), dim3(32 * warps), 0, static_cast<const uint16_t*>(da),
                                   static_cast<const uint16_t*>(db), static_cast<const float*>(dc.ptr()), dd.ptr(), reps),
                 e, "mma_test_kernel");
    collect(o, dd, e, "d");
    cudaFree(da);
    cudaFree(db);
  };
  g_cases.push_back(c);
}

// ---- attention on tensor cores --------------------------------------------------------------
// attention_tc against op_attention twice: on q/k/v rounded to bf16 first (what the kernel
// multiplies; what remains is the bf16 rounding of the softmax weights: tight bound), and
// on the f32 inputs (loose bound). Same buffers, strides, sentinels and schedules as the
// f32 attention cases.
float bf16_round(float x) { return bf16_to_f32(f32_to_bf16(x)); }

void add_attention_tc(const AttnShape& s) {
  Case c;
  c.op = "attention_tc";
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: heads=%d/%d hd=%d n_q=%lld n_k0=%lld n_k1=%lld splits=%d%s", s.what, s.n_heads,
                s.n_kv, s.hd, (long long)s.n_q, (long long)s.n_k0, (long long)s.n_k1, s.splits,
                s.pad ? " padded strides" : "");
  c.desc = buf;
  c.tol = 1e-5;       // vs the CPU op on bf16-rounded q/k/v (observed <= 1.6e-6)
  c.tol_alt = 1e-4;   // vs the CPU op on the f32 inputs (observed <= 1.3e-5)
  c.alt_name = "f32";
  const int64_t qw = static_cast<int64_t>(s.n_heads) * s.hd, kvw = static_cast<int64_t>(s.n_kv) * s.hd;
  const int64_t qkv_stride = qw + 2 * kvw + s.pad, cache_stride = kvw + s.pad, out_stride = qw + s.pad;
  Rng r(s.n_q * 733 + s.n_k0 * 5 + s.hd + s.n_heads * 3 + s.n_kv);
  auto qkv = std::make_shared<std::vector<float>>(r.vec(s.n_q * qkv_stride, -2.f, 2.f));
  auto k0 = std::make_shared<std::vector<float>>(r.vec(s.n_k0 * cache_stride, -2.f, 2.f));
  auto v0 = std::make_shared<std::vector<float>>(r.vec(s.n_k0 * cache_stride));
  auto params = [=](const float* qkvp, const float* k0p, const float* v0p, float* out) {
    return attention_params(s, qkvp, k0p, v0p, out);
  };
  auto reference = [=](bool round, Out& o) {
    std::vector<float> q = *qkv, kc = *k0, vc = *v0;
    if (round) {
      for (auto* v : {&q, &kc, &vc})
        for (auto& x : *v) x = bf16_round(x);
    }
    o.f.assign(static_cast<size_t>(s.n_q * out_stride), 0.f);
    o.written.assign(o.f.size(), 0);
    for (int64_t i = 0; i < s.n_q; ++i)
      for (int64_t j = 0; j < qw; ++j) o.written[static_cast<size_t>(i * out_stride + j)] = 1;
    op_attention(params(q.data(), kc.data(), vc.data(), o.f.data()), pool());
  };
  c.cpu = [=](Out& o) { reference(true, o); };
  c.cpu_alt = [=](Out& o) { reference(false, o); };
  c.gpu = [=](Out& o, Errors& e) {
    DevBuf<float> dqkv(s.n_q * qkv_stride), dk0(s.n_k0 * cache_stride), dv0(s.n_k0 * cache_stride),
        dout(s.n_q * out_stride);
    dqkv.upload(*qkv);
    dk0.upload(*k0);
    dv0.upload(*v0);
    const AttentionParams p = params(dqkv.ptr(), dk0.ptr(), dv0.ptr(), dout.ptr());
    if (!cuda::attention_tc_supported(p)) e.add("attention_tc_supported says no");
    cuda::AttentionLaunch l;
    l.splits = s.splits;
    l.sm_count = 8;
    const int splits = s.splits > 0 ? s.splits : cuda::attention_tc_auto_splits(p, l.sm_count);
    if (s.splits == 0 && splits < 2) e.add("auto splits chose " + std::to_string(splits) + ", expected a split");
    const int64_t ws_floats = static_cast<int64_t>(cuda::attention_tc_workspace_bytes(p, splits) / 4);
    if (splits > 1 && ws_floats == 0) e.add("no workspace for a split launch");
    DevBuf<float> ws(ws_floats > 0 ? ws_floats : 1);
    l.workspace = ws.ptr();
    l.workspace_bytes = static_cast<size_t>(ws_floats) * 4;
    const auto before = sdllm_emu::stats().mmas;
    check_launch(cuda::attention_tc(p, l, nullptr), e, "attention_tc");
    if (s.n_k0 + s.n_k1 > 0 && sdllm_emu::stats().mmas == before) e.add("no mma was executed");
    ws.check_guards(e, "workspace");
    collect(o, dout, e, "out");
  };
  g_cases.push_back(c);
}

// Launch-argument checks of attention_tc (no kernel runs).
void add_attention_tc_refusals() {
  Case c = check_only_case("attention_tc", "refuses head_dim 80 / 48, uneven GQA, a split without workspace");
  c.gpu = [](Out&, Errors& e) {
    std::vector<float> buf(4096, 0.f);
    AttentionParams p;
    p.q = p.k0 = p.v0 = p.k1 = p.v1 = buf.data();
    p.out = buf.data();
    p.n_q = 2;
    p.n_k0 = 600;
    p.n_heads = 4;
    p.n_kv_heads = 2;
    p.head_dim = 80;
    cuda::AttentionLaunch l;
    l.splits = 1;
    if (cuda::attention_tc_supported(p) || cuda::attention_tc(p, l, nullptr) == 0) e.add("head_dim 80 accepted");
    p.head_dim = 48;
    if (cuda::attention_tc_supported(p)) e.add("head_dim 48 accepted");
    p.head_dim = 64;
    p.n_kv_heads = 3;
    if (cuda::attention_tc_supported(p) || cuda::attention_tc(p, l, nullptr) == 0) e.add("4 heads over 3 kv heads accepted");
    p.n_kv_heads = 2;
    if (!cuda::attention_tc_supported(p)) e.add("head_dim 64 refused");
    l.splits = 4;
    if (cuda::attention_tc(p, l, nullptr) == 0) e.add("a split launch without workspace was accepted");
    if (cuda::attention_tc_workspace_bytes(p, 4) != sizeof(float) * 4 * 2 * 4 * (64 + 2))
      e.add("unexpected workspace size " + std::to_string(cuda::attention_tc_workspace_bytes(p, 4)));
  };
  g_cases.push_back(c);
}

}  // namespace cuda_ops_test
}  // namespace sdllm
