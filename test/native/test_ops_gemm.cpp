// The GEMM family of the CPU backend against naive.h (helpers: op_test.h, as test_ops.cpp):
// op_gemm on the scalar, AVX2 and AVX-512 paths and every weight dtype, AVX-512 == AVX2
// and repacked == per-call packing bit for bit, strided outputs, Q8_0 quantization and
// its GEMMs (VNNI included), rows independent of each other (batched forwards rely on it),
// and op_project with its epilogues.
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

void test_gemm(ThreadPool& pool) {
  struct C { int64_t m, k, n; };
  const C cases[] = {{1, 1, 1},     {1, 7, 7},       {3, 67, 129},   {17, 259, 7},    {33, 100, 129},
                     {160, 67, 97}, {5, 2500, 50},   {4, 4096, 48},  {160, 1031, 130}, {2, 13, 200},
                     {6, 0, 5}};
  for (GemmPath path : gemm_paths()) {
    use_gemm_path(path);
    for (const C& c : cases)
      for (DType t : kTypes)
        for (int bias_kind = 0; bias_kind < 2; ++bias_kind) {
          if (bias_kind && t != DType::BF16) continue;  // bias dtype handling once is enough
          Weights w(t, c.n, c.k, 0.5f);
          Weights b(DType::BF16, 1, c.n);
          std::vector<float> x = randn(c.m * c.k);
          Out got(c.m * c.n);
          std::vector<float> want(static_cast<size_t>(c.m * c.n));
          op_gemm(x.data(), c.m, c.k, w.view, bias_kind ? &b.view : nullptr, got.data(), pool);
          naive_gemm(x.data(), c.m, c.k, w.view, bias_kind ? &b.view : nullptr, want.data());
          char name[96];
          std::snprintf(name, sizeof name, "gemm %s m=%lld k=%lld n=%lld%s %s", dtype_name(t), (long long)c.m,
                        (long long)c.k, (long long)c.n, bias_kind ? " +bias" : "", gemm_path_name());
          compare(name, got, want, 1e-10);
        }
  }
  reset_gemm_path();
}

// The AVX-512 GEMM promises the AVX2 GEMM's floats exactly (gemm_avx512.cpp): every
// remainder of the 6x8 tile, K tails, several K blocks, odd n, all weight dtypes.
void test_gemm_avx512_equals_avx2(ThreadPool& pool) {
  if (!set_avx512(true)) return reset_gemm_path();
  struct C { int64_t m, k, n; };
  const C cases[] = {{1, 1, 1},    {7, 9, 3},      {6, 64, 8},     {13, 67, 129},  {37, 259, 17},
                     {5, 1024, 48}, {12, 1031, 130}, {3, 2500, 50}, {129, 256, 768}, {2, 4097, 9},
                     // more x rows than one L2 row block holds (gemm_avx512.cpp kRowBlockBytes)
                     {203, 1100, 21}, {401, 300, 40}};
  for (const C& c : cases)
    for (DType t : kTypes) {
      Weights w(t, c.n, c.k, 0.5f);
      Weights b(DType::BF16, 1, c.n);
      std::vector<float> x = randn(c.m * c.k, 2.f);
      std::vector<float> a2(static_cast<size_t>(c.m * c.n)), a5(a2.size());
      use_gemm_path(GemmPath::Avx2);
      op_gemm(x.data(), c.m, c.k, w.view, &b.view, a2.data(), pool);
      use_gemm_path(GemmPath::Avx512);
      op_gemm(x.data(), c.m, c.k, w.view, &b.view, a5.data(), pool);
      const bool same = std::memcmp(a2.data(), a5.data(), sizeof(float) * a2.size()) == 0;
      char name[112];
      std::snprintf(name, sizeof name, "gemm avx512 == avx2 %s m=%lld k=%lld n=%lld threads=%d", dtype_name(t),
                    (long long)c.m, (long long)c.k, (long long)c.n, pool.size());
      report(name, same, same ? "bit-identical" : "AVX-512 floats differ from AVX2");
    }
  reset_gemm_path();
}

