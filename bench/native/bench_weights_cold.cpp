// bench_weights_cold: what a projection pays when its weights come from DRAM rather than
// L3. A loaded checkpoint's q | k | v projection (op_project, the weights repacked at load
// as a forward sees them) on m rows, timed three ways, best of 10 rounds of 64 calls:
//   hot:     layer 0 again and again (weights in L2/L3);
//   cycling: every layer in turn (weights in L3 while the layers' q | k | v fit);
//   cold:    layer 0 after a 64 MB read between calls (weights from DRAM; the read is not
//            timed).
// A forward of a model larger than L3 streams every weight from DRAM once, so "cold" is
// the projection as a forward runs it.
//
// How to run:
//   cmake -S . -B build/bench -DSDLLM_BUILD_BENCH=ON -DSDLLM_CUDA=OFF
//   cmake --build build/bench -j2 --target bench_weights_cold
//   ./build/bench/bench/native/bench_weights_cold DIR [rows 32] [threads 2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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
  auto evict = [&] {
    float acc = 0;
    for (size_t i = 0; i < junk.size(); i += 16) acc += junk[i];
    sink = acc;
  };
  using Clock = std::chrono::steady_clock;
  const char* names[3] = {"hot (layer 0 again)", "cycling the layers", "cold (after a 64 MB read)"};
  std::printf("%s: q|k|v %lld x %lld -> %lld, %d thread(s), %d layers\n", argv[1], static_cast<long long>(m),
              static_cast<long long>(d), static_cast<long long>(n), threads, layers);
  for (int mode = 0; mode < 3; ++mode) {
    double best = 1e30;
    for (int round = 0; round < 10; ++round) {
      double us = 0;
      for (int i = 0; i < 64; ++i) {
        if (mode == 2) evict();
        const Clock::time_point t0 = Clock::now();
        project(mode == 1 ? i % layers : 0);
        us += std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      }
      best = std::min(best, us / 64);
    }
    const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(d) * static_cast<double>(n);
    std::printf("  %-28s %8.1f us  %7.1f GFLOP/s\n", names[mode], best, flops / best / 1e3);
  }
  return 0;
}
