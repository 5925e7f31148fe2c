// backend.cu: the host side of the CUDA backend behind the C ABI of backend.h: device
// selection and cuBLAS (init), weight upload (model), KV cache and scratch buffers
// (session), and the forward pass, which runs the steps of cpp/session.cpp's
// Session::forward in the same order with the kernels of sdllm_cuda.h / backend_ops.h
// and cuBLAS GEMMs:
//   embedding -> per layer [RMSNorm, Q/K/V GEMM (+bias), RoPE of q and k at the rows'
//   positions, cache write of rows [0, cache_write_rows), (last layer: gather the
//   predicted rows of q and x), attention over cache[0:L) + own rows, out GEMM +
//   residual, RMSNorm, gate/up GEMMs, SwiGLU, down GEMM + residual] -> final RMSNorm and
//   the LM head (first vocab_size rows) on the predicted rows -> confidence reduction.
// GEMMs: y[m, N] = x[m, K] W[N, K]^T is, in cuBLAS's column-major terms,
// C[N, m] = op(A = W as [K, N], lda K)^T * (B = x as [K, m], ldb K), ldc N.
// Scratch buffers live in the session and only grow (to the largest request seen); the
// only per-step host<->device traffic is the request's ids/positions/rows/keys in and
// the ids/confidences (and logits when asked) out.
// Test: test/native/cuda/test_cuda_forward runs this file under the CPU emulator with a
// CPU stand-in for cuBLAS and compares every output with the CPU Session.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend.h"
#include "backend_ops.h"
#include "common.cuh"
#include "cublas_loader.h"

namespace sdllm {
namespace cuda {
// Named (not anonymous): the opaque handle structs below hold these types.
namespace backend_detail {

thread_local std::string t_error;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Global {
  std::mutex mu;
  bool ready = false;
  int device = 0;
  int sm_count = 1;
  const Cublas* cublas = nullptr;
  std::string describe;
};
Global& global() {
  static Global g;
  return g;
}

void check(int err, const std::string& what) {
  if (err) throw Failure(what + ": " + cudaGetErrorString(static_cast<cudaError_t>(err)));
}
void check_blas(int status, const char* what) {
  if (status != kCublasStatusSuccess)
    throw Failure(std::string("cuBLAS ") + what + " failed with status " + std::to_string(status));
}

void* device_alloc(size_t bytes, const char* what) {
  void* p = nullptr;
  const int err = static_cast<int>(cudaMalloc(&p, bytes ? bytes : 1));
  if (err) {
    cudaGetLastError();  // clear the sticky allocation error
    char msg[160];
    std::snprintf(msg, sizeof(msg), "cudaMalloc of %.1f MiB for %s failed", static_cast<double>(bytes) / 1048576.0,
                  what);
    check(err, msg);
  }
  return p;
}

// A device array that only grows.
template <class T>
struct Buffer {
  T* p = nullptr;
  size_t n = 0;
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (p) cudaFree(p);
  }
  T* reserve(size_t need, const char* what) {
    if (need <= n) return p;
    if (p) cudaFree(p);
    p = nullptr;
    n = 0;
    p = static_cast<T*>(device_alloc(sizeof(T) * need, what));
    n = need;
    return p;
  }
};

struct LayerW {
  WeightView attn_norm, ff_norm, wq, wk, wv, wo, bq, bk, bv, w_gate, w_up, w_down;
};

}  // namespace backend_detail
}  // namespace cuda
}  // namespace sdllm

struct SdllmCudaModel {
  int device = 0;
  int64_t d = 0, n_heads = 0, n_kv = 0, hd = 0, n_layers = 0, mlp = 0, vocab = 0, emb_rows = 0;
  float theta = 10000.f, eps = 1e-5f;
  int32_t gemm_mode = SDLLM_CUDA_GEMM_EXACT;
  int64_t widen_chunk = 0;
  bool any_16bit = false;
  sdllm::WeightView embedding, final_norm, lm_head;
  std::vector<sdllm::cuda::backend_detail::LayerW> layers;
  std::vector<void*> allocations;
  ~SdllmCudaModel() {
    cudaSetDevice(device);
    for (void* p : allocations) cudaFree(p);
  }
};

