// Tests of load_model (cpp/loader.cpp) on small LLaDA and Dream checkpoints written to a
// temporary directory: views, sharded indexes, every refusal of a bad checkpoint, Q8_0
// files and quantization at load. The JSON parser and the safetensors reader have their
// own programs (test_json.cpp, test_safetensors.cpp). Exits non-zero on any failure.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "loader_test_harness.h"
#include "model.h"
#include "safetensors.h"
#include "threadpool.h"

using namespace sdllm;
using namespace sdllm_test;

namespace {

// ---------------------------------------------------------------------------
// Files and load_model

// Writes safetensors files of F32 tensors whose values encode their index, so that
// the views the loader returns can be checked element by element.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};

std::vector<uint8_t> write_tensors(const std::vector<TensorSpec>& specs) {
  std::string header = "{";
  uint64_t off = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    int64_t n = 1;
    std::string shape = "[";
    for (size_t k = 0; k < specs[i].shape.size(); ++k) {
      n *= specs[i].shape[k];
      shape += (k ? ", " : "") + std::to_string(specs[i].shape[k]);
    }
    shape += "]";
    header += (i ? ", " : "") + std::string("\"") + specs[i].name + "\": {\"dtype\": \"F32\", \"shape\": " + shape +
              ", \"data_offsets\": [" + std::to_string(off) + ", " + std::to_string(off + 4 * n) + "]}";
    off += 4 * n;
  }
  header += "}";
  auto img = st_image(header, off);
  const size_t base = img.size() - off;
  for (uint64_t i = 0; i < off / 4; ++i) {
    float v = static_cast<float>(i % 1000) * 0.001f;
    std::memcpy(img.data() + base + 4 * i, &v, 4);
  }
  return img;
}

std::vector<TensorSpec> llada_tensors(int64_t d, int64_t kv, int64_t ff, int64_t emb, int layers, bool head) {
  std::vector<TensorSpec> t = {{"model.transformer.wte.weight", {emb, d}}, {"model.transformer.ln_f.weight", {d}}};
  if (head) t.push_back({"model.transformer.ff_out.weight", {emb, d}});
  for (int i = 0; i < layers; ++i) {
    const std::string p = "model.transformer.blocks." + std::to_string(i) + ".";
    t.push_back({p + "attn_norm.weight", {d}});
    t.push_back({p + "ff_norm.weight", {d}});
    t.push_back({p + "q_proj.weight", {d, d}});
    t.push_back({p + "k_proj.weight", {kv, d}});
    t.push_back({p + "v_proj.weight", {kv, d}});
    t.push_back({p + "attn_out.weight", {d, d}});
    t.push_back({p + "ff_proj.weight", {ff, d}});
    t.push_back({p + "up_proj.weight", {ff, d}});
    t.push_back({p + "ff_out.weight", {d, ff}});
  }
  return t;
}

const char* kLladaConfig = R"({"model_type": "llada", "d_model": 8, "n_heads": 2, "n_kv_heads": 1, "n_layers": 2,
  "mlp_hidden_size": 12, "vocab_size": 10, "embedding_size": 12, "rope_theta": 500000.0, "rms_norm_eps": 1e-05,
  "weight_tying": false, "include_bias": false, "include_qkv_bias": false, "block_type": "llama",
  "activation_type": "silu", "layer_norm_type": "rms", "mask_token_id": 9, "eos_token_id": 8, "pad_token_id": 8,
  "max_sequence_length": 64, "multi_query_attention": null, "clip_qkv": null})";

std::string make_dir(const std::string& name) {
  const std::string d = tmp_path(name);
  mkdir(d.c_str(), 0755);
  return d;
}

