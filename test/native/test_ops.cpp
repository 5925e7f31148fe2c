// Op-by-op test of the CPU backend against naive.h, in the manner of ggml's
// test-backend-ops: a table of cases at awkward sizes, each compared by normalised MSE
// (sum (a-b)^2 / sum b^2) under a per-op tolerance, with NaN/inf checks and sentinel
// values after every output buffer to catch out-of-bounds writes (helpers: op_test.h).
// This program: the thread pool, embedding, RMSNorm, RoPE, the elementwise and pooled row
// ops, attention and the confidence reduction; the GEMMs are in test_ops_gemm.cpp.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cpu_features.h"
#include "naive.h"
#include "op_test.h"
#include "ops.h"
#include "ops/kernels.h"

using namespace sdllm;
using namespace op_test;

namespace {

void test_embedding() {
  for (bool scalar : paths()) {
    set_force_scalar(scalar);
    for (DType t : kTypes)
      for (int64_t d : {1, 67, 256}) {
        Weights tab(t, 1000, d);
        std::vector<int32_t> ids = {0, 999, 5, 5, 123, -1, 1000, 7};
        const int64_t n = static_cast<int64_t>(ids.size());
        Out got(n * d);
        std::vector<float> want(static_cast<size_t>(n * d));
        op_embedding(tab.view, ids.data(), n, got.data());
        naive_embedding(tab.view, ids.data(), n, want.data());
        compare(std::string("embedding ") + dtype_name(t) + " d=" + std::to_string(d) + " " + path_name(), got,
                want, 0.0);
      }
  }
  set_force_scalar(false);
}

void test_rmsnorm() {
  for (DType t : kTypes)
    for (int64_t n : {1, 3, 17})
      for (int64_t d : {1, 64, 257, 4096}) {
        std::vector<float> x = randn(n * d, 3.f);
        Weights w(t, 1, d);
        Out got(n * d);
        std::vector<float> want(static_cast<size_t>(n * d));
        op_rmsnorm(x.data(), w.view, n, d, 1e-5f, got.data());
        naive_rmsnorm(x.data(), w.view, n, d, 1e-5f, want.data());
        const std::string name = std::string("rmsnorm ") + dtype_name(t) + " n=" + std::to_string(n) +
                                 " d=" + std::to_string(d);
        compare(name, got, want, 1e-12);
        Out inplace(n * d);  // out aliasing x
        std::copy(x.begin(), x.end(), inplace.v.begin());
        op_rmsnorm(inplace.data(), w.view, n, d, 1e-5f, inplace.data());
        compare(name + " in-place", inplace, want, 1e-12);
      }
}

// RoPE's AVX-512 rotation against the portable loop, bit for bit (no fused multiply-add
// on either side): half heads of 1 to 64 pairs, whole and masked vectors, a row stride
// with room between the heads' rows.
void test_rope_widths() {
  if (!use_avx2_fma() || !set_avx512(true)) {
    std::printf("note: AVX-512 not available, its RoPE is not compared with the portable loop\n");
    return;
  }
  for (int hd : {2, 8, 16, 24, 32, 40, 64, 96, 128}) {
    const int64_t n = 9, heads = 3, stride = heads * hd + 5, half = hd / 2;
    const std::vector<float> x = randn(n * stride, 3.f);
    std::vector<float> cs = randn(n * half), sn = randn(n * half);
    std::vector<float> a = x, b = x;
    set_force_scalar(true);
    op_rope_apply(a.data(), n, stride, static_cast<int>(heads), hd, cs.data(), sn.data());
    set_force_scalar(false);
    set_avx512(true);
    op_rope_apply(b.data(), n, stride, static_cast<int>(heads), hd, cs.data(), sn.data());
    report("rope avx512 == portable hd=" + std::to_string(hd), std::memcmp(a.data(), b.data(), a.size() * 4) == 0, "");
  }
}

void test_rope() {
  struct C { int64_t n; int heads, hd, extra; float theta; };
  for (C c : {C{1, 1, 16, 0, 10000.f}, C{5, 3, 64, 7, 500000.f}, C{17, 2, 128, 0, 500000.f},
              C{4, 4, 16, 3, 1e6f}}) {
    const int64_t stride = static_cast<int64_t>(c.heads) * c.hd + c.extra;
    std::vector<float> x = randn(c.n * stride);
    std::vector<int32_t> pos(static_cast<size_t>(c.n));
    for (int64_t i = 0; i < c.n; ++i) pos[static_cast<size_t>(i)] = static_cast<int32_t>((i * 977) % 4096);
    Out got(c.n * stride);
    std::copy(x.begin(), x.end(), got.v.begin());
    std::vector<float> want = x;
    op_rope(got.data(), c.n, stride, c.heads, c.hd, pos.data(), c.theta);
    naive_rope(want.data(), c.n, stride, c.heads, c.hd, pos.data(), c.theta);
    char name[96];
    std::snprintf(name, sizeof name, "rope n=%lld heads=%d hd=%d stride=%lld theta=%g", (long long)c.n, c.heads,
                  c.hd, (long long)stride, c.theta);
    compare(name, got, want, 1e-11);
  }
  test_rope_widths();
}

void test_elementwise() {
  for (bool scalar : paths()) {
    set_force_scalar(scalar);
    for (int64_t n : {1, 7, 8, 15, 1001, 4099}) {
      std::vector<float> g = randn(n, 4.f), u = randn(n);
      if (n == 4099)  // silu's extremes: exp(-g) overflowing or vanishing
        for (int64_t i = 0; i < 64; ++i) g[static_cast<size_t>(i * 61)] = (i % 2 ? 1.f : -1.f) * (30.f + 3.f * i);
      Out got(n);
      std::vector<float> want(static_cast<size_t>(n));
      op_swiglu(g.data(), u.data(), n, got.data());
      naive_swiglu(g.data(), u.data(), n, want.data());
      const std::string sfx = std::string(" ") + path_name();
      compare("swiglu n=" + std::to_string(n) + sfx, got, want, 1e-12);
      // Element by element: within 1e-6 relative (or 1e-30 absolute, for silu's underflow).
      double worst = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double w = want[static_cast<size_t>(i)], d = std::fabs(got.v[static_cast<size_t>(i)] - w);
        if (d > 1e-30) worst = std::max(worst, d / std::fabs(w));
      }
      char detail[64];
      std::snprintf(detail, sizeof detail, "max rel err %.1e", worst);
      report("swiglu rel n=" + std::to_string(n) + sfx, worst <= 1e-6, detail);
      Out y(n);
      std::copy(g.begin(), g.end(), y.v.begin());
      std::vector<float> wy = g;
      op_add(y.data(), u.data(), n);
      naive_add(wy.data(), u.data(), n);
      compare("add n=" + std::to_string(n) + sfx, y, wy, 0.0);
    }
  }
  set_force_scalar(false);
}

