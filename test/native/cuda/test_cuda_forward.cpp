// test_cuda_forward: the CUDA backend end to end, on the CPU. cuda/backend.cu and every
// kernel of cuda/*.cu run under the emulator of cuda_emu.h, cuBLAS is the CPU stand-in
// of cublas_emu.cpp, and the backend is driven through the same path as the addon
// (cpp/cuda_backend.cpp over the C ABI of cuda/backend.h). Small random models (F32,
// BF16, F16; with and without QKV bias; GQA 4:2, 7:1, 2:1; head_dim 64, 128 and 32;
// tied and untied LM heads; embedding tables longer than the vocabulary) run the same
// sequence of ForwardRequests through the CPU Session and the CUDA session, covering
// every row of the request table in docs/ARCHITECTURE.md, and each result is compared:
// logits by normalised MSE, ids exactly, confidences to 1e-5 (relative to max(1, |c|)).
// Prints one line per forward and "cuda-forward: N passed, M failed"; exits 1 on failure.
// Usage: test_cuda_forward [--16bit-too] [model-name-substring]
//   --16bit-too: also run every 16-bit model in the SDLLM_CUDA_GEMM_WEIGHT_DTYPE mode.
// The same file, built without SDLLM_CUDA_EMULATION, is gpucheck_cuda_forward (target of
// test/native/cuda/CMakeLists.txt when nvcc builds sdllm_cuda; run by scripts/gpu-check.sh):
// the nvcc-built libsdllm_cuda.so (dlopened as the addon does; SDLLM_CUDA_LIBRARY overrides
// the path) on a real GPU with the real cuBLAS. The emulator-only checks (GEMM-call counts
// of cublas_emu, "cublas-emu" in describe) are left out there. Both builds print the
// 16-bit GEMM mode's agreement with the CPU and a pass/fail line per precision.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../../cpp/backend.h"
#ifdef SDLLM_CUDA_EMULATION
#include "cublas_emu.h"
#else
#include <dlfcn.h>

#include <cstdlib>
#endif
#include "dtype.h"
#include "model.h"
#include "session.h"
#include "test_data.h"
#include "threadpool.h"
#include "../../../cuda/backend.h"

using namespace sdllm;

namespace {

int g_passed = 0, g_failed = 0;
// Tallies of the cases run in the 16-bit GEMM mode (counted in g_passed/g_failed too), and
// how often its ids agree with the CPU Session's.
bool g_half_case = false;
int g_half_passed = 0, g_half_failed = 0;
long long g_half_ids_equal = 0, g_half_ids = 0;
double g_half_max_nmse = 0;

// sdllm_cuda_api of the backend under test: linked in under the emulator; in the real
// build the library's, from the nvcc-built libsdllm_cuda.so. Call api_fn()(version), never
// sdllm_cuda_api directly: the real build (gpucheck_cuda_forward) does not link it.
SdllmCudaApiFn api_fn() {
#ifdef SDLLM_CUDA_EMULATION
  return sdllm_cuda_api;
#else
  static SdllmCudaApiFn fn = [] {
    const char* env = std::getenv("SDLLM_CUDA_LIBRARY");
    const std::string path = env && *env ? env : SDLLM_CUDA_LIBRARY_PATH;
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    SdllmCudaApiFn f = lib ? reinterpret_cast<SdllmCudaApiFn>(dlsym(lib, "sdllm_cuda_api")) : nullptr;
    if (!f) {
      const char* why = dlerror();
      std::fprintf(stderr, "test_cuda_forward: cannot use %s: %s\n", path.c_str(), why ? why : "no sdllm_cuda_api");
      std::exit(1);
    }
    return f;
  }();
  return fn;
#endif
}

using cuda_test_data::Rng;

struct Spec {
  std::string name;
  DType dtype;
  bool bias;
  int64_t n_heads, n_kv, head_dim, layers, mlp, vocab, emb_rows;
  bool tied;
  int gemm_mode = SDLLM_CUDA_GEMM_EXACT;
  int64_t widen_chunk = 0;
  bool long_cache = false;  // also a 600-slot prefix (split-K attention)
};

// The weights live in `store`; the Model's views point into it.
struct TestModel {
  std::vector<std::vector<uint8_t>> store;
  std::shared_ptr<Model> model;
};

WeightView make(TestModel& t, Rng& r, DType dt, int64_t rows, int64_t cols, float lo, float hi) {
  t.store.emplace_back(static_cast<size_t>(rows * cols * dtype_size(dt)));
  uint8_t* p = t.store.back().data();
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float v = r.uniform(lo, hi);
    if (dt == DType::F32) {
      std::memcpy(p + 4 * i, &v, 4);
    } else {
      const uint16_t h = dt == DType::BF16 ? f32_to_bf16(v) : cuda_test_data::f32_to_f16(v);
      std::memcpy(p + 2 * i, &h, 2);
    }
  }
  return WeightView{p, dt, rows, cols};
}