void test_load_llada() {
  const std::string dir = make_dir("llada");
  write_file(dir + "/config.json", std::string(kLladaConfig));
  const auto specs = llada_tensors(8, 4, 12, 12, 2, true);
  write_file(dir + "/model.safetensors", write_tensors(specs));
  auto m = load_model(dir);
  const ModelConfig& c = m->config;
  check(c.family == ModelFamily::LLaDA && c.model_type == "llada", "llada family");
  check(c.d_model == 8 && c.n_heads == 2 && c.n_kv_heads == 1 && c.head_dim == 4 && c.n_layers == 2, "llada dims");
  check(c.mlp_hidden == 12 && c.vocab_size == 10 && c.embedding_size == 12, "llada sizes");
  check(c.rope_theta == 500000.f && c.rms_norm_eps == 1e-5f && c.max_sequence_length == 64, "llada floats");
  check(c.mask_token_id == 9 && c.eos_token_id == 8 && c.pad_token_id == 8 && c.bos_token_id == -1, "llada ids");
  check(!c.weight_tying && !c.qkv_bias && m->dtype == DType::F32, "llada flags");
  check(m->layers.size() == 2 && m->layers[1].wk.rows == 4 && m->layers[1].wk.cols == 8, "llada k_proj view");
  check(m->layers[0].w_down.rows == 8 && m->layers[0].w_down.cols == 12, "llada ff_out view");
  check(m->layers[0].bq.empty(), "no bias");
  check(m->final_norm.rows == 1 && m->final_norm.cols == 8, "norm view");
  check(m->embedding.at(0, 1) == 0.001f, "embedding element");
  check(m->lm_head.data != m->embedding.data && m->lm_head.rows == 12, "separate head");
  int64_t total = 0;
  for (const auto& s : specs) {
    int64_t n = 4;
    for (auto k : s.shape) n *= k;
    total += n;
  }
  check(m->weight_bytes == total, "weight_bytes counts every used tensor");
  check(m->file_names == std::vector<std::string>{"model.safetensors"} && m->files.size() == 1, "file names");

}

void test_load_errors() {
  const std::string dir = make_dir("bad");
  expect_throw("missing config.json", [&] { load_model(dir); }, {"config.json"});
  write_file(dir + "/config.json", std::string("{\"model_type\": "));
  expect_throw("invalid config.json", [&] { load_model(dir); }, {"config.json", "invalid JSON"});
  write_file(dir + "/config.json", std::string(R"({"model_type": "gpt2"})"));
  expect_throw("unknown model_type", [&] { load_model(dir); }, {"config.json", "\"gpt2\"", "llada", "Dream"});

  std::string cfg = kLladaConfig;
  auto set = [&](const std::string& from, const std::string& to) {
    std::string c = cfg;
    c.replace(c.find(from), from.size(), to);
    write_file(dir + "/config.json", c);
  };
  set("\"include_bias\": false", "\"include_bias\": true");
  expect_throw("include_bias", [&] { load_model(dir); }, {"config.json", "include_bias"});
  set("\"block_type\": \"llama\"", "\"block_type\": \"sequential\"");
  expect_throw("block_type", [&] { load_model(dir); }, {"config.json", "block_type", "sequential"});
  set("\"d_model\": 8", "\"d_model\": 9");
  expect_throw("d_model % n_heads", [&] { load_model(dir); }, {"config.json", "multiple"});
  set("\"d_model\": 8", "\"d_model\": \"8\"");
  expect_throw("d_model string", [&] { load_model(dir); }, {"config.json", "d_model"});
  set("\"mask_token_id\": 9", "\"mask_token_id\": 10");
  expect_throw("mask id outside vocab", [&] { load_model(dir); }, {"config.json", "mask_token_id"});
  set("\"n_layers\": 2,", "");
  expect_throw("missing n_layers", [&] { load_model(dir); }, {"config.json", "n_layers", "missing"});

  write_file(dir + "/config.json", cfg);
  expect_throw("no weights", [&] { load_model(dir); }, {"model.safetensors"});

  // Wrong shape against the config: the k_proj of layer 1 as if it were MHA.
  auto specs = llada_tensors(8, 4, 12, 12, 2, true);
  for (auto& s : specs)
    if (s.name == "model.transformer.blocks.1.k_proj.weight") s.shape = {8, 8};
  write_file(dir + "/model.safetensors", write_tensors(specs));
  expect_throw("wrong shape", [&] { load_model(dir); },
               {"model.safetensors", "'model.transformer.blocks.1.k_proj.weight'", "[8, 8]", "expected [4, 8]"});

  specs = llada_tensors(8, 4, 12, 12, 1, true);  // layer 1 missing
  write_file(dir + "/model.safetensors", write_tensors(specs));
  expect_throw("missing tensor", [&] { load_model(dir); },
               {"model.safetensors", "'model.transformer.blocks.1.attn_norm.weight'", "missing"});

  specs = llada_tensors(8, 4, 12, 12, 2, false);  // no LM head while weight_tying is false
  write_file(dir + "/model.safetensors", write_tensors(specs));
  expect_throw("missing head", [&] { load_model(dir); }, {"'model.transformer.ff_out.weight'", "missing"});
  set("\"weight_tying\": false", "\"weight_tying\": true");
  auto tied = load_model(dir);
  check(tied->config.weight_tying && tied->lm_head.data == tied->embedding.data, "tied head is the embedding");
}

