// read_checkpoint_config (config.h): config.json of a LLaDA or Dream directory into a
// ModelConfig, with Dream's generation_config.json for its EOS, and the Q8_0 marker that
// `streaming-dllm quantize` writes.
#include "config.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace sdllm {

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  char last = dir.back();
  return (last == '/' || last == '\\') ? dir + name : dir + "/" + name;
}

bool file_exists(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return f.good();
}

// Small JSON files only (config, index): a safetensors header never goes through here.
JsonValue read_json_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path + ": no such file or not readable");
  std::ostringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  try {
    return parse_json(text);
  } catch (const JsonError& e) {
    throw std::runtime_error(path + ": invalid JSON: " + e.what());
  }
}

namespace {

// Typed access to config.json with errors that name the file and the key.
class ConfigReader {
 public:
  ConfigReader(const JsonValue& root, std::string path) : root_(root), path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& why) const { throw std::runtime_error(path_ + ": " + why); }

  const JsonValue* get(const char* key) const {
    const JsonValue* v = root_.find(key);
    return (v && !v->is_null()) ? v : nullptr;  // null means "use the default" in HF configs
  }
  bool has(const char* key) const { return get(key) != nullptr; }

  int64_t integer(const char* key) const {
    const JsonValue* v = get(key);
    if (!v) fail(std::string("required key \"") + key + "\" is missing");
    return as_int(key, *v);
  }
  int64_t integer(const char* key, int64_t def) const {
    const JsonValue* v = get(key);
    return v ? as_int(key, *v) : def;
  }
  int64_t positive(const char* key) const {
    const int64_t v = integer(key);
    check_positive(key, v);
    return v;
  }
  void check_positive(const char* key, int64_t v) const {
    // The upper bound keeps a hostile config from asking for absurd allocations.
    if (v <= 0 || v > (int64_t(1) << 32))
      fail(std::string("\"") + key + "\" must be a positive integer, got " + std::to_string(v));
  }
  double number(const char* key, double def) const {
    const JsonValue* v = get(key);
    if (!v) return def;
    if (!v->is_number()) fail(std::string("\"") + key + "\" must be a number");
    return v->number;
  }
  bool boolean(const char* key, bool def) const {
    const JsonValue* v = get(key);
    if (!v) return def;
    if (!v->is_bool()) fail(std::string("\"") + key + "\" must be true or false");
    return v->boolean;
  }
  std::string string(const char* key, const std::string& def) const {
    const JsonValue* v = get(key);
    if (!v) return def;
    if (!v->is_string()) fail(std::string("\"") + key + "\" must be a string");
    return v->string;
  }

 private:
  int64_t as_int(const char* key, const JsonValue& v) const {
    if (!v.is_number() || !v.is_int) fail(std::string("\"") + key + "\" must be an integer");
    return v.integer;
  }
  const JsonValue& root_;
  std::string path_;
};

// eos_token_id may be an integer or a list (generation_config.json of Qwen-style
// models lists several); the first one is the primary EOS.
int64_t token_id_value(const JsonValue* v, const std::string& path, const char* key) {
  if (!v || v->is_null()) return -1;
  if (v->is_array()) {
    if (v->array.empty()) return -1;
    v = &v->array[0];
  }
  if (!v->is_number() || !v->is_int)
    throw std::runtime_error(path + ": \"" + key + "\" must be an integer or a list of integers");
  return v->integer;
}