// SwiGLU's AVX-512 kernel against the AVX2 one, bit for bit: every length mod 16 (the
// 16-lane body, the masked 8-lane rest, the scalar tail), silu's extremes and the cut-off
// at -88.3, NaN and infinities.
void test_swiglu_widths() {
  if (!use_avx2_fma() || !set_avx512(true)) {
    std::printf("note: AVX-512 not available, its SwiGLU is not compared with the AVX2 one\n");
    return;
  }
  for (int64_t n : {1, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 33, 1001, 4099}) {
    std::vector<float> g = randn(n, 6.f), u = randn(n);
    const float edges[] = {-88.3f, -88.31f, -87.3f, 88.3f, 100.f, -100.f, 0.f, -0.f, INFINITY, -INFINITY, NAN, 1e-30f};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0] && i < g.size(); ++i) g[(i * 7) % g.size()] = edges[i];
    std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n), 12345.f);
    kernels::avx2_swiglu(g.data(), u.data(), n, a.data());
    kernels::avx512_swiglu(g.data(), u.data(), n, b.data());
    report("swiglu avx512 == avx2 n=" + std::to_string(n), std::memcmp(a.data(), b.data(), a.size() * 4) == 0, "");
  }
}

// The pooled overloads of the row and elementwise ops: the single-threaded results, bit for bit.
void test_pooled_ops(ThreadPool& pool) {
  for (bool scalar : paths()) {
    set_force_scalar(scalar);
    const std::string sfx = std::string(" threads=") + std::to_string(pool.size()) + " " + path_name();
    for (int64_t n : {1, 37, 129})
      for (int64_t d : {64, 1000, 4096}) {
        std::vector<float> x = randn(n * d, 2.f);
        Weights w(DType::BF16, 1, d);
        std::vector<float> a(x.size()), b(x.size());
        op_rmsnorm(x.data(), w.view, n, d, 1e-5f, a.data());
        op_rmsnorm(x.data(), w.view, n, d, 1e-5f, b.data(), pool);
        report("rmsnorm pooled n=" + std::to_string(n) + " d=" + std::to_string(d) + sfx,
               std::memcmp(a.data(), b.data(), a.size() * 4) == 0, "");
      }
    for (int64_t n : {5, 70001, 300007}) {
      std::vector<float> g = randn(n, 4.f), u = randn(n);
      std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
      op_swiglu(g.data(), u.data(), n, a.data());
      op_swiglu(g.data(), u.data(), n, b.data(), pool);
      report("swiglu pooled n=" + std::to_string(n) + sfx, std::memcmp(a.data(), b.data(), a.size() * 4) == 0, "");
      std::vector<float> ya = g, yb = g;
      op_add(ya.data(), u.data(), n);
      op_add(yb.data(), u.data(), n, pool);
      report("add pooled n=" + std::to_string(n) + sfx, std::memcmp(ya.data(), yb.data(), ya.size() * 4) == 0, "");
    }
    // The fused residual add + norm: op_add then op_rmsnorm, both single-threaded.
    for (DType t : kTypes)
      for (int64_t n : {1, 37, 129})
        for (int64_t d : {64, 257, 4096}) {
          const std::vector<float> x = randn(n * d, 2.f), delta = randn(n * d);
          Weights w(t, 1, d);
          std::vector<float> ra = x, rb = x, a(x.size()), b(x.size());
          op_add(ra.data(), delta.data(), n * d);
          op_rmsnorm(ra.data(), w.view, n, d, 1e-5f, a.data());
          op_add_rmsnorm(rb.data(), delta.data(), w.view, n, d, 1e-5f, b.data(), pool);
          const bool same = std::memcmp(ra.data(), rb.data(), ra.size() * 4) == 0 &&
                            std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
          report(std::string("add_rmsnorm == add, rmsnorm ") + dtype_name(t) + " n=" + std::to_string(n) +
                     " d=" + std::to_string(d) + sfx, same, "");
        }
    Weights tab(DType::BF16, 1000, 4096);
    std::vector<int32_t> ids(67);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 37) % 1003) - 1;  // incl. out of range
    std::vector<float> a(ids.size() * 4096), b(a.size());
    op_embedding(tab.view, ids.data(), static_cast<int64_t>(ids.size()), a.data());
    op_embedding(tab.view, ids.data(), static_cast<int64_t>(ids.size()), b.data(), pool);
    report("embedding pooled n=67 d=4096" + sfx, std::memcmp(a.data(), b.data(), a.size() * 4) == 0, "");
  }
  set_force_scalar(false);
}