struct SdllmCudaSession {
  SdllmCudaModel* m = nullptr;
  int64_t capacity = 0;
  cudaStream_t stream = nullptr;
  void* blas = nullptr;
  float* cache = nullptr;  // [n_layers][K, V][capacity, n_kv * head_dim]
  sdllm::cuda::backend_detail::Buffer<float> x, h, q, k, v, att, tmp, gate, up, xf, logits, scaled, widen;
  sdllm::cuda::backend_detail::Buffer<uint16_t> narrow;
  sdllm::cuda::backend_detail::Buffer<int32_t> tokens, positions, prows, ids;
  sdllm::cuda::backend_detail::Buffer<uint64_t> keys;
  sdllm::cuda::backend_detail::Buffer<float> conf;
  sdllm::cuda::backend_detail::Buffer<unsigned char> attn_ws;
  ~SdllmCudaSession() {
    cudaSetDevice(m->device);
    if (blas) sdllm::cuda::backend_detail::global().cublas->destroy(blas);
    if (cache) cudaFree(cache);
    if (stream) cudaStreamDestroy(stream);
  }
};

namespace sdllm {
namespace cuda {
namespace {

using namespace backend_detail;

void require(bool ok, const std::string& what) {
  if (!ok) throw Failure(what);
}

// ---- init -------------------------------------------------------------------------

int api_init(int device) {
  Global& g = global();
  std::lock_guard<std::mutex> lock(g.mu);
  int count = 0;
  const int err = static_cast<int>(cudaGetDeviceCount(&count));
  if (err) {
    cudaGetLastError();
    check(err, "no usable CUDA device (cudaGetDeviceCount)");
  }
  require(count > 0, "no CUDA device found");
  require(device >= 0 && device < count,
          "CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(count) + " found)");
  check(static_cast<int>(cudaSetDevice(device)), "cudaSetDevice(" + std::to_string(device) + ")");
  std::string why;
  const Cublas* cublas = cublas_load(&why);
  if (!cublas) throw Failure(why);
  int sms = 1, major = 0, minor = 0;
  check(static_cast<int>(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device)), "device attributes");
  check(static_cast<int>(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device)),
        "device attributes");
  check(static_cast<int>(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device)),
        "device attributes");
  g.device = device;
  g.sm_count = sms > 0 ? sms : 1;
  g.cublas = cublas;
  g.describe = "device " + std::to_string(device) + ": sm_" + std::to_string(major) + std::to_string(minor) + ", " +
               std::to_string(sms) + " SMs; cuBLAS " + cublas->path;
  g.ready = true;
  return 0;
}

const char* api_last_error() { return t_error.c_str(); }

const char* api_describe() {
  Global& g = global();
  return g.ready ? g.describe.c_str() : "not initialised";
}

// ---- model ------------------------------------------------------------------------

bool valid_dtype(int32_t t) { return t >= 0 && t <= 2; }

WeightView upload(SdllmCudaModel& m, std::map<const void*, void*>& uploaded, const SdllmCudaTensor& t,
                  int64_t rows, int64_t cols, const std::string& name, bool optional = false) {
  WeightView w;
  if (!t.data) {
    require(optional, name + " is missing");
    return w;
  }
  require(valid_dtype(t.dtype), name + ": unknown dtype " + std::to_string(t.dtype));
  require(t.rows == rows && t.cols == cols, name + " has shape [" + std::to_string(t.rows) + ", " +
                                                std::to_string(t.cols) + "], expected [" + std::to_string(rows) +
                                                ", " + std::to_string(cols) + "]");
  w.dtype = static_cast<DType>(t.dtype);
  w.rows = t.rows;
  w.cols = t.cols;
  if (w.dtype != DType::F32) m.any_16bit = true;
  auto it = uploaded.find(t.data);
  if (it != uploaded.end()) {
    w.data = it->second;
    return w;
  }
  const size_t bytes = static_cast<size_t>(t.rows * t.cols * dtype_size(w.dtype));
  void* p = device_alloc(bytes, name.c_str());
  m.allocations.push_back(p);
  check(static_cast<int>(cudaMemcpy(p, t.data, bytes, cudaMemcpyHostToDevice)), "upload of " + name);
  uploaded[t.data] = p;
  w.data = p;
  return w;
}