void parse_llada_config(const ConfigReader& c, ModelConfig& m) {
  m.family = ModelFamily::LLaDA;
  // Settings that would change the architecture: refuse rather than compute garbage.
  const std::string block_type = c.string("block_type", "");
  if (block_type != "llama")
    c.fail("unsupported LLaDA block_type \"" + block_type + "\" (only \"llama\" is supported)");
  const std::string act = c.string("activation_type", "silu");
  if (act != "silu") c.fail("unsupported LLaDA activation_type \"" + act + "\" (only \"silu\" is supported)");
  const std::string norm = c.string("layer_norm_type", "rms");
  if (norm != "rms") c.fail("unsupported LLaDA layer_norm_type \"" + norm + "\" (only \"rms\" is supported)");
  if (c.boolean("include_bias", false)) c.fail("unsupported LLaDA setting include_bias = true");
  if (!c.boolean("rope", true)) c.fail("unsupported LLaDA setting rope = false");
  if (c.boolean("alibi", false)) c.fail("unsupported LLaDA setting alibi = true");
  if (c.boolean("attention_layer_norm", false)) c.fail("unsupported LLaDA setting attention_layer_norm = true");
  if (c.boolean("scale_logits", false)) c.fail("unsupported LLaDA setting scale_logits = true");
  if (c.boolean("input_emb_norm", false)) c.fail("unsupported LLaDA setting input_emb_norm = true");
  if (!c.boolean("layer_norm_with_affine", true)) c.fail("unsupported LLaDA setting layer_norm_with_affine = false");
  if (c.has("clip_qkv")) c.fail("unsupported LLaDA setting clip_qkv (must be null)");

  m.d_model = c.positive("d_model");
  m.n_heads = c.positive("n_heads");
  // LLaDAConfig.effective_n_kv_heads: multi-query means one KV head; null means MHA.
  if (c.boolean("multi_query_attention", false)) m.n_kv_heads = 1;
  else if (c.has("n_kv_heads")) m.n_kv_heads = c.integer("n_kv_heads");
  else if (c.has("effective_n_kv_heads")) m.n_kv_heads = c.integer("effective_n_kv_heads");
  else m.n_kv_heads = m.n_heads;
  c.check_positive("n_kv_heads", m.n_kv_heads);
  m.n_layers = c.positive("n_layers");
  m.mlp_hidden = c.has("mlp_hidden_size") ? c.integer("mlp_hidden_size")
                                          : c.integer("mlp_ratio", 4) * m.d_model;
  c.check_positive("mlp_hidden_size", m.mlp_hidden);
  m.vocab_size = c.positive("vocab_size");
  m.embedding_size = c.integer("embedding_size", m.vocab_size);
  c.check_positive("embedding_size", m.embedding_size);
  m.rope_theta = static_cast<float>(c.number("rope_theta", 10000.0));
  m.rms_norm_eps = static_cast<float>(c.number("rms_norm_eps", 1e-5));
  m.max_sequence_length = c.positive("max_sequence_length");
  m.weight_tying = c.boolean("weight_tying", false);
  m.qkv_bias = c.boolean("include_qkv_bias", false);
  m.mask_token_id = c.integer("mask_token_id");
  m.eos_token_id = c.integer("eos_token_id", -1);
  m.pad_token_id = c.integer("pad_token_id", -1);
  m.bos_token_id = c.integer("bos_token_id", -1);
}

void parse_dream_config(const ConfigReader& c, ModelConfig& m, const std::string& dir) {
  m.family = ModelFamily::Dream;
  const std::string act = c.string("hidden_act", "silu");
  if (act != "silu") c.fail("unsupported Dream hidden_act \"" + act + "\" (only \"silu\" is supported)");
  if (c.has("rope_scaling")) c.fail("unsupported Dream setting rope_scaling (must be null)");
  if (c.boolean("use_sliding_window", false)) c.fail("unsupported Dream setting use_sliding_window = true");

  m.d_model = c.positive("hidden_size");
  m.n_heads = c.positive("num_attention_heads");
  m.n_kv_heads = c.integer("num_key_value_heads", m.n_heads);
  c.check_positive("num_key_value_heads", m.n_kv_heads);
  m.n_layers = c.positive("num_hidden_layers");
  m.mlp_hidden = c.positive("intermediate_size");
  m.vocab_size = c.positive("vocab_size");
  m.embedding_size = m.vocab_size;
  m.rope_theta = static_cast<float>(c.number("rope_theta", 10000.0));
  m.rms_norm_eps = static_cast<float>(c.number("rms_norm_eps", 1e-6));
  m.max_sequence_length = c.positive("max_position_embeddings");
  m.weight_tying = c.boolean("tie_word_embeddings", false);
  m.qkv_bias = true;  // Qwen2 attention always has q/k/v biases
  m.mask_token_id = c.integer("mask_token_id");
  m.pad_token_id = c.integer("pad_token_id", -1);
  m.bos_token_id = c.integer("bos_token_id", -1);
  if (c.has("head_dim") && c.integer("head_dim") * m.n_heads != m.d_model)
    c.fail("unsupported Dream head_dim (must equal hidden_size / num_attention_heads)");

  // Dream's EOS lives in generation_config.json; config.json's is the fallback.
  const std::string gen_path = join_path(dir, "generation_config.json");
  m.eos_token_id = -1;
  if (file_exists(gen_path)) {
    JsonValue gen = read_json_file(gen_path);
    if (!gen.is_object()) throw std::runtime_error(gen_path + ": not a JSON object");
    m.eos_token_id = token_id_value(gen.find("eos_token_id"), gen_path, "eos_token_id");
  }
  if (m.eos_token_id < 0) m.eos_token_id = c.integer("eos_token_id", -1);
}

