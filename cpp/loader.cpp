// load_model: reads a Hugging Face model directory (LLaDA or Dream) into a Model whose
// weight views point into memory-mapped safetensors files. Every config value and
// tensor shape is checked up front, so the forward pass never meets a surprise.
#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "config.h"
#include "cpu_features.h"
#include "json.h"
#include "model.h"
#include "ops/kernels.h"
#include "safetensors.h"
#include "threadpool.h"

namespace sdllm {
namespace {

// All tensors of the checkpoint, across one file or a set of shards.
class TensorSource {
 public:
  explicit TensorSource(const std::string& dir) : dir_(dir) {
    const std::string single = join_path(dir, "model.safetensors");
    const std::string index = join_path(dir, "model.safetensors.index.json");
    if (file_exists(single)) {
      add_file("model.safetensors");
      for (const auto& t : files_[0].tensors) where_.emplace(t.name, 0);
    } else if (file_exists(index)) {
      load_index(index);
    } else {
      throw std::runtime_error(dir + ": no model.safetensors or model.safetensors.index.json");
    }
  }

  // The view of `name`, which must have exactly `shape` and a weight dtype.
  WeightView get(const std::string& name, const std::vector<int64_t>& shape) {
    const auto found = lookup(name);
    const SafetensorsFile& f = *found.first;
    const TensorInfo* t = found.second;
    if (!t->supported)
      throw std::runtime_error(f.label + ": tensor '" + name + "' has unsupported dtype '" + t->dtype_name +
                               "' (supported: F32, F16, BF16" +
                               (t->dtype_name == "I8" ? "; I8 only for the Q8_0 linear weights" : "") + ")");
    check_shape(f, *t, shape);
    count(*t);
    WeightView v;
    v.data = t->data;
    v.dtype = t->dtype;
    v.rows = shape.size() == 2 ? shape[0] : 1;
    v.cols = shape.back();
    return v;
  }

  // A linear weight [rows, cols]: a float tensor as get(), or a Q8_0 pair (`name` I8 and
  // `name.q8_scales` F32 [rows, ceil(cols / 32)]) when the checkpoint is a Q8_0 one.
  WeightView get_linear(const std::string& name, const std::vector<int64_t>& shape, bool q8_checkpoint) {
    const std::string sname = name + ".q8_scales";
    const auto found = lookup(name);
    const SafetensorsFile& f = *found.first;
    const TensorInfo* t = found.second;
    if (t->dtype_name != "I8") {
      if (where_.count(sname))
        throw std::runtime_error(f.label + ": tensor '" + sname + "' is present but '" + name + "' is " +
                                 t->dtype_name + ", not I8 (Q8_0 values)");
      return get(name, shape);
    }
    if (!q8_checkpoint)
      throw std::runtime_error(f.label + ": tensor '" + name +
                               "' is I8 (Q8_0 values) but config.json has no \"sdllm_quantization\" entry");
    check_shape(f, *t, shape);
    if (!where_.count(sname))
      throw std::runtime_error(f.label + ": Q8_0 tensor '" + name + "' has no scales: tensor '" + sname +
                               "' is missing");
    const auto sfound = lookup(sname);
    const SafetensorsFile& sf = *sfound.first;
    const TensorInfo* st = sfound.second;
    if (st->dtype_name != "F32")
      throw std::runtime_error(sf.label + ": tensor '" + sname + "' has dtype '" + st->dtype_name +
                               "', expected F32 (the Q8_0 scales of '" + name + "')");
    const std::vector<int64_t> sshape = {shape[0], q8_groups(shape[1])};
    if (st->shape != sshape)
      throw std::runtime_error(sf.label + ": tensor '" + sname + "' has shape " + shape_string(st->shape) +
                               ", expected " + shape_string(sshape) + " (one scale per group of " +
                               std::to_string(kQ8Group) + " of the " + std::to_string(shape[1]) + " columns of '" +
                               name + "')");
    if (reinterpret_cast<uintptr_t>(st->data) % alignof(float) != 0)
      throw std::runtime_error(sf.label + ": tensor '" + sname + "' is not 4-byte aligned in the file");
    count(*t);
    count(*st);
    WeightView v;
    v.data = t->data;
    v.dtype = DType::Q8_0;
    v.rows = shape[0];
    v.cols = shape[1];
    v.scales = reinterpret_cast<const float*>(st->data);
    return v;
  }

