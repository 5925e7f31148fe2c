// test_cuda_ops: every kernel of cuda/*.cu, executed on the CPU by the emulator of
// cuda_emu.h, against its CPU twin of cpp/ops (ggml test-backend-ops style).
//
// A table of cases (op, shape, dtype, params) at odd sizes. Each case computes the CPU
// op's result once, then runs the kernel under several thread schedules and checks:
//   - normalised MSE against the CPU op (ids exactly, confidences to 1e-6 relative),
//   - no NaN/inf in what the kernel wrote,
//   - sentinel floats before and after every output buffer (and in the gaps of strided
//     outputs) are untouched: out-of-bounds writes show up,
//   - the bits of every output are identical under every schedule (a kernel without
//     races and atomics is deterministic; a missing barrier usually is not).
// Usage: test_cuda_ops [op-name-substring]   e.g. test_cuda_ops attention
// Prints one line per case and "cuda-emu: N passed, M failed"; exits 1 on any failure.
// The harness is cuda_ops_test.h; the attention family's cases, test_cuda_ops_attention.cpp.
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cublas_loader.h"
#include "cuda_ops_test.h"
#include "dtype.h"
#include "ops.h"
#include "sdllm_cuda.h"
#include "threadpool.h"

using namespace sdllm;
using namespace sdllm::cuda_ops_test;

namespace {

// ---- embedding ------------------------------------------------------------------------------
void add_embedding(DType t, int64_t vocab, int64_t d, std::vector<int32_t> ids) {
  Case c;
  c.op = "embedding";
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s vocab=%lld d=%lld n=%zu (out-of-range ids)", dtype_name(t),
                (long long)vocab, (long long)d, ids.size());
  c.desc = buf;
  c.tol = 0;
  Rng r(vocab + d);
  auto w = std::make_shared<HostWeight>(make_weight(r, t, vocab, d));
  const int64_t n = static_cast<int64_t>(ids.size());
  c.cpu = [=](Out& o) {
    o.f.assign(static_cast<size_t>(n * d), 0.f);
    op_embedding(w->view(), ids.data(), n, o.f.data());
  };
  c.gpu = [=](Out& o, Errors& e) {
    DevWeight dw(*w);
    DevBuf<int32_t> dids(n);
    dids.upload(ids);
    DevBuf<float> out(n * d);
    check_launch(cuda::embedding({dw.v, dids.ptr(), n, out.ptr()}, nullptr), e, "embedding");
    collect(o, out, e, "out");
  };
  g_cases.push_back(c);
}

// ---- rmsnorm --------------------------------------------------------------------------------
void add_rmsnorm(DType t, int64_t n, int64_t d, bool residual, bool alias) {
  Case c;
  c.op = "rmsnorm";
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s n=%lld d=%lld%s%s", dtype_name(t), (long long)n, (long long)d,
                residual ? " fused residual-add" : "", alias ? " out=x" : "");
  c.desc = buf;
  c.tol = 1e-12;
  Rng r(n * 1000 + d);
  auto w = std::make_shared<HostWeight>(make_weight(r, t, 1, d, 0.5f, 1.5f));
  const auto x = r.vec(n * d, -3.f, 3.f), res = r.vec(n * d, -2.f, 2.f);
  const float eps = 1e-5f;
  c.cpu = [=](Out& o) {
    std::vector<float> rr = res, out(static_cast<size_t>(n * d));
    if (residual) op_add(rr.data(), x.data(), n * d);
    op_rmsnorm(residual ? rr.data() : x.data(), w->view(), n, d, eps, out.data());
    o.f = out;
    if (residual) o.f.insert(o.f.end(), rr.begin(), rr.end());
  };
  c.gpu = [=](Out& o, Errors& e) {
    DevWeight dw(*w);
    DevBuf<float> dx(n * d), dres(n * d), dout(n * d);
    dx.upload(x);
    dres.upload(res);
    cuda::RMSNormParams p;
    p.x = dx.ptr();
    p.residual = residual ? dres.ptr() : nullptr;
    p.w = dw.v;
    p.n = n;
    p.d = d;
    p.eps = eps;
    p.out = alias ? dx.ptr() : dout.ptr();
    check_launch(cuda::rmsnorm(p, nullptr), e, "rmsnorm");
    collect(o, alias ? dx : dout, e, "out");
    if (residual) collect(o, dres, e, "residual");
  };
  g_cases.push_back(c);
}

