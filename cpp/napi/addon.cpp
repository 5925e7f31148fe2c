// The N-API surface: loadModel() -> Model, Model.createSession() -> Session,
// Session.forward(), Model.forwardBatch() and dispose(). Heavy calls are AsyncWorkers:
// the JS arguments are copied into plain C++ structs on the JS thread, the worker never
// touches JS values. Typed in types/native.d.ts.
#include <cmath>
#include <napi.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend.h"
#include "cpu_features.h"
#include "cuda_probe.h"
#include "fma_peak.h"
#include "model.h"
#include "request.h"
#include "session.h"
#include "threadpool.h"

namespace sdllm {
namespace {

int g_threads = 0;  // set by the first loadModel; the pool is process-wide

// Constructors live per environment (main thread and each worker_thread get their own).
struct AddonData {
  Napi::FunctionReference session_ctor;
  Napi::FunctionReference model_ctor;
};
AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

ThreadPool& pool() { return default_pool(g_threads); }

const char* family_name(ModelFamily f) { return f == ModelFamily::Dream ? "dream" : "llada"; }

Napi::Object model_info(Napi::Env env, const Model& m) {
  const ModelConfig& c = m.config;
  Napi::Object o = Napi::Object::New(env);
  o.Set("family", family_name(c.family));
  o.Set("modelType", c.model_type);
  o.Set("dModel", static_cast<double>(c.d_model));
  o.Set("nHeads", static_cast<double>(c.n_heads));
  o.Set("nKvHeads", static_cast<double>(c.n_kv_heads));
  o.Set("headDim", static_cast<double>(c.head_dim));
  o.Set("nLayers", static_cast<double>(c.n_layers));
  o.Set("mlpHidden", static_cast<double>(c.mlp_hidden));
  o.Set("vocabSize", static_cast<double>(c.vocab_size));
  o.Set("embeddingSize", static_cast<double>(c.embedding_size));
  o.Set("ropeTheta", c.rope_theta);
  o.Set("rmsNormEps", c.rms_norm_eps);
  o.Set("maxSequenceLength", static_cast<double>(c.max_sequence_length));
  o.Set("weightTying", c.weight_tying);
  o.Set("qkvBias", c.qkv_bias);
  o.Set("maskTokenId", static_cast<double>(c.mask_token_id));
  o.Set("eosTokenId", static_cast<double>(c.eos_token_id));
  o.Set("padTokenId", static_cast<double>(c.pad_token_id));
  o.Set("bosTokenId", static_cast<double>(c.bos_token_id));
  o.Set("dtype", dtype_name(m.dtype));
  Napi::Array files = Napi::Array::New(env, m.file_names.size());
  for (size_t i = 0; i < m.file_names.size(); i++) files.Set(static_cast<uint32_t>(i), m.file_names[i]);
  o.Set("files", files);
  o.Set("weightBytes", static_cast<double>(m.weight_bytes));
  o.Set("repackedBytes", static_cast<double>(m.repacked_bytes));
  return o;
}

// ---- Session -------------------------------------------------------------------

struct SessionState {
  std::unique_ptr<SessionBackend> session;  // the CPU Session or the CUDA library's (cpp/backend.h)
  const Model* owner = nullptr;  // the model it was created on: a batch holds one model's sessions
  std::mutex busy;  // one forward at a time per session: they share the cache
};

class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
  static void Init(Napi::Env env) {
    Napi::Function f = DefineClass(env, "Session",
                                   {InstanceAccessor<&SessionWrap::Capacity>("capacity"),
                                    InstanceMethod<&SessionWrap::Forward>("forward"),
                                    InstanceMethod<&SessionWrap::Dispose>("dispose")});
    addon_data(env).session_ctor = Napi::Persistent(f);
  }
  SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {}
  std::shared_ptr<SessionState> state;

 private:
  Napi::Value Capacity(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), state ? static_cast<double>(state->session->capacity()) : 0);
  }
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    state.reset();  // an in-flight forward keeps its own reference until it finishes
    return info.Env().Undefined();
  }
};