std::vector<TensorSpec> dream_tensors(int64_t d, int64_t kv, int64_t ff, int64_t vocab, int layers) {
  std::vector<TensorSpec> t = {{"model.embed_tokens.weight", {vocab, d}}, {"model.norm.weight", {d}},
                               {"lm_head.weight", {vocab, d}}};
  for (int i = 0; i < layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    for (const char* n : {"input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj.bias"})
      t.push_back({p + n, {d}});
    t.push_back({p + "self_attn.k_proj.bias", {kv}});
    t.push_back({p + "self_attn.v_proj.bias", {kv}});
    t.push_back({p + "self_attn.q_proj.weight", {d, d}});
    t.push_back({p + "self_attn.k_proj.weight", {kv, d}});
    t.push_back({p + "self_attn.v_proj.weight", {kv, d}});
    t.push_back({p + "self_attn.o_proj.weight", {d, d}});
    t.push_back({p + "mlp.gate_proj.weight", {ff, d}});
    t.push_back({p + "mlp.up_proj.weight", {ff, d}});
    t.push_back({p + "mlp.down_proj.weight", {d, ff}});
  }
  return t;
}

void test_load_dream_sharded() {
  const std::string dir = make_dir("dream");
  write_file(dir + "/config.json", std::string(R"({"model_type": "Dream", "hidden_size": 8,
    "intermediate_size": 12, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "rope_theta": 1000000.0, "rms_norm_eps": 1e-06, "vocab_size": 16, "tie_word_embeddings": false,
    "mask_token_id": 15, "pad_token_id": 14, "bos_token_id": 14, "eos_token_id": 14,
    "max_position_embeddings": 128, "rope_scaling": null, "hidden_act": "silu", "use_sliding_window": false})"));
  write_file(dir + "/generation_config.json", std::string(R"({"eos_token_id": [13, 14], "pad_token_id": 14})"));
  auto specs = dream_tensors(8, 4, 12, 16, 2);
  std::vector<TensorSpec> s1(specs.begin(), specs.begin() + 10), s2(specs.begin() + 10, specs.end());
  write_file(dir + "/model-00001-of-00002.safetensors", write_tensors(s1));
  write_file(dir + "/model-00002-of-00002.safetensors", write_tensors(s2));
  std::string index = "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {";
  for (size_t i = 0; i < specs.size(); ++i)
    index += (i ? ", \"" : "\"") + specs[i].name + "\": \"model-0000" + (i < 10 ? "1" : "2") + "-of-00002.safetensors\"";
  index += "}}";
  write_file(dir + "/model.safetensors.index.json", index);
  auto m = load_model(dir);
  const ModelConfig& c = m->config;
  check(c.family == ModelFamily::Dream && c.model_type == "Dream", "dream family");
  check(c.d_model == 8 && c.n_heads == 4 && c.n_kv_heads == 2 && c.head_dim == 2 && c.mlp_hidden == 12, "dream dims");
  check(c.vocab_size == 16 && c.embedding_size == 16 && c.max_sequence_length == 128, "dream sizes");
  check(c.eos_token_id == 13 && c.mask_token_id == 15 && c.pad_token_id == 14 && c.bos_token_id == 14,
        "dream ids (eos from generation_config.json)");
  check(c.qkv_bias && !m->layers[1].bk.empty() && m->layers[1].bk.cols == 4, "dream biases");
  check(m->files.size() == 2 && m->file_names.size() == 2, "two shards mapped once each");

  // The index names a shard that is not there.
  std::string bad_index = index;
  bad_index.replace(bad_index.rfind("model-00002"), 11, "model-00003");
  write_file(dir + "/model.safetensors.index.json", bad_index);
  expect_throw("missing shard", [&] { load_model(dir); }, {"model-00003-of-00002.safetensors"});

  // The index points a tensor at a shard that does not hold it.
  bad_index = index;
  bad_index.replace(bad_index.find("model-00001"), 11, "model-00002");
  write_file(dir + "/model.safetensors.index.json", bad_index);
  expect_throw("index points to the wrong shard", [&] { load_model(dir); },
               {"model-00002-of-00002.safetensors", "'model.embed_tokens.weight'", "missing"});

  // A tensor absent from the weight map.
  bad_index = index;
  const size_t at = bad_index.find("\"model.norm.weight\"");
  bad_index.erase(at, bad_index.find(", ", at) + 2 - at);
  write_file(dir + "/model.safetensors.index.json", bad_index);
  expect_throw("tensor absent from weight_map", [&] { load_model(dir); },
               {"model.safetensors.index.json", "'model.norm.weight'"});

  write_file(dir + "/model.safetensors.index.json", std::string(R"({"weight_map": {"a": "../x.safetensors"}})"));
  expect_throw("shard outside the directory", [&] { load_model(dir); }, {"invalid shard"});
}