// ---- rope -----------------------------------------------------------------------------------
void add_rope(int64_t n, int n_heads, int head_dim, int64_t row_stride, std::vector<int32_t> pos, float theta) {
  Case c;
  c.op = "rope";
  char buf[160];
  std::snprintf(buf, sizeof buf, "n=%lld heads=%d hd=%d stride=%lld theta=%g pos[last]=%d", (long long)n, n_heads,
                head_dim, (long long)row_stride, theta, pos.back());
  c.desc = buf;
  c.tol = 1e-12;
  Rng r(n * 77 + head_dim);
  const auto x = r.vec(n * row_stride);
  c.cpu = [=](Out& o) {
    o.f = x;
    op_rope(o.f.data(), n, row_stride, n_heads, head_dim, pos.data(), theta);
  };
  c.gpu = [=](Out& o, Errors& e) {
    DevBuf<float> dx(n * row_stride);
    dx.upload(x);
    DevBuf<int32_t> dpos(n);
    dpos.upload(pos);
    check_launch(cuda::rope({dx.ptr(), n, row_stride, n_heads, head_dim, dpos.ptr(), theta}, nullptr), e, "rope");
    collect(o, dx, e, "x");
  };
  g_cases.push_back(c);
}

// ---- swiglu / add / bias --------------------------------------------------------------------
void add_swiglu(int64_t rows, int64_t cols, int64_t in_stride, int64_t out_stride) {
  Case c;
  c.op = "swiglu";
  char buf[128];
  std::snprintf(buf, sizeof buf, "rows=%lld cols=%lld in_stride=%lld out_stride=%lld", (long long)rows,
                (long long)cols, (long long)in_stride, (long long)out_stride);
  c.desc = buf;
  c.tol = 1e-12;
  Rng r(rows * 31 + cols);
  const auto gate = r.vec(rows * in_stride, -6.f, 6.f), up = r.vec(rows * in_stride, -2.f, 2.f);
  c.cpu = [=](Out& o) {
    o.f.assign(static_cast<size_t>(rows * out_stride), 0.f);
    o.written.assign(o.f.size(), 0);
    for (int64_t i = 0; i < rows; ++i) {
      op_swiglu(gate.data() + i * in_stride, up.data() + i * in_stride, cols, o.f.data() + i * out_stride);
      for (int64_t j = 0; j < cols; ++j) o.written[static_cast<size_t>(i * out_stride + j)] = 1;
    }
  };
  c.gpu = [=](Out& o, Errors& e) {
    DevBuf<float> dg(rows * in_stride), du(rows * in_stride), dout(rows * out_stride);
    dg.upload(gate);
    du.upload(up);
    check_launch(cuda::swiglu({dg.ptr(), du.ptr(), rows, cols, in_stride, out_stride, dout.ptr()}, nullptr), e,
                 "swiglu");
    collect(o, dout, e, "out");
  };
  g_cases.push_back(c);
}

void add_add(int64_t n) {
  Case c;
  c.op = "add";
  c.desc = "residual add n=" + std::to_string(n);
  c.tol = 0;
  Rng r(n);
  const auto y = r.vec(n), x = r.vec(n);
  c.cpu = [=](Out& o) {
    o.f = y;
    op_add(o.f.data(), x.data(), n);
  };
  c.gpu = [=](Out& o, Errors& e) {
    DevBuf<float> dy(n), dx(n);
    dy.upload(y);
    dx.upload(x);
    check_launch(cuda::add({dy.ptr(), dx.ptr(), n}, nullptr), e, "add");
    collect(o, dy, e, "y");
  };
  g_cases.push_back(c);
}