SdllmCudaModel* api_model_create(const SdllmCudaModelDesc* desc) {
  Global& g = global();
  require(g.ready, "the CUDA backend is not initialised (call init first)");
  require(desc != nullptr, "model_create: no descriptor");
  const SdllmCudaModelDesc& c = *desc;
  require(c.d_model > 0 && c.n_heads > 0 && c.n_kv_heads > 0 && c.n_layers > 0 && c.mlp_hidden > 0 &&
              c.vocab_size > 0 && c.embedding_size > 0,
          "model_create: every dimension must be positive");
  require(c.n_heads % c.n_kv_heads == 0, "model_create: n_heads must be a multiple of n_kv_heads");
  require(c.head_dim * c.n_heads == c.d_model, "model_create: head_dim * n_heads must equal d_model");
  require(c.head_dim >= 2 && c.head_dim % 2 == 0 && c.head_dim <= 256, "model_create: head_dim must be even, <= 256");
  require(c.layers != nullptr, "model_create: no layers");
  require(c.gemm_mode == SDLLM_CUDA_GEMM_EXACT || c.gemm_mode == SDLLM_CUDA_GEMM_WEIGHT_DTYPE,
          "model_create: unknown gemm_mode " + std::to_string(c.gemm_mode));
  require(c.lm_head.rows >= c.vocab_size, "model_create: lm_head has fewer rows than vocab_size");
  check(static_cast<int>(cudaSetDevice(g.device)), "cudaSetDevice");
  std::unique_ptr<SdllmCudaModel> m(new SdllmCudaModel());
  m->device = g.device;
  m->d = c.d_model;
  m->n_heads = c.n_heads;
  m->n_kv = c.n_kv_heads;
  m->hd = c.head_dim;
  m->n_layers = c.n_layers;
  m->mlp = c.mlp_hidden;
  m->vocab = c.vocab_size;
  m->emb_rows = c.embedding_size;
  m->theta = c.rope_theta;
  m->eps = c.rms_norm_eps;
  m->gemm_mode = c.gemm_mode;
  m->widen_chunk = c.widen_chunk_elems > 0 ? c.widen_chunk_elems : (int64_t{16} << 20);
  const int64_t d = c.d_model, kvd = c.n_kv_heads * c.head_dim, mlp = c.mlp_hidden;
  std::map<const void*, void*> up;
  m->embedding = upload(*m, up, c.embedding, c.embedding_size, d, "embedding");
  m->final_norm = upload(*m, up, c.final_norm, 1, d, "final_norm");
  m->lm_head = upload(*m, up, c.lm_head, c.lm_head.rows, d, "lm_head");
  m->layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const SdllmCudaLayer& s = c.layers[l];
    LayerW& w = m->layers[static_cast<size_t>(l)];
    const std::string p = "layers." + std::to_string(l) + ".";
    w.attn_norm = upload(*m, up, s.attn_norm, 1, d, p + "attn_norm");
    w.ff_norm = upload(*m, up, s.ff_norm, 1, d, p + "ff_norm");
    w.wq = upload(*m, up, s.wq, d, d, p + "wq");
    w.wk = upload(*m, up, s.wk, kvd, d, p + "wk");
    w.wv = upload(*m, up, s.wv, kvd, d, p + "wv");
    w.wo = upload(*m, up, s.wo, d, d, p + "wo");
    w.bq = upload(*m, up, s.bq, 1, d, p + "bq", true);
    w.bk = upload(*m, up, s.bk, 1, kvd, p + "bk", true);
    w.bv = upload(*m, up, s.bv, 1, kvd, p + "bv", true);
    w.w_gate = upload(*m, up, s.w_gate, mlp, d, p + "w_gate");
    w.w_up = upload(*m, up, s.w_up, mlp, d, p + "w_up");
    w.w_down = upload(*m, up, s.w_down, d, mlp, p + "w_down");
  }
  return m.release();
}