// Weights repacked at load (cpp/repack.cpp) give the floats of the per-call packing: the
// same cases, threads splitting the panels differently, a repacked LM head cut to its
// first (odd) rows, every dtype (BF16 in its 16-bit quads); the layout is filled in two
// pieces as the pool does.
void test_gemm_repacked_equals_packed(ThreadPool& pool) {
  if (!set_avx512(true)) return reset_gemm_path();
  struct C { int64_t m, k, n, used; };
  const C cases[] = {{1, 1, 1, 1},      {7, 9, 3, 3},        {6, 64, 8, 8},      {13, 67, 129, 129},
                     {37, 259, 17, 17},  {5, 1024, 48, 48},   {12, 1031, 130, 127}, {3, 2500, 50, 50},
                     {129, 256, 768, 761}, {2, 4097, 9, 9},   {203, 1100, 21, 21}, {401, 300, 40, 33}};
  for (const C& c : cases)
    for (DType t : kTypes) {
      Weights w(t, c.n, c.k, 0.5f);
      const std::vector<float> x = randn(c.m * c.k, 2.f);
      // BF16: the 16-bit quads the loader makes of BF16 weights; F32/F16: float32 pairs.
      const bool bf16 = t == DType::BF16;
      std::vector<float> layout(static_cast<size_t>(kernels::avx512_packed_floats(c.n, c.k)) + 16, -1.f);
      float* base = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(layout.data()) + 63) & ~uintptr_t{63});
      const int64_t groups = bf16 ? (c.n + 3) / 4 : (c.n + 1) / 2, half = groups / 2;
      if (bf16) {
        uint16_t* h = reinterpret_cast<uint16_t*>(base);
        kernels::avx512_pack_weight_bf16(w.view, 0, half, h);
        kernels::avx512_pack_weight_bf16(w.view, half, groups, h);
      } else {
        kernels::avx512_pack_weight(w.view, 0, half, base);
        kernels::avx512_pack_weight(w.view, half, groups, base);
      }
      WeightView packed = w.view;
      if (bf16)
        packed.packed_bf16 = reinterpret_cast<const uint16_t*>(base);
      else
        packed.packed = base;
      packed.packed_rows = c.n;
      std::vector<float> a(static_cast<size_t>(c.m * c.used)), b(a.size());
      op_gemm(x.data(), c.m, c.k, w.view.first_rows(c.used), nullptr, a.data(), pool);
      op_gemm(x.data(), c.m, c.k, packed.first_rows(c.used), nullptr, b.data(), pool);
      const bool same = std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
      char name[128];
      std::snprintf(name, sizeof name, "gemm repacked == packed per call %s m=%lld k=%lld n=%lld of %lld threads=%d",
                    dtype_name(t), (long long)c.m, (long long)c.k, (long long)c.used, (long long)c.n, pool.size());
      report(name, same, same ? "bit-identical" : "repacked floats differ");
    }
  reset_gemm_path();
}

// Q8_0 weights: rows quantized with q8_quantize_row (dtype.h), the layout of DType::Q8_0.
struct Q8Weights {
  std::vector<int8_t> q;
  std::vector<float> s;
  WeightView view;
  Q8Weights(int64_t rows, int64_t cols, float scale = 1.f) {
    const std::vector<float> f = randn(rows * cols, scale);
    const int64_t g = q8_groups(cols);
    q.resize(static_cast<size_t>(rows * cols + 1));
    s.resize(static_cast<size_t>(rows * g + 1));
    for (int64_t r = 0; r < rows; ++r) q8_quantize_row(f.data() + r * cols, cols, q.data() + r * cols, s.data() + r * g);
    view.data = q.data();
    view.scales = s.data();
    view.dtype = DType::Q8_0;
    view.rows = rows;
    view.cols = cols;
  }
};

