// ForwardOps on the CPU: each call is the cpp/ops.h op of the same name.
#include "cpu_forward_ops.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace sdllm {

namespace {

void copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows, int64_t width) {
  for (int64_t i = 0; i < rows; i++) std::memcpy(dst + i * dst_stride, src + i * src_stride, sizeof(float) * width);
}

// A growable array kept between forwards: fresh allocations per forward were page faults
// and kernel zero-fills of every large buffer, a cost that grew with the batch.
template <class T>
struct Reused {
  std::unique_ptr<T[]> data;
  size_t capacity = 0;
  T* get(size_t n) {
    if (n > capacity) {
      data.reset(new T[n]);
      capacity = n;
    }
    return data.get();
  }
  size_t bytes() const { return capacity * sizeof(T); }
  void release() {
    data.reset();
    capacity = 0;
  }
};

// One per thread that runs forwards (libuv's workers): a forward never shares it.
struct Arena {
  Reused<float> f32[static_cast<int>(ForwardOps::Scratch::Count)];
  Reused<int32_t> i32[static_cast<int>(ForwardOps::Index::Count)];
  Reused<uint64_t> keys;
  // The last RoPE table and what it was computed for (positions, head_dim, theta).
  Reused<float> rope_cs, rope_sn;
  Reused<int32_t> rope_pos;
  int64_t rope_n = -1;
  int rope_head_dim = 0;
  float rope_theta = 0;
  size_t bytes() const {
    size_t b = keys.bytes() + rope_cs.bytes() + rope_sn.bytes() + rope_pos.bytes();
    for (const auto& a : f32) b += a.bytes();
    for (const auto& a : i32) b += a.bytes();
    return b;
  }
  void release() {
    for (auto& a : f32) a.release();
    for (auto& a : i32) a.release();
    keys.release();
    rope_cs.release();
    rope_sn.release();
    rope_pos.release();
    rope_n = -1;
  }
};
// An arena grown beyond this by a one-off large forward is freed after it.
constexpr size_t kArenaKeepBytes = size_t{256} << 20;
thread_local Arena t_arena;

class CpuForwardOps final : public ForwardOps {
 public:
  explicit CpuForwardOps(ThreadPool& pool) : pool_(pool), placement_(pool), arena_(t_arena) {}
  ~CpuForwardOps() override {
    if (arena_.bytes() > kArenaKeepBytes) arena_.release();
  }