void api_model_destroy(SdllmCudaModel* m) { delete m; }

// ---- session ----------------------------------------------------------------------

SdllmCudaSession* api_session_create(SdllmCudaModel* m, int64_t capacity) {
  require(m != nullptr, "session_create: no model");
  require(capacity > 0, "session capacity must be positive");
  check(static_cast<int>(cudaSetDevice(m->device)), "cudaSetDevice");
  std::unique_ptr<SdllmCudaSession> s(new SdllmCudaSession());
  s->m = m;
  s->capacity = capacity;
  check(static_cast<int>(cudaStreamCreate(&s->stream)), "cudaStreamCreate");
  const Cublas& b = *global().cublas;
  check_blas(b.create(&s->blas), "create");
  check_blas(b.set_stream(s->blas, s->stream), "set stream");
  const size_t floats = static_cast<size_t>(2 * m->n_layers * capacity * m->n_kv * m->hd);
  s->cache = static_cast<float*>(device_alloc(sizeof(float) * floats, "the KV cache"));
  return s.release();
}

void api_session_destroy(SdllmCudaSession* s) { delete s; }

// y[m, n_out] = x[m, k] * w[0:n_out, :]^T (+ bias).
void gemm(SdllmCudaSession& s, const float* x, int64_t m, int64_t k, const WeightView& w, int64_t n_out,
          const WeightView* bias, float* y) {
  const Cublas& b = *global().cublas;
  require(m <= 0x7fffffff && k <= 0x7fffffff && n_out <= 0x7fffffff, "GEMM dimensions exceed cuBLAS's int range");
  const float one = 1.f, zero = 0.f;
  const int mi = static_cast<int>(m), ki = static_cast<int>(k), ni = static_cast<int>(n_out);
  if (w.dtype == DType::F32) {
    check_blas(b.gemm_ex(s.blas, kCublasOpT, kCublasOpN, ni, mi, ki, &one, w.data, kCudaR32F, ki, x, kCudaR32F, ki,
                         &zero, y, kCudaR32F, ni, kCublasCompute32F, kCublasGemmDefault),
               "GemmEx (F32)");
  } else if (s.m->gemm_mode == SDLLM_CUDA_GEMM_WEIGHT_DTYPE) {
    uint16_t* xn = s.narrow.reserve(static_cast<size_t>(m * k), "GEMM activations");
    check(narrow_from_f32(x, m * k, w.dtype, xn, s.stream), "narrow kernel");
    const int t = w.dtype == DType::BF16 ? kCudaR16BF : kCudaR16F;
    check_blas(b.gemm_ex(s.blas, kCublasOpT, kCublasOpN, ni, mi, ki, &one, w.data, t, ki, xn, t, ki, &zero, y,
                         kCudaR32F, ni, kCublasCompute32F, kCublasGemmDefault),
               "GemmEx (16-bit)");
  } else {
    int64_t rows_per = s.m->widen_chunk / k;
    if (rows_per < 1) rows_per = 1;
    if (rows_per > n_out) rows_per = n_out;
    float* wf = s.widen.reserve(static_cast<size_t>(rows_per * k), "widened weights");
    const unsigned char* base = static_cast<const unsigned char*>(w.data);
    for (int64_t r0 = 0; r0 < n_out; r0 += rows_per) {
      const int64_t rc = n_out - r0 < rows_per ? n_out - r0 : rows_per;
      check(widen_to_f32(base + r0 * k * dtype_size(w.dtype), w.dtype, rc * k, wf, s.stream), "widen kernel");
      check_blas(b.gemm_ex(s.blas, kCublasOpT, kCublasOpN, static_cast<int>(rc), mi, ki, &one, wf, kCudaR32F, ki, x,
                           kCudaR32F, ki, &zero, y + r0, kCudaR32F, ni, kCublasCompute32F, kCublasGemmDefault),
                 "GemmEx (widened)");
    }
  }
  if (bias && !bias->empty()) {
    BiasAddParams bp;
    bp.y = y;
    bp.rows = m;
    bp.cols = n_out;
    bp.stride = n_out;
    bp.bias = *bias;
    check(bias_add(bp, s.stream), "bias_add kernel");
  }
}

