// bench_attention: latency of op_attention_batch (the CPU attention of one forward's layer)
// at the shapes the engine meets, beside the machine's FMA peak measured in the same run.
//
// How to run:
//   cmake -S . -B build/bench -DSDLLM_BUILD_BENCH=ON -DSDLLM_CUDA=OFF
//   cmake --build build/bench -j2 --target bench_attention
//   ./build/bench/bench/native/bench_attention [--threads N] [--rounds R] [--cold]
// Each shape runs 50 calls per round; best and median of R rounds (default 15) per call.
// --cold: before each call all threads read 64 MB, so that the keys and values come from
// DRAM as in a forward (the layers' weights pass through the caches between two uses of a
// layer's KV cache); only the call is timed.
// The output hash is an FNV-1a of every output float's bits: two builds that print the
// same hash computed the same floats (the AVX2 and AVX-512 paths must agree; run with
// SDLLM_NO_AVX512=1 to see the AVX2 one).
//
// FLOPs = 4 * sequences * heads * queries * keys * head_dim (QK^T and PV; the softmax's
// exp, max and sums are not counted). Each query row reads its head's keys and values
// once per chunk of rows; at these sizes everything fits in L2, so the hot figure is compute
// and per-row overhead (the softmax is a third of the work at head_dim 32), not bandwidth;
// the --cold one adds the trips of the K and V rows from memory.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "cpu_features.h"
#include "fma_peak.h"
#include "ops.h"
#include "threadpool.h"

using namespace sdllm;