TestModel build(const Spec& s, uint64_t seed) {
  TestModel t;
  Rng r(seed);
  t.store.reserve(64 + 16 * static_cast<size_t>(s.layers));  // views must not move
  auto m = std::make_shared<Model>();
  ModelConfig& c = m->config;
  c.family = s.bias ? ModelFamily::Dream : ModelFamily::LLaDA;
  c.model_type = "test";
  c.n_heads = s.n_heads;
  c.n_kv_heads = s.n_kv;
  c.head_dim = s.head_dim;
  c.d_model = s.n_heads * s.head_dim;
  c.n_layers = s.layers;
  c.mlp_hidden = s.mlp;
  c.vocab_size = s.vocab;
  c.embedding_size = s.emb_rows;
  c.rope_theta = 10000.f;
  c.rms_norm_eps = 1e-5f;
  c.max_sequence_length = 4096;
  c.weight_tying = s.tied;
  c.qkv_bias = s.bias;
  c.mask_token_id = s.vocab - 1;
  m->dtype = s.dtype;
  const int64_t d = c.d_model, kvd = s.n_kv * s.head_dim;
  const float wd = 1.7f / std::sqrt(static_cast<float>(d)), wm = 1.7f / std::sqrt(static_cast<float>(s.mlp));
  m->embedding = make(t, r, s.dtype, s.emb_rows, d, -1.f, 1.f);
  for (int64_t l = 0; l < s.layers; ++l) {
    LayerWeights w;
    w.attn_norm = make(t, r, s.dtype, 1, d, 0.8f, 1.2f);
    w.ff_norm = make(t, r, s.dtype, 1, d, 0.8f, 1.2f);
    w.wq = make(t, r, s.dtype, d, d, -wd, wd);
    w.wk = make(t, r, s.dtype, kvd, d, -wd, wd);
    w.wv = make(t, r, s.dtype, kvd, d, -wd, wd);
    w.wo = make(t, r, s.dtype, d, d, -wd, wd);
    if (s.bias) {
      w.bq = make(t, r, s.dtype, 1, d, -0.3f, 0.3f);
      w.bk = make(t, r, s.dtype, 1, kvd, -0.3f, 0.3f);
      w.bv = make(t, r, s.dtype, 1, kvd, -0.3f, 0.3f);
    }
    w.w_gate = make(t, r, s.dtype, s.mlp, d, -wd, wd);
    w.w_up = make(t, r, s.dtype, s.mlp, d, -wd, wd);
    w.w_down = make(t, r, s.dtype, d, s.mlp, -wm, wm);
    m->layers.push_back(w);
  }
  m->final_norm = make(t, r, s.dtype, 1, d, 0.8f, 1.2f);
  m->lm_head = s.tied ? m->embedding : make(t, r, s.dtype, s.emb_rows, d, -3.f * wd, 3.f * wd);
  if (s.tied) {  // a tied head of +-1 entries gives logits of ~sqrt(d): scale the table down
    m->embedding = make(t, r, s.dtype, s.emb_rows, d, -0.25f, 0.25f);
    m->lm_head = m->embedding;
  }
  t.model = m;
  return t;
}

struct Compare {
  double nmse = 0, max_conf = 0;
  int ids_equal = 0, ids = 0;
};

Compare compare(const ForwardResult& cpu, const ForwardResult& gpu) {
  Compare c;
  c.ids = static_cast<int>(cpu.token_ids.size());
  for (size_t i = 0; i < cpu.token_ids.size() && i < gpu.token_ids.size(); ++i) {
    c.ids_equal += cpu.token_ids[i] == gpu.token_ids[i];
    const double a = cpu.confidences[i], b = gpu.confidences[i];
    const double diff = std::isfinite(b) ? std::fabs(a - b) / std::max(1.0, std::fabs(a)) : INFINITY;
    c.max_conf = std::max(c.max_conf, diff);
  }
  if (gpu.token_ids.size() != cpu.token_ids.size()) c.ids_equal = -1;
  if (!cpu.logits.empty()) {
    double num = 0, den = 0;
    if (gpu.logits.size() != cpu.logits.size()) {
      num = INFINITY;
    } else {
      for (size_t i = 0; i < cpu.logits.size(); ++i) {
        const double dd = static_cast<double>(gpu.logits[i]) - cpu.logits[i];
        num += std::isfinite(dd) ? dd * dd : INFINITY;
        den += static_cast<double>(cpu.logits[i]) * cpu.logits[i];
      }
    }
    c.nmse = num / std::max(den, 1e-30);
  }
  return c;
}