template <class T>
void upload_async(SdllmCudaSession& s, T* dst, const T* src, int64_t n, const char* what) {
  check(static_cast<int>(cudaMemcpyAsync(dst, src, sizeof(T) * static_cast<size_t>(n), cudaMemcpyHostToDevice,
                                         s.stream)),
        what);
}

AttentionParams attention_params(const SdllmCudaModel& m, int64_t rows, int64_t n, const SdllmCudaForward& r,
                                 const float* q, const float* kc, const float* vc, const float* k, const float* v,
                                 float* out) {
  const int64_t kvd = m.n_kv * m.hd;
  AttentionParams ap;
  ap.q = q;
  ap.n_q = rows;
  ap.q_stride = m.d;
  ap.k0 = kc;
  ap.v0 = vc;
  ap.n_k0 = r.cache_attend;
  ap.kv0_stride = kvd;
  ap.k1 = k;
  ap.v1 = v;
  ap.n_k1 = r.attend_self ? n : 0;
  ap.kv1_stride = kvd;
  ap.n_heads = static_cast<int>(m.n_heads);
  ap.n_kv_heads = static_cast<int>(m.n_kv);
  ap.head_dim = static_cast<int>(m.hd);
  ap.scale = 1.0f / std::sqrt(static_cast<float>(m.hd));
  ap.out = out;
  ap.out_stride = m.d;
  return ap;
}

