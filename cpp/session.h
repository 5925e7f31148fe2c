// A session: one sequence's KV cache on one model. Its forwards, alone or batched with
// other sessions of the same model, run the shared forward pass (forward.h) on the CPU ops.
// The TypeScript block loop decides what each forward feeds and caches.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "forward.h"
#include "model.h"
#include "threadpool.h"

namespace sdllm {

class Session {
 public:
  Session(std::shared_ptr<const Model> model, int64_t capacity);
  int64_t capacity() const { return capacity_; }
  const Model& model() const { return *model_; }
  const KvCacheView& cache() const { return cache_view_; }
  const ForwardModel& weights() const { return weights_; }
  // A batch of one: validates the request (std::invalid_argument) and runs it.
  ForwardResult forward(const ForwardRequest& req, ThreadPool& pool);

 private:
  std::shared_ptr<const Model> model_;
  int64_t capacity_;
  ForwardModel weights_;  // the forward's views of model_'s weights
  // Per layer: [capacity, n_kv_heads * head_dim] float32 keys (RoPE applied) and values,
  // all in one block from the model's KvMemory (kv_memory.h), which takes it back for the
  // next session. Left uninitialised (or as a previous session left it): only slots a
  // forward has written are ever attended to.
  std::shared_ptr<float> cache_memory_;
  KvCacheView cache_view_;
};

struct SessionRequest {
  Session* session = nullptr;
  const ForwardRequest* request = nullptr;
};

// One forward over several sessions of one model, each at most once; results in order.
std::vector<ForwardResult> forward_batch(const std::vector<SessionRequest>& batch, ThreadPool& pool);

}  // namespace sdllm