void report(bool ok, const std::string& what, const std::string& detail) {
  std::printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what.c_str(), detail.empty() ? "" : ": ", detail.c_str());
  (ok ? g_passed : g_failed)++;
  if (g_half_case) (ok ? g_half_passed : g_half_failed)++;
}

void tally_half(const Compare& c) {
  if (!g_half_case) return;
  g_half_ids_equal += std::max(c.ids_equal, 0);
  g_half_ids += c.ids;
  g_half_max_nmse = std::max(g_half_max_nmse, c.nmse);
}

std::vector<int32_t> range(int32_t a, int32_t b) {
  std::vector<int32_t> v;
  for (int32_t i = a; i < b; ++i) v.push_back(i);
  return v;
}

// One model's sequence of requests, run on both backends side by side.
struct Runner {
  const Spec& spec;
  std::shared_ptr<Model> model;
  Session cpu;
  std::unique_ptr<SessionBackend> gpu;
  ThreadPool& pool;
  bool exact;

  void step(const std::string& what, ForwardRequest req) {
    req.return_logits = true;
    const std::string name = spec.name + " " + what;
    ForwardResult a, b;
    try {
      a = cpu.forward(req, pool);
      b = gpu->forward(req, pool);
    } catch (const std::exception& e) {
      report(false, name, std::string("threw: ") + e.what());
      return;
    }
    const Compare c = compare(a, b);
    tally_half(c);
    char buf[200];
    std::snprintf(buf, sizeof(buf), "rows %zu, predict %zu, logits nmse %.2e, ids %d/%d, conf diff %.1e",
                  req.tokens.size(), req.predict_rows.size(), c.nmse, c.ids_equal, c.ids, c.max_conf);
    bool ok;
    if (exact)
      ok = c.nmse <= 1e-9 && c.ids_equal == c.ids && c.max_conf <= 1e-5;
    else  // WEIGHT_DTYPE: activations rounded to 16 bits; only the logits are compared
      ok = c.nmse <= 1e-3 && c.ids_equal >= 0;
    report(ok, name, buf);
  }
};

ForwardRequest request(const std::vector<int32_t>& x, const std::vector<int32_t>& rows_idx, int64_t cache_attend,
                       int64_t write_start, int64_t write_rows, bool attend_self, std::vector<int32_t> predict,
                       ConfidenceKind kind) {
  ForwardRequest r;
  for (int32_t i : rows_idx) {
    r.tokens.push_back(x[static_cast<size_t>(i)]);
    r.positions.push_back(i);
  }
  r.cache_attend = cache_attend;
  r.cache_write_start = write_start;
  r.cache_write_rows = write_rows;
  r.attend_self = attend_self;
  r.predict_rows = std::move(predict);
  r.confidence = kind;
  return r;
}

bool same_bits(const ForwardResult& a, const ForwardResult& b) {
  return a.token_ids == b.token_ids && a.confidences.size() == b.confidences.size() &&
         std::memcmp(a.confidences.data(), b.confidences.data(), sizeof(float) * a.confidences.size()) == 0 &&
         a.logits.size() == b.logits.size() &&
         std::memcmp(a.logits.data(), b.logits.data(), sizeof(float) * a.logits.size()) == 0;
}