int api_session_forward(SdllmCudaSession* sp, const SdllmCudaForward* rp) {
  require(sp != nullptr && rp != nullptr, "session_forward: null argument");
  SdllmCudaSession& s = *sp;
  const SdllmCudaForward& r = *rp;
  const SdllmCudaModel& m = *s.m;
  const int64_t n = r.n_tokens, np = r.n_predict;
  const int64_t d = m.d, kvd = m.n_kv * m.hd, mlp = m.mlp, vocab = m.vocab;

  // The checks of Session::forward (same messages), so a bad request never reaches a kernel.
  require(n > 0, "forward needs at least one token");
  require(r.tokens && r.positions, "tokens and positions are required");
  for (int64_t i = 0; i < n; i++) {
    require(r.tokens[i] >= 0 && r.tokens[i] < m.emb_rows,
            "token id " + std::to_string(r.tokens[i]) + " is outside the embedding table");
    require(r.positions[i] >= 0, "position ids must be non-negative");
  }
  require(r.cache_attend >= 0 && r.cache_attend <= s.capacity, "cacheAttend is outside the cache");
  const bool writes = r.cache_write_start >= 0;
  if (writes) {
    require(r.cache_write_rows >= 0 && r.cache_write_rows <= n, "cacheWrite.rows exceeds the input rows");
    require(r.cache_write_start + r.cache_write_rows <= s.capacity, "cacheWrite range exceeds the cache capacity");
  }
  require(r.attend_self || r.cache_attend > 0, "a forward must attend to something");
  require(np > 0 && r.predict_rows, "predictRows must not be empty");
  for (int64_t i = 0; i < np; i++)
    require(r.predict_rows[i] >= 0 && r.predict_rows[i] < n, "predictRows entry outside the input rows");
  require(r.confidence >= 0 && r.confidence <= 3, "confidence kind must be 0..3");
  require(r.out_ids && r.out_confidences, "out_ids and out_confidences are required");
  const float ctemp = r.confidence_temperature > 0.f ? r.confidence_temperature : 1.f;

  check(static_cast<int>(cudaSetDevice(m.device)), "cudaSetDevice");
  const size_t nd = static_cast<size_t>(n * d);
  float* x = s.x.reserve(nd, "activations");
  float* h = s.h.reserve(nd, "activations");
  float* q = s.q.reserve(nd, "activations");
  float* att = s.att.reserve(nd, "activations");
  float* tmp = s.tmp.reserve(nd, "activations");
  float* k = s.k.reserve(static_cast<size_t>(n * kvd), "activations");
  float* v = s.v.reserve(static_cast<size_t>(n * kvd), "activations");
  float* gate = s.gate.reserve(static_cast<size_t>(n * mlp), "activations");
  float* up = s.up.reserve(static_cast<size_t>(n * mlp), "activations");
  float* xf = s.xf.reserve(static_cast<size_t>(np * d), "activations");
  float* logits = s.logits.reserve(static_cast<size_t>(np * vocab), "logits");
  int32_t* tokens = s.tokens.reserve(static_cast<size_t>(n), "request");
  int32_t* positions = s.positions.reserve(static_cast<size_t>(n), "request");
  int32_t* prows = s.prows.reserve(static_cast<size_t>(np), "request");
  int32_t* ids = s.ids.reserve(static_cast<size_t>(np), "results");
  float* conf = s.conf.reserve(static_cast<size_t>(np), "results");
  uint64_t* keys = s.keys.reserve(static_cast<size_t>(np), "request");
  // Attention workspace for the widest launch of this request (all rows, then the last
  // layer's predicted rows).
  AttentionLaunch al[2];
  size_t ws = 0;
  for (int pass = 0; pass < 2; ++pass) {
    const AttentionParams ap = attention_params(m, pass == 0 ? n : np, n, r, q, nullptr, nullptr, k, v, att);
    al[pass].splits = attention_auto_splits(ap, global().sm_count);
    const size_t b = attention_workspace_bytes(ap, al[pass].splits);
    if (b > ws) ws = b;
  }
  unsigned char* wsp = ws ? s.attn_ws.reserve(ws, "attention workspace") : nullptr;
  for (AttentionLaunch& a : al) {
    a.workspace = wsp;
    a.workspace_bytes = ws;
  }

  std::vector<uint64_t> host_keys(static_cast<size_t>(np));
  for (int64_t i = 0; i < np; i++)
    host_keys[static_cast<size_t>(i)] =
        (r.noise_counter << 32) ^ static_cast<uint64_t>(r.positions[r.predict_rows[i]]);
  upload_async(s, tokens, r.tokens, n, "upload of the tokens");
  upload_async(s, positions, r.positions, n, "upload of the positions");
  upload_async(s, prows, r.predict_rows, np, "upload of predictRows");
  upload_async(s, keys, host_keys.data(), np, "upload of the RNG keys");

  EmbeddingParams ep;
  ep.table = m.embedding;
  ep.ids = tokens;
  ep.n = n;
  ep.out = x;
  check(embedding(ep, s.stream), "embedding kernel");

  int64_t rows = n;
  for (int64_t l = 0; l < m.n_layers; l++) {
    const LayerW& w = m.layers[static_cast<size_t>(l)];
    const bool last = l == m.n_layers - 1;

    RMSNormParams np1;
    np1.x = x;
    np1.w = w.attn_norm;
    np1.n = n;
    np1.d = d;
    np1.eps = m.eps;
    np1.out = h;
    check(rmsnorm(np1, s.stream), "rmsnorm kernel");
    gemm(s, h, n, d, w.wq, d, &w.bq, q);
    gemm(s, h, n, d, w.wk, kvd, &w.bk, k);
    gemm(s, h, n, d, w.wv, kvd, &w.bv, v);
    RopeParams rq;
    rq.x = q;
    rq.n = n;
    rq.row_stride = d;
    rq.n_heads = static_cast<int>(m.n_heads);
    rq.head_dim = static_cast<int>(m.hd);
    rq.pos = positions;
    rq.theta = m.theta;
    check(rope(rq, s.stream), "rope kernel");
    RopeParams rk = rq;
    rk.x = k;
    rk.row_stride = kvd;
    rk.n_heads = static_cast<int>(m.n_kv);
    check(rope(rk, s.stream), "rope kernel");

    float* kc = s.cache + static_cast<size_t>(2 * l) * static_cast<size_t>(s.capacity * kvd);
    float* vc = kc + static_cast<size_t>(s.capacity * kvd);
    if (writes && r.cache_write_rows > 0) {
      KVWriteParams kw;
      kw.k = k;
      kw.v = v;
      kw.n = r.cache_write_rows;
      kw.src_stride = kvd;
      kw.k_cache = kc;
      kw.v_cache = vc;
      kw.start = r.cache_write_start;
      kw.capacity = s.capacity;
      kw.n_kv_heads = static_cast<int>(m.n_kv);
      kw.head_dim = static_cast<int>(m.hd);
      kw.pos = nullptr;  // k is already rotated
      check(kv_cache_write(kw, s.stream), "kv cache kernel");
    }

    if (last && np < n) {
      check(gather_rows(q, d, prows, np, att, s.stream), "gather kernel");
      check(static_cast<int>(cudaMemcpyAsync(q, att, sizeof(float) * static_cast<size_t>(np * d),
                                             cudaMemcpyDeviceToDevice, s.stream)),
            "copy");
      check(gather_rows(x, d, prows, np, att, s.stream), "gather kernel");
      check(static_cast<int>(cudaMemcpyAsync(x, att, sizeof(float) * static_cast<size_t>(np * d),
                                             cudaMemcpyDeviceToDevice, s.stream)),
            "copy");
      rows = np;
    }

    const AttentionParams ap = attention_params(m, rows, n, r, q, kc, vc, k, v, att);
    check(attention(ap, al[rows == n ? 0 : 1], s.stream), "attention kernel");

    gemm(s, att, rows, d, w.wo, d, nullptr, tmp);
    // x += tmp; h = rmsnorm(x) (the fused kernel: op_add then op_rmsnorm).
    RMSNormParams np2;
    np2.x = tmp;
    np2.residual = x;
    np2.w = w.ff_norm;
    np2.n = rows;
    np2.d = d;
    np2.eps = m.eps;
    np2.out = h;
    check(rmsnorm(np2, s.stream), "rmsnorm kernel");
    gemm(s, h, rows, d, w.w_gate, mlp, nullptr, gate);
    gemm(s, h, rows, d, w.w_up, mlp, nullptr, up);
    SwigluParams sw;
    sw.gate = gate;
    sw.up = up;
    sw.rows = rows;
    sw.cols = mlp;
    sw.in_stride = mlp;
    sw.out_stride = mlp;
    sw.out = gate;
    check(swiglu(sw, s.stream), "swiglu kernel");
    gemm(s, gate, rows, mlp, w.w_down, d, nullptr, tmp);
    AddParams ad;
    ad.y = x;
    ad.x = tmp;
    ad.n = rows * d;
    check(add(ad, s.stream), "add kernel");
  }

  // Final norm and LM head on the predicted rows only.
  if (rows == np) {
    check(static_cast<int>(cudaMemcpyAsync(xf, x, sizeof(float) * static_cast<size_t>(np * d),
                                           cudaMemcpyDeviceToDevice, s.stream)),
          "copy");
  } else {
    check(gather_rows(x, d, prows, np, xf, s.stream), "gather kernel");
  }
  RMSNormParams fn;
  fn.x = xf;
  fn.w = m.final_norm;
  fn.n = np;
  fn.d = d;
  fn.eps = m.eps;
  fn.out = xf;
  check(rmsnorm(fn, s.stream), "rmsnorm kernel");
  gemm(s, xf, np, d, m.lm_head, vocab, nullptr, logits);

  // Confidence temperature c: softmax(l / c) is the softmax of the scaled logits, and the
  // Gumbel-max argmax(l - T log(-log u)) is argmax(l/c - (T/c) log(-log u)), so the
  // confidence kernel runs on l/c with temperature T/c (equal up to float rounding).
  ConfidenceParams cp;
  cp.logits = logits;
  cp.temperature = r.temperature;
  if (ctemp != 1.f && r.confidence != static_cast<int32_t>(ConfidenceKind::Random)) {
    float* sc = s.scaled.reserve(static_cast<size_t>(np * vocab), "scaled logits");
    const float inv = static_cast<float>(1.0 / static_cast<double>(ctemp));
    check(scale(logits, np * vocab, inv, sc, s.stream), "scale kernel");
    cp.logits = sc;
    cp.temperature = r.temperature > 0.f ? static_cast<float>(static_cast<double>(r.temperature) * inv) : 0.f;
  }
  cp.n_rows = np;
  cp.vocab = vocab;
  cp.row_stride = vocab;
  cp.kind = static_cast<ConfidenceKind>(r.confidence);
  cp.seed = r.seed;
  cp.row_keys = keys;
  cp.out_ids = ids;
  cp.out_conf = conf;
  check(confidence(cp, s.stream), "confidence kernel");

  check(static_cast<int>(cudaMemcpyAsync(r.out_ids, ids, sizeof(int32_t) * static_cast<size_t>(np),
                                         cudaMemcpyDeviceToHost, s.stream)),
        "download of the ids");
  check(static_cast<int>(cudaMemcpyAsync(r.out_confidences, conf, sizeof(float) * static_cast<size_t>(np),
                                         cudaMemcpyDeviceToHost, s.stream)),
        "download of the confidences");
  if (r.out_logits)
    check(static_cast<int>(cudaMemcpyAsync(r.out_logits, logits, sizeof(float) * static_cast<size_t>(np * vocab),
                                           cudaMemcpyDeviceToHost, s.stream)),
          "download of the logits");
  check(static_cast<int>(cudaStreamSynchronize(s.stream)), "the forward pass");
  return 0;
}

