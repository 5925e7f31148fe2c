// The model directory's config files: config.json (and Dream's generation_config.json)
// read into a ModelConfig, every value type-checked and range-checked with errors that
// name the file and the key, before any tensor is touched (cpp/loader.cpp then checks
// every tensor's shape against it).
#pragma once
#include <string>

#include "json.h"
#include "model.h"

namespace sdllm {

struct CheckpointConfig {
  ModelConfig model;
  bool q8_checkpoint = false;  // written by `streaming-dllm quantize` (config.json's "sdllm_quantization")
};

// Throws std::runtime_error naming the file and the key for a missing or malformed
// config, an unsupported model_type or inconsistent sizes.
CheckpointConfig read_checkpoint_config(const std::string& dir);

// File helpers the loader shares: dir + "/" + name; whether a file can be opened; a small
// JSON file (config, index; never a safetensors header) parsed.
std::string join_path(const std::string& dir, const std::string& name);
bool file_exists(const std::string& path);
JsonValue read_json_file(const std::string& path);

}  // namespace sdllm