void test_attention(ThreadPool& pool) {
  struct C { int64_t nq, nk0, nk1; int heads, kv, hd; };
  const C cases[] = {{1, 0, 1, 4, 1, 64},    {5, 37, 5, 8, 2, 128},  {17, 0, 17, 7, 1, 16},
                     {3, 70, 0, 4, 4, 64},   {33, 100, 33, 28, 4, 128}, {2, 200, 3, 4, 1, 16},
                     {3, 0, 0, 2, 1, 16},    {160, 64, 160, 8, 2, 64},
                     // The tiled AVX2 kernel: key blocks of 32/64 with tails not a multiple of 8,
                     // partial 4-row micro-tiles and row chunks, head_dim tails (masked V loads).
                     {37, 129, 37, 6, 6, 32},  {9, 0, 71, 7, 1, 32},    {6, 65, 0, 3, 1, 48},
                     {11, 33, 13, 4, 2, 80},   {2, 1, 1, 4, 4, 128},    {13, 97, 5, 7, 1, 48},
                     {5, 17, 9, 2, 1, 20},     {7, 0, 23, 3, 3, 12},    {1, 300, 1, 32, 8, 128},
                     {4, 0, 0, 4, 2, 80},      {129, 200, 129, 4, 4, 128}, {3, 9, 0, 2, 2, 8},
                     // AVX-512: 8-row micro-tiles (whole and partial), 24-48 keys left for the
                     // last score tile, a head_dim past 16 columns (AVX2 value tiles of <= 4
                     // rows), the shipped model's serving step (76 rows over 22 + 76 keys).
                     {13, 40, 8, 3, 1, 24},    {76, 22, 76, 8, 8, 32},  {8, 48, 0, 2, 2, 40}};
  for (bool scalar : paths()) {
    set_force_scalar(scalar);
    for (const C& c : cases) {
      const int64_t qs = static_cast<int64_t>(c.heads) * c.hd + 5, kvs0 = static_cast<int64_t>(c.kv) * c.hd + 3,
                    kvs1 = static_cast<int64_t>(c.kv) * c.hd, os = static_cast<int64_t>(c.heads) * c.hd + 1;
      std::vector<float> q = randn(c.nq * qs, 2.f), k0 = randn(c.nk0 * kvs0 + 1, 2.f),
                         v0 = randn(c.nk0 * kvs0 + 1), k1 = randn(c.nk1 * kvs1 + 1, 2.f),
                         v1 = randn(c.nk1 * kvs1 + 1);
      AttentionParams p;
      p.q = q.data(); p.n_q = c.nq; p.q_stride = qs;
      p.k0 = k0.data(); p.v0 = v0.data(); p.n_k0 = c.nk0; p.kv0_stride = kvs0;
      p.k1 = k1.data(); p.v1 = v1.data(); p.n_k1 = c.nk1; p.kv1_stride = kvs1;
      p.n_heads = c.heads; p.n_kv_heads = c.kv; p.head_dim = c.hd;
      p.scale = 1.f / std::sqrt(static_cast<float>(c.hd));
      p.out_stride = os;
      Out got(c.nq * os);
      std::vector<float> want(static_cast<size_t>(c.nq * os), kSentinel);
      for (int64_t i = 0; i < c.nq; ++i)  // the stride gap of each out row must stay untouched
        for (int64_t j = static_cast<int64_t>(c.heads) * c.hd; j < os; ++j) got.v[static_cast<size_t>(i * os + j)] = kSentinel;
      p.out = got.data();
      op_attention(p, pool);
      p.out = want.data();
      naive_attention(p);
      // The stride gap of each out row must be untouched; then it is left out of the nmse.
      bool gap_ok = true;
      for (int64_t i = 0; i < c.nq; ++i)
        for (int64_t j = static_cast<int64_t>(c.heads) * c.hd; j < os; ++j) {
          const size_t at = static_cast<size_t>(i * os + j);
          gap_ok = gap_ok && std::memcmp(&got.v[at], &kSentinel, 4) == 0;
          got.v[at] = want[at] = 0.f;
        }
      if (!gap_ok) report("attention row gap", false, "op wrote into the stride gap of out");
      char name[112];
      std::snprintf(name, sizeof name, "attention nq=%lld k0=%lld k1=%lld heads=%d:%d hd=%d %s", (long long)c.nq,
                    (long long)c.nk0, (long long)c.nk1, c.heads, c.kv, c.hd, path_name());
      compare(name, got, want, 1e-10);
      // The AVX-512 score/value tiles promise the AVX2 attention's floats exactly.
      if (!scalar && set_avx512(true)) {
        Out wide(c.nq * os), narrow(c.nq * os);
        p.out = wide.data();
        op_attention(p, pool);
        set_avx512(false);
        p.out = narrow.data();
        op_attention(p, pool);
        set_avx512(true);
        std::snprintf(name, sizeof name, "attention avx512 == avx2 nq=%lld k0=%lld k1=%lld heads=%d:%d hd=%d",
                      (long long)c.nq, (long long)c.nk0, (long long)c.nk1, c.heads, c.kv, c.hd);
        const bool same = std::memcmp(wide.data(), narrow.data(), sizeof(float) * wide.v.size()) == 0;
        report(name, same, same ? "bit-identical" : "AVX-512 floats differ from AVX2");
      }
    }
  }
  set_force_scalar(false);
  set_avx512(true);
}

