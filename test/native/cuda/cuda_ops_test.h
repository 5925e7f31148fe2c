// The harness of test_cuda_ops (test_cuda_ops.cpp: the driver, the table and most ops;
// test_cuda_ops_attention.cpp: attention, the emulated mma and attention on tensor cores):
// seeded data, weights in every dtype, device buffers with sentinels on both sides, and
// the case each op adds to the table (a CPU reference and a kernel run). Header-only: the
// test files share one table.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "dtype.h"
#include "ops.h"
#include "sdllm_cuda.h"
#include "test_data.h"
#include "threadpool.h"

namespace sdllm {
namespace cuda_ops_test {

// ---- data ---------------------------------------------------------------------------------
using cuda_test_data::Rng;
using cuda_test_data::f32_to_f16;

// Host copy of a weight in some dtype (the values are first rounded to that dtype).
struct HostWeight {
  std::vector<uint8_t> bytes;
  DType dtype;
  int64_t rows, cols;
  WeightView view() const { return WeightView{bytes.data(), dtype, rows, cols}; }
};
inline HostWeight make_weight(Rng& r, DType t, int64_t rows, int64_t cols, float lo = -1.f, float hi = 1.f) {
  HostWeight w{{}, t, rows, cols};
  const int64_t n = rows * cols;
  w.bytes.resize(static_cast<size_t>(n * dtype_size(t)));
  for (int64_t i = 0; i < n; ++i) {
    const float v = r.uniform(lo, hi);
    if (t == DType::F32) std::memcpy(w.bytes.data() + 4 * i, &v, 4);
    else {
      const uint16_t h = t == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v);
      std::memcpy(w.bytes.data() + 2 * i, &h, 2);
    }
  }
  return w;
}

// ---- device buffers with sentinels ------------------------------------------------------------
constexpr int64_t kGuard = 64;          // sentinel elements on each side
constexpr uint32_t kSentinel = 0x7fbadbadu;  // a NaN no kernel produces

struct Errors {
  std::vector<std::string> list;
  void add(const std::string& s) {
    if (list.size() < 8) list.push_back(s);
  }
};

template <class T>
struct DevBuf {
  T* base = nullptr;
  int64_t n = 0;
  explicit DevBuf(int64_t count) : n(count) {
    void* p = nullptr;
    cudaMalloc(&p, sizeof(T) * static_cast<size_t>(n + 2 * kGuard));
    base = static_cast<T*>(p);
    fill_sentinel(0, n + 2 * kGuard, true);
  }
  DevBuf(const DevBuf&) = delete;
  ~DevBuf() { cudaFree(base); }
  T* ptr() { return base + kGuard; }
  void fill_sentinel(int64_t b, int64_t e, bool raw = false) {
    static_assert(sizeof(T) == 4, "sentinels are 32-bit");
    for (int64_t i = b; i < e; ++i) std::memcpy(raw ? base + i : ptr() + i, &kSentinel, 4);
  }
  void upload(const std::vector<T>& v) { cudaMemcpy(ptr(), v.data(), sizeof(T) * v.size(), cudaMemcpyHostToDevice); }
  std::vector<T> download() const {
    std::vector<T> v(static_cast<size_t>(n));
    cudaMemcpy(v.data(), base + kGuard, sizeof(T) * v.size(), cudaMemcpyDeviceToHost);
    return v;
  }
  void check_guards(Errors& err, const char* name) const {
    for (int64_t i = 0; i < kGuard; ++i) {
      uint32_t a, b;
      std::memcpy(&a, base + i, 4);
      std::memcpy(&b, base + kGuard + n + i, 4);
      if (a != kSentinel) { err.add(std::string(name) + ": write before the buffer"); return; }
      if (b != kSentinel) { err.add(std::string(name) + ": write after the buffer"); return; }
    }
  }
};

// An input buffer for a weight.
struct DevWeight {
  void* p = nullptr;
  WeightView v;
  explicit DevWeight(const HostWeight& w) {
    cudaMalloc(&p, w.bytes.size());
    cudaMemcpy(p, w.bytes.data(), w.bytes.size(), cudaMemcpyHostToDevice);
    v = WeightView{p, w.dtype, w.rows, w.cols};
  }
  DevWeight(const DevWeight&) = delete;
  ~DevWeight() { cudaFree(p); }
};

inline bool is_sentinel(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u == kSentinel;
}

// ---- cases ----------------------------------------------------------------------------------
struct Out {
  std::vector<float> f;       // floats the kernel produced (whole buffers, sentinels included)
  std::vector<int32_t> ids;   // ids (confidence)
  std::vector<uint8_t> written;  // per f element: 1 = the kernel must write it, 0 = must stay as it was
};

struct Case {
  std::string op, desc;
  double tol;  // normalised MSE bound on f (confidence: relative bound per element)
  bool per_element = false;
  int schedules = 3;
  std::function<void(Out&)> cpu;
  std::function<void(Out&, Errors&)> gpu;
  // Optional second reference with its own normalised-MSE bound (attention_tc: `cpu` is
  // the CPU op on bf16-rounded inputs, tight; `cpu_alt` the CPU op on the f32 inputs, loose).
  std::function<void(Out&)> cpu_alt;
  double tol_alt = 0;
  std::string alt_name;
};

// A case with no kernel to compare (launch-argument refusals, the cuBLAS loader): its
// `gpu` step checks and reports; there is no CPU result.
inline Case check_only_case(const char* op, const char* desc) {
  Case c;
  c.op = op;
  c.desc = desc;
  c.tol = 0;
  c.schedules = 1;
  c.cpu = [](Out&) {};
  return c;
}

inline std::vector<Case> g_cases;  // the table, filled by build_table()
inline ThreadPool& pool() { return default_pool(2); }

inline void check_launch(int err, Errors& e, const char* what) {
  if (err) e.add(std::string(what) + ": launch failed: " + cuda::error_string(err));
}

// Appends a device float buffer to `o`, with its "must be written" mask.
template <class T>
void collect(Out& o, const DevBuf<T>& b, Errors& e, const char* name) {
  b.check_guards(e, name);
  const auto v = b.download();
  o.f.insert(o.f.end(), v.begin(), v.end());
}

// ---- the attention family (test_cuda_ops_attention.cpp) ------------------------------------
struct AttnShape {
  const char* what;
  int n_heads, n_kv, hd;
  int64_t n_q, n_k0, n_k1;  // n_k1 is 0 or n_q (the query rows' own K/V)
  int splits = 1;           // 0 = auto (sm_count 8)
  bool generic = false;
  int64_t pad = 0;          // extra floats per row of every buffer (strides > widths)
};
void add_attention(const AttnShape& s);
void add_mma(int warps, int reps);
void add_attention_tc(const AttnShape& s);
void add_attention_tc_refusals();

}  // namespace cuda_ops_test
}  // namespace sdllm
