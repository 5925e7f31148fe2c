// backend.cu: the host side of the CUDA backend behind the C ABI of backend.h: device
// selection and cuBLAS (init), weight upload (model), KV cache and stream (session), and
// the entry of a batched forward, which converts the C requests and runs the shared
// forward of cpp/forward.cpp on the ops of forward_ops.cu. No model step is written here.
// Test: test/native/cuda/test_cuda_forward runs this file under the CPU emulator with a
// CPU stand-in for cuBLAS and compares every output with the CPU Session, alone and batched.
#include <algorithm>
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
#include "backend_state.h"
#include "forward_ops.h"
#include "sdllm_cuda.h"

namespace sdllm {
namespace cuda {
namespace backend_detail {
thread_local std::string t_error;
}  // namespace backend_detail
}  // namespace cuda
}  // namespace sdllm

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
  auto it = uploaded.find(t.data);
  if (it != uploaded.end()) {
    w.data = it->second;
    return w;
  }
  const size_t bytes = static_cast<size_t>(t.rows * t.cols * dtype_size(w.dtype));
  void* p = device_alloc(bytes, name.c_str());
  m.allocations.push_back(p);
  m.weight_bytes += static_cast<int64_t>(bytes);
  check(static_cast<int>(cudaMemcpy(p, t.data, bytes, cudaMemcpyHostToDevice)), "upload of " + name);
  uploaded[t.data] = p;
  w.data = p;
  return w;
}