  // Drops the pages of a tensor no longer read (its Q8_0 copy replaced it) from memory.
  void release(const WeightView& w) {
    for (const auto& f : files_) {
      const uint8_t* p = static_cast<const uint8_t*>(w.data);
      if (f.file && p >= f.file->data() && p < f.file->data() + f.file->size()) {
        f.file->release(p, static_cast<size_t>(w.rows * w.cols * dtype_size(w.dtype)));
        return;
      }
    }
  }

  int64_t used_bytes() const { return bytes_; }
  void adjust_bytes(int64_t delta) { bytes_ += delta; }
  const std::vector<std::string>& names() const { return names_; }
  std::vector<std::shared_ptr<MappedFile>> maps() const {
    std::vector<std::shared_ptr<MappedFile>> out;
    for (const auto& f : files_) out.push_back(f.file);
    return out;
  }

 private:
  size_t add_file(const std::string& name) {
    files_.push_back(open_safetensors(join_path(dir_, name)));
    names_.push_back(name);
    return files_.size() - 1;
  }

  void load_index(const std::string& path) {
    index_path_ = path;
    JsonValue idx = read_json_file(path);
    const JsonValue* wm = idx.find("weight_map");
    if (!wm || !wm->is_object()) throw std::runtime_error(path + ": missing \"weight_map\" object");
    std::map<std::string, size_t> shard_of_file;  // each shard is mapped once
    for (const auto& kv : wm->object) {
      if (!kv.second.is_string())
        throw std::runtime_error(path + ": weight_map entry for tensor '" + kv.first + "' is not a string");
      const std::string& shard = kv.second.string;
      // Shards live beside the index; anything else would let an index reach outside the model directory.
      if (shard.empty() || shard == "." || shard == ".." || shard.find('/') != std::string::npos ||
          shard.find('\\') != std::string::npos)
        throw std::runtime_error(path + ": weight_map entry for tensor '" + kv.first + "' names an invalid shard \"" +
                                 shard + "\"");
      auto it = shard_of_file.find(shard);
      if (it == shard_of_file.end()) it = shard_of_file.emplace(shard, add_file(shard)).first;
      where_.emplace(kv.first, it->second);
    }
    if (files_.empty()) throw std::runtime_error(path + ": weight_map is empty");
  }

  std::pair<const SafetensorsFile*, const TensorInfo*> lookup(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) {
      if (index_path_.empty())
        throw std::runtime_error(join_path(dir_, "model.safetensors") + ": tensor '" + name + "' is missing");
      throw std::runtime_error(index_path_ + ": tensor '" + name + "' is missing from the weight_map (shards: " +
                               searched() + ")");
    }
    const SafetensorsFile& f = files_[it->second];
    const TensorInfo* t = f.find(name);
    if (!t)
      throw std::runtime_error(f.label + ": tensor '" + name + "' is missing" +
                               (index_path_.empty() ? "" : " (model.safetensors.index.json lists it in this shard)"));
    return {&f, t};
  }

  static void check_shape(const SafetensorsFile& f, const TensorInfo& t, const std::vector<int64_t>& shape) {
    if (t.shape != shape)
      throw std::runtime_error(f.label + ": tensor '" + t.name + "' has shape " + shape_string(t.shape) + ", expected " +
                               shape_string(shape) + " from config.json");
  }

  void count(const TensorInfo& t) {
    if (used_.insert(t.name).second) bytes_ += static_cast<int64_t>(t.byte_length());
  }

  std::string searched() const {
    std::string s;
    for (const auto& n : names_) s += (s.empty() ? "" : ", ") + n;
    return s;
  }