// Dream's fused QKV projection output [rows, 3584 + 512 + 512] plus its bias: the CPU
// op_gemm with bias against op_gemm without bias followed by the bias-add kernel.
void add_bias(DType t, int64_t rows, int64_t cols, int64_t k) {
  Case c;
  c.op = "bias_add";
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s rows=%lld cols=%lld (GEMM k=%lld)", dtype_name(t), (long long)rows,
                (long long)cols, (long long)k);
  c.desc = buf;
  c.tol = 1e-12;
  Rng r(rows + cols + k);
  auto w = std::make_shared<HostWeight>(make_weight(r, t, cols, k));
  auto b = std::make_shared<HostWeight>(make_weight(r, t, 1, cols));
  const auto x = r.vec(rows * k);
  c.cpu = [=](Out& o) {
    o.f.assign(static_cast<size_t>(rows * cols), 0.f);
    const WeightView bv = b->view();
    op_gemm(x.data(), rows, k, w->view(), &bv, o.f.data(), pool());
  };
  c.gpu = [=](Out& o, Errors& e) {
    std::vector<float> y(static_cast<size_t>(rows * cols));
    op_gemm(x.data(), rows, k, w->view(), nullptr, y.data(), pool());
    DevWeight db(*b);
    DevBuf<float> dy(rows * cols);
    dy.upload(y);
    check_launch(cuda::bias_add({dy.ptr(), rows, cols, cols, db.v}, nullptr), e, "bias_add");
    collect(o, dy, e, "y");
  };
  g_cases.push_back(c);
}

// ---- kv cache -------------------------------------------------------------------------------
void add_kv(int64_t capacity, int n_kv, int hd, int64_t start, int64_t n, int64_t src_stride, bool rope,
            std::vector<int32_t> pos) {
  Case c;
  c.op = "kv_cache";
  char buf[160];
  std::snprintf(buf, sizeof buf, "cap=%lld kv_heads=%d hd=%d slots [%lld,%lld) stride=%lld %s", (long long)capacity,
                n_kv, hd, (long long)start, (long long)(start + n), (long long)src_stride,
                rope ? "rope on write" : "pre-rotated (overwrite)");
  c.desc = buf;
  c.tol = 1e-12;
  const int64_t w = static_cast<int64_t>(n_kv) * hd;
  Rng r(capacity * 3 + start + n);
  const auto k = r.vec(n * src_stride), v = r.vec(n * src_stride);
  const auto kc0 = r.vec(capacity * w), vc0 = r.vec(capacity * w);  // the cache before the write
  c.cpu = [=](Out& o) {
    std::vector<float> kc = kc0, vc = vc0, kk = k;
    if (rope) op_rope(kk.data(), n, src_stride, n_kv, hd, pos.data(), 10000.f);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < w; ++j) {
        kc[static_cast<size_t>((start + i) * w + j)] = kk[static_cast<size_t>(i * src_stride + j)];
        vc[static_cast<size_t>((start + i) * w + j)] = v[static_cast<size_t>(i * src_stride + j)];
      }
    o.f = kc;
    o.f.insert(o.f.end(), vc.begin(), vc.end());
  };
  c.gpu = [=](Out& o, Errors& e) {
    DevBuf<float> dk(n * src_stride), dv(n * src_stride), dkc(capacity * w), dvc(capacity * w);
    dk.upload(k);
    dv.upload(v);
    dkc.upload(kc0);
    dvc.upload(vc0);
    DevBuf<int32_t> dpos(n);
    dpos.upload(pos);
    cuda::KVWriteParams p;
    p.k = dk.ptr();
    p.v = dv.ptr();
    p.n = n;
    p.src_stride = src_stride;
    p.k_cache = dkc.ptr();
    p.v_cache = dvc.ptr();
    p.start = start;
    p.capacity = capacity;
    p.n_kv_heads = n_kv;
    p.head_dim = hd;
    p.pos = rope ? dpos.ptr() : nullptr;
    p.theta = 10000.f;
    check_launch(cuda::kv_cache_write(p, nullptr), e, "kv_cache_write");
    collect(o, dkc, e, "k_cache");
    collect(o, dvc, e, "v_cache");
    if (dk.download() != k) e.add("the source K was modified");
  };
  g_cases.push_back(c);
}