// Batched forwards on the CUDA backend: three sequences with the request shapes of
// different strategies, staggered (step 0 of one beside step 1 of another). Each batched
// output must equal the same request run alone on the CUDA backend bit for bit, and the
// CPU Session's within the tolerances of the sequential comparison.
void run_batched(const Spec& s, const TestModel& tm, const std::shared_ptr<CudaModel>& cm, std::vector<int32_t> x,
                 int32_t P, int32_t B, ThreadPool& pool, bool exact) {
  const int32_t N = static_cast<int32_t>(x.size());
  const int32_t e = P + B;
  std::vector<int32_t> kept = {e, e + 1, N - 1};
  std::vector<int32_t> step0_rows = range(0, e), step_rows = range(P, e);
  step0_rows.insert(step0_rows.end(), kept.begin(), kept.end());
  step_rows.insert(step_rows.end(), kept.begin(), kept.end());
  // seq 0: prefix-cache; seq 1: dual-cache; seq 2: streaming (rows of the first block).
  std::vector<std::vector<ForwardRequest>> plan(3);
  plan[0].push_back(request(x, range(0, N), 0, 0, P, true, range(P, e), ConfidenceKind::Prob));
  plan[0].push_back(request(x, range(P, N), P, -1, 0, true, {0, 2, 3, 5, 7}, ConfidenceKind::Margin));
  plan[1].push_back(request(x, range(0, N), 0, 0, N, true, range(0, N), ConfidenceKind::Entropy));
  plan[1].push_back(request(x, range(P, e), N, P, B, false, {1, 3, 4}, ConfidenceKind::Prob));
  plan[2].push_back(request(x, step0_rows, 0, 0, P, true, range(P, e), ConfidenceKind::Prob));
  plan[2].push_back(request(x, step_rows, P, -1, 0, true, {0, 1, 2, static_cast<int32_t>(step_rows.size() - 1)},
                            ConfidenceKind::Random));
  plan[2][1].temperature = 0.8f;
  plan[2][1].seed = 77;
  for (auto& p : plan)
    for (auto& r : p) r.return_logits = true;
  const int64_t capacity = N;
  std::vector<std::vector<ForwardResult>> alone_gpu(3), alone_cpu(3), batched(3);
  for (int i = 0; i < 3; ++i) {
    auto g = cuda_session_create(cm, capacity);
    Session c(tm.model, capacity);
    for (const ForwardRequest& r : plan[static_cast<size_t>(i)]) {
      alone_gpu[static_cast<size_t>(i)].push_back(g->forward(r, pool));
      alone_cpu[static_cast<size_t>(i)].push_back(c.forward(r, pool));
    }
  }
  std::vector<std::unique_ptr<SessionBackend>> gs;
  for (int i = 0; i < 3; ++i) gs.push_back(cuda_session_create(cm, capacity));
  const std::vector<std::vector<int>> rounds = {{0}, {0, 1, 2}, {1, 2}};
  std::vector<size_t> next(3, 0);
  try {
    for (const auto& members : rounds) {
      std::vector<BackendRequest> batch;
      for (int i : members) batch.push_back(BackendRequest{gs[static_cast<size_t>(i)].get(), &plan[static_cast<size_t>(i)][next[static_cast<size_t>(i)]]});
      std::vector<ForwardResult> out = gs[static_cast<size_t>(members[0])]->forward_batch(batch, pool);
      for (size_t j = 0; j < members.size(); ++j) {
        batched[static_cast<size_t>(members[j])].push_back(std::move(out[j]));
        next[static_cast<size_t>(members[j])]++;
      }
    }
  } catch (const std::exception& ex) {
    report(false, s.name + " batched forwards", std::string("threw: ") + ex.what());
    return;
  }
  for (size_t i = 0; i < 3; ++i)
    for (size_t k = 0; k < plan[i].size(); ++k) {
      const std::string name = s.name + " batched seq " + std::to_string(i) + " step " + std::to_string(k);
      report(same_bits(alone_gpu[i][k], batched[i][k]), name + ": equals the CUDA backend alone, bit for bit", "");
      const Compare c = compare(alone_cpu[i][k], batched[i][k]);
      tally_half(c);
      char buf[160];
      std::snprintf(buf, sizeof(buf), "logits nmse %.2e, ids %d/%d, conf diff %.1e", c.nmse, c.ids_equal, c.ids,
                    c.max_conf);
      const bool ok = exact ? c.nmse <= 1e-9 && c.ids_equal == c.ids && c.max_conf <= 1e-5 : c.nmse <= 1e-3;
      report(ok, name + ": matches the CPU Session", buf);
    }
}

