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

// The checks of Session::forward, with its messages, so that both backends reject a bad
// request the same way before anything runs.
void validate(const ForwardRequest& req, const ModelConfig& c, int64_t capacity) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument(what);
  };
  const int64_t n = static_cast<int64_t>(req.tokens.size());
  require(n > 0, "forward needs at least one token");
  require(static_cast<int64_t>(req.positions.size()) == n, "positions must have one entry per token");
  for (int64_t i = 0; i < n; i++) {
    require(req.tokens[i] >= 0 && req.tokens[i] < c.embedding_size,
            "token id " + std::to_string(req.tokens[i]) + " is outside the embedding table");
    require(req.positions[i] >= 0, "position ids must be non-negative");
  }
  require(req.cache_attend >= 0 && req.cache_attend <= capacity, "cacheAttend is outside the cache");
  if (req.cache_write_start >= 0) {
    require(req.cache_write_rows >= 0 && req.cache_write_rows <= n, "cacheWrite.rows exceeds the input rows");
    require(req.cache_write_start + req.cache_write_rows <= capacity, "cacheWrite range exceeds the cache capacity");
  }
  require(req.attend_self || req.cache_attend > 0, "a forward must attend to something");
  require(!req.predict_rows.empty(), "predictRows must not be empty");
  for (int32_t r : req.predict_rows) require(r >= 0 && r < n, "predictRows entry outside the input rows");
}

class CudaSessionBackend final : public SessionBackend {
 public:
  CudaSessionBackend(std::shared_ptr<CudaModel> model, SdllmCudaSession* handle, int64_t capacity)
      : model_(std::move(model)), handle_(handle), capacity_(capacity) {}
  ~CudaSessionBackend() override { model_->api->session_destroy(handle_); }
  int64_t capacity() const override { return capacity_; }

  ForwardResult forward(const ForwardRequest& req, ThreadPool&) override {
    validate(req, model_->config, capacity_);
    const size_t np = req.predict_rows.size();
    ForwardResult out;
    out.token_ids.resize(np);
    out.confidences.resize(np);
    if (req.return_logits) out.logits.resize(np * static_cast<size_t>(model_->config.vocab_size));
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
    if (model_->api->session_forward(handle_, &f) != 0) throw std::runtime_error(library_error(model_->api));
    return out;
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

std::unique_ptr<SessionBackend> cuda_session_create(std::shared_ptr<CudaModel> model, int64_t capacity) {
  if (capacity <= 0) throw std::invalid_argument("session capacity must be positive");
  SdllmCudaSession* s = model->api->session_create(model->handle, capacity);
  if (!s) throw std::runtime_error(library_error(model->api));
  return std::unique_ptr<SessionBackend>(new CudaSessionBackend(std::move(model), s, capacity));
}

}  // namespace sdllm
