// bench_kernels: per-kernel latency of the CPU backend (cpp/ops.h) at LLaDA-8B shapes,
// with the bytes/FLOPs napkin math of each kernel and the time the same work would take
// on an H100 at its memory or BF16 tensor-core limit (bench/cuda/kernel_napkin.h).
// bench/cuda/bench_kernels.cu prints the same table for the CUDA kernels on a GPU.
//
// How to run:
//   cmake -S . -B build/bench-k -DSDLLM_BUILD_BENCH=ON -DSDLLM_CUDA=OFF
//   cmake --build build/bench-k -j2 --target bench_kernels
//   ./build/bench-k/bench/native/bench_kernels [--prefix N] [--rounds N] [--threads N] [--quick]
// --prefix N: one prefix length (default: 512, 1024 and 2048); --rounds N: timed calls per
// kernel after one warm-up call, the best is reported (default 5); --threads: the pool
// size of the ops that take one (GEMM, attention, confidence; the others are
// single-threaded ops); --quick: d_model 512, 4 heads, mlp 1536, vocab 8192, prefix 128.
//
// What a "step" is (../shared/spec/decoding.md, streaming strategy): each denoising step
// after the first of a block feeds block 32 + window 96 + 1 trailing row = 129 rows and
// attends over the prefix cache then those rows themselves. The vanilla row is a full
// pass over all prefix + 129 rows with no cache; the dual-cache row is the 32 block rows
// over a cache holding every position.
// Needs ~1.6 GB of memory at the LLaDA shapes (the BF16 embedding table, reused as the
// LM head's weight, and one layer's BF16 weights).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../cuda/kernel_napkin.h"
#include "cpu_features.h"
#include "dtype.h"
#include "ops.h"
#include "threadpool.h"

using namespace sdllm;
using namespace sdllm_bench;

namespace {

double best_seconds(int rounds, const std::function<void()>& fn) {
  using clk = std::chrono::steady_clock;
  fn();  // warm-up: page faults, thread wake-up, packing buffers
  double best = 1e30;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = clk::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(clk::now() - t0).count());
  }
  return best;
}

std::vector<float> randn(size_t n, float scale, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

std::vector<uint16_t> randn_bf16(size_t n, float scale, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, scale);
  std::vector<uint16_t> v(n);
  for (uint16_t& x : v) x = f32_to_bf16(nd(rng));
  return v;
}

WeightView view(const std::vector<uint16_t>& w, int64_t rows, int64_t cols) {
  WeightView v;
  v.data = w.data();
  v.dtype = DType::BF16;
  v.rows = rows;
  v.cols = cols;
  return v;
}

