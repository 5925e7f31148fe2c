// bench_forward: whole forwards at LLaDA-8B shapes through the CUDA backend's C ABI
// (cuda/backend.h: sdllm_cuda_api(SDLLM_CUDA_ABI_VERSION), then model_create,
// session_create, session_forward and forward_batch), each timed by the wall clock around
// the call (session_forward returns once the stream is synchronised and the ids and
// confidences are on the host), median of --reps after --warmup, printed beside its floor
// on this device and with the peak device memory of the run.
//
// Weights: random BF16, generated on the host for ONE layer; the n_layers layer
// descriptors all point at those same host tensors, and the embedding table is also the
// LM head. The library uploads host tensors and uploads an identical host pointer once, so
// the device holds one layer (436 MB at LLaDA-8B shapes) that every layer reads in turn.
// One layer's weights are far larger than the L2 cache (50 MB on H100/H200), so a forward
// streams the same bytes from HBM as 32 distinct layers would (15.0 GB with the LM head)
// while host memory stays ~1.5 GB and the upload takes well under a second. The values do
// not matter for the timings; they are scaled so that the activations stay finite, and the
// harness counts any confidence that is not. Each row also shows the kernel launches (and
// copies) and cuBLAS calls of the forward, from the library's model_stats.
//
// Cases, per GEMM mode (exact = SDLLM_CUDA_GEMM_EXACT, 16bit = SDLLM_CUDA_GEMM_WEIGHT_DTYPE)
// and per prompt length P, on the first block of a generation of --gen positions (N = P +
// gen), as the streaming strategy feeds them (block 32, window 96, one trailing position;
// s = P, e = P + 32):
//   step0   rows [0, e) + the window [e, e + 96) + the trailing position N - 1, cache
//           slots [0, s) written, nothing read from the cache: P + 129 rows.
//   cached  the block [s, e) + the window + the trailing position = 129 rows over the
//           cached prefix [0, s).
//   batchB  --batch sessions (8), each after its own step 0, one forward_batch of their
//           cached steps (timed per call; per-sequence time = call / B).
// The 32 block rows are predicted (LM head and confidence) in every case.
//
// Floor of a case = max(bytes / bandwidth, FLOPs / peak). bytes = the weights once (layers
// and LM head; the embedding rows gathered), the KV cache read and written (float32: 2 x
// kv_dim x 4 B per slot and layer, 1 MiB per slot over all layers at LLaDA-8B shapes);
// FLOPs = 2 x rows x layer parameters + attention (4 x rows x keys x d_model per layer) +
// 2 x predicted rows x vocab x d_model. peak = dense BF16 tensor cores in the 16-bit mode,
// F32 CUDA cores in the exact mode (its GEMMs run in F32, no TF32). Bandwidth and peaks
// come from the device name (H100 SXM 3.35 TB/s, H100 NVL 3.9, H100 PCIe 2.0, H200 4.8;
// BF16 989 / 835 / 756 TFLOP/s; F32 67 / 60 / 51), else from the memory clock and bus
// width, or from --bandwidth / --peak-bf16 / --peak-f32.
//
// Device memory (real build): this program links no CUDA runtime. libsdllm_cuda carries
// its own (statically linked) and a second runtime in the process would be a second,
// separate instance. It opens the driver (libcuda.so.1) with dlopen instead, for the
// device name, the driver's CUDA version and cuMemGetInfo on the device's primary
// context (the one the library's runtime uses): a thread samples the free memory every
// millisecond for the whole run; peak in use = free before the library's first allocation
// minus the least free seen (other processes on the device would be counted too).
//
// Build and run: bench/cuda/CMakeLists.txt builds target bench_forward next to
// libsdllm_cuda.so (whose path is compiled in; --library overrides); scripts/gpu-check.sh
// builds and runs it. Under the CPU emulator (no GPU): target bench_forward_emu of
// test/native/cuda/CMakeLists.txt (kernels and backend.cu executed on the CPU, cuBLAS
// replaced by cublas_emu), run with --tiny shapes by `scripts/gpu-check.sh --emulate`.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../../cuda/backend.h"

#ifndef SDLLM_CUDA_EMULATION
#include <dlfcn.h>
#endif