// Random weights of any dtype the GEMM takes, Q8_0 included (scale 0.5).
struct AnyWeights {
  Weights f;
  Q8Weights q;
  bool q8;
  AnyWeights(DType t, int64_t rows, int64_t cols)
      : f(t == DType::Q8_0 ? DType::F32 : t, t == DType::Q8_0 ? 1 : rows, t == DType::Q8_0 ? 1 : cols, 0.5f),
        q(t == DType::Q8_0 ? rows : 1, t == DType::Q8_0 ? cols : 1, 0.5f),
        q8(t == DType::Q8_0) {}
  const WeightView& view() const { return q8 ? q.view : f.view; }
};

// The activation rows as the Q8 GEMM sees them: quantized per row and group, dequantized.
std::vector<float> q8_roundtrip(const std::vector<float>& x, int64_t m, int64_t k) {
  std::vector<float> out(x.size());
  std::vector<int8_t> q(static_cast<size_t>(k));
  std::vector<float> s(static_cast<size_t>(q8_groups(k)));
  for (int64_t i = 0; i < m; ++i) {
    q8_quantize_row(x.data() + i * k, k, q.data(), s.data());
    for (int64_t c = 0; c < k; ++c)
      out[static_cast<size_t>(i * k + c)] = static_cast<float>(q[static_cast<size_t>(c)]) * s[static_cast<size_t>(c / kQ8Group)];
  }
  return out;
}

void test_q8_quantize() {
  // The quantizer itself: scale = max|w| / 127, q = round-half-even(w / scale), exact grid values.
  {
    std::vector<float> x(64, 0.f);
    for (int c = 0; c < 32; ++c) x[static_cast<size_t>(c)] = static_cast<float>(c - 16) * 0.5f;  // max |x| = 8
    std::vector<int8_t> q(64);
    std::vector<float> s(2);
    q8_quantize_row(x.data(), 64, q.data(), s.data());
    bool ok = s[0] == 8.f / 127.f && s[1] == 0.f && q[0] == -127 && q[16] == 0;
    for (int c = 32; c < 64; ++c) ok = ok && q[static_cast<size_t>(c)] == 0;
    for (int c = 0; c < 32; ++c) {
      const float want = std::nearbyint(x[static_cast<size_t>(c)] * (1.f / (8.f / 127.f)));
      ok = ok && q[static_cast<size_t>(c)] == static_cast<int8_t>(want);
    }
    report("q8 quantize: scale max|x|/127, zero group, round half even", ok, "");
  }
  if (!use_avx2_fma()) return;
  for (int64_t n : {1, 31, 32, 33, 64, 100, 4096, 4097}) {
    std::vector<float> x = randn(n, 3.f);
    if (n > 40) x[7] = 0.f, x[8] = -0.f;
    std::vector<int8_t> qa(static_cast<size_t>(n)), qb(static_cast<size_t>(n));
    std::vector<float> sa(static_cast<size_t>(q8_groups(n))), sb(sa.size());
    q8_quantize_row(x.data(), n, qa.data(), sa.data());
    kernels::avx2_q8_quantize_row(x.data(), n, qb.data(), sb.data());
    const bool ok = qa == qb && std::memcmp(sa.data(), sb.data(), sa.size() * 4) == 0;
    report("q8 quantize avx2 == scalar n=" + std::to_string(n), ok, "");
  }
}