std::string str(const char* fmt, long long a, long long b = 0, long long c = 0) {
  char buf[96];
  std::snprintf(buf, sizeof buf, fmt, a, b, c);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, rounds = 5;
  bool quick = false;
  std::vector<int64_t> prefixes;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--prefix") && i + 1 < argc) prefixes.push_back(std::atoll(argv[++i]));
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else {
      std::fprintf(stderr, "usage: %s [--prefix N] [--rounds N] [--threads N] [--quick]\n", argv[0]);
      return 2;
    }
  }
  const Shapes s = quick ? Shapes::quick() : Shapes();
  if (prefixes.empty()) prefixes = quick ? std::vector<int64_t>{128} : std::vector<int64_t>{512, 1024, 2048};
  ThreadPool& pool = default_pool(threads);
  // The caller on the pool's CPU throughout, as in a forward (why: bench_attention.cpp).
  const ThreadPool::CallerScope caller(pool);
  std::printf("CPU backend kernels, %s shapes: d_model %lld, heads %lld (kv %lld) x %lld, mlp %lld, vocab %lld\n",
              quick ? "--quick" : "LLaDA-8B", (long long)s.d, (long long)s.n_heads, (long long)s.n_kv,
              (long long)s.head_dim, (long long)s.mlp, (long long)s.vocab);
  std::printf("pool threads: %d, SIMD path: %s, best of %d rounds after 1 warm-up\n\n", pool.size(),
              use_avx2_fma() ? "avx2+fma" : "scalar", rounds);

  std::mt19937 rng(7);
  const int64_t d = s.d, kvd = s.kv_dim(), n = s.step_rows(), max_prefix = *std::max_element(prefixes.begin(), prefixes.end());
  const int64_t max_rows = max_prefix + n;
  const std::string pool_note = std::to_string(pool.size()) + " thr";
  std::vector<Result> rows;
  auto add = [&](const std::string& kernel, const std::string& shape, const std::string& note, const Cost& c,
                 const std::function<void()>& fn) {
    Result r;
    r.kernel = kernel;
    r.shape = shape;
    r.note = note;
    r.cost = c;
    r.seconds = best_seconds(rounds, fn);
    rows.push_back(r);
    std::fprintf(stderr, "  %-22s %-28s %10.3f ms\n", kernel.c_str(), shape.c_str(), r.seconds * 1e3);
  };

  // Embedding table: also the LM head's weight below (LLaDA's are separate tensors of the
  // same shape; one buffer keeps the memory down and the traffic the same).
  const std::vector<uint16_t> table = randn_bf16(static_cast<size_t>(s.vocab * d), 0.02f, rng);
  const WeightView table_v = view(table, s.vocab, d);
  std::vector<int32_t> ids(static_cast<size_t>(n)), pos(static_cast<size_t>(max_rows));
  for (auto& t : ids) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(s.vocab));
  for (int64_t i = 0; i < max_rows; ++i) pos[static_cast<size_t>(i)] = static_cast<int32_t>(i);

  std::vector<float> x = randn(static_cast<size_t>(max_rows * std::max(d, s.mlp)), 1.f, rng);
  std::vector<float> y(x.size()), z(x.size());
  const std::vector<uint16_t> norm_w = randn_bf16(static_cast<size_t>(d), 1.f, rng);

  // ---- Elementwise and row kernels, on the 129 rows of a streaming step.
  add("embedding", str("%lld rows x %lld, BF16", n, d), "1 thr", cost_embedding(n, d),
      [&] { op_embedding(table_v, ids.data(), n, y.data()); });
  add("rmsnorm", str("%lld x %lld", n, d), "1 thr", cost_rmsnorm(n, d),
      [&] { op_rmsnorm(x.data(), view(norm_w, 1, d), n, d, 1e-5f, y.data()); });
  add("rope (Q)", str("%lld x %lld heads x %lld", n, s.n_heads, s.head_dim), "1 thr",
      cost_rope(n, s.n_heads, s.head_dim),
      [&] { op_rope(y.data(), n, d, static_cast<int>(s.n_heads), static_cast<int>(s.head_dim), pos.data(), 10000.f); });
  add("swiglu", str("%lld x %lld", n, s.mlp), "1 thr", cost_swiglu(n, s.mlp),
      [&] { op_swiglu(x.data(), y.data(), n * s.mlp, z.data()); });
  add("residual add", str("%lld x %lld", n, d), "1 thr", Cost{n * d * 12.0, n * d * 1.0},
      [&] { op_add(y.data(), x.data(), n * d); });
  {
    // KV cache write of one block (32 rows) into one layer's cache: two memcpys, as
    // Session::forward does.
    std::vector<float> kc(static_cast<size_t>(max_rows * kvd)), vc(kc.size());
    add("kv cache write", str("%lld rows K+V x %lld", s.block, kvd), "memcpy", cost_kv_write(s.block, kvd), [&] {
      std::memcpy(kc.data() + max_prefix * kvd, x.data(), sizeof(float) * s.block * kvd);
      std::memcpy(vc.data() + max_prefix * kvd, y.data(), sizeof(float) * s.block * kvd);
    });
  }
  {
    // Fused confidence over the LM head's output for the block's 32 rows.
    const int64_t cr = s.block;
    std::vector<float> logits = randn(static_cast<size_t>(cr * s.vocab), 3.f, rng);
    std::vector<int32_t> out_ids(static_cast<size_t>(cr));
    std::vector<float> out_conf(static_cast<size_t>(cr));
    ConfidenceParams p;
    p.logits = logits.data();
    p.n_rows = cr;
    p.vocab = s.vocab;
    p.row_stride = s.vocab;
    p.kind = ConfidenceKind::Prob;
    p.out_ids = out_ids.data();
    p.out_conf = out_conf.data();
    add("confidence (prob)", str("%lld rows x %lld", cr, s.vocab), pool_note, cost_confidence(cr, s.vocab),
        [&] { op_confidence(p, pool); });
  }

  // ---- Attention, per prefix length.
  {
    std::vector<float> q = randn(static_cast<size_t>(max_rows * d), 1.f, rng);
    std::vector<float> k = randn(static_cast<size_t>(max_rows * kvd), 1.f, rng);
    std::vector<float> v = randn(static_cast<size_t>(max_rows * kvd), 1.f, rng);
    std::vector<float> out(static_cast<size_t>(max_rows * d));
    for (int64_t P : prefixes) {
      AttentionParams base;
      base.n_heads = static_cast<int>(s.n_heads);
      base.n_kv_heads = static_cast<int>(s.n_kv);
      base.head_dim = static_cast<int>(s.head_dim);
      base.scale = 1.f / std::sqrt(static_cast<float>(s.head_dim));
      base.q_stride = d;
      base.kv0_stride = base.kv1_stride = kvd;
      base.out = out.data();
      base.out_stride = d;
      // Streaming / prefix-cache step: 129 rows over the prefix cache [0, P) then themselves.
      AttentionParams st = base;
      st.q = q.data();
      st.n_q = n;
      st.k0 = k.data();
      st.v0 = v.data();
      st.n_k0 = P;
      st.k1 = k.data() + P * kvd;
      st.v1 = v.data() + P * kvd;
      st.n_k1 = n;
      add("attention streaming", str("%lld q over %lld cache + %lld", n, P, n), pool_note,
          cost_attention(n, P + n, s.n_heads, s.n_kv, s.head_dim), [&] { op_attention(st, pool); });
      // Dual cache step: the 32 block rows over a cache of every position.
      AttentionParams dc = base;
      dc.q = q.data();
      dc.n_q = s.block;
      dc.k0 = k.data();
      dc.v0 = v.data();
      dc.n_k0 = P + n;
      add("attention dual-cache", str("%lld q over %lld cache", s.block, P + n), pool_note,
          cost_attention(s.block, P + n, s.n_heads, s.n_kv, s.head_dim), [&] { op_attention(dc, pool); });
      // Vanilla: every row over every row, no cache.
      AttentionParams va = base;
      va.q = q.data();
      va.n_q = P + n;
      va.k1 = k.data();
      va.v1 = v.data();
      va.n_k1 = P + n;
      add("attention vanilla", str("%lld q over %lld", P + n, P + n), pool_note,
          cost_attention(P + n, P + n, s.n_heads, s.n_kv, s.head_dim), [&] { op_attention(va, pool); });
    }
  }

  // ---- One decoder layer's GEMMs at m = 129 (BF16 weights), and the LM head on the
  // block's 32 rows.
  {
    const int64_t m = n;
    struct G {
      const char* name;
      int64_t k, n;
    };
    const G gs[] = {{"gemm q", d, d},       {"gemm k", d, kvd},     {"gemm v", d, kvd},     {"gemm o", d, d},
                    {"gemm gate", d, s.mlp}, {"gemm up", d, s.mlp}, {"gemm down", s.mlp, d}};
    Result layer;
    layer.kernel = "**layer GEMMs total**";
    layer.shape = str("m=%lld, 7 GEMMs", m);
    layer.note = pool_note;
    for (const G& g : gs) {
      const std::vector<uint16_t> w = randn_bf16(static_cast<size_t>(g.n * g.k), 0.02f, rng);
      const WeightView wv = view(w, g.n, g.k);
      add(g.name, str("m=%lld k=%lld n=%lld", m, g.k, g.n), pool_note, cost_gemm(m, g.k, g.n, 2.0),
          [&] { op_gemm(x.data(), m, g.k, wv, nullptr, y.data(), pool); });
      layer.seconds += rows.back().seconds;
      layer.cost += rows.back().cost;
    }
    rows.push_back(layer);
    add("gemm lm head", str("m=%lld k=%lld n=%lld", s.block, d, s.vocab), pool_note,
        cost_gemm(s.block, d, s.vocab, 2.0), [&] { op_gemm(x.data(), s.block, d, table_v, nullptr, z.data(), pool); });
  }

  std::printf("\n");
  print_table(rows, false);
  print_conventions();
  for (const Result& r : rows)
    if (r.kernel.rfind("attention", 0) == 0)
      std::printf("  %s, %s: FP32-core floor %.1f us (compute) vs HBM floor %.1f us\n", r.kernel.c_str(),
                  r.shape.c_str(), r.cost.flops / kFp32Flops * 1e6, r.cost.bytes / kH100Bytes * 1e6);
  std::printf("'x bound' = this machine's time / the H100 bound. 'N thr' = pool threads; '1 thr' ops take no pool.\n");
  return 0;
}