void run_model(const Spec& s, uint64_t seed, ThreadPool& pool) {
  const auto t0 = std::chrono::steady_clock::now();
  TestModel tm = build(s, seed);
  CudaOptions opt;
  opt.gemm_mode = s.gemm_mode;
  opt.widen_chunk_elems = s.widen_chunk;
#ifdef SDLLM_CUDA_EMULATION
  const sdllm_cublas_emu::Stats before = sdllm_cublas_emu::stats();
#endif
  std::shared_ptr<CudaModel> cm;
  try {
    cm = cuda_model_create_with_api(tm.model, opt, api_fn()(SDLLM_CUDA_ABI_VERSION));
  } catch (const std::exception& e) {
    report(false, s.name + " model upload", e.what());
    return;
  }
  const int64_t capacity = s.long_cache ? 640 : 40;
  Runner run{s, tm.model, Session(tm.model, capacity), cuda_session_create(cm, capacity), pool,
             s.gemm_mode == SDLLM_CUDA_GEMM_EXACT || s.dtype == DType::F32};
  g_half_case = !run.exact;

  // Prompt of P tokens, two blocks of B masks: N = P + 2B. One token beyond the vocabulary
  // (embedding rows >= vocab exist in real checkpoints) in the prompt.
  Rng r(seed + 99);
  const int32_t P = 10, B = 8, N = P + 2 * B, mask = static_cast<int32_t>(s.vocab - 1);
  std::vector<int32_t> x;
  for (int32_t i = 0; i < P; ++i) x.push_back(r.below(s.vocab - 1));
  if (s.emb_rows > s.vocab) x[3] = static_cast<int32_t>(s.emb_rows - 1);
  for (int32_t i = P; i < N; ++i) x.push_back(mask);
  const std::vector<int32_t> block0 = range(P, P + B);
  auto masked_rows = [&](int32_t offset, int32_t lo, int32_t hi) {  // rows (relative to offset) still masked
    std::vector<int32_t> v;
    for (int32_t i = lo; i < hi; ++i)
      if (x[static_cast<size_t>(i)] == mask) v.push_back(i - offset);
    return v;
  };

  // vanilla: everything, no cache.
  run.step("vanilla full pass (prob)", request(x, range(0, N), 0, -1, 0, true, masked_rows(0, P, P + B),
                                                ConfidenceKind::Prob));
  // prefix-cache: step 0 writes the prompt, step 1 feeds x[P:N) over the cached prefix.
  run.step("prefix-cache step 0 (write [0,P))", request(x, range(0, N), 0, 0, P, true, masked_rows(0, P, P + B),
                                                          ConfidenceKind::Margin));
  x[P + 2] = r.below(s.vocab - 1);
  x[P + 5] = r.below(s.vocab - 1);
  run.step("prefix-cache step 1 (cached prefix, margin)",
           request(x, range(P, N), P, -1, 0, true, masked_rows(P, P, P + B), ConfidenceKind::Margin));
  // dual-cache: step 0 writes every row; later steps overwrite the block's slots and
  // attend to the whole cache only (attend_self = false).
  run.step("dual-cache step 0 (write [0,N))", request(x, range(0, N), 0, 0, N, true, masked_rows(0, P, P + B),
                                                        ConfidenceKind::Entropy));
  x[P + 1] = r.below(s.vocab - 1);
  run.step("dual-cache step 1 (overwrite [P,P+B), attend_self=false, entropy)",
           request(x, block0, N, P, B, false, masked_rows(P, P, P + B), ConfidenceKind::Entropy));
  x[P + 4] = r.below(s.vocab - 1);
  run.step("dual-cache step 2 (overwrite again)",
           request(x, block0, N, P, B, false, masked_rows(P, P, P + B), ConfidenceKind::Prob));
  // streaming, second block: x[0:e) plus the trailing position N-1 (positions jump), the
  // prefix [0, s) written; then x[s:e) + trailing over the cached prefix.
  for (int32_t i = P; i < P + B; ++i) x[static_cast<size_t>(i)] = r.below(s.vocab - 1);
  const int32_t s0 = P + B, e0 = N - 2;
  {
    std::vector<int32_t> rows = range(0, e0);
    rows.push_back(N - 1);
    ForwardRequest q = request(x, rows, 0, 0, s0, true, masked_rows(0, s0, e0), ConfidenceKind::Prob);
    run.step("streaming step 0 (trailing position N-1, write [0,s))", q);
    rows = range(s0, e0);
    rows.push_back(N - 1);
    x[s0 + 1] = r.below(s.vocab - 1);
    ForwardRequest q1 = request(x, rows, s0, -1, 0, true, masked_rows(s0, s0, e0), ConfidenceKind::Margin);
    q1.predict_rows.push_back(static_cast<int32_t>(rows.size() - 1));  // the trailing row too
    run.step("streaming step 1 (cached prefix + trailing position)", q1);
    // Sampling: temperature > 0 (Gumbel-max with the counter RNG), every kind.
    const ConfidenceKind kinds[] = {ConfidenceKind::Prob, ConfidenceKind::Margin, ConfidenceKind::Entropy,
                                    ConfidenceKind::Random};
    const char* names[] = {"prob", "margin", "entropy", "random"};
    for (int k = 0; k < 4; ++k) {
      ForwardRequest qt = q1;
      qt.confidence = kinds[k];
      qt.temperature = 0.9f;
      qt.seed = 1234 + static_cast<uint64_t>(k);
      qt.noise_counter = 7;
      run.step(std::string("streaming step, temperature 0.9, ") + names[k], qt);
    }
    ForwardRequest qc = q1;
    qc.temperature = 0.7f;
    qc.confidence_temperature = 0.7f;
    qc.seed = 99;
    qc.noise_counter = 3;
    run.step("streaming step, temperature 0.7 and confidence temperature 0.7", qc);
    qc.temperature = 0.f;
    qc.confidence = ConfidenceKind::Entropy;
    run.step("streaming step, greedy, confidence temperature 0.7, entropy", qc);
  }
  // Every row predicted (no gather on the last layer), no cache.
  run.step("all rows predicted", request(x, range(0, N), 0, -1, 0, true, range(0, N), ConfidenceKind::Prob));
  if (s.long_cache) {
    // A 600-slot prefix, then 4 query rows over it: few blocks and many keys, so the
    // attention splits the keys (flash-decoding path) with the emulator's 8 SMs.
    std::vector<int32_t> lx;
    for (int32_t i = 0; i < 604; ++i) lx.push_back(r.below(s.vocab - 1));
    run.step("long prefix write (600 slots)", request(lx, range(0, 600), 0, 0, 600, true, {599}, ConfidenceKind::Prob));
    run.step("4 rows over a 600-slot cache (split keys)",
             request(lx, range(600, 604), 600, -1, 0, true, {0, 1, 2, 3}, ConfidenceKind::Prob));
  }
  run_batched(s, tm, cm, x, P, B, pool, run.exact);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
#ifndef SDLLM_CUDA_EMULATION
  std::printf("     %s: %.1f s\n", s.name.c_str(), secs);
#else
  const sdllm_cublas_emu::Stats after = sdllm_cublas_emu::stats();
  std::printf("     %s: %lld F32 / %lld BF16 / %lld F16 GEMM calls, %.1f s\n", s.name.c_str(),
              static_cast<long long>(after.gemm_f32 - before.gemm_f32),
              static_cast<long long>(after.gemm_bf16 - before.gemm_bf16),
              static_cast<long long>(after.gemm_f16 - before.gemm_f16), secs);
  if (s.gemm_mode == SDLLM_CUDA_GEMM_WEIGHT_DTYPE && s.dtype != DType::F32) {
    const bool used = after.gemm_bf16 + after.gemm_f16 > before.gemm_bf16 + before.gemm_f16;
    report(used, s.name + " ran 16-bit GEMMs", used ? "" : "no 16-bit GemmEx call was made");
  }
#endif
  g_half_case = false;
}