// op_attention_batch (a batch's sequences as one job): each call's output equals the call
// made alone, bit for bit, for a mix of shapes (GQA, head_dim tails, empty segments).
void test_attention_batch(ThreadPool& pool) {
  struct C { int64_t nq, nk0, nk1; int heads, kv, hd; };
  const C cases[] = {{33, 100, 33, 8, 2, 64}, {1, 0, 1, 4, 1, 64}, {129, 0, 129, 8, 8, 32}, {0, 5, 0, 4, 4, 32},
                     {7, 23, 0, 6, 3, 48},    {37, 129, 37, 6, 6, 32}, {2, 1, 1, 4, 4, 128}};
  const size_t count = sizeof cases / sizeof cases[0];
  for (bool scalar : paths()) {
    set_force_scalar(scalar);
    std::vector<std::vector<float>> data;
    std::vector<AttentionParams> ps(count);
    std::vector<std::vector<float>> alone(count), batched(count);
    for (size_t i = 0; i < count; ++i) {
      const C& c = cases[i];
      const int64_t qs = static_cast<int64_t>(c.heads) * c.hd, kvs = static_cast<int64_t>(c.kv) * c.hd;
      data.push_back(randn(c.nq * qs + 1, 2.f));
      data.push_back(randn(c.nk0 * kvs + 1, 2.f));
      data.push_back(randn(c.nk0 * kvs + 1));
      data.push_back(randn(c.nk1 * kvs + 1, 2.f));
      data.push_back(randn(c.nk1 * kvs + 1));
      AttentionParams& p = ps[i];
      const size_t at = data.size() - 5;
      p.q = data[at].data(); p.n_q = c.nq; p.q_stride = qs;
      p.k0 = data[at + 1].data(); p.v0 = data[at + 2].data(); p.n_k0 = c.nk0; p.kv0_stride = kvs;
      p.k1 = data[at + 3].data(); p.v1 = data[at + 4].data(); p.n_k1 = c.nk1; p.kv1_stride = kvs;
      p.n_heads = c.heads; p.n_kv_heads = c.kv; p.head_dim = c.hd;
      p.scale = 1.f / std::sqrt(static_cast<float>(c.hd));
      p.out_stride = qs;
      alone[i].assign(static_cast<size_t>(c.nq * qs), kSentinel);
      batched[i].assign(static_cast<size_t>(c.nq * qs), kSentinel);
      p.out = alone[i].data();
      op_attention(p, pool);
      p.out = batched[i].data();
    }
    op_attention_batch(ps.data(), count, pool);
    bool same = true;
    for (size_t i = 0; i < count; ++i)
      same = same && (alone[i].empty() || std::memcmp(alone[i].data(), batched[i].data(), alone[i].size() * 4) == 0);
    report(std::string("attention batch of 7 == each alone threads=") + std::to_string(pool.size()) + " " + path_name(),
           same, same ? "bit-identical" : "a batched output differs from the call alone");
  }
  set_force_scalar(false);
}