// ---- confidence -----------------------------------------------------------------------------
enum class Logits { Random, Ties, NegInf, Ascending };

void add_confidence(int64_t n_rows, int64_t vocab, int64_t row_stride, ConfidenceKind kind, float temperature,
                    bool keys, Logits shape, float ctemp = 1.f) {
  Case c;
  c.op = "confidence";
  static const char* kinds[] = {"prob", "margin", "entropy", "random"};
  static const char* shapes[] = {"random", "ties", "-inf", "ascending"};
  char buf[160];
  std::snprintf(buf, sizeof buf, "rows=%lld vocab=%lld stride=%lld %s T=%g%s logits=%s%s", (long long)n_rows,
                (long long)vocab, (long long)row_stride, kinds[static_cast<int>(kind)], temperature,
                keys ? " row_keys" : "", shapes[static_cast<int>(shape)],
                ctemp != 1.f ? (" conf-T=" + std::to_string(ctemp).substr(0, 4)).c_str() : "");
  c.desc = buf;
  c.tol = 1e-6;
  c.per_element = true;
  Rng r(n_rows * 17 + vocab + static_cast<int>(kind));
  std::vector<float> l = r.vec(n_rows * row_stride, -8.f, 8.f);
  for (int64_t i = 0; i < n_rows; ++i) {
    float* row = l.data() + i * row_stride;
    if (shape == Logits::Ties) {
      // Three equal maxima at scattered ids (the lowest must win, margin = 0), rows
      // alternating with a single peak.
      const int64_t a = (vocab * 3) / 7 + i, b = vocab / 5 + 2 * i, cc = vocab - 1 - i;
      row[a] = row[b] = row[cc] = 12.5f;
      if (i % 2) row[b] = 12.0f;
    } else if (shape == Logits::NegInf) {
      for (int64_t t = 0; t < vocab; t += 3) row[t] = -INFINITY;
      row[vocab / 2 + i] = 9.f;
    } else if (shape == Logits::Ascending) {
      for (int64_t t = 0; t < vocab; ++t) row[t] = -10.f + 20.f * static_cast<float>(t) / static_cast<float>(vocab);
    } else {
      row[(i * 7919) % vocab] = 10.f + static_cast<float>(i);  // a clear winner per row
    }
  }
  std::vector<uint64_t> row_keys(static_cast<size_t>(n_rows));
  for (int64_t i = 0; i < n_rows; ++i) row_keys[static_cast<size_t>(i)] = 1000 + 37 * static_cast<uint64_t>(i);
  const uint64_t seed = 42;
  auto params = [=](const float* lp, const uint64_t* kp, int32_t* ids, float* conf) {
    ConfidenceParams p;
    p.logits = lp;
    p.n_rows = n_rows;
    p.vocab = vocab;
    p.row_stride = row_stride;
    p.kind = kind;
    p.temperature = temperature;
    p.confidence_temperature = ctemp;
    p.seed = seed;
    p.row_keys = keys ? kp : nullptr;
    p.out_ids = ids;
    p.out_conf = conf;
    return p;
  };
  // Two launches, each compared with the CPU op: the two-argument launcher (one block per
  // row), and the sliced one, with sm_count 8 for LLaDA's vocabulary (3-32 slices) and
  // 1000 below it (the most slices the vocabulary allows, so that ties and maxima
  // straddle slice boundaries).
  const std::vector<int> sms = vocab > 50000 ? std::vector<int>{0, 8} : std::vector<int>{0, 1000};
  c.cpu = [=](Out& o) {
    std::vector<float> conf(static_cast<size_t>(n_rows), 0.f);
    std::vector<int32_t> ids(static_cast<size_t>(n_rows), -1);
    op_confidence(params(l.data(), row_keys.data(), ids.data(), conf.data()), pool());
    for (size_t k = 0; k < sms.size(); ++k) {
      o.f.insert(o.f.end(), conf.begin(), conf.end());
      o.ids.insert(o.ids.end(), ids.begin(), ids.end());
    }
  };
  c.gpu = [=](Out& o, Errors& e) {
    DevBuf<float> dl(n_rows * row_stride);
    dl.upload(l);
    // 64-bit keys in a 32-bit-element buffer
    DevBuf<int32_t> dkeys(2 * n_rows);
    cudaMemcpy(dkeys.ptr(), row_keys.data(), 8 * static_cast<size_t>(n_rows), cudaMemcpyHostToDevice);
    for (int sm : sms) {
      DevBuf<float> dconf(n_rows);
      DevBuf<int32_t> dids(n_rows);
      const ConfidenceParams p =
          params(dl.ptr(), reinterpret_cast<const uint64_t*>(dkeys.ptr()), dids.ptr(), dconf.ptr());
      if (sm == 0) {
        check_launch(cuda::confidence(p, nullptr), e, "confidence");
      } else {
        const int slices = cuda::confidence_slices(n_rows, vocab, sm);
        const size_t bytes = cuda::confidence_workspace_bytes(n_rows, vocab, sm);
        if (vocab >= 1024 && sm == 1000 && slices < 2) e.add("no vocabulary split for vocab " + std::to_string(vocab));
        if ((slices > 1) != (bytes > 0)) e.add("workspace size disagrees with the slice count");
        DevBuf<float> ws(bytes > 0 ? static_cast<int64_t>((bytes + 3) / 4) : 1);
        check_launch(cuda::confidence(p, bytes ? ws.ptr() : nullptr, bytes, sm, nullptr), e, "confidence (sliced)");
        ws.check_guards(e, "workspace");
      }
      collect(o, dconf, e, "conf");
      dids.check_guards(e, "ids");
      const auto ids = dids.download();
      o.ids.insert(o.ids.end(), ids.begin(), ids.end());
    }
  };
  g_cases.push_back(c);
}

