// bench_kernels_cuda: per-kernel latency of the CUDA backend's kernels (cuda/*.cu, through
// their launchers in cuda/sdllm_cuda.h) at LLaDA-8B shapes, timed with CUDA events, with
// the same bytes/FLOPs napkin math as the CPU bench (bench/cuda/kernel_napkin.h) and the
// fraction of the H100 bound each kernel reaches. The layer's GEMMs are timed through
// cuBLAS (cublasGemmEx, BF16 x BF16 -> F32, loaded at run time by cuda/cublas_loader)
// when a libcublas is found, and skipped otherwise.
//
// How to build and run (on a machine with a GPU; the build needs only nvcc):
//   cmake -S . -B build/bench-cuda -DSDLLM_BUILD_BENCH=ON -DSDLLM_CUDA=ON
//   cmake --build build/bench-cuda -j2 --target bench_kernels_cuda
//   ./build/bench-cuda/bench/cuda/bench_kernels_cuda [--prefix N] [--rounds N] [--quick] [--warm-l2]
// --rounds N: timed launches per kernel after one warm-up launch, best reported (default 20).
// By default the L2 cache is flushed (a memset of 2x its size) before every timed launch,
// as in a real forward where each layer's activations and weights differ; --warm-l2 skips
// the flush (small kernels then run from L2 and can beat the HBM "bound").
// Each launch is timed alone between two events, so the times include no host launch
// overhead but do include the kernel's ramp-up/tail (what a single call costs on the GPU).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cublas_loader.h"
#include "kernel_napkin.h"
#include "sdllm_cuda.h"

using namespace sdllm;
using namespace sdllm_bench;

namespace {

void check(int err, const char* what, int line) {
  if (err == 0) return;
  std::fprintf(stderr, "bench_kernels_cuda: line %d: %s failed: %s\n", line, what,
               cudaGetErrorString(static_cast<cudaError_t>(err)));
  std::exit(1);
}
#define CK(x) check(static_cast<int>(x), #x, __LINE__)

// Deterministic pseudo-random fill on the device (a 1 GB table would take seconds on the host).
__device__ __forceinline__ float hash_uniform(uint64_t i, uint32_t seed) {
  uint64_t z = i * 0x9E3779B97F4A7C15ull + seed;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (1.0f / 16777216.0f) * 2.f - 1.f;  // [-1, 1)
}
__global__ void fill_f32(float* p, int64_t n, uint32_t seed, float scale) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = hash_uniform(static_cast<uint64_t>(i), seed) * scale;
}
__global__ void fill_bf16(__nv_bfloat16* p, int64_t n, uint32_t seed, float scale) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16(hash_uniform(static_cast<uint64_t>(i), seed) * scale);
}

uint32_t g_seed = 1;
float* dev_f32(int64_t n, float scale = 1.f) {
  float* p = nullptr;
  CK(cudaMalloc(&p, sizeof(float) * static_cast<size_t>(std::max<int64_t>(n, 1))));
  fill_f32<<<1024, 256>>>(p, n, g_seed++, scale);
  CK(cudaGetLastError());
  return p;
}
__nv_bfloat16* dev_bf16(int64_t n, float scale) {
  __nv_bfloat16* p = nullptr;
  CK(cudaMalloc(&p, sizeof(__nv_bfloat16) * static_cast<size_t>(std::max<int64_t>(n, 1))));
  fill_bf16<<<1024, 256>>>(p, n, g_seed++, scale);
  CK(cudaGetLastError());
  return p;
}
WeightView bf16_view(const __nv_bfloat16* p, int64_t rows, int64_t cols) {
  WeightView v;
  v.data = p;
  v.dtype = DType::BF16;
  v.rows = rows;
  v.cols = cols;
  return v;
}

struct Bench {
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  void* flush = nullptr;
  size_t flush_bytes = 0;
  int rounds = 20;
  std::vector<Result> rows;