// The failure paths an addon user can hit, and the ABI checks.
// The model executor: a session's creation sizes the scratch for its largest request, so
// forwards within it allocate nothing (scratch bytes unchanged); launches are counted.
void run_executor(ThreadPool& pool) {
  Spec s{"executor", DType::BF16, false, 4, 2, 64, 2, 128, 61, 64, false};
  TestModel tm = build(s, 21);
  CudaOptions opt;
  opt.gemm_mode = SDLLM_CUDA_GEMM_WEIGHT_DTYPE;
  auto cm = cuda_model_create_with_api(tm.model, opt, api_fn()(SDLLM_CUDA_ABI_VERSION));
  auto gpu = cuda_session_create(cm, 40);
  const CudaModelStats before = cuda_model_stats(*cm);
  std::vector<int32_t> x;
  for (int32_t i = 0; i < 40; ++i) x.push_back(i % 50);
  gpu->forward(request(x, range(0, 40), 0, 0, 32, true, range(0, 40), ConfidenceKind::Prob), pool);
  gpu->forward(request(x, range(32, 40), 32, -1, 0, true, {0, 3, 7}, ConfidenceKind::Margin), pool);
  const CudaModelStats after = cuda_model_stats(*cm);
  char buf[200];
  std::snprintf(buf, sizeof(buf), "scratch %.2f MB before and after, %lld forwards, last one %lld launches (%lld GEMMs)",
                static_cast<double>(after.scratch_bytes) / 1e6, static_cast<long long>(after.forwards),
                static_cast<long long>(after.last_forward_launches), static_cast<long long>(after.last_forward_gemms));
  report(before.scratch_bytes > 0 && after.scratch_bytes == before.scratch_bytes && after.forwards == 2 &&
             after.last_forward_launches > 0 && after.last_forward_gemms > 0,
         "executor: forwards within the session's capacity allocate nothing", buf);
  // Fused projections: per layer one q|k|v GEMM, wo, one gate|up GEMM, down; plus the head.
  report(after.last_forward_gemms == 4 * s.layers + 1, "executor: q/k/v and gate/up run as fused GEMMs",
         std::to_string(after.last_forward_gemms) + " GEMM calls");
}