void test_gemm_q8(ThreadPool& pool) {
  struct C { int64_t m, k, n; };
  const C cases[] = {{1, 32, 1},   {1, 7, 7},      {3, 64, 129},   {17, 259, 7},  {33, 100, 129}, {160, 96, 97},
                     {5, 2500, 50}, {4, 4096, 48}, {160, 1031, 130}, {2, 13, 200}, {37, 256, 768}, {6, 0, 5},
                     {129, 768, 256}};
  for (bool scalar : paths()) {
    set_force_scalar(scalar);
    for (const C& c : cases)
      for (int bias_kind = 0; bias_kind < 2; ++bias_kind) {
        Q8Weights w(c.n, c.k, 0.5f);
        Weights b(DType::BF16, 1, c.n);
        std::vector<float> x = randn(c.m * c.k);
        const std::vector<float> xr = q8_roundtrip(x, c.m, c.k);
        Out got(c.m * c.n);
        std::vector<float> want(static_cast<size_t>(c.m * c.n)), loose(want.size());
        op_gemm(x.data(), c.m, c.k, w.view, bias_kind ? &b.view : nullptr, got.data(), pool);
        // Exact in the quantized arithmetic: the dequantized weights times the dequantized
        // activations, in float64; and, loosely, against the unquantized activations.
        naive_gemm(xr.data(), c.m, c.k, w.view, bias_kind ? &b.view : nullptr, want.data());
        naive_gemm(x.data(), c.m, c.k, w.view, bias_kind ? &b.view : nullptr, loose.data());
        char name[96];
        std::snprintf(name, sizeof name, "gemm Q8_0 m=%lld k=%lld n=%lld%s %s", (long long)c.m, (long long)c.k,
                      (long long)c.n, bias_kind ? " +bias" : "", path_name());
        compare(name, got, want, 1e-10);
        if (c.m * c.n >= 64 && c.k >= 32)  // one short dot product can be off by more, by chance
          compare(std::string(name) + " vs float x", got, loose, 2e-4);
      }
  }
  set_force_scalar(false);
}

// The AVX-VNNI tile and the maddubs tile compute the same exact int32 sums: same floats.
void test_gemm_q8_vnni(ThreadPool& pool) {
  if (!use_avx2_fma()) return;
  if (!kernels::set_q8_vnni(true)) {
    std::printf("note: no AVX-VNNI, the Q8_0 VNNI tile is not tested\n");
    return;
  }
  // n = 16 and 37: the VNNI-512 tile's one-block and two-block column tiles, and a partial
  // block; m = 7 and 9: its row tiles of 3 and 1 after whole ones of 4.
  for (int64_t n : {16, 37})
    for (int64_t k : {32, 100, 4096})
      for (int64_t m : {1, 6, 7, 9, 33}) {
        Q8Weights w(n, k, 0.5f);
        std::vector<float> x = randn(m * k);
        std::vector<float> a(static_cast<size_t>(m * n)), b(a.size()), c(a.size());
        kernels::set_q8_vnni(true);
        set_avx512(false);
        op_gemm(x.data(), m, k, w.view, nullptr, a.data(), pool);
        kernels::set_q8_vnni(false);
        op_gemm(x.data(), m, k, w.view, nullptr, b.data(), pool);
        const std::string shape = " m=" + std::to_string(m) + " k=" + std::to_string(k) + " n=" + std::to_string(n);
        report("gemm Q8_0 vnni == maddubs" + shape,
               std::memcmp(a.data(), b.data(), a.size() * 4) == 0, "");
        kernels::set_q8_vnni(true);
        if (set_avx512(true) && kernels::q8_vnni512_available()) {
          op_gemm(x.data(), m, k, w.view, nullptr, c.data(), pool);
          report("gemm Q8_0 vnni512 == vnni" + shape,
                 std::memcmp(a.data(), c.data(), a.size() * 4) == 0, "");
        }
      }
  kernels::set_q8_vnni(true);
  reset_gemm_path();
}

// op_gemm with an output stride: the same floats as the packed output, nothing written
// outside the w.rows columns of each row (sentinels), every path and weight dtype.
void test_gemm_strided(ThreadPool& pool) {
  struct C { int64_t m, k, n, pad; };
  const C cases[] = {{1, 7, 5, 3}, {13, 67, 129, 64}, {37, 259, 17, 1}, {8, 1031, 48, 16}};
  for (GemmPath path : gemm_paths()) {
    use_gemm_path(path);
    for (const C& c : cases)
      for (int t = 0; t < 4; ++t) {
        const DType dt = t < 3 ? kTypes[t] : DType::Q8_0;
        const AnyWeights aw(dt, c.n, c.k);
        const WeightView& w = aw.view();
        Weights b(DType::BF16, 1, c.n);
        const std::vector<float> x = randn(c.m * c.k);
        std::vector<float> packed(static_cast<size_t>(c.m * c.n));
        const int64_t ldy = c.n + c.pad;
        std::vector<float> strided(static_cast<size_t>(c.m * ldy), 12345.f);
        op_gemm(x.data(), c.m, c.k, w, &b.view, packed.data(), pool);
        op_gemm(x.data(), c.m, c.k, w, &b.view, strided.data(), ldy, pool);
        bool same = true, untouched = true;
        for (int64_t i = 0; i < c.m; ++i) {
          same = same && std::memcmp(packed.data() + i * c.n, strided.data() + i * ldy, sizeof(float) * c.n) == 0;
          for (int64_t j = c.n; j < ldy; ++j) untouched = untouched && strided[static_cast<size_t>(i * ldy + j)] == 12345.f;
        }
        char name[112];
        std::snprintf(name, sizeof name, "gemm strided %s m=%lld k=%lld n=%lld ldy=%lld %s", dtype_name(dt),
                      (long long)c.m, (long long)c.k, (long long)c.n, (long long)ldy, gemm_path_name());
        report(name, same && untouched, same ? (untouched ? "bit-identical" : "wrote past w.rows") : "differs");
      }
  }
  reset_gemm_path();
}