namespace {

struct Shape {
  const char* what;
  int sequences;
  int64_t queries, cached;  // keys = cached + queries (the rows attend to themselves too)
  int heads, kv_heads, head_dim;
};

const Shape kShapes[] = {
    {"shipped, serving step x6", 6, 76, 22, 8, 8, 32},
    {"shipped, 64-row step", 1, 64, 64, 8, 8, 32},
    {"bench:torch M, 32 rows", 1, 32, 64, 8, 8, 64},
    {"bench:torch L, 32 rows", 1, 32, 64, 16, 16, 64},
    {"bench:torch M, 128 rows", 1, 128, 0, 8, 8, 64},
    {"LLaDA-8B, 32 rows / 512", 1, 32, 512, 32, 32, 128},
    {"Dream-7B GQA, 32 / 512", 1, 32, 512, 28, 4, 128},
    {"bench:batch M dual x8", 8, 32, 160, 8, 8, 64},
};

struct Buffers {
  std::vector<std::vector<float>> y, k, v, out;
  std::vector<AttentionParams> params;
};

Buffers make(const Shape& s, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  Buffers b;
  const int64_t q_width = static_cast<int64_t>(s.heads) * s.head_dim, kv_width = static_cast<int64_t>(s.kv_heads) * s.head_dim;
  const int64_t row = q_width + 2 * kv_width;  // one row of the fused q | k | v projection
  for (int i = 0; i < s.sequences; ++i) {
    b.y.emplace_back(static_cast<size_t>(s.queries * row));
    b.k.emplace_back(static_cast<size_t>(std::max<int64_t>(1, s.cached * kv_width)));
    b.v.emplace_back(b.k.back().size());
    b.out.emplace_back(static_cast<size_t>(s.queries * q_width));
    for (auto* vec : {&b.y.back(), &b.k.back(), &b.v.back()})
      for (float& f : *vec) f = nd(rng);
  }
  for (int i = 0; i < s.sequences; ++i) {
    AttentionParams p;
    p.q = b.y[i].data();
    p.n_q = s.queries;
    p.q_stride = row;
    p.k0 = b.k[i].data();
    p.v0 = b.v[i].data();
    p.n_k0 = s.cached;
    p.kv0_stride = kv_width;
    p.k1 = b.y[i].data() + q_width;
    p.v1 = b.y[i].data() + q_width + kv_width;
    p.n_k1 = s.queries;
    p.kv1_stride = row;
    p.n_heads = s.heads;
    p.n_kv_heads = s.kv_heads;
    p.head_dim = s.head_dim;
    p.scale = 1.f / std::sqrt(static_cast<float>(s.head_dim));
    p.out = b.out[i].data();
    p.out_stride = q_width;
    b.params.push_back(p);
  }
  return b;
}

uint64_t hash_outputs(const Buffers& b) {
  uint64_t h = 1469598103934665603ull;
  for (const auto& o : b.out)
    for (float f : o) {
      uint32_t u;
      std::memcpy(&u, &f, 4);
      h = (h ^ u) * 1099511628211ull;
    }
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, rounds = 15;
  bool cold = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--cold")) cold = true;
  }
  ThreadPool& pool = default_pool(threads);
  // The calling thread kept on the pool's CPU for callers throughout, as a forward keeps it
  // (cpu_forward_ops.cpp): otherwise each parallel_for on a placed pool moves it there and
  // back (two system calls and, often, a migration to a cold cache: the caller's share of a
  // two-thread attention ran 1.6x slower than the worker's).
  const ThreadPool::CallerScope caller(pool);
  const double peak = fma_peak_gflops(pool, 0.3);
  std::printf("threads: %d, attention path: %s, FMA peak %.1f GFLOP/s (register-only loop, all threads)%s\n\n",
              pool.size(), cpu_kernels_name(), peak, cold ? "; cold: 64 MB read by all threads before each call" : "");
  // Read by every thread between calls (--cold): each core's L1/L2 and the shared L3 lose the keys.
  std::vector<char> flush(cold ? size_t{64} << 20 : 0, 1);
  volatile int64_t sink = 0;
  auto evict = [&] {
    const int64_t lines = static_cast<int64_t>(flush.size()) / 64;
    pool.parallel_for(lines, lines / pool.size(), [&](int64_t b, int64_t e, int) {
      int64_t acc = 0;
      for (int64_t l = b; l < e; ++l) acc += flush[static_cast<size_t>(l * 64)];
      sink = sink + acc;
    });
  };
  std::printf("%-26s %4s %6s %6s %9s %5s | %9s %9s %8s %6s  %s\n", "shape", "seqs", "rows", "keys", "heads", "hd",
              "best us", "median us", "GFLOP/s", "%peak", "output hash");
  std::mt19937 rng(3);
  constexpr int kCalls = 50;
  for (const Shape& s : kShapes) {
    Buffers b = make(s, rng);
    op_attention_batch(b.params.data(), b.params.size(), pool);  // warm-up; also the hashed outputs
    const uint64_t h = hash_outputs(b);
    std::vector<double> us;
    for (int r = 0; r < rounds; ++r) {
      double total = 0;
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < kCalls; ++i) {
        if (cold) {
          evict();
          t0 = std::chrono::steady_clock::now();
        }
        op_attention_batch(b.params.data(), b.params.size(), pool);
        if (cold) total += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      }
      if (!cold) total = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      us.push_back(total / kCalls);
    }
    std::sort(us.begin(), us.end());
    const double flops =
        4.0 * s.sequences * s.heads * static_cast<double>(s.queries) * static_cast<double>(s.queries + s.cached) * s.head_dim;
    const double gf = flops / us[0] * 1e-3;
    char heads[16];
    std::snprintf(heads, sizeof heads, "%d:%d", s.heads, s.kv_heads);
    std::printf("%-26s %4d %6lld %6lld %9s %5d | %9.1f %9.1f %8.1f %5.0f%%  %016llx\n", s.what, s.sequences,
                static_cast<long long>(s.queries), static_cast<long long>(s.queries + s.cached), heads, s.head_dim, us[0],
                us[us.size() / 2], gf, peak > 0 ? 100 * gf / peak : 0.0, static_cast<unsigned long long>(h));
  }
  return 0;
}