// Uploads tensors that one GEMM reads together (q/k/v, gate/up, q/k/v biases) into one
// device allocation, rows back to back, so that the forward's `project` runs them as one
// fused GEMM. Falls back to separate uploads when they differ in dtype or one is absent.
// Host tensors uploaded before (same pointers) are reused, as `upload` does.
struct GroupMember {
  const SdllmCudaTensor* t;
  int64_t rows;
  std::string name;
  WeightView* out;
};
void upload_group(SdllmCudaModel& m, std::map<const void*, void*>& uploaded, std::vector<GroupMember> g, int64_t cols,
                  bool optional = false) {
  bool fusable = true;
  for (const GroupMember& x : g) fusable = fusable && x.t->data && x.t->dtype == g[0].t->dtype;
  if (!fusable || uploaded.count(g[0].t->data)) {
    for (GroupMember& x : g) *x.out = upload(m, uploaded, *x.t, x.rows, cols, x.name, optional);
    return;
  }
  int64_t rows = 0;
  for (const GroupMember& x : g) {
    require(valid_dtype(x.t->dtype), x.name + ": unknown dtype " + std::to_string(x.t->dtype));
    require(x.t->rows == x.rows && x.t->cols == cols,
            x.name + " has shape [" + std::to_string(x.t->rows) + ", " + std::to_string(x.t->cols) + "], expected [" +
                std::to_string(x.rows) + ", " + std::to_string(cols) + "]");
    rows += x.rows;
  }
  const DType dt = static_cast<DType>(g[0].t->dtype);
  const int64_t es = dtype_size(dt);
  unsigned char* base = static_cast<unsigned char*>(device_alloc(static_cast<size_t>(rows * cols * es), g[0].name.c_str()));
  m.allocations.push_back(base);
  m.weight_bytes += rows * cols * es;
  unsigned char* p = base;
  for (GroupMember& x : g) {
    const size_t bytes = static_cast<size_t>(x.rows * cols * es);
    check(static_cast<int>(cudaMemcpy(p, x.t->data, bytes, cudaMemcpyHostToDevice)), "upload of " + x.name);
    uploaded[x.t->data] = p;
    *x.out = WeightView{p, dt, x.rows, cols};
    p += bytes;
  }
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
  m->gemm_mode = c.gemm_mode;
  m->widen_chunk = c.widen_chunk_elems > 0 ? c.widen_chunk_elems : (int64_t{16} << 20);
  ModelConfig& mc = m->weights.config;
  mc.d_model = c.d_model;
  mc.n_heads = c.n_heads;
  mc.n_kv_heads = c.n_kv_heads;
  mc.head_dim = c.head_dim;
  mc.n_layers = c.n_layers;
  mc.mlp_hidden = c.mlp_hidden;
  mc.vocab_size = c.vocab_size;
  mc.embedding_size = c.embedding_size;
  mc.rope_theta = c.rope_theta;
  mc.rms_norm_eps = c.rms_norm_eps;
  const int64_t d = c.d_model, kvd = c.n_kv_heads * c.head_dim, mlp = c.mlp_hidden;
  std::map<const void*, void*> up;
  ForwardModel& fw = m->weights;
  fw.embedding = upload(*m, up, c.embedding, c.embedding_size, d, "embedding");
  fw.final_norm = upload(*m, up, c.final_norm, 1, d, "final_norm");
  fw.lm_head = upload(*m, up, c.lm_head, c.lm_head.rows, d, "lm_head");
  fw.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const SdllmCudaLayer& s = c.layers[l];
    LayerWeights& w = fw.layers[static_cast<size_t>(l)];
    const std::string p = "layers." + std::to_string(l) + ".";
    w.attn_norm = upload(*m, up, s.attn_norm, 1, d, p + "attn_norm");
    w.ff_norm = upload(*m, up, s.ff_norm, 1, d, p + "ff_norm");
    upload_group(*m, up, {{&s.wq, d, p + "wq", &w.wq}, {&s.wk, kvd, p + "wk", &w.wk}, {&s.wv, kvd, p + "wv", &w.wv}},
                 d);
    w.wo = upload(*m, up, s.wo, d, d, p + "wo");
    // Biases are [1, n] rows: fused, they are one [1, d + 2 kvd] bias (cols grouped below).
    if (s.bq.data && s.bk.data && s.bv.data && s.bq.dtype == s.bk.dtype && s.bk.dtype == s.bv.dtype) {
      SdllmCudaTensor b0 = s.bq, b1 = s.bk, b2 = s.bv;  // viewed as [n, 1] for the row-wise grouping
      b0.rows = b0.cols, b0.cols = 1;
      b1.rows = b1.cols, b1.cols = 1;
      b2.rows = b2.cols, b2.cols = 1;
      upload_group(*m, up, {{&b0, d, p + "bq", &w.bq}, {&b1, kvd, p + "bk", &w.bk}, {&b2, kvd, p + "bv", &w.bv}}, 1);
      for (WeightView* b : {&w.bq, &w.bk, &w.bv}) b->cols = b->rows, b->rows = 1;
    } else {
      w.bq = upload(*m, up, s.bq, 1, d, p + "bq", true);
      w.bk = upload(*m, up, s.bk, 1, kvd, p + "bk", true);
      w.bv = upload(*m, up, s.bv, 1, kvd, p + "bv", true);
    }
    upload_group(*m, up, {{&s.w_gate, mlp, p + "w_gate", &w.w_gate}, {&s.w_up, mlp, p + "w_up", &w.w_up}}, d);
    w.w_down = upload(*m, up, s.w_down, d, mlp, p + "w_down");
  }
  check(static_cast<int>(cudaStreamCreate(&m->stream)), "cudaStreamCreate");
  const Cublas& b = *g.cublas;
  check_blas(b.create(&m->blas), "create");
  check_blas(b.set_stream(m->blas, m->stream), "set stream");
  return m.release();
}

// Sizes the model's scratch for a forward of `rows` rows and `predicted` predicted rows,
// so that such forwards allocate nothing (cpp/forward.h scratch_plan; the GEMM input
// and widening buffers; the attention and confidence workspaces of those shapes).
void presize(SdllmCudaModel& m, int64_t rows, int64_t predicted, int64_t cache) {
  const ModelConfig& c = m.weights.config;
  reserve_scratch(m, scratch_plan(c, rows, predicted));
  const int sms = global().sm_count;
  // The split-K workspace peaks at few query rows over the longest cache: try the
  // row counts a step can have, powers of two up to `rows`.
  size_t ws = 1;
  for (int64_t q = 1;; q = q * 2 < rows ? q * 2 : rows) {
    AttentionParams ap;
    ap.n_q = q;
    ap.n_k0 = cache;
    ap.n_k1 = q;
    ap.n_heads = static_cast<int>(c.n_heads);
    ap.n_kv_heads = static_cast<int>(c.n_kv_heads);
    ap.head_dim = static_cast<int>(c.head_dim);
    const size_t f32 = attention_workspace_bytes(ap, attention_auto_splits(ap, sms));
    size_t tc = 0;
    if (attention_tc_supported(ap)) tc = attention_tc_workspace_bytes(ap, attention_tc_auto_splits(ap, sms));
    ws = std::max(ws, std::max(f32, tc));
    if (q == rows) break;
  }
  m.attn_ws.reserve(ws, "attention workspace");
}