// One forward over one or more sessions (Session.forward is a batch of one). Holds every
// session's lock, taken in address order so that concurrent batches cannot deadlock.
class ForwardWorker : public Napi::AsyncWorker {
 public:
  ForwardWorker(Napi::Env env, std::vector<std::shared_ptr<SessionState>> states, std::vector<ForwardRequest> reqs,
                bool single)
      : Napi::AsyncWorker(env), states_(std::move(states)), reqs_(std::move(reqs)), single_(single), deferred_(env) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      std::vector<std::mutex*> locks;
      for (auto& st : states_) locks.push_back(&st->busy);
      std::sort(locks.begin(), locks.end());
      std::vector<std::unique_lock<std::mutex>> held;
      for (std::mutex* m : locks) held.emplace_back(*m);
      std::vector<BackendRequest> batch;
      for (size_t i = 0; i < states_.size(); i++) batch.push_back(BackendRequest{states_[i]->session.get(), &reqs_[i]});
      results_ = states_[0]->session->forward_batch(batch, pool());
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (single_) {
      deferred_.Resolve(result_object(env, results_[0]));
      return;
    }
    Napi::Array out = Napi::Array::New(env, results_.size());
    for (size_t i = 0; i < results_.size(); i++) out.Set(static_cast<uint32_t>(i), result_object(env, results_[i]));
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::vector<std::shared_ptr<SessionState>> states_;
  std::vector<ForwardRequest> reqs_;
  std::vector<ForwardResult> results_;
  bool single_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value SessionWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!state) throw Napi::Error::New(env, "Session is disposed");
  if (info.Length() < 1) throw Napi::TypeError::New(env, "Expected a request object");
  std::vector<ForwardRequest> reqs;
  reqs.push_back(parse_request(env, info[0]));
  auto* worker = new ForwardWorker(env, {state}, std::move(reqs), true);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// ---- Model ---------------------------------------------------------------------

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static void Init(Napi::Env env) {
    Napi::Function f = DefineClass(env, "Model",
                                   {InstanceAccessor<&ModelWrap::Info>("info"),
                                    InstanceAccessor<&ModelWrap::Backend>("backend"),
                                    InstanceAccessor<&ModelWrap::BackendDescription>("backendDescription"),
                                    InstanceMethod<&ModelWrap::CreateSession>("createSession"),
                                    InstanceMethod<&ModelWrap::ForwardBatch>("forwardBatch"),
                                    InstanceMethod<&ModelWrap::Dispose>("dispose")});
    addon_data(env).model_ctor = Napi::Persistent(f);
  }
  ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {}
  std::shared_ptr<const Model> model;
  std::shared_ptr<CudaModel> cuda;  // set when loaded with backend 'cuda': sessions run there

 private:
  Napi::Value Info(const Napi::CallbackInfo& info) {
    if (!model) throw Napi::Error::New(info.Env(), "Model is disposed");
    return model_info(info.Env(), *model);
  }
  Napi::Value Backend(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), cuda ? "cuda" : "cpu"); }
  Napi::Value BackendDescription(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), cuda ? cuda_model_description(*cuda) : "CPU");
  }
  Napi::Value CreateSession(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!model) throw Napi::Error::New(env, "Model is disposed");
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "Expected a capacity number");
    const double cap = info[0].As<Napi::Number>().DoubleValue();
    if (!(cap >= 1) || cap > 1e7) throw Napi::RangeError::New(env, "capacity must be between 1 and 1e7");
    Napi::Object obj = addon_data(env).session_ctor.New({});
    auto st = std::make_shared<SessionState>();
    try {
      if (cuda)
        st->session = cuda_session_create(cuda, static_cast<int64_t>(cap));
      else
        st->session = std::make_unique<CpuSessionBackend>(model, static_cast<int64_t>(cap));
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
    st->owner = model.get();
    SessionWrap::Unwrap(obj)->state = std::move(st);
    return obj;
  }
  // forwardBatch([{ session, request }, ...]): sessions of this model, each at most once.
  Napi::Value ForwardBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!model) throw Napi::Error::New(env, "Model is disposed");
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "Expected an array of { session, request }");
    Napi::Array items = info[0].As<Napi::Array>();
    if (items.Length() == 0) throw Napi::RangeError::New(env, "a batch needs at least one sequence");
    std::vector<std::shared_ptr<SessionState>> states;
    std::vector<ForwardRequest> reqs;
    for (uint32_t i = 0; i < items.Length(); i++) {
      const std::string at = "batch entry " + std::to_string(i);
      Napi::Value item = items.Get(i);
      if (!item.IsObject()) throw Napi::TypeError::New(env, "Expected { session, request } for " + at);
      Napi::Value sv = item.As<Napi::Object>().Get("session");
      if (!sv.IsObject() || !sv.As<Napi::Object>().InstanceOf(addon_data(env).session_ctor.Value()))
        throw Napi::TypeError::New(env, "Expected a Session for " + at + ".session");
      std::shared_ptr<SessionState> st = SessionWrap::Unwrap(sv.As<Napi::Object>())->state;
      if (!st) throw Napi::Error::New(env, "Session is disposed (" + at + ")");
      if (st->owner != model.get())
        throw Napi::Error::New(env, "the sessions of a batch must belong to one model (" + at + ")");
      for (const auto& other : states)
        if (other == st) throw Napi::Error::New(env, "a session appears more than once in the batch (" + at + ")");
      reqs.push_back(parse_request(env, item.As<Napi::Object>().Get("request")));
      states.push_back(std::move(st));
    }
    auto* worker = new ForwardWorker(env, std::move(states), std::move(reqs), false);
    Napi::Promise p = worker->Promise();
    worker->Queue();
    return p;
  }
  // Sessions hold their own reference: the mapped weights go once they are disposed too.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    model.reset();
    cuda.reset();  // the device weights go with the last session
    return info.Env().Undefined();
  }
};

