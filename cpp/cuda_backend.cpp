// The CUDA side of cpp/backend.h: loads libsdllm_cuda at run time (dlopen; nothing is
// linked, no CUDA header is needed), checks its ABI version and drives its function
// table (cuda/backend.h). Only loadModel(..., { backend: 'cuda' }) gets here.
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cuda/backend.h"
#include "backend.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace sdllm {

static_assert(kCudaGemmExact == SDLLM_CUDA_GEMM_EXACT && kCudaGemmBf16 == SDLLM_CUDA_GEMM_WEIGHT_DTYPE,
              "cpp/backend.h's gemm modes are cuda/backend.h's");

class CudaModel {
 public:
  CudaModel(const SdllmCudaApi* api, SdllmCudaModel* handle, ModelConfig config, std::string description)
      : api(api), handle(handle), config(std::move(config)), description(std::move(description)) {}
  ~CudaModel() { api->model_destroy(handle); }
  CudaModel(const CudaModel&) = delete;
  CudaModel& operator=(const CudaModel&) = delete;
  const SdllmCudaApi* api;
  SdllmCudaModel* handle;
  ModelConfig config;
  std::string description;
};

namespace {

std::string library_error(const SdllmCudaApi* api) {
  const char* e = api->last_error();
  return e && *e ? e : "CUDA backend: unknown error";
}

// Opens `path` once per process and returns its function table; libraries are never
// unloaded (device memory and the CUDA runtime inside must outlive every model).
const SdllmCudaApi* load_api(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, const SdllmCudaApi*> loaded;
  std::lock_guard<std::mutex> lock(mu);
  auto it = loaded.find(path);
  if (it != loaded.end()) return it->second;
  if (path.empty()) throw std::runtime_error("CUDA backend: no library path was given");
#ifdef _WIN32
  HMODULE lib = LoadLibraryA(path.c_str());
  if (!lib)
    throw std::runtime_error("CUDA backend: cannot load " + path + " (LoadLibrary error " +
                             std::to_string(GetLastError()) + ")");
  auto fn = reinterpret_cast<SdllmCudaApiFn>(reinterpret_cast<void*>(GetProcAddress(lib, "sdllm_cuda_api")));
#else
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    throw std::runtime_error("CUDA backend: cannot load " + path + ": " + (why ? why : "dlopen failed"));
  }
  auto fn = reinterpret_cast<SdllmCudaApiFn>(dlsym(lib, "sdllm_cuda_api"));
#endif
  if (!fn) throw std::runtime_error("CUDA backend: " + path + " is not a streaming-dllm CUDA library (no sdllm_cuda_api)");
  const SdllmCudaApi* api = fn(SDLLM_CUDA_ABI_VERSION);
  if (!api)
    throw std::runtime_error("CUDA backend: " + path + " was built for another ABI version than this addon (which needs " +
                             std::to_string(SDLLM_CUDA_ABI_VERSION) + "); rebuild both from the same sources");
  loaded[path] = api;
  return api;
}

SdllmCudaTensor tensor(const WeightView& w) {
  SdllmCudaTensor t;
  t.data = w.data;
  t.dtype = static_cast<int32_t>(w.dtype);
  t.rows = w.rows;
  t.cols = w.cols;
  return t;
}

// The C form of one request; out_* point into `out`, sized here.
SdllmCudaForward c_request(const ForwardRequest& req, ForwardResult& out, int64_t vocab) {
  const size_t np = req.predict_rows.size();
  out.token_ids.resize(np);
  out.confidences.resize(np);
  if (req.return_logits) out.logits.resize(np * static_cast<size_t>(vocab));
  SdllmCudaForward f{};
  f.tokens = req.tokens.data();
  f.positions = req.positions.data();
  f.n_tokens = static_cast<int64_t>(req.tokens.size());
  f.cache_attend = req.cache_attend;
  f.cache_write_start = req.cache_write_start;
  f.cache_write_rows = req.cache_write_rows;
  f.attend_self = req.attend_self ? 1 : 0;
  f.predict_rows = req.predict_rows.data();
  f.n_predict = static_cast<int64_t>(np);
  f.confidence = static_cast<int32_t>(req.confidence);
  f.temperature = req.temperature;
  f.confidence_temperature = req.confidence_temperature;
  f.seed = req.seed;
  f.noise_counter = req.noise_counter;
  f.out_ids = out.token_ids.data();
  f.out_confidences = out.confidences.data();
  f.out_logits = req.return_logits ? out.logits.data() : nullptr;
  return f;
}

class CudaSessionBackend final : public SessionBackend {
 public:
  CudaSessionBackend(std::shared_ptr<CudaModel> model, SdllmCudaSession* handle, int64_t capacity)
      : model_(std::move(model)), handle_(handle), capacity_(capacity) {}
  ~CudaSessionBackend() override { model_->api->session_destroy(handle_); }
  int64_t capacity() const override { return capacity_; }