// ---- cuBLAS loader (no kernel: the run-time loading and its error message) ----------------
void add_cublas_loader() {
  Case c = check_only_case("cublas_loader", "missing library names the library and what to install; real load");
  c.gpu = [](Out&, Errors& e) {
    const char* names[] = {"libsdllm_no_such_cublas.so.99"};
    cuda::Cublas lib;
    std::string msg;
    if (cuda::cublas_try_load(names, 1, &lib, &msg)) e.add("loading a missing library succeeded");
    if (msg.find("libsdllm_no_such_cublas.so.99") == std::string::npos || msg.find("Install cuBLAS") == std::string::npos)
      e.add("unclear error message: " + msg);
    std::string err;
    const cuda::Cublas* real = cuda::cublas_load(&err);
    if (real && (!real->create || !real->gemm_ex || !real->set_stream || !real->destroy)) e.add("unresolved symbols");
    if (!real && (err.find("libcublas.so.13") == std::string::npos || err.find("libcublas.so.12") == std::string::npos))
      e.add("unclear error message: " + err);
    std::printf("         cuBLAS on this machine: %s\n", real ? real->path.c_str() : "not available (CUDA backend would refuse to start)");
  };
  g_cases.push_back(c);

  // A library whose cublasCreate fails (as a cuBLAS 13 does on a pre-R580 driver) is
  // skipped for the next candidate, and the reason is in the message when none works.
  Case f = check_only_case("cublas_loader", "cublasCreate failing in the first candidate: the next one is used");
  f.gpu = [](Out&, Errors& e) {
    const char* both[] = {SDLLM_FAKE_CUBLAS_FAIL, SDLLM_FAKE_CUBLAS_OK};
    cuda::Cublas lib;
    std::string msg;
    if (!cuda::cublas_try_load(both, 2, &lib, &msg)) {
      e.add("no library loaded: " + msg);
    } else {
      if (lib.path != SDLLM_FAKE_CUBLAS_OK) e.add("loaded " + lib.path + ", expected the second candidate");
      auto live = reinterpret_cast<int (*)()>(dlsym(lib.library, "sdllm_fake_cublas_live_handles"));
      if (!live || live() != 0) e.add("the probe handle was not destroyed");
    }
    const char* failing[] = {SDLLM_FAKE_CUBLAS_FAIL};
    std::string why;
    if (cuda::cublas_try_load(failing, 1, &lib, &why)) e.add("a library whose cublasCreate fails was accepted");
    if (why.find("cublasCreate failed with status 1") == std::string::npos || why.find("driver") == std::string::npos)
      e.add("unclear error message: " + why);
  };
  g_cases.push_back(f);
}