void test_confidence(ThreadPool& pool) {
  // ctemp: the confidence temperature (Dream's tempered softmax); 1 = raw logits.
  struct C { int64_t rows, vocab; float temp; bool ties; float ctemp = 1.f; };
  const C cases[] = {{3, 1, 0.f, false},     {4, 5, 0.f, true},      {7, 1000, 0.f, false},
                     {5, 1000, 0.f, true},   {2, 126464, 0.f, false}, {3, 126464, 0.f, true},
                     {4, 1000, 0.7f, false}, {2, 126464, 1.f, false}, {1, 126464, 0.f, true},
                     {40, 5, 0.5f, false},   {4, 1000, 0.7f, false, 0.7f}, {3, 126464, 0.4f, false, 0.4f},
                     {3, 40000, 1.5f, true, 1.5f}};
  const char* kinds[] = {"prob", "margin", "entropy", "random"};
  for (const C& c : cases)
    for (int kind = 0; kind < 4; ++kind) {
      const int64_t stride = c.vocab + 3;
      std::vector<float> l = randn(c.rows * stride, 3.f);
      if (c.ties)
        for (int64_t r = 0; r < c.rows; ++r) {  // a tied max (ids a < b) and, on odd rows, a tie with it later
          float* row = l.data() + r * stride;
          const int64_t a = (r * 7919) % c.vocab, b = std::min(c.vocab - 1, a + 1 + (r * 31) % c.vocab);
          row[a] = row[b] = 40.f;
          if (r % 2 && c.vocab > 2) row[c.vocab - 1] = 40.f;
        }
      std::vector<uint64_t> keys(static_cast<size_t>(c.rows));
      for (int64_t r = 0; r < c.rows; ++r) keys[static_cast<size_t>(r)] = 1000 + static_cast<uint64_t>(r) * 3;
      ConfidenceParams p;
      p.logits = l.data(); p.n_rows = c.rows; p.vocab = c.vocab; p.row_stride = stride;
      p.kind = static_cast<ConfidenceKind>(kind); p.temperature = c.temp; p.confidence_temperature = c.ctemp; p.seed = 42; p.row_keys = keys.data();
      std::vector<int32_t> ids(static_cast<size_t>(c.rows) + kGuard, -99), wids(static_cast<size_t>(c.rows));
      Out conf(c.rows);
      std::vector<float> wconf(static_cast<size_t>(c.rows));
      p.out_ids = ids.data(); p.out_conf = conf.data();
      op_confidence(p, pool);
      p.out_ids = wids.data(); p.out_conf = wconf.data();
      naive_confidence(p);
      bool ok = conf.guards_ok();
      double worst = 0;
      int id_mismatch = 0;
      for (int64_t r = 0; r < c.rows; ++r) {
        if (ids[static_cast<size_t>(r)] != wids[static_cast<size_t>(r)]) id_mismatch++;
        const double d = std::fabs(static_cast<double>(conf.v[static_cast<size_t>(r)]) - wconf[static_cast<size_t>(r)]);
        if (!(d <= 1e-6)) ok = false;
        worst = std::max(worst, d);
      }
      for (int g = 0; g < kGuard; ++g) ok = ok && ids[static_cast<size_t>(c.rows + g)] == -99;
      ok = ok && id_mismatch == 0;
      char name[112], detail[96];
      std::snprintf(name, sizeof name, "confidence %s rows=%lld vocab=%lld T=%g cT=%g%s", kinds[kind], (long long)c.rows,
                    (long long)c.vocab, c.temp, c.ctemp, c.ties ? " ties" : "");
      std::snprintf(detail, sizeof detail, "max|dconf|=%.1e id-mismatch=%d", worst, id_mismatch);
      report(name, ok, detail);
    }
}