// ---- the C boundary: no exception crosses it -------------------------------------

template <class R, class F>
R guarded(R failure, F&& f) {
  try {
    t_error.clear();
    return f();
  } catch (const std::bad_alloc&) {
    t_error = "CUDA backend: out of host memory";
  } catch (const std::exception& e) {
    t_error = std::string("CUDA backend: ") + e.what();
  } catch (...) {
    t_error = "CUDA backend: unknown error";
  }
  return failure;
}

int c_init(int device) {
  return guarded(1, [&] { return api_init(device); });
}
const char* c_last_error(void) { return api_last_error(); }
const char* c_describe(void) { return api_describe(); }
SdllmCudaModel* c_model_create(const SdllmCudaModelDesc* desc) {
  return guarded(static_cast<SdllmCudaModel*>(nullptr), [&] { return api_model_create(desc); });
}
void c_model_destroy(SdllmCudaModel* m) {
  guarded(0, [&] {
    api_model_destroy(m);
    return 0;
  });
}
SdllmCudaSession* c_session_create(SdllmCudaModel* m, int64_t capacity) {
  return guarded(static_cast<SdllmCudaSession*>(nullptr), [&] { return api_session_create(m, capacity); });
}
void c_session_destroy(SdllmCudaSession* s) {
  guarded(0, [&] {
    api_session_destroy(s);
    return 0;
  });
}
int c_session_forward(SdllmCudaSession* s, const SdllmCudaForward* r) {
  return guarded(1, [&] { return api_session_forward(s, r); });
}

const SdllmCudaApi kApi = {
    SDLLM_CUDA_ABI_VERSION, static_cast<uint32_t>(sizeof(SdllmCudaApi)),
    c_init,                 c_last_error,
    c_describe,             c_model_create,
    c_model_destroy,        c_session_create,
    c_session_destroy,      c_session_forward,
};

}  // namespace
}  // namespace cuda
}  // namespace sdllm

extern "C" SDLLM_CUDA_EXPORT const SdllmCudaApi* sdllm_cuda_api(int abi_version) {
  return abi_version == SDLLM_CUDA_ABI_VERSION ? &sdllm::cuda::kApi : nullptr;
}
