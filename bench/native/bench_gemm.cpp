// bench_gemm: GFLOP/s of op_gemm (F32, BF16, F16, Q8_0 weights) beside OpenBLAS cblas_sgemm
// (F32 weights) on the same shapes, in the same run, with the same thread count, and beside
// a register-only FMA loop (the machine's FMA peak for the pool in the GEMM's vector width,
// AVX-512 where it is in use, measured in the run):
// "% peak" = GFLOP/s / that peak. "Q8/BF16" is the Q8_0 speed-up over BF16 in the same round.
//
// How to run:
//   apt-get install libopenblas0-pthread        # the yardstick (optional; dlopen'ed)
//   cmake -S . -B build/bench -DSDLLM_BUILD_BENCH=ON -DSDLLM_CUDA=OFF
//   cmake --build build/bench -j2 --target bench_gemm
//   ./build/bench/bench/native/bench_gemm [--threads N] [--quick] [--min-ms T]
// --threads defaults to SDLLM_THREADS or the hardware concurrency; --quick runs only
// m = 32 and 160 of the LLaDA shapes; --no-llada / --no-small skip a group; --mid adds the
// d_model 512/1024 shapes (m = 32, 160 and 1032, the rows of a batch of 8 streaming
// steps); --m 30,32,36 replaces every group's row counts; --tiny adds the d_model 128 shapes of bench:torch's ~1 M checkpoint. SDLLM_FORCE_SCALAR=1 measures the scalar path.
//
// Shapes: a LLaDA-8B forward pass for m = 32..160 rows, (k, n) = (4096, 4096) for the
// attention projections, (4096, 12288) for gate/up and (12288, 4096) for down; and a
// small model (d_model 256, mlp 768, vocab 100). Each time is the best of repeats
// lasting at least --min-ms in all, after one warm-up call.
#include <dlfcn.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "dtype.h"
#include "fma_peak.h"
#include "ops.h"
#include "ops/kernels.h"
#include "threadpool.h"

using namespace sdllm;

namespace {

// The CBLAS enum values are fixed by the standard: RowMajor 101, NoTrans 111, Trans 112.
using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*,
                         int);
struct Blas {
  SgemmFn sgemm = nullptr;
  void (*set_threads)(int) = nullptr;
  const char* (*corename)() = nullptr;
  std::string lib;
};

Blas load_blas() {
  Blas b;
  for (const char* name : {"libopenblas.so.0", "libopenblas.so", "libblas.so.3"}) {
    void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h) continue;
    b.sgemm = reinterpret_cast<SgemmFn>(dlsym(h, "cblas_sgemm"));
    if (!b.sgemm) continue;
    b.set_threads = reinterpret_cast<void (*)(int)>(dlsym(h, "openblas_set_num_threads"));
    b.corename = reinterpret_cast<const char* (*)()>(dlsym(h, "openblas_get_corename"));
    b.lib = name;
    return b;
  }
  return b;
}

