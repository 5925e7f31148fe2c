// Op-by-op test of the CPU backend against naive.h, in the manner of ggml's
// test-backend-ops: a table of cases at awkward sizes, each compared by normalised MSE
// (sum (a-b)^2 / sum b^2) under a per-op tolerance, with NaN/inf checks and sentinel
// values after every output buffer to catch out-of-bounds writes. GEMM, attention and
// embedding run on both the AVX2 path and the scalar path (via set_force_scalar).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>
#include <stdexcept>
#include <atomic>
#include <chrono>
#include <thread>

#include "cpu_features.h"
#include "naive.h"
#include "ops.h"
#include "ops/kernels.h"

using namespace sdllm;

namespace {

int g_passed = 0, g_failed = 0;
std::mt19937 g_rng(1234);

std::vector<float> randn(int64_t n, float scale = 1.f) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(g_rng);
  return v;
}

// Weights stored in their dtype; values are rounded to it first so that the naive
// reference and the op see the same numbers.
struct Weights {
  std::vector<float> f;
  std::vector<uint16_t> h;
  WeightView view;
  Weights(DType t, int64_t rows, int64_t cols, float scale = 1.f) {
    f = randn(rows * cols, scale);
    if (t != DType::F32) {
      h.resize(f.size());
      for (size_t i = 0; i < f.size(); ++i) {
        if (t == DType::BF16) {
          h[i] = f32_to_bf16(f[i]);
        } else {  // F16 via bf16-free route: keep values in f16 range and round through the f16 grid
          const float v = std::max(-60000.f, std::min(60000.f, f[i]));
          h[i] = f32_to_f16(v);
        }
      }
    }
    view.data = t == DType::F32 ? static_cast<const void*>(f.data()) : static_cast<const void*>(h.data());
    view.dtype = t;
    view.rows = rows;
    view.cols = cols;
  }
  static uint16_t f32_to_f16(float v) {  // round-to-nearest by search on the f16 grid; tests only
    uint16_t best = 0;
    float bd = INFINITY;
    const uint16_t sign = v < 0 ? 0x8000 : 0;
    uint16_t lo = 0, hi = 0x7bff;
    const float a = std::fabs(v);
    while (lo < hi) {  // f16 magnitudes are monotone in their bit pattern
      const uint16_t mid = static_cast<uint16_t>((lo + hi) / 2);
      if (f16_to_f32(mid) < a) lo = static_cast<uint16_t>(mid + 1); else hi = mid;
    }
    for (int c = std::max(0, lo - 1); c <= std::min(0x7bff, lo + 1); ++c) {
      const float d = std::fabs(f16_to_f32(static_cast<uint16_t>(c)) - a);
      if (d < bd) { bd = d; best = static_cast<uint16_t>(c); }
    }
    return static_cast<uint16_t>(best | sign);
  }
};

// An output buffer followed by sentinels.
constexpr int kGuard = 16;
constexpr float kSentinel = -7.77e33f;
struct Out {
  std::vector<float> v;
  int64_t n;
  explicit Out(int64_t n_) : v(static_cast<size_t>(n_ + kGuard), kSentinel), n(n_) {}
  float* data() { return v.data(); }
  bool guards_ok() const {
    for (int i = 0; i < kGuard; ++i)
      if (std::memcmp(&v[static_cast<size_t>(n + i)], &kSentinel, 4) != 0) return false;
    return true;
  }
};

void report(const std::string& name, bool ok, const std::string& detail) {
  std::printf("%-4s %-72s %s\n", ok ? "ok" : "FAIL", name.c_str(), detail.c_str());
  (ok ? g_passed : g_failed)++;
}

// Compares got (with guards) to want by normalised MSE.
void compare(const std::string& name, const Out& got, const std::vector<float>& want, double tol) {
  double num = 0, den = 0;
  bool finite = true;
  for (int64_t i = 0; i < got.n; ++i) {
    const double a = got.v[static_cast<size_t>(i)], b = want[static_cast<size_t>(i)];
    if (!std::isfinite(a)) finite = false;
    num += (a - b) * (a - b);
    den += b * b;
  }
  const double nmse = den > 0 ? num / den : num;
  const bool guards = got.guards_ok();
  char buf[128];
  std::snprintf(buf, sizeof buf, "nmse=%.2e tol=%.0e%s%s", nmse, tol, finite ? "" : " NON-FINITE",
                guards ? "" : " GUARD-OVERWRITTEN");
  report(name, finite && guards && nmse <= tol, buf);
}

const char* path_name() { return use_avx2_fma() ? "avx2" : "scalar"; }

std::vector<bool> paths() {
  std::vector<bool> p = {true};  // force scalar
  set_force_scalar(false);
  if (use_avx2_fma()) p.push_back(false);
  else std::printf("note: AVX2+FMA+F16C not available, only the scalar path is tested\n");
  return p;
}

const DType kTypes[3] = {DType::F32, DType::BF16, DType::F16};

// The GEMM's kernels: scalar, AVX2 and, where the CPU has it, AVX-512.
enum class GemmPath { Scalar, Avx2, Avx512 };
std::vector<GemmPath> gemm_paths() {
  std::vector<GemmPath> p = {GemmPath::Scalar};
  set_force_scalar(false);
  if (use_avx2_fma()) p.push_back(GemmPath::Avx2);
  if (set_avx512(true)) p.push_back(GemmPath::Avx512);
  else std::printf("note: AVX-512 not available, the AVX-512 GEMM is not tested\n");
  return p;
}
void use_gemm_path(GemmPath p) {
  set_force_scalar(p == GemmPath::Scalar);
  set_avx512(p == GemmPath::Avx512);
}
void reset_gemm_path() {
  set_force_scalar(false);
  set_avx512(true);
}
const char* gemm_path_name() { return use_avx512() ? "avx512" : path_name(); }

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
}

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
                     {4, 0, 0, 4, 2, 80},      {129, 200, 129, 4, 4, 128}, {3, 9, 0, 2, 2, 8}};
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
      same = same && std::memcmp(alone[i].data(), batched[i].data(), alone[i].size() * 4) == 0;
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
  test_pooled_ops(pool3);
  test_pooled_ops(pool1);
  test_attention(pool3);
  test_attention(pool1);
  test_attention_batch(pool3);
  test_attention_batch(pool1);
  test_exp_sums();
  test_confidence(pool3);
  test_confidence(pool1);
  std::printf("ops: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