// A GEMM of m rows must equal, bit for bit, the GEMMs of each row alone (batched forwards
// rely on it): the reduction order of an output may not depend on m or on the tiling.
void test_gemm_row_independence(ThreadPool& pool) {
  struct C { int64_t k, n; };
  const C shapes[] = {{67, 129}, {256, 768}, {4096, 50}, {1031, 7}, {32, 3}};
  for (GemmPath path : gemm_paths()) {
    use_gemm_path(path);
    for (const C& c : shapes)
      for (int t = 0; t < 4; ++t) {
        const DType dt = t < 3 ? kTypes[t] : DType::Q8_0;
        const AnyWeights aw(dt, c.n, c.k);
        const WeightView& w = aw.view();
        Weights b(DType::BF16, 1, c.n);
        for (int64_t m : {1, 3, 5, 13, 37, 200}) {  // 200: several of the AVX-512 GEMM's L2 row blocks
          std::vector<float> x = randn(m * c.k);
          std::vector<float> all(static_cast<size_t>(m * c.n)), one(static_cast<size_t>(c.n));
          op_gemm(x.data(), m, c.k, w, &b.view, all.data(), pool);
          bool same = true;
          for (int64_t i = 0; i < m; ++i) {
            op_gemm(x.data() + i * c.k, 1, c.k, w, &b.view, one.data(), pool);
            same = same && std::memcmp(one.data(), all.data() + i * c.n, sizeof(float) * c.n) == 0;
          }
          char name[112];
          std::snprintf(name, sizeof name, "gemm rows independent %s m=%lld k=%lld n=%lld threads=%d %s",
                        dtype_name(dt), (long long)m, (long long)c.k, (long long)c.n, pool.size(), gemm_path_name());
          report(name, same, same ? "bit-identical" : "row results differ from m=1");
        }
      }
  }
  reset_gemm_path();
}