// The softmax sums of op_confidence's vector path (kernels.h avx2_exp_sums): within a few
// ulp of the sums in long double, and the AVX-512 version bit-identical to the AVX2 one.
// Blocks of every length mod 8, logits spread over [-30, 0] and past the polynomial's
// range (-1e3 below the max: std::exp's lanes), -inf, a tempered scale (inv 1/0.4).
void test_exp_sums() {
  if (!use_avx2_fma()) {
    std::printf("note: AVX2 not available, the vector softmax sums are not tested\n");
    return;
  }
  for (int64_t n : {1, 5, 8, 13, 64, 255, 256}) {
    for (int variant = 0; variant < 4; ++variant) {
      std::vector<float> l = randn(n, variant == 0 ? 3.f : 10.f);
      float m = -INFINITY;
      if (variant >= 2)
        for (int64_t t = 1; t < n; t += 3) l[static_cast<size_t>(t)] = variant == 2 ? -1e3f : -INFINITY;  // l[0] stays finite
      for (float x : l) m = std::max(m, x);
      const double inv = variant == 1 ? 1.0 / 0.4 : 1.0;
      long double want_sum = 0, want_ent = 0;
      for (float x : l) {
        const long double d = (static_cast<double>(x) - m) * inv, e = std::exp(d);
        want_sum += e;
        if (e > 0) want_ent += e * d;
      }
      const kernels::ExpSums a = kernels::avx2_exp_sums(l.data(), n, m, inv);
      const double rs = std::fabs(a.sum - static_cast<double>(want_sum)) / static_cast<double>(want_sum);
      const double re = want_ent != 0 ? std::fabs(a.ent - static_cast<double>(want_ent)) / std::fabs(static_cast<double>(want_ent))
                                      : std::fabs(a.ent);
      bool ok = rs < 1e-14 && re < 1e-13;
      bool same = true;
      if (set_avx512(true)) {
        const kernels::ExpSums b = kernels::avx512_exp_sums(l.data(), n, m, inv);
        same = std::memcmp(&a.sum, &b.sum, sizeof(double)) == 0 && std::memcmp(&a.ent, &b.ent, sizeof(double)) == 0;
      }
      char name[96], detail[96];
      std::snprintf(name, sizeof name, "confidence exp sums n=%lld variant=%d", (long long)n, variant);
      std::snprintf(detail, sizeof detail, "rel err sum %.1e ent %.1e; avx512 %s", rs, re, same ? "== avx2" : "DIFFERS");
      report(name, ok && same, detail);
    }
  }
}