  // fn launches the kernel(s) on `stream` and returns the launcher's error code.
  double best_seconds(const std::function<int(cudaStream_t)>& fn) {
    CK(fn(stream));  // warm-up
    CK(cudaStreamSynchronize(stream));
    float best = 1e30f;
    for (int r = 0; r < rounds; ++r) {
      if (flush) CK(cudaMemsetAsync(flush, r & 0xff, flush_bytes, stream));
      CK(cudaEventRecord(start, stream));
      CK(fn(stream));
      CK(cudaEventRecord(stop, stream));
      CK(cudaEventSynchronize(stop));
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, start, stop));
      best = std::min(best, ms);
    }
    return best * 1e-3;
  }
  void add(const std::string& kernel, const std::string& shape, const std::string& note, const Cost& c,
           const std::function<int(cudaStream_t)>& fn) {
    Result r;
    r.kernel = kernel;
    r.shape = shape;
    r.note = note;
    r.cost = c;
    r.seconds = best_seconds(fn);
    rows.push_back(r);
    std::fprintf(stderr, "  %-22s %-28s %10.4f ms\n", kernel.c_str(), shape.c_str(), r.seconds * 1e3);
  }
};

std::string str(const char* fmt, long long a, long long b = 0, long long c = 0) {
  char buf[96];
  std::snprintf(buf, sizeof buf, fmt, a, b, c);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Bench b;
  bool quick = false, warm_l2 = false;
  std::vector<int64_t> prefixes;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) b.rounds = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--prefix") && i + 1 < argc) prefixes.push_back(std::atoll(argv[++i]));
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--warm-l2")) warm_l2 = true;
    else {
      std::fprintf(stderr, "usage: %s [--prefix N] [--rounds N] [--quick] [--warm-l2]\n", argv[0]);
      return 2;
    }
  }
  const Shapes s = quick ? Shapes::quick() : Shapes();
  if (prefixes.empty()) prefixes = quick ? std::vector<int64_t>{128} : std::vector<int64_t>{512, 1024, 2048};

  int dev = 0;
  CK(cudaGetDevice(&dev));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, dev));
  const int sms = prop.multiProcessorCount;
  CK(cudaStreamCreate(&b.stream));
  CK(cudaEventCreate(&b.start));
  CK(cudaEventCreate(&b.stop));
  if (!warm_l2) {
    b.flush_bytes = static_cast<size_t>(std::max(prop.l2CacheSize, 1 << 20)) * 2;
    CK(cudaMalloc(&b.flush, b.flush_bytes));
  }
  std::printf("CUDA kernels on %s (%d SMs, L2 %d MB), %s shapes: d_model %lld, heads %lld (kv %lld) x %lld, "
              "mlp %lld, vocab %lld\n",
              prop.name, sms, prop.l2CacheSize >> 20, quick ? "--quick" : "LLaDA-8B", (long long)s.d,
              (long long)s.n_heads, (long long)s.n_kv, (long long)s.head_dim, (long long)s.mlp, (long long)s.vocab);
  std::printf("CUDA events around each launch, best of %d after 1 warm-up, L2 %s\n\n", b.rounds,
              warm_l2 ? "warm (--warm-l2)" : "flushed before each launch");

  const int64_t d = s.d, kvd = s.kv_dim(), n = s.step_rows();
  const int64_t max_prefix = *std::max_element(prefixes.begin(), prefixes.end()), max_rows = max_prefix + n;
  const int64_t wide = std::max(d, s.mlp);

  __nv_bfloat16* table = dev_bf16(s.vocab * d, 0.02f);  // also the LM head's weight
  __nv_bfloat16* norm_w = dev_bf16(d, 1.f);
  float* x = dev_f32(max_rows * wide);
  float* y = dev_f32(max_rows * wide);
  float* z = dev_f32(max_rows * wide);
  float* res = dev_f32(max_rows * d);
  std::vector<int32_t> h_ids(static_cast<size_t>(max_rows)), h_pos(static_cast<size_t>(max_rows));
  for (int64_t i = 0; i < max_rows; ++i) {
    h_ids[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919 + 13) % s.vocab);
    h_pos[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  }
  int32_t *ids = nullptr, *pos = nullptr;
  CK(cudaMalloc(&ids, sizeof(int32_t) * h_ids.size()));
  CK(cudaMalloc(&pos, sizeof(int32_t) * h_pos.size()));
  CK(cudaMemcpy(ids, h_ids.data(), sizeof(int32_t) * h_ids.size(), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(pos, h_pos.data(), sizeof(int32_t) * h_pos.size(), cudaMemcpyHostToDevice));
  CK(cudaDeviceSynchronize());

  // ---- Row and elementwise kernels on the 129 rows of a streaming step.
  {
    cuda::EmbeddingParams p;
    p.table = bf16_view(table, s.vocab, d);
    p.ids = ids;
    p.n = n;
    p.out = y;
    b.add("embedding", str("%lld rows x %lld, BF16", n, d), "", cost_embedding(n, d),
          [&](cudaStream_t st) { return cuda::embedding(p, st); });
  }
  {
    cuda::RMSNormParams p;
    p.x = x;
    p.w = bf16_view(norm_w, 1, d);
    p.n = n;
    p.d = d;
    p.out = y;
    b.add("rmsnorm", str("%lld x %lld", n, d), "", cost_rmsnorm(n, d),
          [&](cudaStream_t st) { return cuda::rmsnorm(p, st); });
    cuda::RMSNormParams f = p;
    f.residual = res;
    Cost c = cost_rmsnorm(n, d);
    c.bytes += n * d * 8.0;  // residual read + written
    c.flops += n * d;
    b.add("rmsnorm + residual", str("%lld x %lld", n, d), "fused add", c,
          [&](cudaStream_t st) { return cuda::rmsnorm(f, st); });
  }
  {
    cuda::RopeParams p;
    p.x = y;
    p.n = n;
    p.row_stride = d;
    p.n_heads = static_cast<int>(s.n_heads);
    p.head_dim = static_cast<int>(s.head_dim);
    p.pos = pos;
    b.add("rope (Q)", str("%lld x %lld heads x %lld", n, s.n_heads, s.head_dim), "",
          cost_rope(n, s.n_heads, s.head_dim), [&](cudaStream_t st) { return cuda::rope(p, st); });
  }
  {
    cuda::SwigluParams p;
    p.gate = x;
    p.up = y;
    p.rows = n;
    p.cols = s.mlp;
    p.in_stride = p.out_stride = s.mlp;
    p.out = z;
    b.add("swiglu", str("%lld x %lld", n, s.mlp), "", cost_swiglu(n, s.mlp),
          [&](cudaStream_t st) { return cuda::swiglu(p, st); });
  }
  {
    cuda::AddParams p;
    p.y = y;
    p.x = x;
    p.n = n * d;
    b.add("residual add", str("%lld x %lld", n, d), "", Cost{n * d * 12.0, n * d * 1.0},
          [&](cudaStream_t st) { return cuda::add(p, st); });
  }
  {
    float* kc = dev_f32(max_rows * kvd);
    float* vc = dev_f32(max_rows * kvd);
    cuda::KVWriteParams p;
    p.k = x;
    p.v = y;
    p.n = s.block;
    p.src_stride = kvd;
    p.k_cache = kc;
    p.v_cache = vc;
    p.start = max_prefix;
    p.capacity = max_rows;
    p.n_kv_heads = static_cast<int>(s.n_kv);
    p.head_dim = static_cast<int>(s.head_dim);
    b.add("kv cache write", str("%lld rows K+V x %lld", s.block, kvd), "copy", cost_kv_write(s.block, kvd),
          [&](cudaStream_t st) { return cuda::kv_cache_write(p, st); });
    cuda::KVWriteParams r = p;
    r.pos = pos;
    Cost c = cost_kv_write(s.block, kvd);
    c.flops += cost_rope(s.block, s.n_kv, s.head_dim).flops;
    b.add("kv cache write + rope", str("%lld rows K+V x %lld", s.block, kvd), "rotates K", c,
          [&](cudaStream_t st) { return cuda::kv_cache_write(r, st); });
  }
  {
    const int64_t cr = s.block;
    float* logits = dev_f32(cr * s.vocab, 8.f);
    int32_t* out_ids = nullptr;
    float* out_conf = nullptr;
    CK(cudaMalloc(&out_ids, sizeof(int32_t) * cr));
    CK(cudaMalloc(&out_conf, sizeof(float) * cr));
    ConfidenceParams p;
    p.logits = logits;
    p.n_rows = cr;
    p.vocab = s.vocab;
    p.row_stride = s.vocab;
    p.kind = ConfidenceKind::Prob;
    p.out_ids = out_ids;
    p.out_conf = out_conf;
    b.add("confidence (prob)", str("%lld rows x %lld", cr, s.vocab), "", cost_confidence(cr, s.vocab),
          [&](cudaStream_t st) { return cuda::confidence(p, st); });
  }

  // ---- Attention per prefix length: streaming step, dual-cache step, vanilla full pass.
  {
    float* q = dev_f32(max_rows * d);
    float* k = dev_f32(max_rows * kvd);
    float* v = dev_f32(max_rows * kvd);
    float* out = dev_f32(max_rows * d);
    void* ws = nullptr;
    size_t ws_bytes = 0;
    auto run = [&](const char* name, const std::string& shape, const AttentionParams& p) {
      const int splits = cuda::attention_auto_splits(p, sms);
      const size_t need = cuda::attention_workspace_bytes(p, splits);
      if (need > ws_bytes) {
        if (ws) CK(cudaFree(ws));
        CK(cudaMalloc(&ws, need));
        ws_bytes = need;
      }
      cuda::AttentionLaunch l;
      l.splits = splits;
      l.workspace = ws;
      l.workspace_bytes = ws_bytes;
      l.sm_count = sms;
      b.add(name, shape, "splits " + std::to_string(splits),
            cost_attention(p.n_q, p.n_k0 + p.n_k1, s.n_heads, s.n_kv, s.head_dim),
            [&, l](cudaStream_t st) { return cuda::attention(p, l, st); });
    };
    for (int64_t P : prefixes) {
      AttentionParams base;
      base.n_heads = static_cast<int>(s.n_heads);
      base.n_kv_heads = static_cast<int>(s.n_kv);
      base.head_dim = static_cast<int>(s.head_dim);
      base.scale = 1.f / std::sqrt(static_cast<float>(s.head_dim));
      base.q_stride = d;
      base.kv0_stride = base.kv1_stride = kvd;
      base.out = out;
      base.out_stride = d;
      AttentionParams st = base;
      st.q = q;
      st.n_q = n;
      st.k0 = k;
      st.v0 = v;
      st.n_k0 = P;
      st.k1 = k + P * kvd;
      st.v1 = v + P * kvd;
      st.n_k1 = n;
      run("attention streaming", str("%lld q over %lld cache + %lld", n, P, n), st);
      AttentionParams dc = base;
      dc.q = q;
      dc.n_q = s.block;
      dc.k0 = k;
      dc.v0 = v;
      dc.n_k0 = P + n;
      run("attention dual-cache", str("%lld q over %lld cache", s.block, P + n), dc);
      AttentionParams va = base;
      va.q = q;
      va.n_q = P + n;
      va.k1 = k;
      va.v1 = v;
      va.n_k1 = P + n;
      run("attention vanilla", str("%lld q over %lld", P + n, P + n), va);
    }
  }

  // ---- One layer's GEMMs at m = 129 and the LM head at m = 32, through cuBLAS if present.
  std::string err;
  const cuda::Cublas* cb = cuda::cublas_load(&err);
  if (!cb) {
    std::printf("cuBLAS not loaded, GEMM rows skipped: %s\n\n", err.c_str());
  } else {
    cuda::Cublas::Handle h = nullptr;
    CK(cb->create(&h) == cuda::kCublasStatusSuccess ? 0 : 1);
    CK(cb->set_stream(h, b.stream) == cuda::kCublasStatusSuccess ? 0 : 1);
    // Activations in BF16 for the GEMM (cuBLAS takes A and B of one type): the traffic
    // of the ideal BF16 path; the backend's float32 activations would add m*k*2 bytes.
    __nv_bfloat16* xa = dev_bf16(max_rows * wide, 1.f);
    const float alpha = 1.f, beta = 0.f;
    struct G {
      const char* name;
      int64_t k, n;
    };
    const G gs[] = {{"gemm q", d, d},       {"gemm k", d, kvd},     {"gemm v", d, kvd},     {"gemm o", d, d},
                    {"gemm gate", d, s.mlp}, {"gemm up", d, s.mlp}, {"gemm down", s.mlp, d}};
    // y[m, n] = x[m, k] W^T with W [n, k] row-major: in cuBLAS's column-major terms
    // y^T (n x m) = op_T(W as k x n) * (x^T as k x m).
    auto gemm = [&](const __nv_bfloat16* w, int64_t m, int64_t k, int64_t nn, float* out) {
      return cb->gemm_ex(h, cuda::kCublasOpT, cuda::kCublasOpN, static_cast<int>(nn), static_cast<int>(m),
                         static_cast<int>(k), &alpha, w, cuda::kCudaR16BF, static_cast<int>(k), xa,
                         cuda::kCudaR16BF, static_cast<int>(k), &beta, out, cuda::kCudaR32F, static_cast<int>(nn),
                         cuda::kCublasCompute32F, cuda::kCublasGemmDefault);
    };
    Result layer;
    layer.kernel = "**layer GEMMs total**";
    layer.shape = str("m=%lld, 7 GEMMs", n);
    layer.note = "sum of rows above";
    for (const G& g : gs) {
      __nv_bfloat16* w = dev_bf16(g.n * g.k, 0.02f);
      b.add(g.name, str("m=%lld k=%lld n=%lld", n, g.k, g.n), "cuBLAS bf16", cost_gemm(n, g.k, g.n, 2.0, 2.0),
            [&](cudaStream_t) { return gemm(w, n, g.k, g.n, y) == cuda::kCublasStatusSuccess ? 0 : 1; });
      layer.seconds += b.rows.back().seconds;
      layer.cost += b.rows.back().cost;
      CK(cudaFree(w));
    }
    b.rows.push_back(layer);
    b.add("gemm lm head", str("m=%lld k=%lld n=%lld", s.block, d, s.vocab), "cuBLAS bf16",
          cost_gemm(s.block, d, s.vocab, 2.0, 2.0),
          [&](cudaStream_t) { return gemm(table, s.block, d, s.vocab, z) == cuda::kCublasStatusSuccess ? 0 : 1; });
    cb->destroy(h);
  }

  std::printf("\n");
  print_table(b.rows, true);
  print_conventions();
  for (const Result& r : b.rows)
    if (r.kernel.rfind("attention", 0) == 0)
      std::printf("  %s, %s: FP32-core floor %.1f us (compute) vs HBM floor %.1f us; measured %.1f us\n",
                  r.kernel.c_str(), r.shape.c_str(), r.cost.flops / kFp32Flops * 1e6, r.cost.bytes / kH100Bytes * 1e6,
                  r.seconds * 1e6);
  std::printf("'%% of bound' = H100 bound / measured time (100%% = at the limit). The bound is an H100 SXM5's;\n"
              "on another GPU read it as a yardstick only.\n");
  return 0;
}