  // The library validates (the shared forward's checks and messages): a rejected request
  // comes back as SDLLM_CUDA_INVALID_REQUEST and is thrown as std::invalid_argument.
  std::vector<ForwardResult> forward_batch(const std::vector<BackendRequest>& batch, ThreadPool&) override {
    std::vector<ForwardResult> results(batch.size());
    std::vector<SdllmCudaSession*> sessions(batch.size());
    std::vector<SdllmCudaForward> requests(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      auto* s = dynamic_cast<CudaSessionBackend*>(batch[i].session);
      if (!s) throw std::invalid_argument("a batch cannot mix sessions of different backends");
      if (s->model_ != model_) throw std::invalid_argument("the sessions of a batch must belong to one model");
      if (!batch[i].request) throw std::invalid_argument("a batch entry needs a session and a request");
      sessions[i] = s->handle_;
      requests[i] = c_request(*batch[i].request, results[i], model_->config.vocab_size);
    }
    const int status = model_->api->forward_batch(sessions.data(), requests.data(), static_cast<int64_t>(batch.size()));
    if (status == SDLLM_CUDA_INVALID_REQUEST) throw std::invalid_argument(model_->api->last_error());
    if (status != 0) throw std::runtime_error(library_error(model_->api));
    return results;
  }

 private:
  std::shared_ptr<CudaModel> model_;
  SdllmCudaSession* handle_;
  int64_t capacity_;
};

}  // namespace

std::shared_ptr<CudaModel> cuda_model_create_with_api(std::shared_ptr<const Model> model, const CudaOptions& options,
                                                      const SdllmCudaApi* api) {
  if (!api) throw std::runtime_error("CUDA backend: no function table");
  if (api->abi_version != SDLLM_CUDA_ABI_VERSION || api->struct_size < sizeof(SdllmCudaApi))
    throw std::runtime_error("CUDA backend: the library's function table does not match this addon's ABI version " +
                             std::to_string(SDLLM_CUDA_ABI_VERSION));
  if (api->init(options.device) != 0) throw std::runtime_error(library_error(api));
  const Model& m = *model;
  const ModelConfig& c = m.config;
  std::vector<SdllmCudaLayer> layers(m.layers.size());
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const LayerWeights& w = m.layers[l];
    SdllmCudaLayer& o = layers[l];
    o.attn_norm = tensor(w.attn_norm);
    o.ff_norm = tensor(w.ff_norm);
    o.wq = tensor(w.wq);
    o.wk = tensor(w.wk);
    o.wv = tensor(w.wv);
    o.wo = tensor(w.wo);
    o.bq = tensor(w.bq);
    o.bk = tensor(w.bk);
    o.bv = tensor(w.bv);
    o.w_gate = tensor(w.w_gate);
    o.w_up = tensor(w.w_up);
    o.w_down = tensor(w.w_down);
  }
  SdllmCudaModelDesc d{};
  d.d_model = c.d_model;
  d.n_heads = c.n_heads;
  d.n_kv_heads = c.n_kv_heads;
  d.head_dim = c.head_dim;
  d.n_layers = c.n_layers;
  d.mlp_hidden = c.mlp_hidden;
  d.vocab_size = c.vocab_size;
  d.embedding_size = c.embedding_size;
  d.rope_theta = c.rope_theta;
  d.rms_norm_eps = c.rms_norm_eps;
  d.embedding = tensor(m.embedding);
  d.final_norm = tensor(m.final_norm);
  d.lm_head = tensor(m.lm_head);
  d.layers = layers.data();
  d.gemm_mode = options.gemm_mode;
  d.widen_chunk_elems = options.widen_chunk_elems;
  SdllmCudaModel* handle = api->model_create(&d);
  if (!handle) throw std::runtime_error(library_error(api));
  return std::make_shared<CudaModel>(api, handle, c, api->describe());
}

std::shared_ptr<CudaModel> cuda_model_create(std::shared_ptr<const Model> model, const CudaOptions& options) {
  return cuda_model_create_with_api(std::move(model), options, load_api(options.library));
}

std::string cuda_model_description(const CudaModel& model) { return model.description; }

CudaModelStats cuda_model_stats(const CudaModel& model) {
  SdllmCudaStats s{};
  if (model.api->model_stats(model.handle, &s) != 0) throw std::runtime_error(library_error(model.api));
  CudaModelStats out;
  out.forwards = s.forwards;
  out.last_forward_launches = s.last_forward_launches;
  out.last_forward_gemms = s.last_forward_gemms;
  out.weight_bytes = s.weight_bytes;
  out.scratch_bytes = s.scratch_bytes;
  out.graph_captures = s.graph_captures;
  out.graph_replays = s.graph_replays;
  out.last_forward_replayed = s.last_forward_replayed != 0;
  return out;
}

std::unique_ptr<SessionBackend> cuda_session_create(std::shared_ptr<CudaModel> model, int64_t capacity) {
  if (capacity <= 0) throw std::invalid_argument("session capacity must be positive");
  SdllmCudaSession* s = model->api->session_create(model->handle, capacity);
  if (!s) throw std::runtime_error(library_error(model->api));
  return std::unique_ptr<SessionBackend>(new CudaSessionBackend(std::move(model), s, capacity));
}

}  // namespace sdllm
