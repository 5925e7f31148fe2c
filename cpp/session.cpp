// Sessions on the CPU: the KV cache memory, and the shared forward run on the CPU ops.
#include "session.h"

#include <stdexcept>

#include "backend.h"
#include "cpu_forward_ops.h"
#include "op_times.h"

namespace sdllm {

Session::Session(std::shared_ptr<const Model> model, int64_t capacity)
    : model_(std::move(model)), capacity_(capacity), weights_(forward_model_of(*model_)) {
  const ModelConfig& c = model_->config;
  if (capacity_ <= 0) throw std::invalid_argument("session capacity must be positive");
  const int64_t kv_dim = c.n_kv_heads * c.head_dim;
  // Each layer's keys, then its values, at whole cache lines plus one more: with a stride of
  // a power of two (capacity 128 x 512 floats) a layer's K and V rows, read side by side by
  // the attention, would fall on the same cache sets.
  const int64_t region = (capacity_ * kv_dim + 15) / 16 * 16 + 16;
  cache_memory_ = model_->kv_memory->acquire(2 * c.n_layers * region);
  cache_view_.capacity = capacity_;
  for (int64_t l = 0; l < c.n_layers; l++) {
    cache_view_.k.push_back(cache_memory_.get() + 2 * l * region);
    cache_view_.v.push_back(cache_memory_.get() + (2 * l + 1) * region);
  }
}

ForwardResult Session::forward(const ForwardRequest& req, ThreadPool& pool) {
  return std::move(forward_batch({SessionRequest{this, &req}}, pool)[0]);
}

std::vector<ForwardResult> forward_batch(const std::vector<SessionRequest>& batch, ThreadPool& pool) {
  if (batch.empty()) throw std::invalid_argument("a batch needs at least one sequence");
  std::vector<ForwardResult> results(batch.size());
  std::vector<BatchEntry> entries(batch.size());
  const Model* model = nullptr;
  for (size_t i = 0; i < batch.size(); i++) {
    if (!batch[i].session || !batch[i].request) throw std::invalid_argument("a batch entry needs a session and a request");
    if (model && &batch[i].session->model() != model)
      throw std::invalid_argument("the sessions of a batch must belong to one model");
    model = &batch[i].session->model();
    entries[i] = BatchEntry{&batch[i].session->cache(), batch[i].request, &results[i]};
  }
  std::unique_ptr<ForwardOps> ops = cpu_forward_ops(pool);
  if (op_times_enabled()) ops = timed_forward_ops(std::move(ops));
  run_forward(*ops, batch[0].session->weights(), entries.data(), entries.size());
  return results;
}

std::vector<ForwardResult> CpuSessionBackend::forward_batch(const std::vector<BackendRequest>& batch,
                                                          ThreadPool& pool) {
  std::vector<SessionRequest> sessions;
  sessions.reserve(batch.size());
  for (const BackendRequest& b : batch) {
    auto* cpu = dynamic_cast<CpuSessionBackend*>(b.session);
    if (!cpu) throw std::invalid_argument("a batch cannot mix sessions of different backends");
    sessions.push_back(SessionRequest{&cpu->session_, b.request});
  }
  return sdllm::forward_batch(sessions, pool);
}

}  // namespace sdllm