// ---- the table ------------------------------------------------------------------------------
void build_table() {
  add_embedding(DType::F32, 97, 131, {0, 5, 96, -1, 97, 50, 5});
  add_embedding(DType::F16, 61, 300, {3, 60, 0, 1000});
  add_embedding(DType::BF16, 126, 257, {125, 1, 64, -7, 2});

  add_rmsnorm(DType::F32, 3, 4096, false, false);
  add_rmsnorm(DType::BF16, 5, 333, false, true);
  add_rmsnorm(DType::F16, 4, 517, true, false);
  add_rmsnorm(DType::BF16, 2, 3584, true, true);

  // Streaming step: block rows 40..45, window 46..49, trailing position 255.
  add_rope(11, 4, 64, 4 * 64, {40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 255}, 500000.f);
  add_rope(5, 3, 128, 3 * 128 + 2 * 128 + 7, {0, 1, 2, 3, 1000000}, 1000000.f);  // rows of a fused qkv
  add_rope(6, 5, 16, 5 * 16, {7, 3, 9, 0, 12, 511}, 10000.f);

  add_swiglu(1, 1000, 1000, 1000);
  add_swiglu(3, 257, 600, 300);
  add_add(1234);
  add_bias(DType::BF16, 5, 3584 + 512 + 512, 16);  // Dream-7B q|k|v bias
  add_bias(DType::F32, 3, 77, 9);

  add_kv(50, 4, 64, 10, 7, 4 * 64, true, {10, 11, 12, 13, 14, 15, 255});  // append, rope on write
  add_kv(40, 2, 128, 0, 13, 2 * 128 * 3 + 5, false, {});                  // overwrite a range, strided source
  add_kv(33, 4, 128, 20, 13, 4 * 128, true, {20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32});  // up to capacity

  // Attention. n_k1 = n_q: segment 1 is the query rows' own K/V.
  add_attention({"streaming step (block 16 + window 4 + trailing)", 4, 4, 64, 21, 37, 21});
  add_attention({"window larger than the suffix", 4, 4, 64, 9, 70, 9});
  add_attention({"no cache (empty segment 0)", 4, 2, 64, 33, 0, 33});
  add_attention({"empty segment 1 (dual cache)", 4, 4, 64, 5, 45, 0});
  add_attention({"GQA 4:1 hd128", 8, 2, 128, 19, 50, 19});
  add_attention({"GQA 7:1 (Dream 28/4) hd128", 14, 2, 128, 11, 40, 11, 1, false, 5});
  add_attention({"generic hd16", 2, 1, 16, 13, 29, 13});
  add_attention({"generic hd32 padded", 6, 3, 32, 7, 33, 7, 1, false, 3});
  add_attention({"generic hd80", 2, 2, 80, 6, 20, 6});
  add_attention({"generic path for hd64", 4, 2, 64, 10, 45, 10, 1, true});
  add_attention({"LLaDA-8B heads (32/32 hd128), prefix 200", 32, 32, 128, 8, 200, 8});
  add_attention({"Dream-7B heads (28/4 hd128), window > suffix", 28, 4, 128, 5, 90, 5, 1, false, 11});
  add_attention({"split-K 4 ways", 4, 4, 64, 3, 600, 3, 4});
  add_attention({"split-K auto, GQA 7:1 hd128", 7, 1, 128, 2, 700, 2, 0});
  add_attention({"split-K 3 ways, empty segment 1", 4, 4, 64, 2, 300, 0, 3});
  add_attention({"split-K generic hd48", 2, 1, 48, 3, 257, 3, 5});

  add_mma(1, 1);
  add_mma(2, 3);
  // Tensor-core attention. Streaming shapes: n_q = block 32 + window 96 + trailing 1 = 129,
  // block + trailing = 33 (empty window), 7, 1; caches 0, 1, 100, 600; GQA 4:1, 8:2, 1:1, 7:1.
  add_attention_tc({"streaming: block 32 + window 96 + trailing, cache 600", 4, 1, 128, 129, 600, 129, 0});
  add_attention_tc({"streaming, empty window (block 32 + trailing)", 8, 2, 64, 33, 100, 33, 1, false, 3});
  add_attention_tc({"one row over a 600-slot cache, split auto", 8, 2, 64, 1, 600, 1, 0});
  add_attention_tc({"7 rows, cache of 1", 1, 1, 128, 7, 1, 7});
  add_attention_tc({"no cache (empty segment 0)", 4, 1, 128, 33, 0, 33});
  add_attention_tc({"attend_self off (dual cache), padded", 8, 2, 128, 7, 100, 0, 1, false, 5});
  add_attention_tc({"vanilla-like, no cache, 1:1", 1, 1, 64, 129, 0, 129});
  add_attention_tc({"a single key (one row, no cache)", 1, 1, 64, 1, 0, 1});
  add_attention_tc({"no keys at all (zero output)", 4, 1, 64, 3, 0, 0});
  add_attention_tc({"split 3 ways, attend_self off", 4, 1, 64, 7, 600, 0, 3});
  add_attention_tc({"Dream-7B GQA 7:1 (28/4) hd128, window > suffix", 28, 4, 128, 5, 90, 5, 1, false, 11});
  add_attention_tc_refusals();

  const int64_t V = 126464;  // LLaDA's vocabulary
  add_confidence(3, V, V, ConfidenceKind::Prob, 0.f, false, Logits::Random);
  add_confidence(2, V, V + 5, ConfidenceKind::Margin, 0.f, true, Logits::Random);
  add_confidence(2, V, V, ConfidenceKind::Entropy, 0.f, false, Logits::Random);
  add_confidence(2, V, V, ConfidenceKind::Prob, 0.7f, true, Logits::Random);
  add_confidence(4, 1000, 1003, ConfidenceKind::Prob, 0.f, false, Logits::Ties);
  add_confidence(4, 1000, 1000, ConfidenceKind::Margin, 0.f, true, Logits::Ties);
  add_confidence(3, 50, 50, ConfidenceKind::Entropy, 0.f, false, Logits::Random);  // vocab < block
  add_confidence(3, 777, 777, ConfidenceKind::Random, 0.f, true, Logits::Random);
  add_confidence(2, 2049, 2049, ConfidenceKind::Entropy, 1.3f, true, Logits::NegInf);
  add_confidence(2, 5000, 5000, ConfidenceKind::Prob, 0.f, false, Logits::Ascending);
  add_confidence(17, 3001, 3001, ConfidenceKind::Margin, 0.9f, true, Logits::Random);
  add_confidence(4, 6000, 6001, ConfidenceKind::Prob, 0.f, false, Logits::Ties);     // ties across slices
  add_confidence(4, 6000, 6000, ConfidenceKind::Margin, 0.f, true, Logits::Ties);
  add_confidence(1, V, V, ConfidenceKind::Entropy, 0.f, true, Logits::Ascending);      // one row, 32 slices
  add_confidence(3, 6000, 6001, ConfidenceKind::Entropy, 0.6f, true, Logits::NegInf);
  add_confidence(2, V, V, ConfidenceKind::Prob, 0.9f, true, Logits::Random, 0.7f);  // Dream: softmax(l / T)
  add_confidence(3, 5000, 5000, ConfidenceKind::Entropy, 0.f, false, Logits::Random, 1.5f);
  add_confidence(3, 5000, 5000, ConfidenceKind::Margin, 0.f, false, Logits::Ties, 0.5f);

  add_cublas_loader();
}

