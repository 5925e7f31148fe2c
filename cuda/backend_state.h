// backend_state.h: what the CUDA library keeps between calls, shared by backend.cu (the
// C ABI, weight upload, sessions) and forward_ops.cu (the ForwardOps the shared forward
// of cpp/forward.cpp runs on): the process-wide device state, device arrays that only
// grow, a model's device weights and a session's KV cache, stream and scratch.
#pragma once
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cpp/forward.h"
#include "common.cuh"
#include "cublas_loader.h"

namespace sdllm {
namespace cuda {
namespace backend_detail {

// A failure of the library (device, cuBLAS, memory): std::runtime_error.
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
inline Global& global() {
  static Global g;
  return g;
}

inline void check(int err, const std::string& what) {
  if (err) throw Failure(what + ": " + cudaGetErrorString(static_cast<cudaError_t>(err)));
}
inline void check_blas(int status, const char* what) {
  if (status != kCublasStatusSuccess)
    throw Failure(std::string("cuBLAS ") + what + " failed with status " + std::to_string(status));
}

inline void* device_alloc(size_t bytes, const char* what) {
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
  // Geometric growth: a run of slightly larger requests reallocates O(log) times.
  T* reserve(size_t need, const char* what) {
    if (need <= n) return p;
    const size_t grown = need < n + n / 2 ? n + n / 2 : need;
    if (p) cudaFree(p);
    p = nullptr;
    n = 0;
    p = static_cast<T*>(device_alloc(sizeof(T) * grown, what));
    n = grown;
    return p;
  }
};

}  // namespace backend_detail
}  // namespace cuda
}  // namespace sdllm

// A model's device weights and the executor of its forwards: one stream, one cuBLAS
// handle and one set of scratch buffers, used by one forward (batch) at a time (mu).
// Scratch grows geometrically and is sized ahead by every session_create for the largest
// request that session can receive, so a forward normally allocates nothing.
struct SdllmCudaModel {
  template <class T>
  using Buffer = sdllm::cuda::backend_detail::Buffer<T>;
  int device = 0;
  int32_t gemm_mode = 0;    // SDLLM_CUDA_GEMM_* of backend.h
  int64_t widen_chunk = 0;  // EXACT: elements widened per chunk
  sdllm::ForwardModel weights;  // device views; config holds the dimensions
  std::vector<void*> allocations;
  int64_t weight_bytes = 0;

  std::mutex mu;
  cudaStream_t stream = nullptr;
  void* blas = nullptr;
  Buffer<float> f32[static_cast<int>(sdllm::ForwardOps::Scratch::Count)];
  Buffer<int32_t> i32[static_cast<int>(sdllm::ForwardOps::Index::Count)];
  Buffer<uint64_t> keys;
  Buffer<float> widen;
  Buffer<uint16_t> narrow;
  Buffer<unsigned char> attn_ws, conf_ws;
  // Counted by the ops of the last forward (model_stats in backend.h).
  int64_t last_launches = 0, last_gemms = 0, forwards = 0;

  // CUDA graphs of the layers segment (forward_ops.cu), by segment signature and the
  // addresses of every buffer they use; a signature's second sighting is captured.
  std::map<std::string, cudaGraphExec_t> graphs;
  std::map<std::string, int> sightings;  // -1: its capture failed, never try again
  bool graphs_enabled = true;
  unsigned char* pinned = nullptr;  // page-locked staging of the segment's uploads
  size_t pinned_bytes = 0;
  int64_t graph_captures = 0, graph_replays = 0;
  bool last_replayed = false;

  void drop_graphs() {
    for (auto& g : graphs) cudaGraphExecDestroy(g.second);
    graphs.clear();
  }
  ~SdllmCudaModel() {
    cudaSetDevice(device);
    drop_graphs();
    if (pinned) cudaFreeHost(pinned);
    if (blas) sdllm::cuda::backend_detail::global().cublas->destroy(blas);
    if (stream) cudaStreamDestroy(stream);
    for (void* p : allocations) cudaFree(p);
  }
};

// One sequence's KV cache on a model.
struct SdllmCudaSession {
  SdllmCudaModel* m = nullptr;
  float* cache = nullptr;  // [n_layers][K, V][capacity, n_kv * head_dim]
  sdllm::KvCacheView cache_view;
  ~SdllmCudaSession() {
    cudaSetDevice(m->device);
    if (cache) cudaFree(cache);
  }
};