// Times each candidate once per round, in turn, and keeps each one's best: on a busy
// machine the candidates then see the same background load, which a sequential
// "all of A, then all of B" would not give them.
// With one thread (--threads 1, everything runs on the calling thread) the clock is the
// thread's CPU time (--wall to use wall time): time spent descheduled by other processes
// on a shared machine is then left out.
bool g_cpu_clock = false;
double now_seconds() {
  if (g_cpu_clock) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<double> best_seconds(const std::vector<std::function<void()>>& fns, double min_ms, int min_rounds = 3) {
  for (auto& f : fns) f();  // warm-up: page faults, thread wake-up, packing buffers
  std::vector<double> best(fns.size(), 1e30);
  double total = 0;
  for (int round = 0; round < min_rounds || total * 1e3 < min_ms; ++round)
    for (size_t i = 0; i < fns.size(); ++i) {
      const double t0 = now_seconds();
      fns[i]();
      const double s = now_seconds() - t0;
      best[i] = std::min(best[i], s);
      total += s;
    }
  return best;
}

struct Shape {
  const char* what;
  int64_t k, n;
};

// The FMA loop (cpp/fma_peak.h) on every pool thread at once; returns the FLOPs done (0
// without AVX2).
double fma_peak_run(ThreadPool& pool, int64_t iters) { return fma_peak_flops(pool, iters); }

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  bool quick = false, llada = true, small = true, mid = false, tiny = false, wall = false, only_q8 = false;
  double min_ms = 300;
  std::vector<int64_t> rows;  // --m: the row counts of every group instead of its own
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--no-llada")) llada = false;
    else if (!std::strcmp(argv[i], "--no-small")) small = false;
    else if (!std::strcmp(argv[i], "--mid")) mid = true;
    else if (!std::strcmp(argv[i], "--tiny")) tiny = true;
    else if (!std::strcmp(argv[i], "--wall")) wall = true;
    else if (!std::strcmp(argv[i], "--only-q8")) only_q8 = true;
    else if (!std::strcmp(argv[i], "--min-ms") && i + 1 < argc) min_ms = std::atof(argv[++i]);
    else if (!std::strcmp(argv[i], "--m") && i + 1 < argc) {
      for (const char* p = argv[++i]; *p;) {
        char* end = nullptr;
        const long v = std::strtol(p, &end, 10);
        if (end == p || v <= 0) break;
        rows.push_back(v);
        p = *end == ',' ? end + 1 : end;
      }
    }
  }
  ThreadPool& pool = default_pool(threads);
  // The caller on the pool's CPU throughout, as in a forward (why: bench_attention.cpp).
  const ThreadPool::CallerScope caller(pool);
  Blas blas = load_blas();
  // Float weights as a loaded model holds them on an AVX-512 CPU (cpp/repack.cpp): BF16 in
  // 16-bit quads, F32 and F16 in float32 pairs; elsewhere as stored.
  const bool repack = use_avx512() && !std::getenv("SDLLM_NO_REPACK");
  std::printf("threads: %d, op_gemm path: %s, float weights %s\n", pool.size(), cpu_kernels_name(),
              repack ? "repacked as a loaded model holds them (cpp/repack.cpp)" : "as stored");
  if (blas.sgemm) {
    if (blas.set_threads) blas.set_threads(pool.size());
    std::printf("yardstick: %s cblas_sgemm%s%s, %d threads\n", blas.lib.c_str(), blas.corename ? ", core " : "",
                blas.corename ? blas.corename() : "", pool.size());
  } else {
    std::printf("yardstick unavailable: no libopenblas.so.0 / libopenblas.so / libblas.so.3 with cblas_sgemm.\n"
                "  install it with: apt-get install libopenblas0-pthread\n");
  }

  std::vector<std::pair<std::vector<int64_t>, std::vector<Shape>>> groups;
  if (llada)
    groups.push_back({quick ? std::vector<int64_t>{32, 160} : std::vector<int64_t>{32, 64, 96, 128, 160},
                      {{"LLaDA qkvo", 4096, 4096}, {"LLaDA gate/up", 4096, 12288}, {"LLaDA down", 12288, 4096}}});
  if (mid)  // 1032 rows: a batch of 8 streaming steps of 129 rows (bench/batch.ts)
    groups.push_back({{32, 160, 1032},
                      {{"d1024 qkvo", 1024, 1024}, {"d1024 mlp-in", 1024, 2816}, {"d1024 mlp-out", 2816, 1024},
                       {"d512 qkvo", 512, 512}, {"d512 q|k|v", 512, 1536}, {"d512 mlp-in", 512, 1408}, {"d512 mlp-out", 1408, 512}}});
  if (tiny)  // bench:torch's ~1 M checkpoint (d_model 128, mlp 384): a 128-row vanilla step
    groups.push_back({{32, 128}, {{"d128 qkvo", 128, 128}, {"d128 mlp-in", 128, 384}, {"d128 mlp-out", 384, 128}}});
  if (small)
    groups.push_back({{32, 160}, {{"small qkvo", 256, 256}, {"small mlp-in", 256, 768}, {"small mlp-out", 768, 256},
                                  {"small head", 256, 100}}});
  if (!rows.empty())
    for (auto& g : groups) g.first = rows;
  g_cpu_clock = pool.size() == 1 && !wall;
  std::printf("clock: %s\n", g_cpu_clock ? "thread CPU time (one thread; --wall for wall time)" : "wall time");
  // The FMA loop's size: about as long as a mid-size GEMM, timed in the same rounds.
  const int64_t peak_iters = 400000;
  const bool have_peak = fma_peak_run(pool, 1000) > 0;
  if (have_peak)
    std::printf("peak: a register-only %s FMA loop on all %d threads, timed in the same rounds as each row\n",
                use_avx512() ? "AVX-512" : "AVX2", pool.size());
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::printf("\n%-14s %4s %6s %6s | %-5s %9s %9s %6s %10s | %10s %7s %8s\n", "shape", "m", "k", "n", "dtype",
              "ms", "GFLOP/s", "% peak", "weight MB", "BLAS GF/s", "ours/BLAS", "Q8/BF16");
  for (auto& g : groups)
    for (const Shape& s : g.second) {
      std::vector<float> wf(static_cast<size_t>(s.n * s.k));
      for (float& v : wf) v = nd(rng) * 0.02f;
      std::vector<uint16_t> wb(wf.size()), wh(wf.size());
      for (size_t i = 0; i < wf.size(); ++i) {
        wb[i] = f32_to_bf16(wf[i]);
        wh[i] = wb[i] ? static_cast<uint16_t>(0x3c00) : 0;  // any finite f16: the values do not matter here
      }
      std::vector<int8_t> wq(wf.size());
      std::vector<float> wqs(static_cast<size_t>(s.n * q8_groups(s.k)));
      for (int64_t r = 0; r < s.n; ++r)
        q8_quantize_row(wf.data() + r * s.k, s.k, wq.data() + r * s.k, wqs.data() + r * q8_groups(s.k));
      // The weight views of every dtype, repacked once per shape (not per row count).
      constexpr int kTypesN = 4;
      const DType types[kTypesN] = {DType::F32, DType::BF16, DType::F16, DType::Q8_0};
      const void* datas[kTypesN] = {wf.data(), wb.data(), wh.data(), wq.data()};
      std::vector<float> pf, ph;
      std::vector<uint16_t> pb;
      WeightView w[kTypesN];
      for (int t = 0; t < kTypesN; ++t) {
        w[t].data = datas[t];
        w[t].dtype = types[t];
        w[t].rows = s.n;
        w[t].cols = s.k;
        w[t].packed_rows = s.n;
        if (types[t] == DType::Q8_0) {
          w[t].scales = wqs.data();
        } else if (repack && types[t] == DType::BF16) {
          pb.resize(static_cast<size_t>(kernels::avx512_packed_bf16_halves(s.n, s.k)));
          kernels::avx512_pack_weight_bf16(w[t], 0, (s.n + 3) / 4, pb.data());
          w[t].packed_bf16 = pb.data();
        } else if (repack) {
          std::vector<float>& out = types[t] == DType::F32 ? pf : ph;
          out.resize(static_cast<size_t>(kernels::avx512_packed_floats(s.n, s.k)));
          kernels::avx512_pack_weight(w[t], 0, (s.n + 1) / 2, out.data());
          w[t].packed = out.data();
        }
      }
      const int64_t max_m = *std::max_element(g.first.begin(), g.first.end());
      std::vector<float> x(static_cast<size_t>(max_m * s.k)), y(static_cast<size_t>(max_m * s.n));
      for (float& v : x) v = nd(rng);
      for (int64_t m : g.first) {
        const double flops = 2.0 * m * s.k * s.n;
        std::vector<std::function<void()>> fns;
        for (int t = 0; t < kTypesN; ++t)
          fns.push_back([&, t] { op_gemm(x.data(), m, s.k, w[t], nullptr, y.data(), pool); });
        if (only_q8) {  // BF16 and Q8_0 only (kernel work)
          fns[0] = [] {};
          fns[2] = [] {};
        }
        double peak_flops = 0;
        fns.push_back([&] { peak_flops = fma_peak_run(pool, peak_iters); });
        if (blas.sgemm && !only_q8)
          fns.push_back([&] {
            blas.sgemm(101, 111, 112, static_cast<int>(m), static_cast<int>(s.n), static_cast<int>(s.k), 1.f,
                       x.data(), static_cast<int>(s.k), wf.data(), static_cast<int>(s.k), 0.f, y.data(),
                       static_cast<int>(s.n));
          });
        const std::vector<double> sec = best_seconds(fns, min_ms);
        const double peak = have_peak ? peak_flops / sec[kTypesN] * 1e-9 : 0;
        const bool have_blas = blas.sgemm && !only_q8;
        const double blas_gf = have_blas ? flops / sec[kTypesN + 1] * 1e-9 : 0;
        for (int t = 0; t < kTypesN; ++t) {
          if (only_q8 && (t == 0 || t == 2)) continue;
          const double gf = flops / sec[t] * 1e-9;
          double mb = static_cast<double>(s.n * s.k * dtype_size(types[t])) / 1e6;
          if (types[t] == DType::Q8_0) mb += static_cast<double>(s.n * q8_groups(s.k) * 4) / 1e6;
          char ratio[16] = "-", bgf[16] = "-", pk[16] = "-", q8[16] = "";
          if (have_blas) {
            std::snprintf(ratio, sizeof ratio, "%.2f", gf / blas_gf);
            std::snprintf(bgf, sizeof bgf, "%.1f", blas_gf);
          }
          if (peak > 0) std::snprintf(pk, sizeof pk, "%.0f%%", 100 * gf / peak);
          if (types[t] == DType::Q8_0) std::snprintf(q8, sizeof q8, "%.2fx", sec[1] / sec[t]);
          std::printf("%-14s %4lld %6lld %6lld | %-5s %9.3f %9.1f %6s %10.1f | %10s %7s %8s\n", s.what, (long long)m,
                      (long long)s.k, (long long)s.n, dtype_name(types[t]), sec[t] * 1e3, gf, pk, mb, bgf, ratio, q8);
        }
        if (have_peak)
          std::printf("%-14s %4s %6s %6s | %-5s %9.3f %9.1f %6s %10s |\n", "", "", "", "", "peak", sec[kTypesN] * 1e3,
                      peak, "100%", "");
      }
    }
  std::printf(
      "\nnapkin math: FLOPs = 2*m*k*n (1.07 GFLOP at m=32, 4096x4096). Every call streams the whole weight\n"
      "(the 'weight MB' column), so the intensity is 2*m / sizeof(weight) FLOP per weight byte: at m=32,\n"
      "16 FLOP/B for F32, 32 FLOP/B for BF16/F16 and ~57 FLOP/B for Q8_0 (1.125 B per weight with its\n"
      "scales). Peak: 32 FLOP/cycle/core with AVX2 FMA, 64 with AVX-512 on full-width FMA units\n"
      "(Zen 5, Intel server cores; 32 on double-pumped ones such as Zen 4). Q8_0 does int8 products\n"
      "(maddubs or VNNI dpbusd) and counts the same 2*m*k*n FLOPs.\n");
  return 0;
}