class LoadWorker : public Napi::AsyncWorker {
 public:
  // cuda == nullptr: the CPU backend; otherwise the weights are also uploaded to the GPU.
  LoadWorker(Napi::Env env, std::string dir, std::unique_ptr<CudaOptions> cuda, bool quantize_q8 = false)
      : Napi::AsyncWorker(env), dir_(std::move(dir)), cuda_options_(std::move(cuda)), quantize_q8_(quantize_q8),
        deferred_(env) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      LoadOptions lo;
      lo.quantize_q8 = quantize_q8_;
      if (cuda_options_) lo.repack_budget_bytes = 0;  // the GPU holds the weights the GEMMs read
      lo.pool = &pool();  // starts the workers here, not on the JS thread
      model_ = load_model(dir_, lo);
      if (cuda_options_ && model_->has_q8)  // Q8_0 kernels exist on the CPU only
        throw std::runtime_error("CUDA backend: Q8_0 (8-bit) weights are supported by the CPU backend only; "
                                 "load this checkpoint with backend 'cpu'");
      if (cuda_options_) cuda_ = cuda_model_create(model_, *cuda_options_);
      pool();  // start the workers here, not on the JS thread
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Object obj = addon_data(Env()).model_ctor.New({});
    ModelWrap::Unwrap(obj)->model = std::move(model_);
    ModelWrap::Unwrap(obj)->cuda = std::move(cuda_);
    deferred_.Resolve(obj);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::string dir_;
  std::unique_ptr<CudaOptions> cuda_options_;
  bool quantize_q8_ = false;
  std::shared_ptr<const Model> model_;
  std::shared_ptr<CudaModel> cuda_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "Expected a directory string");
  std::unique_ptr<CudaOptions> cuda;
  bool quantize_q8 = false;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    // weights: 'file' (as stored, the default) or 'q8' (quantize the linear weights at load).
    Napi::Value wt = o.Get("weights");
    if (!wt.IsUndefined()) {
      const std::string name = wt.IsString() ? wt.As<Napi::String>().Utf8Value() : "";
      if (name != "file" && name != "q8") throw Napi::TypeError::New(env, "weights must be 'file' or 'q8'");
      quantize_q8 = name == "q8";
    }
    Napi::Value t = o.Get("threads");
    if (!t.IsUndefined()) {
      const double n = t.IsNumber() ? t.As<Napi::Number>().DoubleValue() : -1;
      if (!(n >= 0 && n <= 1024) || std::floor(n) != n)
        throw Napi::RangeError::New(env, "threads must be an integer in [0, 1024] (0: one per usable physical core)");
      if (g_threads == 0) g_threads = static_cast<int>(n);
    }
    // backend 'cuda' (lib/backend.ts decides; the CPU path never loads a CUDA library).
    Napi::Value b = o.Get("backend");
    if (!b.IsUndefined()) {
      const std::string name = b.IsString() ? b.As<Napi::String>().Utf8Value() : "";
      if (name != "cpu" && name != "cuda") throw Napi::TypeError::New(env, "backend must be 'cpu' or 'cuda'");
      if (name == "cuda") {
        cuda = std::make_unique<CudaOptions>();
        Napi::Value lib = o.Get("cudaLibrary");
        if (!lib.IsString()) throw Napi::TypeError::New(env, "Expected a string for cudaLibrary with backend 'cuda'");
        cuda->library = lib.As<Napi::String>().Utf8Value();
        // gpuPrecision: 'bf16' (default: BF16 tensor-core GEMMs and attention) or 'exact'
        // (float32 arithmetic as the CPU backend, for comparisons).
        Napi::Value prec = o.Get("gpuPrecision");
        if (!prec.IsUndefined()) {
          const std::string p = prec.IsString() ? prec.As<Napi::String>().Utf8Value() : "";
          if (p != "bf16" && p != "exact") throw Napi::TypeError::New(env, "gpuPrecision must be 'bf16' or 'exact'");
          cuda->gemm_mode = p == "exact" ? kCudaGemmExact : kCudaGemmBf16;
        }
        Napi::Value dev = o.Get("device");
        if (!dev.IsUndefined()) {
          if (!dev.IsNumber() || dev.As<Napi::Number>().DoubleValue() < 0)
            throw Napi::TypeError::New(env, "Expected a non-negative integer for device");
          cuda->device = dev.As<Napi::Number>().Int32Value();
        }
      }
    }
  }
  if (quantize_q8 && cuda)
    throw Napi::Error::New(env, "weights 'q8' is supported by the CPU backend only (backend 'cuda' keeps the file dtype)");
  auto* worker = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), std::move(cuda), quantize_q8);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// Synchronous but short: a few dlopen/dlsym calls. lib/ runs it in a child process first.