// CUDA graphs of the layers segment: steps with the same rows and cache use (a block's
// steps after the first) are captured at their second sighting and replayed after, with
// new tokens and fewer predicted rows each time; every output must still equal the CPU's
// (exact precision: token for token). A larger request in between grows the scratch,
// which must retire the graphs that used the old buffers.
void run_graphs(ThreadPool& pool) {
  Spec s{"graphs", DType::BF16, true, 4, 2, 64, 2, 128, 61, 64, false};
  TestModel tm = build(s, 23);
  CudaOptions opt;
  opt.gemm_mode = SDLLM_CUDA_GEMM_EXACT;
  auto cm = cuda_model_create_with_api(tm.model, opt, api_fn()(SDLLM_CUDA_ABI_VERSION));
  const int64_t capacity = 24;
  auto gpu = cuda_session_create(cm, capacity);
  Session cpu(tm.model, capacity);
  Rng r(5);
  const int32_t P = 8, B = 8, N = P + B + 4;
  std::vector<int32_t> x;
  for (int32_t i = 0; i < N; ++i) x.push_back(i < P ? r.below(60) : static_cast<int32_t>(s.vocab - 1));
  auto compare_step = [&](const std::string& what, ForwardRequest q) {
    q.return_logits = true;
    const ForwardResult a = cpu.forward(q, pool), b = gpu->forward(q, pool);
    const Compare c = compare(a, b);
    const CudaModelStats st = cuda_model_stats(*cm);
    char buf[200];
    std::snprintf(buf, sizeof(buf), "logits nmse %.2e, ids %d/%d; %s, %lld launches", c.nmse, c.ids_equal, c.ids,
                  st.last_forward_replayed ? "graph replay" : "direct", static_cast<long long>(st.last_forward_launches));
    report(c.nmse <= 1e-9 && c.ids_equal == c.ids && c.max_conf <= 1e-5, "graphs: " + what, buf);
    return st;
  };
  std::vector<int32_t> step_rows = range(P, N);
  compare_step("step 0 writes the prefix", request(x, range(0, N), 0, 0, P, true, range(P, P + B), ConfidenceKind::Prob));
  CudaModelStats st;
  for (int i = 1; i <= 5; ++i) {
    x[static_cast<size_t>(P + i)] = r.below(60);  // committed tokens change the input
    std::vector<int32_t> predict;
    for (int32_t j = i + 1; j < B; ++j) predict.push_back(j);
    st = compare_step("cached step " + std::to_string(i), request(x, step_rows, P, -1, 0, true, predict,
                                                                    i % 2 ? ConfidenceKind::Prob : ConfidenceKind::Margin));
  }
  report(st.graph_captures == 1 && st.graph_replays == 3, "graphs: captured once, replayed after",
         std::to_string(st.graph_captures) + " captures, " + std::to_string(st.graph_replays) + " replays");
  // A wider request grows the buffers; the same cached step afterwards must not replay the
  // stale graph (it is captured anew at its second sighting with the new addresses).
  std::vector<int32_t> wide;
  for (int32_t i = 0; i < 3 * N; ++i) wide.push_back(i % 60);
  gpu->forward(request(wide, range(0, 3 * N), 0, -1, 0, true, range(0, 3 * N), ConfidenceKind::Prob), pool);
  cpu.forward(request(wide, range(0, 3 * N), 0, -1, 0, true, range(0, 3 * N), ConfidenceKind::Prob), pool);
  compare_step("step 0 again after the buffers grew", request(x, range(0, N), 0, 0, P, true, range(P, P + B), ConfidenceKind::Prob));
  for (int i = 1; i <= 3; ++i) {
    x[static_cast<size_t>(P + i)] = r.below(60);
    st = compare_step("cached step after growth " + std::to_string(i), request(x, step_rows, P, -1, 0, true, {6, 7},
                                                                             ConfidenceKind::Prob));
  }
  report(st.graph_captures == 2 && st.graph_replays == 4, "graphs: buffers that grew retire the old graph",
         std::to_string(st.graph_captures) + " captures, " + std::to_string(st.graph_replays) + " replays");
}

void run_errors(ThreadPool& pool) {
  const SdllmCudaApi* api = api_fn()(SDLLM_CUDA_ABI_VERSION);
  report(api && api->abi_version == SDLLM_CUDA_ABI_VERSION && api->struct_size == sizeof(SdllmCudaApi),
         "abi: sdllm_cuda_api(SDLLM_CUDA_ABI_VERSION) returns the table", "");
  report(api_fn()(SDLLM_CUDA_ABI_VERSION + 1) == nullptr, "abi: another version gets NULL", "");

  Spec s{"errors", DType::F32, false, 2, 1, 32, 1, 32, 20, 20, false};
  TestModel tm = build(s, 5);
  auto expect_throw = [&](const std::string& what, const std::function<void()>& f, const std::string& needle) {
    try {
      f();
      report(false, what, "did not throw");
    } catch (const std::exception& e) {
      const bool ok = std::string(e.what()).find(needle) != std::string::npos;
      report(ok, what, e.what());
    }
  };
  CudaOptions opt;
  opt.library = "/nonexistent/libsdllm_cuda.so";
  expect_throw("missing library is a clear error", [&] { cuda_model_create(tm.model, opt); }, "cannot load");
  opt.device = 64;  // beyond any machine's count, emulated (1) or real
  expect_throw("a device that does not exist", [&] { cuda_model_create_with_api(tm.model, opt, api); },
               "CUDA device 64 does not exist");
  opt.device = 0;
  auto cm = cuda_model_create_with_api(tm.model, opt, api);
#ifdef SDLLM_CUDA_EMULATION
  const char* cublas_name = "cublas-emu";
#else
  const char* cublas_name = "cuBLAS libcublas";
#endif
  report(cuda_model_description(*cm).find(cublas_name) != std::string::npos, "describe names the device and cuBLAS",
         cuda_model_description(*cm));
  auto gpu = cuda_session_create(cm, 8);
  Session cpu(tm.model, 8);
  ForwardRequest bad;
  bad.tokens = {1, 2};
  bad.positions = {0, 1};
  std::string cpu_msg;
  try {
    cpu.forward(bad, pool);
  } catch (const std::exception& e) {
    cpu_msg = e.what();
  }
  expect_throw("empty predictRows: same message as the CPU backend", [&] { gpu->forward(bad, pool); },
               cpu_msg.empty() ? "?" : cpu_msg);
  bad.predict_rows = {0};
  bad.cache_attend = 9;
  expect_throw("cacheAttend beyond the capacity", [&] { gpu->forward(bad, pool); }, "cacheAttend is outside the cache");
  // The library's own checks, below the adapter's.
  SdllmCudaForward f{};
  f.n_tokens = 0;
  const bool null_failed = api->session_forward(nullptr, &f) != 0;
  const std::string null_msg = api->last_error();
  report(null_failed && null_msg.find("null") != std::string::npos, "library: a null session is an error, not a crash",
         null_msg);
  SdllmCudaModelDesc d{};
  const bool empty_failed = api->model_create(&d) == nullptr;
  const std::string empty_msg = api->last_error();
  report(empty_failed && empty_msg.find("positive") != std::string::npos, "library: an empty descriptor is rejected",
         empty_msg);
}

}  // namespace

