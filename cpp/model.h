// A loaded checkpoint: its configuration and views of every weight in the mapped files.
// Both families (LLaDA and Dream/Qwen2) load into the same structure; they differ in
// tensor names, QKV biases and a few config keys, not in the forward pass.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dtype.h"
#include "kv_memory.h"

namespace sdllm {

enum class ModelFamily : int32_t { LLaDA = 0, Dream = 1 };

struct ModelConfig {
  ModelFamily family = ModelFamily::LLaDA;
  std::string model_type;       // as written in config.json
  int64_t d_model = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;         // d_model / n_heads
  int64_t n_layers = 0;
  int64_t mlp_hidden = 0;
  int64_t vocab_size = 0;       // real tokens: logits beyond this are never produced
  int64_t embedding_size = 0;   // rows of the embedding table (>= vocab_size)
  float rope_theta = 10000.f;
  float rms_norm_eps = 1e-5f;
  int64_t max_sequence_length = 0;
  bool weight_tying = false;
  bool qkv_bias = false;
  int64_t mask_token_id = -1;
  int64_t eos_token_id = -1;    // -1 when config.json does not say (Dream: generation_config.json)
  int64_t pad_token_id = -1;
  int64_t bos_token_id = -1;
};

struct LayerWeights {
  WeightView attn_norm, ff_norm;          // [1, d_model]
  WeightView wq, wk, wv, wo;              // [out, in]
  WeightView bq, bk, bv;                  // [1, out], empty when the family has no QKV bias
  WeightView w_gate, w_up, w_down;        // ff_proj, up_proj, ff_out in LLaDA names
};

struct MappedFile;  // a read-only memory map; defined in safetensors.h

struct Model {
  ModelConfig config;
  std::string dir;
  DType dtype = DType::F32;               // dtype of the linear weights
  WeightView embedding;                   // [embedding_size, d_model]
  std::vector<LayerWeights> layers;
  WeightView final_norm;                  // [1, d_model]
  WeightView lm_head;                     // [embedding_size (or vocab), d_model]; = embedding when tied
  std::vector<std::shared_ptr<MappedFile>> files;  // keep the maps alive as long as the views
  std::vector<std::string> file_names;
  int64_t weight_bytes = 0;
  // Q8_0 (dtype.h): true when any weight is Q8_0 (quantized at load or read from a Q8_0
  // checkpoint); the CUDA backend refuses such a model. Weights quantized at load live
  // in owned_buffers (the int8 values and their scales).
  bool has_q8 = false;
  std::vector<std::shared_ptr<const void>> owned_buffers;
  // Bytes of the copies repacked for the AVX-512 GEMM at load (cpp/repack.cpp: BF16 kept
  // 16-bit, F32/F16 as float32);
  // 0 when not repacked (another CPU, the CUDA backend, or over the budget).
  int64_t repacked_bytes = 0;
  // The KV cache memory of this model's CPU sessions, kept between sessions (kv_memory.h).
  std::shared_ptr<KvMemory> kv_memory = KvMemory::create();
};

class ThreadPool;

struct LoadOptions {
  // Quantize the linear weights (wq wk wv wo w_gate w_up w_down of every layer, and the
  // LM head unless it is tied to the embedding) to Q8_0 at load. The embedding table and
  // the norms stay in their file dtype. Tensors already Q8_0 in the file are kept.
  bool quantize_q8 = false;
  ThreadPool* pool = nullptr;  // runs the quantization; null = the calling thread only
  // Repack the float linear weights for the AVX-512 GEMM (repack_weights) within this many
  // bytes; -1 = the default budget, 0 = never (the CUDA backend: it uploads the mapped
  // tensors, whose pages a repack would drop).
  int64_t repack_budget_bytes = -1;
};

// Loads a Hugging Face model directory (config.json + model.safetensors or an indexed
// set of shards). Throws std::runtime_error naming the file and tensor on any defect.
// A Q8_0 checkpoint (written by `streaming-dllm quantize`) holds each quantized weight
// `<name>` as I8 [rows, cols] plus `<name>.q8_scales` F32 [rows, ceil(cols / 32)], and
// config.json says "sdllm_quantization": {"format": "q8_0", "group_size": 32}.
std::shared_ptr<Model> load_model(const std::string& dir);
std::shared_ptr<Model> load_model(const std::string& dir, const LoadOptions& options);

// Copies every float linear weight (and the LM head) into the AVX-512 GEMM's layout when
// this CPU runs that GEMM and the copies fit in budget_bytes (-1: three quarters of the
// memory available now); sets WeightView::packed / packed_bf16 and calls done_with on each
// weight copied (the loader drops its mapped pages). Returns the bytes repacked.
int64_t repack_weights(Model& model, ThreadPool* pool, int64_t budget_bytes,
                       const std::function<void(const WeightView&)>& done_with = {});

}  // namespace sdllm