Napi::Value ProbeCuda(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CudaProbe p = probe_cuda();
  Napi::Object o = Napi::Object::New(env);
  o.Set("driverFound", p.driver_found);
  o.Set("driverLibrary", p.driver_library);
  o.Set("driverError", p.driver_error);
  o.Set("driverVersion", p.driver_version);
  o.Set("driverRelease", p.driver_release);
  Napi::Array devices = Napi::Array::New(env, p.devices.size());
  for (size_t i = 0; i < p.devices.size(); i++) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("name", p.devices[i].name);
    d.Set("totalMemory", static_cast<double>(p.devices[i].total_memory));
    d.Set("computeCapability", std::to_string(p.devices[i].cc_major) + "." + std::to_string(p.devices[i].cc_minor));
    devices.Set(static_cast<uint32_t>(i), d);
  }
  o.Set("devices", devices);
  o.Set("cublasFound", p.cublas_found);
  o.Set("cublasLibrary", p.cublas_library);
  o.Set("cublasError", p.cublas_error);
  return o;
}

// measureFmaPeak({ threads, seconds }): the register-only FMA loop of fma_peak.h on the
// pool, off the JS thread; resolves to GFLOP/s (0 without AVX2+FMA). For benchmarks.
class PeakWorker : public Napi::AsyncWorker {
 public:
  PeakWorker(Napi::Env env, int threads, double seconds)
      : Napi::AsyncWorker(env), threads_(threads), seconds_(seconds), deferred_(env) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { gflops_ = fma_peak_gflops(pool(), seconds_, 3, threads_); }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), gflops_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  int threads_;
  double seconds_;
  double gflops_ = 0;
  Napi::Promise::Deferred deferred_;
};

Napi::Value MeasureFmaPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int threads = 0;
  double seconds = 0.2;
  if (info.Length() > 0 && info[0].IsObject()) {
    Napi::Object o = info[0].As<Napi::Object>();
    if (o.Get("threads").IsNumber()) threads = o.Get("threads").As<Napi::Number>().Int32Value();
    if (o.Get("seconds").IsNumber()) seconds = o.Get("seconds").As<Napi::Number>().DoubleValue();
  }
  if (threads < 0 || !(seconds > 0 && seconds <= 10))
    throw Napi::RangeError::New(env, "measureFmaPeak: threads >= 0 and 0 < seconds <= 10");
  auto* worker = new PeakWorker(env, threads, seconds);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

Napi::Value RuntimeInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuFeatures& f = cpu_features();
  Napi::Object o = Napi::Object::New(env);
  o.Set("avx2", f.avx2);
  o.Set("fma", f.fma);
  o.Set("avx512", f.avx512);
  o.Set("kernels", cpu_kernels_name());
  o.Set("threads", pool().size());
  o.Set("threadsReason", default_pool_sizing());
  return o;
}

}  // namespace
}  // namespace sdllm

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  using namespace sdllm;
  env.SetInstanceData(new AddonData());
  SessionWrap::Init(env);
  ModelWrap::Init(env);
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
  exports.Set("runtimeInfo", Napi::Function::New(env, RuntimeInfo));
  exports.Set("probeCuda", Napi::Function::New(env, ProbeCuda));
  exports.Set("measureFmaPeak", Napi::Function::New(env, MeasureFmaPeak));
  return exports;
}

NODE_API_MODULE(streaming_dllm, InitAddon)