int main(int argc, char** argv) {
  int argi = 1;
  const bool half_too = argc > argi && std::string(argv[argi]) == "--16bit-too";
  argi += half_too;
  const std::string filter = argc > argi ? argv[argi] : "";
  ThreadPool& pool = default_pool(2);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<Spec> specs = {
      // name, dtype, bias, heads, kv, head_dim, layers, mlp, vocab, emb rows, tied
      {"f32-gqa4:2-hd64-tied", DType::F32, false, 4, 2, 64, 2, 160, 61, 64, true, SDLLM_CUDA_GEMM_EXACT, 0, true},
      {"bf16-bias-gqa7:1-hd64-chunked", DType::BF16, true, 7, 1, 64, 2, 96, 77, 80, false, SDLLM_CUDA_GEMM_EXACT,
       5000},
      {"bf16-bias-gqa4:2-hd128", DType::BF16, true, 4, 2, 128, 2, 128, 50, 50, false},
      {"f16-gqa7:1-hd128-1layer", DType::F16, false, 7, 1, 128, 1, 64, 40, 48, false},
      {"f32-gqa2:1-hd32-3layers", DType::F32, true, 2, 1, 32, 3, 48, 33, 33, false},
      {"bf16-weight-dtype-gemm", DType::BF16, false, 4, 2, 64, 2, 128, 61, 64, false, SDLLM_CUDA_GEMM_WEIGHT_DTYPE},
      {"f16-weight-dtype-gemm", DType::F16, true, 4, 2, 64, 1, 128, 45, 45, false, SDLLM_CUDA_GEMM_WEIGHT_DTYPE},
  };
  uint64_t seed = 11;
  for (const Spec& s : specs) {
    ++seed;
    if (!filter.empty() && s.name.find(filter) == std::string::npos) continue;
    run_model(s, seed, pool);
    if (half_too && s.dtype != DType::F32 && s.gemm_mode == SDLLM_CUDA_GEMM_EXACT) {
      Spec h = s;
      h.name += " [16-bit gemm]";
      h.gemm_mode = SDLLM_CUDA_GEMM_WEIGHT_DTYPE;
      run_model(h, seed, pool);
    }
  }
  if (filter.empty() || std::string("errors").find(filter) != std::string::npos) {
    try {
      run_errors(pool);
      run_executor(pool);
      run_graphs(pool);
    } catch (const std::exception& e) {  // e.g. no usable device on a real machine
      report(false, "errors", std::string("threw: ") + e.what());
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
#ifdef SDLLM_CUDA_EMULATION
  std::printf("cublas-emu handles still open: %lld; %.1f s\n",
              static_cast<long long>(sdllm_cublas_emu::stats().handles), secs);
#else
  std::printf("real GPU and cuBLAS; %.1f s\n", secs);
#endif
  std::printf("cuda-forward 16-bit gemm: %d passed, %d failed; ids equal to the CPU's %lld/%lld (%.2f%%), "
              "logits nmse max %.2e\n",
              g_half_passed, g_half_failed, g_half_ids_equal, g_half_ids,
              g_half_ids ? 100.0 * static_cast<double>(g_half_ids_equal) / static_cast<double>(g_half_ids) : 0.0,
              g_half_max_nmse);
  std::printf("cuda-forward exact: %d passed, %d failed\n", g_passed - g_half_passed, g_failed - g_half_failed);
  std::printf("cuda-forward: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 && g_passed > 0 ? 0 : 1;
}
