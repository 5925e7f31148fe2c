// bench_weights_cold: what a projection pays when its weights come from DRAM rather than
// L3. A loaded checkpoint's q | k | v projection (op_project, the weights repacked at load
// as a forward sees them) on m rows, timed four ways, best of 10 rounds of 64 calls:
//   hot:     layer 0 again and again (weights in L2/L3);
//   cycling: every layer in turn (weights in L3 while the layers' q | k | v fit);
//   cold:    layer 0 after a 64 MB read between calls by all the pool's threads, x and y
//            then touched again (weights from DRAM, activations in cache as in a forward;
//            none of it timed);
//   x rewritten: hot, x rewritten by the pool's threads before each call (each then reads
//            rows the other core wrote, as after the norm in a forward).
// A forward of a model larger than L3 streams every weight from DRAM once, so "cold" is
// the projection as a forward runs it. (Until 2026-12-07 13:00 the 64 MB read ran on the
// calling thread alone; the pool's worker fell asleep meanwhile, and "cold" on two threads
// measured its futex wake-up, ~60 us here, not DRAM: docs/PERFORMANCE.md.)
//
// How to run:
//   cmake -S . -B build/bench -DSDLLM_BUILD_BENCH=ON -DSDLLM_CUDA=OFF
//   cmake --build build/bench -j2 --target bench_weights_cold
//   ./build/bench/bench/native/bench_weights_cold DIR [rows 32] [threads 2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

#include "model.h"
#include "ops.h"
#include "threadpool.h"

using namespace sdllm;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [rows] [threads]\n", argv[0]);
    return 2;
  }
  const int64_t m = argc > 2 ? std::atoll(argv[2]) : 32;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 2;
  ThreadPool& pool = default_pool(threads);
  // The caller on the pool's CPU throughout, as in a forward (why: bench_attention.cpp).
  const ThreadPool::CallerScope caller(pool);
  LoadOptions options;
  options.pool = &pool;
  const std::shared_ptr<Model> model = load_model(argv[1], options);
  const int64_t d = model->config.d_model;
  const int layers = static_cast<int>(model->layers.size());
  const int64_t n = model->layers[0].wq.rows + model->layers[0].wk.rows + model->layers[0].wv.rows;
  std::vector<float> x(static_cast<size_t>(m * d)), y(static_cast<size_t>(m * n));
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);
  auto project = [&](int layer) {
    const LayerWeights& lw = model->layers[static_cast<size_t>(layer)];
    const WeightView* w[3] = {&lw.wq, &lw.wk, &lw.wv};
    op_project(x.data(), m, d, w, nullptr, 3, y.data(), n, pool);
  };
  std::vector<float> junk(size_t{16} << 20, 1.f);  // 64 MB
  volatile float sink = 0;
  // Every thread of the pool reads its part: each core's caches are flushed (were the
  // vCPUs' L3s separate, one thread's read would leave the other's weights in place), and
  // the workers stay awake, as in a forward (after a read by the caller alone they had gone
  // to sleep, and the timed call then paid a futex wake-up: tens of us in this VM).
  auto evict = [&] {
    pool.parallel_for(static_cast<int64_t>(junk.size() / 16), 1024, [&](int64_t b, int64_t e, int) {
      float acc = 0;
      for (int64_t i = b; i < e; ++i) acc += junk[static_cast<size_t>(i) * 16];
      sink = sink + acc;
    });
  };
  using Clock = std::chrono::steady_clock;
  // x rewritten by the pool before each call, each thread its share of the rows, as the
  // norm before a projection does in a forward.
  // The factor is volatile: `x *= 1.0f` is an identity the compiler may delete, stores and all.
  volatile float one = 1.0f;
  auto rewrite_x = [&] {
    pool.parallel_for(m, 1, [&](int64_t b, int64_t e, int) {
      const float f = one;
      for (int64_t i = b * d; i < e * d; ++i) x[static_cast<size_t>(i)] *= f;
    });
  };
  // A forward's activations stay in cache between its ops while its weights stream from
  // DRAM: after the read, x and y are touched again so that only the weights are cold.
  auto warm_activations_after_evict = [&] {
    evict();
    pool.parallel_for(m, 1, [&](int64_t b, int64_t e, int) {
      float acc = 0;
      for (int64_t i = b * d; i < e * d; ++i) acc += x[static_cast<size_t>(i)];
      for (int64_t i = b * n; i < e * n; ++i) y[static_cast<size_t>(i)] = 0.f;
      sink = sink + acc;
    });
  };
  // y read by the pool split by rows before each call, as the attention and the norms read
  // a projection's output: each thread then holds copies of lines the other writes next.
  auto read_y_by_rows = [&] {
    pool.parallel_for(m, 1, [&](int64_t b, int64_t e, int) {
      float acc = 0;
      for (int64_t i = b * n; i < e * n; i += 16) acc += y[static_cast<size_t>(i)];
      sink = sink + acc;
    });
  };
  // Only the weights cold: after the read, another layer's projection touches x and y as
  // this one will (each thread its own columns of y), leaving layer 0's weights in DRAM.
  auto warm_activations_by_project = [&] {
    evict();
    project(layers > 1 ? 1 : 0);
  };
  // Each mode: what runs before every timed call, and whether the calls cycle the layers.
  struct Mode {
    const char* name;
    std::function<void()> before;
    bool cycle_layers;
  };
  const Mode modes[] = {
      {"hot (layer 0 again)", nullptr, false},
      {"cycling the layers", nullptr, true},
      {"cold weights (64 MB read)", warm_activations_after_evict, false},
      {"hot, x rewritten by the pool", rewrite_x, false},
      {"hot, y read by rows first", read_y_by_rows, false},
      {"cold weights, x and y warm", warm_activations_by_project, false},
  };
  std::printf("%s: q|k|v %lld x %lld -> %lld, %d thread(s), %d layers\n", argv[1], static_cast<long long>(m),
              static_cast<long long>(d), static_cast<long long>(n), threads, layers);
  for (const Mode& mode : modes) {
    double best = 1e30;
    for (int round = 0; round < 10; ++round) {
      double us = 0;
      for (int i = 0; i < 64; ++i) {
        if (mode.before) mode.before();
        const Clock::time_point t0 = Clock::now();
        project(mode.cycle_layers ? i % layers : 0);
        us += std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      }
      best = std::min(best, us / 64);
    }
    const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(d) * static_cast<double>(n);
    std::printf("  %-28s %8.1f us  %7.1f GFLOP/s\n", mode.name, best, flops / best / 1e3);
  }
  return 0;
}