  std::string dir_;
  std::string index_path_;
  std::vector<SafetensorsFile> files_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, size_t> where_;
  std::set<std::string> used_;
  int64_t bytes_ = 0;
};

struct TensorNames {
  std::string embedding, final_norm, lm_head;
  std::string attn_norm, ff_norm, wq, wk, wv, wo, bq, bk, bv, gate, up, down;  // per layer
};

TensorNames layer_names(ModelFamily family, int64_t i) {
  TensorNames n;
  const std::string l = std::to_string(i);
  if (family == ModelFamily::LLaDA) {
    const std::string p = "model.transformer.blocks." + l + ".";
    n.attn_norm = p + "attn_norm.weight";
    n.ff_norm = p + "ff_norm.weight";
    n.wq = p + "q_proj.weight";
    n.wk = p + "k_proj.weight";
    n.wv = p + "v_proj.weight";
    n.bq = p + "q_proj.bias";
    n.bk = p + "k_proj.bias";
    n.bv = p + "v_proj.bias";
    n.wo = p + "attn_out.weight";
    n.gate = p + "ff_proj.weight";
    n.up = p + "up_proj.weight";
    n.down = p + "ff_out.weight";
    n.embedding = "model.transformer.wte.weight";
    n.final_norm = "model.transformer.ln_f.weight";
    n.lm_head = "model.transformer.ff_out.weight";
  } else {
    const std::string p = "model.layers." + l + ".";
    n.attn_norm = p + "input_layernorm.weight";
    n.ff_norm = p + "post_attention_layernorm.weight";
    n.wq = p + "self_attn.q_proj.weight";
    n.wk = p + "self_attn.k_proj.weight";
    n.wv = p + "self_attn.v_proj.weight";
    n.bq = p + "self_attn.q_proj.bias";
    n.bk = p + "self_attn.k_proj.bias";
    n.bv = p + "self_attn.v_proj.bias";
    n.wo = p + "self_attn.o_proj.weight";
    n.gate = p + "mlp.gate_proj.weight";
    n.up = p + "mlp.up_proj.weight";
    n.down = p + "mlp.down_proj.weight";
    n.embedding = "model.embed_tokens.weight";
    n.final_norm = "model.norm.weight";
    n.lm_head = "lm_head.weight";
  }
  return n;
}

// Quantizes a float weight to Q8_0 (dtype.h) into buffers owned by the model, rows split
// over the pool. The AVX2 quantizer gives the scalar one's results bit for bit.
WeightView quantize_weight(const WeightView& w, Model& model, ThreadPool* pool) {
  const int64_t rows = w.rows, cols = w.cols, groups = q8_groups(cols);
  std::shared_ptr<int8_t> q(new int8_t[static_cast<size_t>(rows * cols)], std::default_delete<int8_t[]>());
  std::shared_ptr<float> sc(new float[static_cast<size_t>(rows * groups)], std::default_delete<float[]>());
  int8_t* qd = q.get();
  float* sd = sc.get();
  const bool avx2 = use_avx2_fma();
  auto run = [&](int64_t b, int64_t e, int) {
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = b; r < e; ++r) {
      const void* src = w.dtype == DType::F32 ? static_cast<const void*>(static_cast<const float*>(w.data) + r * cols)
                                              : static_cast<const void*>(static_cast<const uint16_t*>(w.data) + r * cols);
      if (w.dtype == DType::F32) {
        std::memcpy(row.data(), src, sizeof(float) * static_cast<size_t>(cols));
      } else if (avx2) {  // exact widening either way
        kernels::avx2_widen(w, r * cols, cols, row.data());
      } else if (w.dtype == DType::BF16) {
        const uint16_t* h = static_cast<const uint16_t*>(src);
        for (int64_t c = 0; c < cols; ++c) row[static_cast<size_t>(c)] = bf16_to_f32(h[c]);
      } else {
        const uint16_t* h = static_cast<const uint16_t*>(src);
        for (int64_t c = 0; c < cols; ++c) row[static_cast<size_t>(c)] = f16_to_f32(h[c]);
      }
      if (avx2)
        kernels::avx2_q8_quantize_row(row.data(), cols, qd + r * cols, sd + r * groups);
      else
        q8_quantize_row(row.data(), cols, qd + r * cols, sd + r * groups);
    }
  };
  if (pool)
    pool->parallel_for(rows, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, cols)), run);
  else
    run(0, rows, 0);
  WeightView v;
  v.data = qd;
  v.dtype = DType::Q8_0;
  v.rows = rows;
  v.cols = cols;
  v.scales = sd;
  model.owned_buffers.push_back(std::shared_ptr<const void>(q, q.get()));
  model.owned_buffers.push_back(std::shared_ptr<const void>(sc, sc.get()));
  return v;
}


}  // namespace