// op_project: several weights side by side equal op_gemm of each with the output stride,
// bit for bit; its epilogue sees every output exactly once, after it is final (bias
// included), in blocks whose columns start at multiples of the alignment; paired blocks
// hold the same columns of every weight. Every kernel path, float and Q8 weights.
void test_project(ThreadPool& pool) {
  struct C { int64_t m, k; std::vector<int64_t> rows; int64_t align; };
  const std::vector<C> cases = {{1, 67, {64, 32, 32}, 16}, {13, 256, {129, 7}, 0}, {37, 128, {96, 96}, 8},
                                {200, 64, {48, 48}, 8}, {64, 512, {512, 256, 256}, 64}, {6, 40, {24, 24}, 24}};
  for (GemmPath path : gemm_paths()) {
    use_gemm_path(path);
    for (const C& c : cases)
      for (DType dt : {DType::BF16, DType::F32, DType::Q8_0})
        for (bool paired : {false, true}) {
          const int count = static_cast<int>(c.rows.size());
          bool same_rows = true;
          for (int64_t r : c.rows) same_rows = same_rows && r == c.rows[0];
          if (paired && !same_rows) continue;
          std::vector<std::unique_ptr<AnyWeights>> ws;
          std::vector<std::unique_ptr<Weights>> bs;
          std::vector<const WeightView*> wv, bv;
          int64_t ldy = 3;  // a gap past the last weight's columns
          for (int j = 0; j < count; ++j) {
            ws.emplace_back(new AnyWeights(dt, c.rows[j], c.k));
            bs.emplace_back(new Weights(DType::BF16, 1, c.rows[j]));
            wv.push_back(&ws.back()->view());
            bv.push_back(j == 1 ? nullptr : &bs.back()->view);  // one weight without a bias
            ldy += c.rows[j];
          }
          const std::vector<float> x = randn(c.m * c.k);
          std::vector<float> want(static_cast<size_t>(c.m * ldy), 5.f), got(want.size(), 5.f), seen(want.size(), 5.f);
          int64_t col = 0;
          for (int j = 0; j < count; ++j) {
            op_gemm(x.data(), c.m, c.k, *wv[j], bv[j], want.data() + col, ldy, pool);
            col += c.rows[j];
          }
          std::vector<std::atomic<int>> hits(want.size());
          std::atomic<bool> aligned{true};
          ProjectEpilogue ep;
          ep.align = c.align;
          ep.paired = paired;
          ep.block = [&](int weight, int64_t i0, int64_t i1, int64_t c0, int64_t c1) {
            if (c.align > 0 && c0 % c.align != 0) aligned = false;
            if ((weight < 0) != paired) aligned = false;
            int64_t off = 0;
            for (int j = 0; j < count; ++j) {
              if (weight < 0 || j == weight)
                for (int64_t i = i0; i < i1; ++i)
                  for (int64_t cc = c0; cc < c1; ++cc) {
                    const size_t at = static_cast<size_t>(i * ldy + off + cc);
                    seen[at] = got[at];
                    hits[at].fetch_add(1);
                  }
              off += c.rows[j];
            }
          };
          op_project(x.data(), c.m, c.k, wv.data(), bv.data(), count, got.data(), ldy, pool, &ep);
          const bool same = std::memcmp(want.data(), got.data(), want.size() * 4) == 0;
          bool once = true, final_values = true;
          for (int64_t i = 0; i < c.m; ++i)
            for (int64_t cc = 0; cc < ldy; ++cc) {
              const size_t at = static_cast<size_t>(i * ldy + cc);
              once = once && hits[at].load() == (cc < ldy - 3 ? 1 : 0);
              final_values = final_values && std::memcmp(&seen[at], &got[at], 4) == 0;
            }
          char name[128];
          std::snprintf(name, sizeof name, "project %s m=%lld k=%lld weights=%d align=%lld%s threads=%d %s", dtype_name(dt),
                        (long long)c.m, (long long)c.k, count, (long long)c.align, paired ? " paired" : "", pool.size(),
                        gemm_path_name());
          report(name, same && once && final_values && aligned,
                 !same ? "differs from op_gemm" : !once ? "an output seen by the epilogue not exactly once"
                 : !final_values ? "epilogue saw an unfinished output" : !aligned ? "block misaligned" : "bit-identical");
        }
  }
  reset_gemm_path();
}

}  // namespace

int main() {
  const CpuFeatures& f = cpu_features();
  std::printf("cpu: avx2=%d fma=%d f16c=%d avx512=%d\n", f.avx2, f.fma, f.f16c, f.avx512);
  ThreadPool pool1(1), pool3(3);
  test_gemm(pool3);
  test_gemm(pool1);
  test_gemm_avx512_equals_avx2(pool3);
  test_gemm_avx512_equals_avx2(pool1);
  test_gemm_repacked_equals_packed(pool3);
  test_gemm_repacked_equals_packed(pool1);
  test_gemm_strided(pool3);
  test_q8_quantize();
  test_gemm_q8(pool3);
  test_gemm_q8(pool1);
  test_gemm_q8_vnni(pool3);
  test_gemm_row_independence(pool3);
  test_gemm_row_independence(pool1);
  test_project(pool3);
  test_project(pool1);
  std::printf("gemm ops: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