// ---------------------------------------------------------------------------
// Q8_0: checkpoints written by `streaming-dllm quantize`, and quantization at load

// A tensor of any dtype with its raw little-endian bytes.
struct RawTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

std::vector<uint8_t> write_raw(const std::vector<RawTensor>& ts) {
  std::string header = "{\"__metadata__\": {\"sdllm_quantization\": \"q8_0\"}";
  uint64_t off = 0;
  std::vector<uint64_t> at;
  for (const auto& t : ts) {
    off = (off + 7) / 8 * 8;  // 8-byte aligned starts, as the quantize command writes them
    at.push_back(off);
    std::string shape = "[";
    for (size_t k = 0; k < t.shape.size(); ++k) shape += (k ? ", " : "") + std::to_string(t.shape[k]);
    header += ", \"" + t.name + "\": {\"dtype\": \"" + t.dtype + "\", \"shape\": " + shape + "], \"data_offsets\": [" +
              std::to_string(off) + ", " + std::to_string(off + t.bytes.size()) + "]}";
    off += t.bytes.size();
  }
  header += "}";
  auto img = st_image(header, off);
  const size_t base = img.size() - off;
  for (size_t i = 0; i < ts.size(); ++i) std::memcpy(img.data() + base + at[i], ts[i].bytes.data(), ts[i].bytes.size());
  return img;
}

RawTensor f32_tensor(const std::string& name, const std::vector<int64_t>& shape, float seed) {
  int64_t n = 1;
  for (auto k : shape) n *= k;
  RawTensor t{name, "F32", shape, std::vector<uint8_t>(static_cast<size_t>(4 * n))};
  for (int64_t i = 0; i < n; ++i) {
    const float v = std::sin(seed + 0.37f * static_cast<float>(i));
    std::memcpy(t.bytes.data() + 4 * i, &v, 4);
  }
  return t;
}