// ---- the driver ----------------------------------------------------------------------------
double nmse(const std::vector<float>& a, const std::vector<float>& b, const std::vector<uint8_t>& mask) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!mask.empty() && !mask[i]) continue;
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return den > 0 ? num / den : num;
}

bool run_case(const Case& c) {
  const auto t0 = std::chrono::steady_clock::now();
  Out want, want_alt;
  c.cpu(want);
  if (c.cpu_alt) c.cpu_alt(want_alt);
  double worst_alt = 0;
  const uint64_t schedules[] = {0, 0x5eed5eedull, 977};
  Errors err;
  Out first;
  double worst = 0;
  for (int si = 0; si < c.schedules; ++si) {
    sdllm_emu::set_schedule(schedules[si]);
    Out got;
    c.gpu(got, err);
    const std::string tag = " [schedule " + std::to_string(schedules[si]) + "]";
    if (got.f.size() != want.f.size() || got.ids.size() != want.ids.size()) {
      err.add("output size mismatch" + tag);
      break;
    }
    for (size_t i = 0; i < got.f.size(); ++i) {
      const bool must = want.written.empty() || want.written[i];
      if (must && !std::isfinite(got.f[i]) && std::isfinite(want.f[i])) {
        err.add("non-finite or unwritten value at " + std::to_string(i) + tag);
        break;
      }
      if (!must && !is_sentinel(got.f[i])) {
        err.add("write into a stride gap at " + std::to_string(i) + tag);
        break;
      }
    }
    if (c.per_element) {
      for (size_t i = 0; i < got.f.size(); ++i) {
        const double d = std::fabs(static_cast<double>(got.f[i]) - want.f[i]);
        const double rel = d / std::max(1.0, std::fabs(static_cast<double>(want.f[i])));
        worst = std::max(worst, rel);
        if (!(rel <= c.tol)) {
          char b[160];
          std::snprintf(b, sizeof b, "row %zu: conf %.9g, CPU %.9g", i, got.f[i], want.f[i]);
          err.add(b + tag);
        }
      }
    } else {
      const double e = nmse(got.f, want.f, want.written);
      worst = std::max(worst, e);
      if (!(e <= c.tol)) err.add("nmse " + std::to_string(e) + tag);
      if (c.cpu_alt) {
        const double ea = nmse(got.f, want_alt.f, want_alt.written);
        worst_alt = std::max(worst_alt, ea);
        if (!(ea <= c.tol_alt)) err.add("nmse vs " + c.alt_name + " " + std::to_string(ea) + tag);
      }
    }
    for (size_t i = 0; i < got.ids.size(); ++i)
      if (got.ids[i] != want.ids[i])
        err.add("row " + std::to_string(i) + ": id " + std::to_string(got.ids[i]) + ", CPU " +
                std::to_string(want.ids[i]) + tag);
    if (si == 0) {
      first = got;
    } else if (got.ids != first.ids || got.f.size() != first.f.size() ||
               std::memcmp(got.f.data(), first.f.data(), 4 * got.f.size()) != 0) {
      err.add("result depends on the thread schedule (a race)" + tag);
    }
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const bool ok = err.list.empty();
  std::printf("%s %-10s %-90s err=%.2e %6.0f ms\n", ok ? "[ OK ]" : "[FAIL]", c.op.c_str(), c.desc.c_str(), worst, ms);
  if (c.cpu_alt) std::printf("         nmse vs bf16-rounded inputs %.2e (bound %.0e), vs %s %.2e (bound %.0e)\n", worst, c.tol, c.alt_name.c_str(), worst_alt, c.tol_alt);
  for (const auto& m : err.list) std::printf("         %s\n", m.c_str());
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string filter = argc > 1 ? argv[1] : "";
  build_table();
  int passed = 0, failed = 0;
  for (const Case& c : g_cases) {
    if (!filter.empty() && c.op.find(filter) == std::string::npos) continue;
    (run_case(c) ? passed : failed)++;
  }
  const auto st = sdllm_emu::stats();
  std::printf("emulator: %llu launches, %llu blocks, %llu barriers, %llu warp rendezvous (%llu mma), %llu fiber switches\n",
              (unsigned long long)st.launches, (unsigned long long)st.blocks, (unsigned long long)st.barriers,
              (unsigned long long)st.warp_syncs, (unsigned long long)st.mmas, (unsigned long long)st.switches);
  std::printf("cuda-emu: %d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