std::shared_ptr<Model> load_model(const std::string& dir) { return load_model(dir, LoadOptions()); }

std::shared_ptr<Model> load_model(const std::string& dir, const LoadOptions& options) {
  auto model = std::make_shared<Model>();
  model->dir = dir;
  const CheckpointConfig checkpoint = read_checkpoint_config(dir);
  model->config = checkpoint.model;
  const ModelConfig& cfg = model->config;
  const bool q8_checkpoint = checkpoint.q8_checkpoint;

  TensorSource src(dir);
  const int64_t d = cfg.d_model, kv = cfg.n_kv_heads * cfg.head_dim, ff = cfg.mlp_hidden;
  const TensorNames top = layer_names(cfg.family, 0);
  model->embedding = src.get(top.embedding, {cfg.embedding_size, d});
  model->final_norm = src.get(top.final_norm, {d});
  model->lm_head =
      cfg.weight_tying ? model->embedding : src.get_linear(top.lm_head, {cfg.embedding_size, d}, q8_checkpoint);

  model->layers.resize(static_cast<size_t>(cfg.n_layers));
  for (int64_t i = 0; i < cfg.n_layers; ++i) {
    const TensorNames n = layer_names(cfg.family, i);
    LayerWeights& L = model->layers[static_cast<size_t>(i)];
    L.attn_norm = src.get(n.attn_norm, {d});
    L.ff_norm = src.get(n.ff_norm, {d});
    L.wq = src.get_linear(n.wq, {d, d}, q8_checkpoint);
    L.wk = src.get_linear(n.wk, {kv, d}, q8_checkpoint);
    L.wv = src.get_linear(n.wv, {kv, d}, q8_checkpoint);
    L.wo = src.get_linear(n.wo, {d, d}, q8_checkpoint);
    if (cfg.qkv_bias) {
      L.bq = src.get(n.bq, {d});
      L.bk = src.get(n.bk, {kv});
      L.bv = src.get(n.bv, {kv});
    }
    L.w_gate = src.get_linear(n.gate, {ff, d}, q8_checkpoint);
    L.w_up = src.get_linear(n.up, {ff, d}, q8_checkpoint);
    L.w_down = src.get_linear(n.down, {d, ff}, q8_checkpoint);
  }

  if (options.quantize_q8) {
    // Quantize, then drop the float tensor's pages: only its Q8_0 copy is read from now on.
    auto quantize = [&](WeightView& w) {
      if (w.dtype == DType::Q8_0) return;
      const WeightView q = quantize_weight(w, *model, options.pool);
      src.adjust_bytes(q.rows * q.cols + q.rows * q8_groups(q.cols) * 4 - w.rows * w.cols * dtype_size(w.dtype));
      src.release(w);
      w = q;
    };
    for (auto& L : model->layers)
      for (WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) quantize(*w);
    if (!cfg.weight_tying) quantize(model->lm_head);
  }
  if (options.repack_budget_bytes != 0)
    repack_weights(*model, options.pool, options.repack_budget_bytes, [&](const WeightView& w) { src.release(w); });
  for (const auto& L : model->layers)
    for (const WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
      model->has_q8 = model->has_q8 || w->dtype == DType::Q8_0;
  model->has_q8 = model->has_q8 || model->lm_head.dtype == DType::Q8_0;

  // Model::dtype is the dtype holding most linear-weight bytes. Mixed checkpoints load,
  // and every WeightView carries its own dtype, which is what kernels must honour.
  std::map<DType, int64_t> bytes_by_dtype;
  auto count = [&](const WeightView& w) { bytes_by_dtype[w.dtype] += w.rows * w.cols * dtype_size(w.dtype); };
  count(model->embedding);
  if (!cfg.weight_tying) count(model->lm_head);
  for (const auto& L : model->layers)
    for (const WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) count(*w);
  model->dtype = std::max_element(bytes_by_dtype.begin(), bytes_by_dtype.end(),
                                  [](const auto& a, const auto& b) { return a.second < b.second; })
                     ->first;

  model->files = src.maps();
  model->file_names = src.names();
  model->weight_bytes = src.used_bytes();
  return model;
}

}  // namespace sdllm