// The Q8_0 pair of a float tensor as the quantize command writes it (q8_quantize_row).
std::vector<RawTensor> q8_pair(const RawTensor& f) {
  const int64_t rows = f.shape[0], cols = f.shape[1], g = q8_groups(cols);
  RawTensor q{f.name, "I8", f.shape, std::vector<uint8_t>(static_cast<size_t>(rows * cols))};
  RawTensor sc{f.name + ".q8_scales", "F32", {rows, g}, std::vector<uint8_t>(static_cast<size_t>(4 * rows * g))};
  for (int64_t r = 0; r < rows; ++r)
    q8_quantize_row(reinterpret_cast<const float*>(f.bytes.data()) + r * cols, cols,
                    reinterpret_cast<int8_t*>(q.bytes.data()) + r * cols, reinterpret_cast<float*>(sc.bytes.data()) + r * g);
  return {q, sc};
}

std::string with_marker(const std::string& config, const std::string& marker) {
  std::string c = config;
  c.insert(c.rfind('}'), ", \"sdllm_quantization\": " + marker);
  return c;
}

const char* kQ8Marker = R"({"format": "q8_0", "group_size": 32, "scale_dtype": "F32"})";

bool is_linear(const std::string& name) {
  for (const char* s : {"q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "blocks.0.ff_out",
                        "blocks.1.ff_out", "transformer.ff_out"})
    if (name.find(s) != std::string::npos) return true;
  return false;
}

// The tiny LLaDA of test_load_llada with d_model 40 (a full group and a tail of 8) and
// mlp 36: every linear weight Q8_0 unless `keep` names it.
std::vector<RawTensor> q8_llada_tensors(const std::string& keep = "") {
  std::vector<RawTensor> out;
  float seed = 0.f;
  for (const auto& s : llada_tensors(40, 20, 36, 12, 2, true)) {
    RawTensor f = f32_tensor(s.name, s.shape, seed += 1.f);
    if (is_linear(s.name) && s.name != keep)
      for (auto& t : q8_pair(f)) out.push_back(t);
    else
      out.push_back(f);
  }
  return out;
}

const char* kLladaConfig40 = R"({"model_type": "llada", "d_model": 40, "n_heads": 2, "n_kv_heads": 1, "n_layers": 2,
  "mlp_hidden_size": 36, "vocab_size": 10, "embedding_size": 12, "rope_theta": 500000.0, "rms_norm_eps": 1e-05,
  "weight_tying": false, "block_type": "llama", "mask_token_id": 9, "eos_token_id": 8, "max_sequence_length": 64})";

