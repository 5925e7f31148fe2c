// Backends of a session: the CPU Session (cpp/session.h, the reference) or the CUDA
// backend library (cuda/backend.h, loaded at run time by cpp/cuda_backend.cpp). The
// addon talks to a session only through SessionBackend, so both run the same requests.
// This file and cuda_backend.cpp need no CUDA headers and never load CUDA by themselves.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model.h"
#include "session.h"
#include "threadpool.h"

struct SdllmCudaApi;  // cuda/backend.h

namespace sdllm {

class SessionBackend;

struct BackendRequest {
  SessionBackend* session = nullptr;
  const ForwardRequest* request = nullptr;
};

class SessionBackend {
 public:
  virtual ~SessionBackend() = default;
  virtual int64_t capacity() const = 0;
  // Runs one forward over `batch` (sessions of this backend and of one model, each at
  // most once; `this` is one of them) through the shared forward (forward.h). Invalid
  // requests throw std::invalid_argument with the shared messages before anything runs;
  // backend failures are std::runtime_error with the backend's message.
  virtual std::vector<ForwardResult> forward_batch(const std::vector<BackendRequest>& batch, ThreadPool& pool) = 0;
  ForwardResult forward(const ForwardRequest& req, ThreadPool& pool) {
    return std::move(forward_batch({BackendRequest{this, &req}}, pool)[0]);
  }
};

// The CPU backend: an adapter over Session.
class CpuSessionBackend final : public SessionBackend {
 public:
  CpuSessionBackend(std::shared_ptr<const Model> model, int64_t capacity) : session_(std::move(model), capacity) {}
  int64_t capacity() const override { return session_.capacity(); }
  std::vector<ForwardResult> forward_batch(const std::vector<BackendRequest>& batch, ThreadPool& pool) override;

 private:
  Session session_;
};

// CudaOptions::gemm_mode values (cuda/backend.h SDLLM_CUDA_GEMM_*, without its header).
constexpr int kCudaGemmExact = 0;  // float32 activations and attention: the CPU's arithmetic
constexpr int kCudaGemmBf16 = 1;   // BF16 activations, tensor-core GEMMs and attention

struct CudaOptions {
  std::string library;  // path of libsdllm_cuda.so (lib/backend.ts finds it)
  int device = 0;
  int gemm_mode = kCudaGemmBf16;
  int64_t widen_chunk_elems = 0;  // tests: 0 = the library's default
};

// A model's weights on the GPU. Holds the host model (its views were the source) and the
// library; destroyed after the last session that uses it.
class CudaModel;

// dlopens options.library, checks its ABI version, initialises the device and uploads
// the weights. Throws std::runtime_error with the library's message on any failure.
std::shared_ptr<CudaModel> cuda_model_create(std::shared_ptr<const Model> model, const CudaOptions& options);
// The same with a function table already in hand (tests link the library statically).
std::shared_ptr<CudaModel> cuda_model_create_with_api(std::shared_ptr<const Model> model, const CudaOptions& options,
                                                      const SdllmCudaApi* api);
// "device 0: sm_90, 132 SMs; cuBLAS libcublas.so.13"
std::string cuda_model_description(const CudaModel& model);
std::unique_ptr<SessionBackend> cuda_session_create(std::shared_ptr<CudaModel> model, int64_t capacity);

// The model executor's counters (cuda/backend.h SdllmCudaStats).
struct CudaModelStats {
  int64_t forwards = 0, last_forward_launches = 0, last_forward_gemms = 0, weight_bytes = 0, scratch_bytes = 0;
  int64_t graph_captures = 0, graph_replays = 0;
  bool last_forward_replayed = false;
};
CudaModelStats cuda_model_stats(const CudaModel& model);

}  // namespace sdllm