// op_confidence's max pass (max, its first index, the runner-up) on every path against
// the scalar loop: the AVX2 and AVX-512 lanes merged must find the same index and values
// on rows made to trip a lane merge: ties within a lane, across lanes and across 256-logit
// blocks, NaNs (skipped), -inf runs and all -inf rows, signed zeros, a new max at every
// position, lengths around the vector widths and the block.
void test_confidence_max_pass() {
  if (!use_avx2_fma()) {
    std::printf("note: AVX2 not available, the vector max pass is not tested\n");
    return;
  }
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const int64_t lengths[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 255, 256, 257, 300, 513, 1000, 4099};
  const char* patterns[] = {"random", "constant", "nan every 5th", "all -inf", "all nan", "-inf but the last",
                            "tied maxima", "signed zeros", "max first and last", "increasing", "decreasing"};
  for (int pat = 0; pat < 11; ++pat)
    for (int64_t n : lengths) {
      std::vector<float> l = randn(n, 3.f);
      for (int64_t i = 0; i < n; ++i) {
        float& x = l[static_cast<size_t>(i)];
        switch (pat) {
          case 1: x = 1.5f; break;
          case 2: if (i % 5 == 2) x = nan; break;
          case 3: x = -inf; break;
          case 4: x = nan; break;
          case 5: x = i + 1 < n ? -inf : 0.25f; break;
          case 6: if (i == n / 3 || i == n / 2 || i == n - 1 || i == n / 2 + 16) x = 9.f; break;
          case 7: x = i % 3 == 0 ? -0.f : i % 3 == 1 ? 0.f : -1.f; break;
          case 8: if (i == 0 || i == n - 1) x = 9.f; break;
          case 9: x = static_cast<float>(i) * 0.5f; break;
          case 10: x = -static_cast<float>(i) * 0.5f; break;
          default: break;
        }
      }
      set_force_scalar(true);
      const ConfidenceMax want = confidence_max_pass(l.data(), n);
      set_force_scalar(false);
      bool ok = true;
      std::string detail = "scalar arg " + std::to_string(want.arg);
      for (bool avx512 : {false, true}) {
        if (set_avx512(avx512) != avx512) continue;
        const ConfidenceMax got = confidence_max_pass(l.data(), n);
        const bool same = got.arg == want.arg && std::memcmp(&got.max, &want.max, 4) == 0 && got.second == want.second;
        if (!same) {
          ok = false;
          detail += std::string("; ") + (avx512 ? "avx512" : "avx2") + " arg " + std::to_string(got.arg) + " max " +
                    std::to_string(got.max) + " second " + std::to_string(got.second) + " (want " +
                    std::to_string(want.max) + ", " + std::to_string(want.second) + ")";
        }
      }
      set_avx512(true);
      report(std::string("confidence max pass ") + patterns[pat] + " n=" + std::to_string(n), ok, detail);
    }
}