void api_model_destroy(SdllmCudaModel* m) { delete m; }

// ---- session ----------------------------------------------------------------------

SdllmCudaSession* api_session_create(SdllmCudaModel* m, int64_t capacity) {
  require(m != nullptr, "session_create: no model");
  require(capacity > 0, "session capacity must be positive");
  check(static_cast<int>(cudaSetDevice(m->device)), "cudaSetDevice");
  std::unique_ptr<SdllmCudaSession> s(new SdllmCudaSession());
  s->m = m;
  const ModelConfig& c = m->weights.config;
  const size_t per_layer = static_cast<size_t>(capacity * c.n_kv_heads * c.head_dim);
  s->cache = static_cast<float*>(device_alloc(sizeof(float) * 2 * per_layer * c.n_layers, "the KV cache"));
  s->cache_view.capacity = capacity;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    s->cache_view.k.push_back(s->cache + 2 * l * per_layer);
    s->cache_view.v.push_back(s->cache + (2 * l + 1) * per_layer);
  }
  // The largest request such a session gets from the block loop: every slot fed, the
  // LM head on up to kPresizedPredictRows rows (a block's masks; more grow the buffers).
  constexpr int64_t kPresizedPredictRows = 256;
  std::lock_guard<std::mutex> lock(m->mu);
  presize(*m, capacity, capacity < kPresizedPredictRows ? capacity : kPresizedPredictRows, capacity);
  return s.release();
}

void api_session_destroy(SdllmCudaSession* s) { delete s; }

// ---- forward ----------------------------------------------------------------------

// One forward over n sessions of one model. The C requests become ForwardRequests (the
// shared forward validates them); the model's stream and scratch run the batch.
int api_forward_batch(SdllmCudaSession* const* sessions, const SdllmCudaForward* requests, int64_t n) {
  require(sessions != nullptr && requests != nullptr && n > 0, "forward_batch: null argument or empty batch");
  std::vector<ForwardRequest> reqs(static_cast<size_t>(n));
  std::vector<ForwardResult> results(static_cast<size_t>(n));
  std::vector<BatchEntry> entries(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const SdllmCudaSession* s = sessions[i];
    const SdllmCudaForward& r = requests[i];
    require(s != nullptr, "forward_batch: null session");
    require(s->m == sessions[0]->m, "the sessions of a batch must belong to one model");
    require(r.n_tokens <= 0 || (r.tokens && r.positions), "tokens and positions are required");
    require(r.n_predict <= 0 || (r.predict_rows && r.out_ids && r.out_confidences),
            "predict_rows, out_ids and out_confidences are required");
    ForwardRequest& q = reqs[static_cast<size_t>(i)];
    if (r.n_tokens > 0) {
      q.tokens.assign(r.tokens, r.tokens + r.n_tokens);
      q.positions.assign(r.positions, r.positions + r.n_tokens);
    }
    if (r.n_predict > 0) q.predict_rows.assign(r.predict_rows, r.predict_rows + r.n_predict);
    q.cache_attend = r.cache_attend;
    q.cache_write_start = r.cache_write_start;
    q.cache_write_rows = r.cache_write_rows;
    q.attend_self = r.attend_self != 0;
    q.confidence = static_cast<ConfidenceKind>(r.confidence);
    q.temperature = r.temperature;
    q.confidence_temperature = r.confidence_temperature;
    q.seed = r.seed;
    q.noise_counter = r.noise_counter;
    q.return_logits = r.out_logits != nullptr;
    entries[static_cast<size_t>(i)] = BatchEntry{&s->cache_view, &q, &results[static_cast<size_t>(i)]};
  }
  SdllmCudaModel& model = *sessions[0]->m;
  std::lock_guard<std::mutex> lock(model.mu);  // one forward at a time on the model's stream
  check(static_cast<int>(cudaSetDevice(model.device)), "cudaSetDevice");
  std::unique_ptr<ForwardOps> ops = cuda_forward_ops(model);
  run_forward(*ops, model.weights, entries.data(), entries.size());
  for (int64_t i = 0; i < n; ++i) {
    const ForwardResult& out = results[static_cast<size_t>(i)];
    const SdllmCudaForward& r = requests[i];
    std::memcpy(r.out_ids, out.token_ids.data(), sizeof(int32_t) * out.token_ids.size());
    std::memcpy(r.out_confidences, out.confidences.data(), sizeof(float) * out.confidences.size());
    if (r.out_logits) std::memcpy(r.out_logits, out.logits.data(), sizeof(float) * out.logits.size());
  }
  return 0;
}