namespace {

const char* const kUsage =
    "usage: bench_forward [options]\n"
    "  --tiny               small shapes of the same structure (for the CPU emulator)\n"
    "  --prompts LIST       prompt lengths, comma-separated (default 512,2048; --tiny 16,40)\n"
    "  --gen N              generation length after the prompt (default 256; --tiny 32)\n"
    "  --modes LIST         exact, 16bit or both (default exact,16bit)\n"
    "  --reps N             timed calls per case, median reported (default 5)\n"
    "  --warmup N           untimed calls before them (default 1)\n"
    "  --batch N            sessions of the forward_batch case, 0 = none (default 8)\n"
    "  --device N           CUDA device (default 0)\n"
    "  --library PATH       libsdllm_cuda.so to load (real build; default: the one built beside this)\n"
    "  --bandwidth TB/s     memory bandwidth for the floors (default: from the device name)\n"
    "  --peak-bf16 TFLOP/s  dense BF16 tensor-core peak (default: from the device name)\n"
    "  --peak-f32 TFLOP/s   F32 CUDA-core peak (default: from the device name)\n";

[[noreturn]] void usage_error(const std::string& why) {
  std::fprintf(stderr, "bench_forward: %s\n%s", why.c_str(), kUsage);
  std::exit(2);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ---- options ----------------------------------------------------------------------

struct Shapes {
  int64_t d = 4096, heads = 32, kv = 32, hd = 128, layers = 32, mlp = 12288, vocab = 126464;
  int64_t block = 32, window = 96;
  int64_t kvd() const { return kv * hd; }
  int64_t layer_params() const { return 2 * d * d + 2 * kvd() * d + 3 * mlp * d + 2 * d; }
};

struct Options {
  bool tiny = false;
  std::vector<int64_t> prompts;
  int64_t gen = -1;
  bool exact = true, half = true;
  int reps = 5, warmup = 1, batch = 8, device = 0;
  std::string library;
  double bandwidth = 0, peak_bf16 = 0, peak_f32 = 0;  // B/s, FLOP/s; 0 = from the device
};

int64_t parse_int(const std::string& flag, const char* v, int64_t lo, int64_t hi) {
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (!*v || *end || x < lo || x > hi)
    usage_error(flag + " needs an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + v + "'");
  return x;
}

double parse_positive(const std::string& flag, const char* v) {
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  if (!*v || *end || !(x > 0) || !std::isfinite(x)) usage_error(flag + " needs a positive number, got '" + v + "'");
  return x;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t a = 0;
  while (a <= s.size()) {
    const size_t b = s.find(',', a);
    out.push_back(s.substr(a, b == std::string::npos ? std::string::npos : b - a));
    if (b == std::string::npos) break;
    a = b + 1;
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (a == "--tiny") {
      o.tiny = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) usage_error("unexpected argument '" + a + "'");
    if (i + 1 >= argc) usage_error(a + " needs a value");
    const char* v = argv[++i];
    if (a == "--prompts") {
      o.prompts.clear();
      for (const std::string& p : split(v)) o.prompts.push_back(parse_int(a, p.c_str(), 1, 1 << 20));
    } else if (a == "--gen") {
      o.gen = parse_int(a, v, 1, 1 << 20);
    } else if (a == "--modes") {
      o.exact = o.half = false;
      for (const std::string& m : split(v)) {
        if (m == "exact") o.exact = true;
        else if (m == "16bit") o.half = true;
        else usage_error("--modes takes exact and/or 16bit, got '" + m + "'");
      }
    } else if (a == "--reps") {
      o.reps = static_cast<int>(parse_int(a, v, 1, 10000));
    } else if (a == "--warmup") {
      o.warmup = static_cast<int>(parse_int(a, v, 0, 10000));
    } else if (a == "--batch") {
      o.batch = static_cast<int>(parse_int(a, v, 0, 256));
    } else if (a == "--device") {
      o.device = static_cast<int>(parse_int(a, v, 0, 1023));
    } else if (a == "--library") {
      o.library = v;
    } else if (a == "--bandwidth") {
      o.bandwidth = parse_positive(a, v) * 1e12;
    } else if (a == "--peak-bf16") {
      o.peak_bf16 = parse_positive(a, v) * 1e12;
    } else if (a == "--peak-f32") {
      o.peak_f32 = parse_positive(a, v) * 1e12;
    } else {
      usage_error("unknown option '" + a + "'");
    }
  }
  if (o.prompts.empty()) o.prompts = o.tiny ? std::vector<int64_t>{16, 40} : std::vector<int64_t>{512, 2048};
  if (o.gen < 0) o.gen = o.tiny ? 32 : 256;
  return o;
}

// ---- the driver, for the device's name and memory (real build only) ----------------

struct Driver {
  bool ok = false;
  std::string name = "CPU emulator (no device)";
  int cuda_version = 0;  // cuDriverGetVersion: 12080 = CUDA 12.8
  int sm_major = 0, sm_minor = 0, sms = 0, l2_bytes = 0;
  double bus_bandwidth = 0;  // from the memory clock and bus width, B/s; 0 = unknown
  size_t total = 0;
  int (*mem_get_info)(size_t*, size_t*) = nullptr;
  int (*ctx_set_current)(void*) = nullptr;
  void* ctx = nullptr;

  bool free_bytes(size_t* f) const {
    size_t t = 0;
    return ok && mem_get_info(f, &t) == 0;
  }
};

#ifndef SDLLM_CUDA_EMULATION
template <class F>
bool sym(void* lib, const char* name, F& f) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  return f != nullptr;
}

Driver open_driver(int device, std::string* why) {
  Driver d;
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    *why = e ? e : "libcuda.so.1 not found";
    return d;
  }
  int (*init)(unsigned) = nullptr;
  int (*version)(int*) = nullptr;
  int (*get)(int*, int) = nullptr;
  int (*get_name)(char*, int, int) = nullptr;
  int (*total)(size_t*, int) = nullptr;
  int (*attr)(int*, int, int) = nullptr;
  int (*retain)(void**, int) = nullptr;
  if (!(sym(lib, "cuInit", init) && sym(lib, "cuDriverGetVersion", version) && sym(lib, "cuDeviceGet", get) &&
        sym(lib, "cuDeviceGetName", get_name) && sym(lib, "cuDeviceTotalMem_v2", total) &&
        sym(lib, "cuDeviceGetAttribute", attr) && sym(lib, "cuDevicePrimaryCtxRetain", retain) &&
        sym(lib, "cuCtxSetCurrent", d.ctx_set_current) && sym(lib, "cuMemGetInfo_v2", d.mem_get_info))) {
    *why = "libcuda.so.1 lacks a driver API entry point";
    return d;
  }
  int dev = 0, st = init(0);
  if (st == 0) st = get(&dev, device);
  if (st != 0) {
    *why = "cuInit/cuDeviceGet failed with CUresult " + std::to_string(st);
    return d;
  }
  version(&d.cuda_version);
  char name[256] = {0};
  if (get_name(name, sizeof(name) - 1, dev) == 0) d.name = name;
  total(&d.total, dev);
  attr(&d.sms, 16, dev);        // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
  attr(&d.l2_bytes, 38, dev);   // CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE
  attr(&d.sm_major, 75, dev);   // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
  attr(&d.sm_minor, 76, dev);   // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
  int clock_khz = 0, bus_bits = 0;
  if (attr(&clock_khz, 36, dev) == 0 && attr(&bus_bits, 37, dev) == 0 && clock_khz > 0 && bus_bits > 0)
    d.bus_bandwidth = 2.0 * clock_khz * 1e3 * bus_bits / 8.0;  // double data rate
  if (retain(&d.ctx, dev) != 0 || d.ctx_set_current(d.ctx) != 0) {
    *why = "cuDevicePrimaryCtxRetain failed";
    return d;
  }
  d.ok = true;
  return d;
}
#endif

// Samples the device's free memory every millisecond in a thread of its own.
struct MemSampler {
  const Driver& drv;
  std::atomic<bool> stop{false};
  std::atomic<size_t> min_free{SIZE_MAX};
  std::thread th;
  explicit MemSampler(const Driver& d) : drv(d) {
    if (!drv.ok) return;
    th = std::thread([this] {
      drv.ctx_set_current(drv.ctx);
      while (!stop.load()) {
        sample();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  void sample() {
    size_t f = 0;
    if (!drv.free_bytes(&f)) return;
    size_t m = min_free.load();
    while (f < m && !min_free.compare_exchange_weak(m, f)) {
    }
  }
  ~MemSampler() {
    stop = true;
    if (th.joinable()) th.join();
  }
};

// ---- the hardware's limits ----------------------------------------------------------

struct Limits {
  double bandwidth, bf16, f32;
  std::string source;
};

Limits limits(const Driver& drv, const Options& o) {
  Limits l{3.35e12, 989e12, 67e12, "H100 SXM (assumed)"};
  const std::string& n = drv.name;
  if (n.find("H200") != std::string::npos) {
    l = {4.8e12, 989e12, 67e12, "H200 (from the name)"};
  } else if (n.find("H100") != std::string::npos && n.find("PCIe") != std::string::npos) {
    l = {2.0e12, 756e12, 51e12, "H100 PCIe (from the name)"};
  } else if (n.find("H100 NVL") != std::string::npos) {
    l = {3.9e12, 835e12, 60e12, "H100 NVL (from the name)"};
  } else if (n.find("H100") != std::string::npos) {
    l = {3.35e12, 989e12, 67e12, "H100 SXM (from the name)"};
  } else if (drv.ok && drv.bus_bandwidth > 0) {
    l.bandwidth = drv.bus_bandwidth;
    l.source = "bandwidth from the memory clock x bus width, peaks of an H100 SXM (assumed)";
  }
  if (!drv.ok) l.source = "H100 SXM (no device: the floors are an H100's, not this machine's)";
  if (o.bandwidth > 0) l.bandwidth = o.bandwidth;
  if (o.peak_bf16 > 0) l.bf16 = o.peak_bf16;
  if (o.peak_f32 > 0) l.f32 = o.peak_f32;
  if (o.bandwidth > 0 || o.peak_bf16 > 0 || o.peak_f32 > 0) l.source += ", overridden on the command line";
  return l;
}

// ---- random BF16 on the host -------------------------------------------------------

uint16_t bf16_bits(float f) {  // round to nearest even (finite inputs)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

struct HostTensor {
  std::vector<uint16_t> v;
  int64_t rows = 0, cols = 0;
  SdllmCudaTensor view() const { return SdllmCudaTensor{v.data(), 2, rows, cols}; }
};

// Uniform in [lo, hi), a counter-based hash per element, in parallel.
HostTensor random_bf16(int64_t rows, int64_t cols, uint64_t seed, float lo, float hi) {
  HostTensor t;
  t.rows = rows;
  t.cols = cols;
  t.v.resize(static_cast<size_t>(rows * cols));
  const int64_t n = rows * cols;
  const int threads = static_cast<int>(std::max(1u, std::min(32u, std::thread::hardware_concurrency())));
  std::vector<std::thread> pool;
  for (int k = 0; k < threads; ++k)
    pool.emplace_back([&, k] {
      const int64_t a = n * k / threads, b = n * (k + 1) / threads;
      for (int64_t i = a; i < b; ++i) {
        uint64_t z = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull + seed * 0xD1B54A32D192ED03ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
        t.v[static_cast<size_t>(i)] = bf16_bits(lo + (hi - lo) * u);
      }
    });
  for (std::thread& th : pool) th.join();
  return t;
}

// ---- cases ---------------------------------------------------------------------------

struct Request {
  std::vector<int32_t> tokens, positions, predict, ids;
  std::vector<float> conf;
  SdllmCudaForward f{};
  void finish() {
    ids.assign(predict.size(), -1);
    conf.assign(predict.size(), NAN);
    f = SdllmCudaForward{};
    f.tokens = tokens.data();
    f.positions = positions.data();
    f.n_tokens = static_cast<int64_t>(tokens.size());
    f.predict_rows = predict.data();
    f.n_predict = static_cast<int64_t>(predict.size());
    f.confidence = 0;
    f.confidence_temperature = 1.f;
    f.cache_write_start = -1;
    f.attend_self = 1;
    f.out_ids = ids.data();
    f.out_confidences = conf.data();
  }
  int nonfinite() const {
    int k = 0;
    for (float c : conf) k += !std::isfinite(c);
    return k;
  }
};

// The sequence: P prompt tokens, then gen masks; x[i] = token at position i.
struct Geometry {
  int64_t P, N, s, e, kept;  // kept = window positions fed after the block
};

Geometry geometry(const Shapes& sh, int64_t P, int64_t gen) {
  Geometry g;
  g.P = P;
  g.N = P + gen;
  g.s = P;
  g.e = std::min(P + sh.block, g.N);
  g.kept = std::max<int64_t>(0, std::min(sh.window, g.N - 1 - g.e));
  return g;
}

void add_row(Request& r, int64_t pos, const Shapes& sh, const Geometry& g) {
  const int32_t mask = static_cast<int32_t>(sh.vocab - 1);
  r.positions.push_back(static_cast<int32_t>(pos));
  r.tokens.push_back(pos < g.P ? static_cast<int32_t>((pos * 7919 + 13) % (sh.vocab - 1)) : mask);
}

// step0: rows [0, e) + window + trailing N-1, writes [0, s). cached: [s, e) + window + trailing over [0, s).
Request make_request(const Shapes& sh, const Geometry& g, bool step0) {
  Request r;
  const int64_t first = step0 ? 0 : g.s;
  for (int64_t p = first; p < g.e; ++p) add_row(r, p, sh, g);
  for (int64_t p = g.e; p < g.e + g.kept; ++p) add_row(r, p, sh, g);
  if (g.N - 1 >= g.e + g.kept) add_row(r, g.N - 1, sh, g);
  for (int64_t p = g.s; p < g.e; ++p) r.predict.push_back(static_cast<int32_t>(p - first));
  r.finish();
  if (step0) {
    r.f.cache_attend = 0;
    r.f.cache_write_start = 0;
    r.f.cache_write_rows = g.s;
  } else {
    r.f.cache_attend = g.s;
  }
  return r;
}

struct Cost {
  double weight_bytes = 0, kv_bytes = 0, flops = 0;
  // docs/PERFORMANCE.md's per-step terms beyond the floor, 16-bit mode: the BF16 rounding
  // of every GEMM input ((3 d + mlp) floats a row and layer, 4 B read + 2 B written) and
  // the other activation traffic if every tensor went to HBM (64 d + 16 kvd + 20 mlp bytes
  // a row and layer: norms, q|k|v and gate|up outputs, RoPE, residuals, SwiGLU).
  double rounding_bytes = 0, activation_bytes = 0;
};

Cost cost(const Shapes& sh, const Request& r) {
  Cost c;
  const double rows = static_cast<double>(r.f.n_tokens), pred = static_cast<double>(r.f.n_predict);
  const double keys = static_cast<double>(r.f.cache_attend) + (r.f.attend_self ? rows : 0);
  const double L = static_cast<double>(sh.layers), d = static_cast<double>(sh.d);
  c.weight_bytes = 2.0 * (L * sh.layer_params() + static_cast<double>(sh.vocab) * d + rows * d + d);
  const double slot = 2.0 * sh.kvd() * 4.0 * L;  // K and V, float32, all layers
  c.kv_bytes = slot * (static_cast<double>(r.f.cache_attend) + static_cast<double>(std::max<int64_t>(0, r.f.cache_write_rows)));
  c.flops = 2.0 * rows * L * sh.layer_params() + 4.0 * rows * keys * d * L + 2.0 * pred * sh.vocab * d;
  const double kvd = static_cast<double>(sh.kvd()), mlp = static_cast<double>(sh.mlp);
  c.rounding_bytes = rows * L * (3.0 * d + mlp) * 6.0;
  c.activation_bytes = rows * L * (64.0 * d + 16.0 * kvd + 20.0 * mlp);
  return c;
}

std::string mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Bench {
  const SdllmCudaApi* api;
  const Options& o;
  const Shapes& sh;
  const Limits& lim;
  int failed = 0, cases = 0, nonfinite = 0;
  SdllmCudaModel* model = nullptr;

  // model_stats (launches and cuBLAS calls of the last forward, device bytes), when the
  // library's table has it.
  bool stats(SdllmCudaStats* st) const {
    if (api->struct_size < offsetof(SdllmCudaApi, model_stats) + sizeof(api->model_stats) || !api->model_stats)
      return false;
    *st = SdllmCudaStats{};
    return model && api->model_stats(model, st) == 0;
  }
  std::string launches() const {
    SdllmCudaStats st;
    if (!stats(&st)) return "?";
    return std::to_string(st.last_forward_launches) + "/" + std::to_string(st.last_forward_gemms) +
           (st.last_forward_replayed ? " graph" : "");
  }
  // The on-paper estimate of docs/PERFORMANCE.md for this call: floor + rounding +
  // activations (upper bound) + launch gaps (~1 us a node when the layers were a graph
  // replay, ~2.5 us a launch otherwise). 16-bit mode only (the exact mode is not a target).
  double estimate(const Cost& c, double floor) const {
    SdllmCudaStats st;
    if (!stats(&st)) return 0;
    const double gaps = st.last_forward_replayed ? 1e-6 * (st.last_forward_launches + 16.0 * sh.layers)
                                                 : 2.5e-6 * st.last_forward_launches;
    return floor + (c.rounding_bytes + c.activation_bytes) / lim.bandwidth + gaps;
  }

  // Runs f warmup + reps times; returns the timings (empty on failure).
  template <class F>
  std::vector<double> time_calls(const std::string& what, F&& f) {
    std::vector<double> t;
    for (int i = 0; i < o.warmup + o.reps; ++i) {
      const double t0 = now_s();
      const int st = f();
      const double dt = now_s() - t0;
      if (st != 0) {
        std::printf("FAIL %s: status %d: %s\n", what.c_str(), st, api->last_error());
        ++failed;
        return {};
      }
      if (i >= o.warmup) t.push_back(dt);
    }
    return t;
  }

  void print(const char* mode, const std::string& name, int64_t P, const std::string& rows, int64_t keys,
             const std::vector<double>& t, const Cost& c, bool half, int per) {
    ++cases;
    if (t.empty()) return;
    const double med = median(t), mn = *std::min_element(t.begin(), t.end());
    const double bytes = c.weight_bytes + c.kv_bytes;
    const double t_mem = bytes / lim.bandwidth, t_flop = c.flops / (half ? lim.bf16 : lim.f32);
    const double floor = std::max(t_mem, t_flop);
    char per_seq[32] = "";
    if (per > 1) std::snprintf(per_seq, sizeof(per_seq), "%.4g", med * 1e3 / per);
    char est[32] = "-";
    if (half) std::snprintf(est, sizeof(est), "%.4g", estimate(c, floor) * 1e3);
    std::printf("%-6s %-8s %6lld %9s %6lld %8.4g %8.4g %9.4g %-7s %8s %10.4g %9.4g %8s %7.1fx %8.0f %8.1f %11s\n", mode,
                name.c_str(), static_cast<long long>(P), rows.c_str(), static_cast<long long>(keys), bytes / 1e9,
                c.flops / 1e12, floor * 1e3, t_mem >= t_flop ? "(mem)" : "(flops)", est, med * 1e3, mn * 1e3, per_seq,
                med / floor, bytes / med / 1e9, c.flops / med / 1e12, launches().c_str());
  }

  void run_mode(bool half, const SdllmCudaModelDesc& base, const Driver& drv, MemSampler& mem, size_t base_free) {
    const char* mode = half ? "16bit" : "exact";
    SdllmCudaModelDesc desc = base;
    desc.gemm_mode = half ? SDLLM_CUDA_GEMM_WEIGHT_DTYPE : SDLLM_CUDA_GEMM_EXACT;
    const double t0 = now_s();
    model = api->model_create(&desc);
    if (!model) {
      std::printf("FAIL %s model_create: %s\n", mode, api->last_error());
      ++failed;
      return;
    }
    size_t f = 0;
    const bool have_mem = drv.free_bytes(&f);
    SdllmCudaStats st;
    std::printf("%s: model_create %.2f s%s%s\n", mode, now_s() - t0,
                have_mem ? (", device memory in use " + std::to_string((base_free - f) >> 20) + " MiB").c_str() : "",
                stats(&st) ? (", weights on the device " + mib(st.weight_bytes) + " MiB").c_str() : "");
    for (int64_t P : o.prompts) {
      const Geometry g = geometry(sh, P, o.gen);
      SdllmCudaSession* s = api->session_create(model, g.N);
      if (!s) {
        std::printf("FAIL %s session_create(capacity %lld): %s\n", mode, static_cast<long long>(g.N), api->last_error());
        ++failed;
        continue;
      }
      Request q0 = make_request(sh, g, true), q1 = make_request(sh, g, false);
      std::vector<double> t = time_calls(std::string(mode) + " step0 P=" + std::to_string(P),
                                         [&] { return api->session_forward(s, &q0.f); });
      nonfinite += q0.nonfinite();
      print(mode, "step0", P, std::to_string(q0.f.n_tokens), q0.f.n_tokens, t, cost(sh, q0), half, 1);
      t = time_calls(std::string(mode) + " cached P=" + std::to_string(P), [&] { return api->session_forward(s, &q1.f); });
      nonfinite += q1.nonfinite();
      print(mode, "cached", P, std::to_string(q1.f.n_tokens), q1.f.cache_attend + q1.f.n_tokens, t, cost(sh, q1), half, 1);
      api->session_destroy(s);
      if (o.batch > 0) run_batch(mode, half, model, g);
    }
    if (stats(&st))
      std::printf("%s: %lld forwards, forward scratch %.1f MiB at the end\n", mode, static_cast<long long>(st.forwards),
                  static_cast<double>(st.scratch_bytes) / (1 << 20));
    if (drv.ok) {
      mem.sample();
      std::printf("%s: peak device memory in use %.2f GiB (of %.1f GiB)\n", mode,
                  static_cast<double>(base_free - std::min(base_free, mem.min_free.load())) / (1 << 30),
                  static_cast<double>(drv.total) / (1 << 30));
    }
    api->model_destroy(model);
    model = nullptr;
  }

  void run_batch(const char* mode, bool half, SdllmCudaModel* model, const Geometry& g) {
    const int B = o.batch;
    std::vector<SdllmCudaSession*> ss;
    std::vector<Request> step0, step;
    std::vector<SdllmCudaForward> reqs;
    step0.reserve(static_cast<size_t>(B));
    step.reserve(static_cast<size_t>(B));
    bool ok = true;
    for (int i = 0; i < B && ok; ++i) {
      SdllmCudaSession* s = api->session_create(model, g.N);
      if (!s) {
        std::printf("FAIL %s batch session %d: %s\n", mode, i, api->last_error());
        ok = false;
        break;
      }
      ss.push_back(s);
      step0.push_back(make_request(sh, g, true));
      step.push_back(make_request(sh, g, false));
    }
    for (int i = 0; ok && i < B; ++i) {  // each session's prefix cache, untimed
      if (api->session_forward(ss[static_cast<size_t>(i)], &step0[static_cast<size_t>(i)].f) != 0) {
        std::printf("FAIL %s batch step 0 of session %d: %s\n", mode, i, api->last_error());
        ok = false;
      }
    }
    if (!ok) {
      ++failed;
      ++cases;
    } else {
      for (const Request& r : step) reqs.push_back(r.f);
      std::vector<double> t = time_calls(std::string(mode) + " batch P=" + std::to_string(g.P),
                                         [&] { return api->forward_batch(ss.data(), reqs.data(), B); });
      Cost c = cost(sh, step[0]), total;
      total.weight_bytes = c.weight_bytes;  // read once for the batch
      total.kv_bytes = c.kv_bytes * B;
      total.flops = c.flops * B;
      for (const Request& r : step) nonfinite += r.nonfinite();
      print(mode, "batch" + std::to_string(B), g.P, std::to_string(B) + "x" + std::to_string(step[0].f.n_tokens),
            step[0].f.cache_attend + step[0].f.n_tokens, t, total, half, B);
    }
    for (SdllmCudaSession* s : ss) api->session_destroy(s);
  }
};

const SdllmCudaApi* load_api(const Options& o) {
#ifdef SDLLM_CUDA_EMULATION
  (void)o;
  return sdllm_cuda_api(SDLLM_CUDA_ABI_VERSION);
#else
  std::string path = o.library;
#ifdef SDLLM_CUDA_LIBRARY_PATH
  if (path.empty()) path = SDLLM_CUDA_LIBRARY_PATH;
#endif
  if (path.empty()) {
    std::fprintf(stderr, "bench_forward: no library path (pass --library PATH/libsdllm_cuda.so)\n");
    return nullptr;
  }
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    std::fprintf(stderr, "bench_forward: cannot load %s: %s\n", path.c_str(), e ? e : "dlopen failed");
    return nullptr;
  }
  SdllmCudaApiFn fn = reinterpret_cast<SdllmCudaApiFn>(dlsym(lib, "sdllm_cuda_api"));
  const SdllmCudaApi* api = fn ? fn(SDLLM_CUDA_ABI_VERSION) : nullptr;
  if (!api) std::fprintf(stderr, "bench_forward: %s has no sdllm_cuda_api for ABI %d\n", path.c_str(), SDLLM_CUDA_ABI_VERSION);
  return api;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  Shapes sh;
  if (o.tiny) {  // the same structure at toy sizes: GQA 2:1, head_dim 64
    sh.d = 128;
    sh.heads = 2;
    sh.kv = 1;
    sh.hd = 64;
    sh.layers = 2;
    sh.mlp = 256;
    sh.vocab = 320;
    sh.block = 8;
    sh.window = 12;
  }
  for (int64_t P : o.prompts)
    if (P + o.gen > 1 << 20) usage_error("prompt + gen is too long");

  Driver drv;
#ifndef SDLLM_CUDA_EMULATION
  std::string why;
  drv = open_driver(o.device, &why);
  if (!drv.ok) std::printf("note: no device memory figures (%s)\n", why.c_str());
#endif
  const Limits lim = limits(drv, o);
  size_t base_free = 0;
  drv.free_bytes(&base_free);
  MemSampler mem(drv);

  const SdllmCudaApi* api = load_api(o);
  if (!api) return 1;
  if (api->init(o.device) != 0) {
    std::printf("FAIL init(%d): %s\n", o.device, api->last_error());
    return 1;
  }
  std::printf("bench_forward: %s", drv.name.c_str());
  if (drv.ok)
    std::printf(" (sm_%d%d, %d SMs, L2 %d MiB, %.1f GiB; driver CUDA %d.%d)", drv.sm_major, drv.sm_minor, drv.sms,
                drv.l2_bytes >> 20, static_cast<double>(drv.total) / (1 << 30), drv.cuda_version / 1000,
                drv.cuda_version % 1000 / 10);
  std::printf("\nlibrary: %s\n", api->describe());
  std::printf("shapes: %s: d_model %lld, heads %lld (kv %lld) x %lld, %lld layers, mlp %lld, vocab %lld, BF16; "
              "block %lld, window %lld, gen %lld\n",
              o.tiny ? "--tiny" : "LLaDA-8B", static_cast<long long>(sh.d), static_cast<long long>(sh.heads),
              static_cast<long long>(sh.kv), static_cast<long long>(sh.hd), static_cast<long long>(sh.layers),
              static_cast<long long>(sh.mlp), static_cast<long long>(sh.vocab), static_cast<long long>(sh.block),
              static_cast<long long>(sh.window), static_cast<long long>(o.gen));
  std::printf("floors: %.2f TB/s, BF16 %.0f TFLOP/s (16bit), F32 %.0f TFLOP/s (exact): %s\n", lim.bandwidth / 1e12,
              lim.bf16 / 1e12, lim.f32 / 1e12, lim.source.c_str());

  // One layer of random BF16 weights, shared by every layer descriptor (see the header).
  const double tw = now_s();
  const int64_t d = sh.d, kvd = sh.kvd();
  const float wd = 1.7f / std::sqrt(static_cast<float>(d)), wm = 1.7f / std::sqrt(static_cast<float>(sh.mlp));
  HostTensor attn_norm = random_bf16(1, d, 1, 0.8f, 1.2f), ff_norm = random_bf16(1, d, 2, 0.8f, 1.2f);
  HostTensor wq = random_bf16(d, d, 3, -wd, wd), wk = random_bf16(kvd, d, 4, -wd, wd), wv = random_bf16(kvd, d, 5, -wd, wd);
  HostTensor wo = random_bf16(d, d, 6, -wd, wd);
  HostTensor gate = random_bf16(sh.mlp, d, 7, -wd, wd), up = random_bf16(sh.mlp, d, 8, -wd, wd);
  HostTensor down = random_bf16(d, sh.mlp, 9, -wm, wm);
  HostTensor table = random_bf16(sh.vocab, d, 10, -0.25f, 0.25f);  // embedding = LM head
  HostTensor final_norm = random_bf16(1, d, 11, 0.8f, 1.2f);
  SdllmCudaLayer layer{};
  layer.attn_norm = attn_norm.view();
  layer.ff_norm = ff_norm.view();
  layer.wq = wq.view();
  layer.wk = wk.view();
  layer.wv = wv.view();
  layer.wo = wo.view();
  layer.w_gate = gate.view();
  layer.w_up = up.view();
  layer.w_down = down.view();
  const std::vector<SdllmCudaLayer> layers(static_cast<size_t>(sh.layers), layer);
  SdllmCudaModelDesc desc{};
  desc.d_model = d;
  desc.n_heads = sh.heads;
  desc.n_kv_heads = sh.kv;
  desc.head_dim = sh.hd;
  desc.n_layers = sh.layers;
  desc.mlp_hidden = sh.mlp;
  desc.vocab_size = sh.vocab;
  desc.embedding_size = sh.vocab;
  desc.rope_theta = 500000.f;
  desc.rms_norm_eps = 1e-5f;
  desc.embedding = table.view();
  desc.final_norm = final_norm.view();
  desc.lm_head = table.view();
  desc.layers = layers.data();
  const double layer_mb = 2.0 * sh.layer_params() / 1e6;
  std::printf("weights: one layer of %.1f MB shared by %lld layers (%.2f GB streamed per forward with the LM head), "
              "host %.2f GB, generated in %.1f s\n",
              layer_mb, static_cast<long long>(sh.layers), 2.0 * (sh.layers * sh.layer_params() + sh.vocab * d) / 1e9,
              (2.0 * sh.layer_params() + 2.0 * sh.vocab * d) / 1e9, now_s() - tw);
  if (drv.ok)
    std::printf("device memory before the library allocates: %.2f GiB free of %.1f GiB\n",
                static_cast<double>(base_free) / (1 << 30), static_cast<double>(drv.total) / (1 << 30));
  std::printf("GB and TFLOP: the floor's bytes (weights + KV cache read and written) and FLOPs of the call; "
              "wall clock around each call, median (and min) of %d after %d warm-up; per seq = batch call / B; "
              "x floor = median / floor; GB/s and TFLOP/s = the floor's bytes and FLOPs / median; launch/gemm = "
              "kernel launches and copies / cuBLAS calls of the last forward (model_stats)\n\n",
              o.reps, o.warmup);
  std::printf("est ms: docs/PERFORMANCE.md's on-paper cost of the call (floor + BF16 rounding + activation traffic\n"
              "  as an upper bound + launch gaps from the measured launch count), 16-bit mode\n");
  std::printf("%-6s %-8s %6s %9s %6s %8s %8s %9s %-7s %8s %10s %9s %8s %8s %8s %8s %11s\n", "mode", "case", "P", "rows",
              "keys", "GB", "TFLOP", "floor ms", "bound", "est ms", "median ms", "min ms", "per seq", "x floor", "GB/s",
              "TFLOP/s", "launch/gemm");

  Bench b{api, o, sh, lim};
  if (o.exact) b.run_mode(false, desc, drv, mem, base_free);
  if (o.half) b.run_mode(true, desc, drv, mem, base_free);
  if (b.nonfinite) std::printf("warning: %d confidences were not finite (random weights out of range?)\n", b.nonfinite);
  std::printf("bench-forward: %d cases, %d failed\n", b.cases, b.failed);
  return b.failed == 0 ? 0 : 1;
}