void test_load_q8() {
  const std::string dir = make_dir("q8");
  const std::string config = with_marker(kLladaConfig40, kQ8Marker);
  write_file(dir + "/config.json", config);
  auto ts = q8_llada_tensors();
  write_file(dir + "/model.safetensors", write_raw(ts));
  auto m = load_model(dir);
  check(m->has_q8 && m->dtype == DType::Q8_0, "q8 checkpoint: has_q8, dtype Q8_0");
  const WeightView& wq = m->layers[1].wq;
  check(wq.dtype == DType::Q8_0 && wq.rows == 40 && wq.cols == 40 && wq.scales, "q8 view");
  check(m->layers[0].w_down.dtype == DType::Q8_0 && m->layers[0].w_down.cols == 36, "q8 down view");
  check(m->lm_head.dtype == DType::Q8_0 && m->embedding.dtype == DType::F32 && m->final_norm.dtype == DType::F32,
        "q8: head quantized, embedding and norms float");
  // The element (3, 35): group 1 (the tail of 8) of row 3.
  const RawTensor* q = nullptr;
  const RawTensor* sc = nullptr;
  for (const auto& t : ts) {
    if (t.name == "model.transformer.blocks.1.q_proj.weight") q = &t;
    if (t.name == "model.transformer.blocks.1.q_proj.weight.q8_scales") sc = &t;
  }
  const float want = static_cast<float>(static_cast<int8_t>(q->bytes[3 * 40 + 35])) *
                     reinterpret_cast<const float*>(sc->bytes.data())[3 * 2 + 1];
  check(wq.at(3, 35) == want, "q8 element = q * scale of its group");

  // One tensor left float in a Q8_0 checkpoint: allowed (mixed).
  write_file(dir + "/model.safetensors", write_raw(q8_llada_tensors("model.transformer.blocks.0.k_proj.weight")));
  m = load_model(dir);
  check(m->layers[0].wk.dtype == DType::F32 && m->layers[0].wv.dtype == DType::Q8_0, "mixed q8 checkpoint");

  // Malformed Q8_0 files: each error names the tensor.
  auto expect_bad = [&](const std::string& what, std::vector<RawTensor> t, const std::vector<std::string>& needles,
                        const std::string& cfg = "") {
    write_file(dir + "/config.json", cfg.empty() ? config : cfg);
    write_file(dir + "/model.safetensors", write_raw(t));
    expect_throw(what, [&] { load_model(dir); }, needles);
  };
  const std::string qn = "model.transformer.blocks.0.up_proj.weight";
  {
    auto t = q8_llada_tensors();
    t.erase(std::remove_if(t.begin(), t.end(), [&](const RawTensor& x) { return x.name == qn + ".q8_scales"; }), t.end());
    expect_bad("q8 scales missing", t, {qn, "no scales", qn + ".q8_scales", "missing"});
  }
  {
    auto t = q8_llada_tensors();
    for (auto& x : t)
      if (x.name == qn + ".q8_scales") { x.dtype = "BF16"; x.shape[1] *= 2; }
    expect_bad("q8 scales dtype", t, {qn + ".q8_scales", "'BF16'", "expected F32"});
  }
  {
    auto t = q8_llada_tensors();
    for (auto& x : t)
      if (x.name == qn + ".q8_scales") { x.shape = {18, 4}; }  // 36 x 2 scales read as 18 x 4
    expect_bad("q8 group count", t, {qn + ".q8_scales", "[18, 4]", "expected [36, 2]", "group of 32"});
  }
  {
    auto t = q8_llada_tensors();
    for (auto& x : t)
      if (x.name == qn) { x.dtype = "U8"; }
    expect_bad("q8 values not I8", t, {qn + ".q8_scales", "is present", "U8"});
  }
  {
    auto t = q8_llada_tensors();
    for (auto& x : t)
      if (x.name == qn) { x.dtype = "I16"; x.shape[1] /= 2; }
    expect_bad("q8 values wrong dtype", t, {qn, "I16"});
  }
  expect_bad("q8 without the config marker", q8_llada_tensors(), {"model.transformer.ff_out.weight", "I8",
             "sdllm_quantization"}, kLladaConfig40);
  expect_bad("q8 marker format", q8_llada_tensors(), {"config.json", "q8_0"},
             with_marker(kLladaConfig40, R"({"format": "q4_0", "group_size": 32})"));
  expect_bad("q8 marker group size", q8_llada_tensors(), {"config.json", "group_size", "32"},
             with_marker(kLladaConfig40, R"({"format": "q8_0", "group_size": 64})"));
  {
    auto t = q8_llada_tensors();
    for (auto& x : t)
      if (x.name == "model.transformer.blocks.0.attn_norm.weight") {
        x.dtype = "I8";
        x.bytes.resize(40);
      }
    expect_bad("I8 norm", t, {"attn_norm.weight", "unsupported dtype 'I8'"});
  }
  write_file(dir + "/config.json", config);
}