// The pool's spin-then-sleep hand-off: back-to-back jobs (workers still spinning), jobs
// after a pause (workers asleep), two submitting threads, and an exception in a worker.
void test_threadpool() {
  ThreadPool pool(3);
  bool ok = true;
  std::vector<int64_t> hits(1000);
  for (int job = 0; job < 20000 && ok; ++job) {
    const int64_t n = 1 + job % 997;
    pool.parallel_for(n, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)] += 1;
    });
    if (job % 5000 == 4999) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // let workers sleep
  }
  int64_t total = 0, want = 0;
  for (int64_t v : hits) total += v;
  for (int job = 0; job < 20000; ++job) want += 1 + job % 997;
  ok = total == want;
  report("threadpool: 20000 back-to-back and delayed jobs cover every item once", ok, "");
  std::atomic<int64_t> sum{0};
  auto submit = [&] {
    for (int j = 0; j < 2000; ++j)
      pool.parallel_for(64, 1, [&](int64_t b, int64_t e, int) { sum.fetch_add(e - b); });
  };
  std::thread a(submit), b(submit);
  a.join();
  b.join();
  report("threadpool: two submitting threads", sum.load() == 2 * 2000 * 64, "");
  bool thrown = false;
  try {
    pool.parallel_for(3, 1, [&](int64_t b, int64_t, int) {
      if (b == 2) throw std::runtime_error("worker failure");
    });
  } catch (const std::runtime_error&) {
    thrown = true;
  }
  std::atomic<int64_t> after{0};
  pool.parallel_for(30, 1, [&](int64_t b, int64_t e, int) { after.fetch_add(e - b); });
  report("threadpool: a worker's exception reaches the caller, the pool still runs", thrown && after.load() == 30, "");
  // Slow workers (2 ms a chunk): the caller, done with its own chunks, takes theirs.
  std::vector<std::atomic<int>> seen(120);
  std::atomic<int64_t> by_caller{0};
  pool.parallel_for(120, 1, [&](int64_t b, int64_t e, int worker) {
    if (worker != 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    for (int64_t i = b; i < e; ++i) seen[static_cast<size_t>(i)].fetch_add(1);
    if (worker == 0) by_caller.fetch_add(e - b);
  });
  bool once = true;
  for (auto& v : seen) once = once && v.load() == 1;
  report("threadpool: chunks of slow workers are taken by the caller, each item once", once && by_caller.load() > 40,
         once ? "" : "an item ran twice or never");
  // No chunk under the grain, whatever n: kernels rely on it (whole tiles, aligned columns).
  bool grains = true;
  for (int64_t n = 1; n < 400 && grains; n += 7)
    for (int64_t grain : {1, 3, 8, 64}) {
      std::atomic<int64_t> covered{0};
      std::atomic<bool> small{false};
      pool.parallel_for(n, grain, [&](int64_t b, int64_t e, int) {
        if (e - b < grain && e - b < n) small = true;
        covered.fetch_add(e - b);
      });
      grains = grains && !small.load() && covered.load() == n;
    }
  report("threadpool: every chunk holds at least the grain, all items covered", grains, "");
  // max_threads: only workers 0 .. max-1 run chunks; jobs of 2 sharers and of all 5 threads
  // back to back (a worker left out of one job sees the next one's word), after pauses too.
  ThreadPool wide(5);
  bool capped = true, covered_all = true;
  std::vector<int64_t> counts(500);
  for (int job = 0; job < 6000 && capped; ++job) {
    const int cap = job % 3 == 0 ? 0 : 1 + job % 4;  // 0 = no cap
    std::atomic<int> highest{0};
    wide.parallel_for(500, 1, [&](int64_t b, int64_t e, int worker) {
      int h = highest.load();
      while (worker > h && !highest.compare_exchange_weak(h, worker)) {
      }
      for (int64_t i = b; i < e; ++i) counts[static_cast<size_t>(i)] += 1;
    }, cap);
    capped = cap == 0 || highest.load() < cap;
    if (job % 1500 == 1499) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (int64_t v : counts) covered_all = covered_all && v == 6000;
  report("threadpool: max_threads caps the workers taking part; capped and full jobs interleaved cover every item once",
         capped && covered_all, capped && covered_all ? "" : capped ? "an item ran twice or never" : "a worker above the cap ran a chunk");
}

}  // namespace

int main() {
  const CpuFeatures& f = cpu_features();
  std::printf("cpu: avx2=%d fma=%d f16c=%d avx512=%d\n", f.avx2, f.fma, f.f16c, f.avx512);
  ThreadPool pool1(1), pool3(3);
  test_threadpool();
  test_embedding();
  test_rmsnorm();
  test_rope();
  test_elementwise();
  test_swiglu_widths();
  test_pooled_ops(pool3);
  test_pooled_ops(pool1);
  test_attention(pool3);
  test_attention(pool1);
  test_attention_batch(pool3);
  test_attention_batch(pool1);
  test_exp_sums();
  test_confidence_max_pass();
  test_confidence(pool3);
  test_confidence(pool1);
  std::printf("ops: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