  float* scratch(Scratch id, size_t n) override { return arena_.f32[static_cast<int>(id)].get(n); }
  int32_t* index(Index id, size_t n) override { return arena_.i32[static_cast<int>(id)].get(n); }
  uint64_t* rng_keys(size_t n) override { return arena_.keys.get(n); }
  void upload(void* dst, const void* host, size_t bytes) override { std::memcpy(dst, host, bytes); }
  void download(void* host, const void* src, size_t bytes) override { std::memcpy(host, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override { std::memmove(dst, src, bytes); }

  void embedding(const WeightView& table, const int32_t* ids, int64_t n, float* out) override {
    op_embedding(table, ids, n, out, pool_);
  }
  void rmsnorm(const float* x, const WeightView& w, int64_t n, int64_t d, float eps, float* out) override {
    op_rmsnorm(x, w, n, d, eps, out, pool_);
  }
  void add_rmsnorm(float* residual, const float* delta, const WeightView& w, int64_t n, int64_t d, float eps,
                   float* out) override {
    op_add_rmsnorm(residual, delta, w, n, d, eps, out, pool_);
  }
  void gemm(const float* x, int64_t m, int64_t k, const WeightView& w, const WeightView* bias, float* y) override {
    op_gemm(x, m, k, w, bias, y, pool_);
  }
  void project(const float* x, int64_t m, int64_t k, const WeightView* const* w, const WeightView* const* bias,
               int count, float* y, int64_t ldy) override {
    op_project(x, m, k, w, bias, count, y, ldy, pool_);
  }
  // q and k of every layer rotate by the same positions: the cos/sin tables are computed on
  // the first call and reused while the positions, head_dim and theta stay the same.
  void rope(float* x, int64_t n, int64_t stride, int heads, int head_dim, const int32_t* pos, float theta) override {
    const RopeTables t = rope_tables(n, head_dim, pos, theta);
    const int64_t grain = n * heads * head_dim < kPoolMinElements ? n : 1;
    pool_.parallel_for(n, grain, [&](int64_t b, int64_t e, int) {
      op_rope_apply(x + b * stride, e - b, stride, heads, head_dim, t.cs + b * t.half, t.sn + b * t.half);
    });
  }
  // RoPE on each block of whole heads as soon as the GEMM has written it.
  void project_rope(const float* x, int64_t m, int64_t k, const WeightView* const* w, const WeightView* const* bias,
                    int count, float* y, int64_t ldy, int rope_heads, int head_dim, const int32_t* pos,
                    float theta) override {
    const RopeTables t = rope_tables(m, head_dim, pos, theta);
    std::vector<int64_t> offset(static_cast<size_t>(count), 0);
    for (int j = 1; j < count; j++) offset[j] = offset[j - 1] + w[j - 1]->rows;
    const int64_t rope_end = static_cast<int64_t>(rope_heads) * head_dim;
    ProjectEpilogue epilogue;
    epilogue.align = head_dim;  // weights start at whole heads (q, k, v are n_heads * head_dim rows)
    epilogue.block = [&](int j, int64_t i0, int64_t i1, int64_t c0, int64_t c1) {
      const int64_t g0 = offset[j] + c0, g1 = std::min(offset[j] + c1, rope_end);
      if (g0 >= g1) return;
      op_rope_apply(y + i0 * ldy + g0, i1 - i0, ldy, static_cast<int>((g1 - g0) / head_dim), head_dim,
                    t.cs + i0 * t.half, t.sn + i0 * t.half);
    };
    op_project(x, m, k, w, bias, count, y, ldy, pool_, &epilogue);
  }
  // SwiGLU on each block of gate and up columns as soon as both are written.
  void project_swiglu(const float* x, int64_t m, int64_t k, const WeightView& gate, const WeightView& up,
                      float* gate_up, float* act) override {
    const WeightView* w[2] = {&gate, &up};
    const int64_t n = gate.rows, ld = 2 * n;
    ProjectEpilogue epilogue;
    epilogue.align = 8;  // op_swiglu's vector lanes: each column takes the path it takes in a whole row
    epilogue.paired = true;
    epilogue.block = [&](int, int64_t i0, int64_t i1, int64_t c0, int64_t c1) {
      for (int64_t r = i0; r < i1; r++) op_swiglu(gate_up + r * ld + c0, gate_up + r * ld + n + c0, c1 - c0, act + r * n + c0);
    };
    op_project(x, m, k, w, nullptr, 2, gate_up, ld, pool_, &epilogue);
  }
  // The residual add on each block of the GEMM's outputs as soon as it is written.
  void gemm_add(const float* x, int64_t m, int64_t k, const WeightView& w, float* tmp, float* y) override {
    const WeightView* ws[1] = {&w};
    const int64_t n = w.rows;
    ProjectEpilogue epilogue;
    epilogue.block = [&](int, int64_t i0, int64_t i1, int64_t c0, int64_t c1) {
      for (int64_t r = i0; r < i1; r++) op_add(y + r * n + c0, tmp + r * n + c0, c1 - c0);
    };
    op_project(x, m, k, ws, nullptr, 1, tmp, n, pool_, &epilogue);
  }
  void gather_rows(const float* src, int64_t src_stride, int64_t width, const int32_t* rows, int64_t n,
                   float* dst) override {
    for (int64_t i = 0; i < n; i++)
      std::memcpy(dst + i * width, src + static_cast<int64_t>(rows[i]) * src_stride, sizeof(float) * width);
  }
  void write_cache(float* k_cache, float* v_cache, const float* k, const float* v, int64_t src_stride, int64_t rows,
                   int64_t width) override {
    copy_rows(k_cache, width, k, src_stride, rows, width);
    copy_rows(v_cache, width, v, src_stride, rows, width);
  }
  void attention(const AttentionParams& p) override { op_attention(p, pool_); }
  void attention_batch(const AttentionParams* p, size_t count) override { op_attention_batch(p, count, pool_); }
  void swiglu(const float* gate, const float* up, int64_t rows, int64_t cols, int64_t in_stride, float* out) override {
    // Rows over the pool; each row is one op_swiglu call, as for a single sequence.
    const int64_t grain = rows * cols < kPoolMinElements ? rows : 1;
    pool_.parallel_for(rows, grain, [&](int64_t b, int64_t e, int) {
      for (int64_t r = b; r < e; r++) op_swiglu(gate + r * in_stride, up + r * in_stride, cols, out + r * cols);
    });
  }
  void add(float* y, const float* x, int64_t n) override { op_add(y, x, n, pool_); }
  void confidence(const ConfidenceParams& p) override { op_confidence(p, pool_); }
  void begin(const ScratchPlan&) override {}
  void segment_begin(const std::string&) override {}
  bool segment_end() override { return true; }
  void finish() override {}

 private:
  struct RopeTables {
    const float* cs;
    const float* sn;
    int64_t half;
  };
  RopeTables rope_tables(int64_t n, int head_dim, const int32_t* pos, float theta) {
    Arena& a = arena_;
    const size_t half = static_cast<size_t>(head_dim / 2), cells = static_cast<size_t>(n) * half;
    const bool same = a.rope_n == n && a.rope_head_dim == head_dim && a.rope_theta == theta &&
                      (n == 0 || std::memcmp(a.rope_pos.data.get(), pos, sizeof(int32_t) * static_cast<size_t>(n)) == 0);
    if (!same) {
      std::memcpy(a.rope_pos.get(static_cast<size_t>(n) + 1), pos, sizeof(int32_t) * static_cast<size_t>(n));
      op_rope_angles(pos, n, head_dim, theta, a.rope_cs.get(cells + 1), a.rope_sn.get(cells + 1));
      a.rope_n = n;
      a.rope_head_dim = head_dim;
      a.rope_theta = theta;
    }
    return RopeTables{a.rope_cs.data.get(), a.rope_sn.data.get(), static_cast<int64_t>(half)};
  }

  ThreadPool& pool_;
  // The forward's calling thread stays on the pool's caller core from the first op to the
  // last (threadpool.h), not placed and released again for each of its ~70 pool jobs.
  ThreadPool::CallerScope placement_;
  Arena& arena_;
};

}  // namespace

std::unique_ptr<ForwardOps> cpu_forward_ops(ThreadPool& pool) { return std::make_unique<CpuForwardOps>(pool); }

}  // namespace sdllm
