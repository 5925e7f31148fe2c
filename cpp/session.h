// A session: one sequence's KV cache on one model, and the forward pass over it.
// The TypeScript block loop decides what each forward feeds and caches; this file
// only does what one call asks.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "model.h"
#include "ops.h"

namespace sdllm {

struct ForwardRequest {
  std::vector<int32_t> tokens;      // the rows fed to the model
  std::vector<int32_t> positions;   // their true position ids (RoPE), one per row
  int64_t cache_attend = 0;         // keys/values from cache slots [0, cache_attend)
  int64_t cache_write_start = -1;   // >= 0: rows [0, cache_write_rows) go to slots [start, start + rows)
  int64_t cache_write_rows = 0;     //       before attention (RoPE'd keys, as the references rotate them)
  bool attend_self = true;          // also attend to the new rows themselves (after the cache segment)
  std::vector<int32_t> predict_rows;  // rows whose logits and top-1/confidence are wanted
  ConfidenceKind confidence = ConfidenceKind::Prob;
  float temperature = 0.f;
  float confidence_temperature = 1.f; // confidences from softmax(logits / this) (Dream: T when T > 0)
  uint64_t seed = 0;
  uint64_t noise_counter = 0;       // distinguishes the RNG draws of successive forwards
  bool return_logits = false;
};

struct ForwardResult {
  std::vector<int32_t> token_ids;   // per predict row
  std::vector<float> confidences;   // per predict row
  std::vector<float> logits;        // [predict rows, vocab] when asked
};

class Session {
 public:
  Session(std::shared_ptr<const Model> model, int64_t capacity);
  int64_t capacity() const { return capacity_; }
  const Model& model() const { return *model_; }
  // Validates the request against the cache and model (throws std::invalid_argument) and runs it.
  ForwardResult forward(const ForwardRequest& req, ThreadPool& pool);

 private:
  std::shared_ptr<const Model> model_;
  int64_t capacity_;
  int64_t kv_dim_;
  // Per layer: [capacity, n_kv_heads * head_dim] float32 keys (RoPE applied) and values.
  // Left uninitialised: only slots a forward has written are ever attended to.
  std::vector<std::unique_ptr<float[]>> k_cache_, v_cache_;
};

}  // namespace sdllm