void test_quantize_at_load() {
  const std::string dir = make_dir("q8load");
  write_file(dir + "/config.json", std::string(kLladaConfig40));
  std::vector<RawTensor> ts;
  float seed = 0.f;
  for (const auto& s : llada_tensors(40, 20, 36, 12, 2, true)) ts.push_back(f32_tensor(s.name, s.shape, seed += 1.f));
  write_file(dir + "/model.safetensors", write_raw(ts));
  auto plain = load_model(dir);
  ThreadPool pool(3);
  LoadOptions lo;
  lo.quantize_q8 = true;
  lo.pool = &pool;
  auto m = load_model(dir, lo);
  check(!plain->has_q8 && plain->layers[0].wq.dtype == DType::F32, "plain load stays F32");
  check(m->has_q8 && m->dtype == DType::Q8_0, "quantized at load: has_q8");
  bool all = true, close = true, exact = true;
  for (size_t l = 0; l < m->layers.size(); ++l) {
    const LayerWeights& a = m->layers[l];
    const LayerWeights& b = plain->layers[l];
    const WeightView* qa[] = {&a.wq, &a.wk, &a.wv, &a.wo, &a.w_gate, &a.w_up, &a.w_down};
    const WeightView* fb[] = {&b.wq, &b.wk, &b.wv, &b.wo, &b.w_gate, &b.w_up, &b.w_down};
    for (int i = 0; i < 7; ++i) {
      all = all && qa[i]->dtype == DType::Q8_0;
      // Same bytes as the quantize command would write (q8_quantize_row of each row).
      std::vector<float> row(static_cast<size_t>(fb[i]->cols));
      std::vector<int8_t> q(row.size());
      std::vector<float> sc(static_cast<size_t>(q8_groups(fb[i]->cols)));
      for (int64_t r = 0; r < fb[i]->rows; ++r) {
        for (int64_t c = 0; c < fb[i]->cols; ++c) row[static_cast<size_t>(c)] = fb[i]->at(r, c);
        q8_quantize_row(row.data(), fb[i]->cols, q.data(), sc.data());
        exact = exact && std::memcmp(q.data(), static_cast<const int8_t*>(qa[i]->data) + r * fb[i]->cols, q.size()) == 0 &&
                std::memcmp(sc.data(), qa[i]->scales + r * q8_groups(fb[i]->cols), sc.size() * 4) == 0;
        for (int64_t c = 0; c < fb[i]->cols; ++c)
          close = close && std::fabs(qa[i]->at(r, c) - fb[i]->at(r, c)) <= 0.5f * sc[static_cast<size_t>(c / 32)] * 1.0001f;
      }
    }
  }
  check(all, "quantized at load: every linear weight Q8_0");
  check(exact, "quantized at load: the bytes of q8_quantize_row");
  check(close, "quantized at load: within half a step of the float weights");
  check(m->lm_head.dtype == DType::Q8_0 && m->embedding.dtype == DType::F32 && m->final_norm.dtype == DType::F32 &&
            m->layers[0].attn_norm.dtype == DType::F32,
        "quantized at load: head Q8_0, embedding and norms float");
  const int64_t lin = 2 * (40 * 40 * 2 + 20 * 40 * 2 + 36 * 40 * 3) + 12 * 40;  // linear elements incl. the head
  const int64_t lin_groups = 2 * (40 * 2 * 2 + 20 * 2 * 2 + 36 * 2 * 2 + 40 * 2) + 12 * 2;
  check(m->weight_bytes == plain->weight_bytes - 4 * lin + lin + 4 * lin_groups, "quantized at load: weight_bytes");
}

}  // namespace

int main() {
  if (!make_tmp_dir("test_loader")) return 1;
  test_load_llada();
  test_load_errors();
  test_load_dream_sharded();
  test_load_q8();
  test_quantize_at_load();
  return finish("loader");
}