int api_model_stats(SdllmCudaModel* m, SdllmCudaStats* out) {
  require(m != nullptr && out != nullptr, "model_stats: null argument");
  std::lock_guard<std::mutex> lock(m->mu);
  out->forwards = m->forwards;
  out->last_forward_launches = m->last_launches;
  out->last_forward_gemms = m->last_gemms;
  out->weight_bytes = m->weight_bytes;
  int64_t scratch = 0;
  for (const auto& b : m->f32) scratch += static_cast<int64_t>(b.n * sizeof(float));
  for (const auto& b : m->i32) scratch += static_cast<int64_t>(b.n * sizeof(int32_t));
  scratch += static_cast<int64_t>(m->keys.n * 8 + m->widen.n * 4 + m->narrow.n * 2 + m->attn_ws.n + m->conf_ws.n);
  out->scratch_bytes = scratch;
  out->graph_captures = m->graph_captures;
  out->graph_replays = m->graph_replays;
  out->last_forward_replayed = m->last_replayed ? 1 : 0;
  return 0;
}

// ---- the C boundary: no exception crosses it -------------------------------------

// `invalid` is returned for a request the shared forward rejected (std::invalid_argument):
// last_error() then holds its message as is, the same as the CPU backend's.
template <class R, class F>
R guarded(R failure, R invalid, F&& f) {
  try {
    t_error.clear();
    return f();
  } catch (const std::invalid_argument& e) {
    t_error = e.what();
    return invalid;
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
  return guarded(1, 1, [&] { return api_init(device); });
}
const char* c_last_error(void) { return api_last_error(); }
const char* c_describe(void) { return api_describe(); }
SdllmCudaModel* c_model_create(const SdllmCudaModelDesc* desc) {
  return guarded<SdllmCudaModel*>(nullptr, nullptr, [&] { return api_model_create(desc); });
}
void c_model_destroy(SdllmCudaModel* m) {
  guarded(0, 0, [&] {
    api_model_destroy(m);
    return 0;
  });
}
SdllmCudaSession* c_session_create(SdllmCudaModel* m, int64_t capacity) {
  return guarded<SdllmCudaSession*>(nullptr, nullptr, [&] { return api_session_create(m, capacity); });
}
void c_session_destroy(SdllmCudaSession* s) {
  guarded(0, 0, [&] {
    api_session_destroy(s);
    return 0;
  });
}
int c_session_forward(SdllmCudaSession* s, const SdllmCudaForward* r) {
  return guarded(1, SDLLM_CUDA_INVALID_REQUEST, [&] {
    if (!s || !r) throw Failure("session_forward: null argument");
    return api_forward_batch(&s, r, 1);
  });
}
int c_model_stats(SdllmCudaModel* m, SdllmCudaStats* out) {
  return guarded(1, 1, [&] { return api_model_stats(m, out); });
}
int c_forward_batch(SdllmCudaSession* const* sessions, const SdllmCudaForward* requests, int64_t n) {
  return guarded(1, SDLLM_CUDA_INVALID_REQUEST, [&] { return api_forward_batch(sessions, requests, n); });
}

const SdllmCudaApi kApi = {
    SDLLM_CUDA_ABI_VERSION, static_cast<uint32_t>(sizeof(SdllmCudaApi)),
    c_init,                 c_last_error,
    c_describe,             c_model_create,
    c_model_destroy,        c_session_create,
    c_session_destroy,      c_session_forward,
    c_forward_batch,        c_model_stats,
};

}  // namespace
}  // namespace cuda
}  // namespace sdllm

extern "C" SDLLM_CUDA_EXPORT const SdllmCudaApi* sdllm_cuda_api(int abi_version) {
  return abi_version == SDLLM_CUDA_ABI_VERSION ? &sdllm::cuda::kApi : nullptr;
}