void check_config(const ConfigReader& c, ModelConfig& m) {
  if (m.d_model % m.n_heads != 0)
    c.fail("the model width " + std::to_string(m.d_model) + " is not a multiple of the head count " +
           std::to_string(m.n_heads));
  m.head_dim = m.d_model / m.n_heads;
  if (m.head_dim % 2 != 0) c.fail("head_dim " + std::to_string(m.head_dim) + " is odd; RoPE needs pairs");
  if (m.n_kv_heads > m.n_heads || m.n_heads % m.n_kv_heads != 0)
    c.fail("the head count " + std::to_string(m.n_heads) + " is not a multiple of the KV head count " +
           std::to_string(m.n_kv_heads));
  if (m.n_layers > 100000) c.fail("layer count " + std::to_string(m.n_layers) + " is absurd");
  if (m.embedding_size < m.vocab_size)
    c.fail("embedding_size " + std::to_string(m.embedding_size) + " is smaller than vocab_size " +
           std::to_string(m.vocab_size));
  if (!(m.rope_theta > 0.f)) c.fail("rope_theta must be positive");
  if (!(m.rms_norm_eps >= 0.f)) c.fail("rms_norm_eps must be non-negative");
  if (m.mask_token_id < 0 || m.mask_token_id >= m.vocab_size)
    c.fail("mask_token_id " + std::to_string(m.mask_token_id) + " is outside the vocabulary [0, " +
           std::to_string(m.vocab_size) + ")");
  const std::pair<const char*, int64_t> ids[] = {
      {"eos_token_id", m.eos_token_id}, {"pad_token_id", m.pad_token_id}, {"bos_token_id", m.bos_token_id}};
  for (const auto& id : ids)
    if (id.second < -1 || id.second >= m.vocab_size)
      c.fail(std::string(id.first) + " " + std::to_string(id.second) + " is outside the vocabulary [0, " +
             std::to_string(m.vocab_size) + ")");
}

// config.json's "sdllm_quantization" entry, written by `streaming-dllm quantize`.
bool read_quantization_marker(const ConfigReader& c, const JsonValue& root) {
  const JsonValue* q = root.find("sdllm_quantization");
  if (!q || q->is_null()) return false;
  if (!q->is_object()) c.fail("\"sdllm_quantization\" must be an object");
  const JsonValue* fmt = q->find("format");
  if (!fmt || !fmt->is_string() || fmt->string != "q8_0")
    c.fail("unsupported \"sdllm_quantization\" format (only \"q8_0\" is supported)");
  const JsonValue* g = q->find("group_size");
  if (!g || !g->is_number() || !g->is_int || g->integer != kQ8Group)
    c.fail("\"sdllm_quantization\".group_size must be " + std::to_string(kQ8Group));
  return true;
}

}  // namespace

CheckpointConfig read_checkpoint_config(const std::string& dir) {
  CheckpointConfig out;
  ModelConfig& cfg = out.model;
  const std::string config_path = join_path(dir, "config.json");
  if (!file_exists(config_path)) throw std::runtime_error("cannot read " + config_path + ": no such file");
  const JsonValue root = read_json_file(config_path);
  if (!root.is_object()) throw std::runtime_error(config_path + ": not a JSON object");
  ConfigReader c(root, config_path);
  cfg.model_type = c.string("model_type", "");
  if (cfg.model_type == "llada") parse_llada_config(c, cfg);
  else if (cfg.model_type == "Dream") parse_dream_config(c, cfg, dir);
  else c.fail("unsupported model_type \"" + cfg.model_type + "\" (supported: \"llada\", \"Dream\")");
  check_config(c, cfg);
  out.q8_checkpoint = read_quantization_marker(c, root);
  return out;
}

}  // namespace sdllm
