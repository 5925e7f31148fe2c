// The fiber scheduler behind cuda_emu.h: one ucontext fiber per CUDA thread of a block.
#include "cuda_emu.h"

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <vector>

// Context switch. On x86-64 a hand-rolled switch of the callee-saved registers (glibc's
// swapcontext makes a system call per switch, which made the emulator ~30x slower);
// elsewhere ucontext.
#if defined(__x86_64__) && !defined(SDLLM_EMU_UCONTEXT)
#define SDLLM_EMU_ASM_SWITCH 1
extern "C" void sdllm_emu_switch(void** save_sp, void* new_sp);
asm(R"(
.text
.globl sdllm_emu_switch
.type sdllm_emu_switch,@function
sdllm_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size sdllm_emu_switch,.-sdllm_emu_switch
)");
#else
#include <ucontext.h>
#endif

namespace sdllm_emu {
namespace {

enum class State { Runnable, AtBarrier, AtWarp, Done };

struct Context {
#ifdef SDLLM_EMU_ASM_SWITCH
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
};

struct Fiber {
  Context ctx;
  std::unique_ptr<char[]> stack;
  uint3 tid{};
  unsigned linear = 0;
  State state = State::Done;
};

struct Warp {
  unsigned arrived = 0;     // lanes waiting at the current rendezvous (bit mask)
  unsigned mask = 0;        // the mask every lane of this rendezvous named
  const char* what = nullptr;
  uint64_t value[32] = {};
  int src[32] = {};
  uint64_t result[32] = {};
  // mma.sync rendezvous: each lane's fragment registers in, its D registers out.
  uint32_t mma_a[32][4] = {};
  uint32_t mma_b[32][2] = {};
  float mma_c[32][4] = {};
  float mma_d[32][4] = {};
};

constexpr size_t kStackBytes = 256 * 1024;
constexpr size_t kDefaultSmem = 48 * 1024;
constexpr size_t kMaxSmem = 227 * 1024;

struct Emu {
  uint64_t seed = 0, rng = 1;
  Stats st{};
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  std::vector<unsigned char> smem;
  Context sched_ctx;
  std::deque<unsigned> ready;
  Fiber* cur = nullptr;
  unsigned n_threads = 0, n_done = 0, n_barrier = 0;
  const std::function<void()>* body = nullptr;
  cudaError_t last_error = cudaSuccess;
  std::map<const void*, int> max_dyn_smem;
};

Emu& emu() {
  static Emu e;
  return e;
}

void switch_to(Context& save, Context& to) {
#ifdef SDLLM_EMU_ASM_SWITCH
  sdllm_emu_switch(&save.sp, to.sp);
#else
  swapcontext(&save.uc, &to.uc);
#endif
}

void fiber_entry();

void init_fiber(Context& c, char* stack, size_t bytes) {
#ifdef SDLLM_EMU_ASM_SWITCH
  // Stack top aligned to 16: [fake return address][fiber_entry][6 callee-saved regs].
  uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + bytes) & ~static_cast<uintptr_t>(15);
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;  // fiber_entry never returns; entry sees rsp = 8 mod 16 as after a call
  *--sp = reinterpret_cast<void*>(&fiber_entry);
  for (int i = 0; i < 6; ++i) *--sp = nullptr;
  c.sp = sp;
#else
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = bytes;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, fiber_entry, 0);
#endif
}

[[noreturn]] void fail(const char* msg) {
  Emu& e = emu();
  std::fprintf(stderr, "cuda-emu: %s (block %u,%u,%u thread %u,%u,%u, schedule %llu)\n", msg, blockIdx.x,
               blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z,
               static_cast<unsigned long long>(e.seed));
  std::abort();
}

uint64_t next_rand() {
  Emu& e = emu();
  e.rng ^= e.rng << 13;
  e.rng ^= e.rng >> 7;
  e.rng ^= e.rng << 17;
  return e.rng;
}

void fiber_entry() {
  Emu& e = emu();
  (*e.body)();
  e.cur->state = State::Done;
  e.n_done++;
  if (e.n_barrier > 0) fail("a thread exited while others wait at __syncthreads (divergent barrier)");
  // A lane that exits while its warp-mates wait at a rendezvous that names it is also an error.
  const Warp& w = e.warps[e.cur->linear / 32];
  if (w.arrived && (w.mask >> (e.cur->linear % 32) & 1u)) fail("a lane exited while its warp waits for it");
  switch_to(e.cur->ctx, e.sched_ctx);
  std::abort();  // never resumed
}

// Returns control to the scheduler; the fiber resumes when the scheduler picks it again.
void yield() {
  Emu& e = emu();
  e.st.switches++;
  switch_to(e.cur->ctx, e.sched_ctx);
}

void make_ready(unsigned t) {
  Emu& e = emu();
  e.fibers[t].state = State::Runnable;
  e.ready.push_back(t);
}

void run_block() {
  Emu& e = emu();
  const unsigned n = e.n_threads;
  if (e.fibers.size() < n) e.fibers.resize(n);
  e.warps.assign((n + 31) / 32, Warp{});
  std::memset(e.smem.data(), 0xff, e.smem.size());  // NaN bytes: reads before writes show up
  e.n_done = 0;
  e.n_barrier = 0;
  e.ready.clear();
  for (unsigned t = 0; t < n; ++t) {
    Fiber& f = e.fibers[t];
    if (!f.stack) f.stack.reset(new char[kStackBytes]);
    init_fiber(f.ctx, f.stack.get(), kStackBytes);
    f.linear = t;
    f.tid = uint3{t % blockDim.x, (t / blockDim.x) % blockDim.y, t / (blockDim.x * blockDim.y)};
    make_ready(t);
  }
  while (e.n_done < n) {
    if (e.ready.empty()) {
      std::fprintf(stderr, "cuda-emu: deadlock: %u of %u threads finished, %u at __syncthreads\n", e.n_done, n,
                   e.n_barrier);
      fail("no runnable thread (a barrier or shuffle that not every thread reaches)");
    }
    // Schedule 0: first come, first served. Otherwise a pseudo-random ready fiber.
    if (e.seed != 0 && e.ready.size() > 1) std::swap(e.ready.front(), e.ready[next_rand() % e.ready.size()]);
    const unsigned pick = e.ready.front();
    e.ready.pop_front();
    Fiber& f = e.fibers[pick];
    e.cur = &f;
    threadIdx = f.tid;
    switch_to(e.sched_ctx, f.ctx);
    e.cur = nullptr;
  }
}

}  // namespace

void set_schedule(uint64_t seed) {
  Emu& e = emu();
  e.seed = seed;
  e.rng = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
  if (e.rng == 0) e.rng = 1;
}
uint64_t schedule() { return emu().seed; }
Stats stats() { return emu().st; }

unsigned lane_id() { return emu().cur->linear % 32; }
void* dyn_smem() { return emu().smem.data(); }

void syncthreads() {
  Emu& e = emu();
  if (!e.cur) fail("__syncthreads outside a kernel");
  if (e.n_done > 0) fail("__syncthreads after some threads of the block exited (divergent barrier)");
  e.st.barriers++;
  e.cur->state = State::AtBarrier;
  if (++e.n_barrier == e.n_threads) {
    for (unsigned t = 0; t < e.n_threads; ++t) make_ready(t);
    e.n_barrier = 0;
  }
  yield();
}

uint64_t warp_exchange(unsigned mask, uint64_t bits, int src_lane, const char* what) {
  Emu& e = emu();
  if (!e.cur) fail("warp operation outside a kernel");
  const unsigned lane = e.cur->linear % 32, warp = e.cur->linear / 32;
  const unsigned warp_base = warp * 32;
  const unsigned lanes_here = e.n_threads - warp_base < 32 ? e.n_threads - warp_base : 32;
  const unsigned present = lanes_here == 32 ? 0xffffffffu : ((1u << lanes_here) - 1);
  if (!(mask >> lane & 1u)) fail("warp operation by a lane that is not in its own mask");
  if (mask & ~present) fail("warp operation whose mask names lanes that do not exist");
  if (src_lane >= 0 && !(mask >> src_lane & 1u)) fail("shuffle reads a lane outside the mask");
  for (unsigned l = 0; l < 32; ++l)
    if ((mask >> l & 1u) && e.fibers[warp_base + l].state == State::Done) fail("warp operation names an exited lane");
  Warp& w = e.warps[warp];
  if (w.arrived == 0) {
    w.mask = mask;
    w.what = what;
  } else if (w.mask != mask || std::strcmp(w.what, what) != 0) {
    std::fprintf(stderr, "cuda-emu: lanes of one warp meet at different warp operations: %s(0x%08x) vs %s(0x%08x)\n",
                 w.what, w.mask, what, mask);
    fail("mismatched warp operations");
  }
  w.value[lane] = bits;
  w.src[lane] = src_lane;
  w.arrived |= 1u << lane;
  e.cur->state = State::AtWarp;
  if (w.arrived == mask) {
    e.st.warp_syncs++;
    for (unsigned l = 0; l < 32; ++l) {
      if (!(mask >> l & 1u)) continue;
      w.result[l] = w.src[l] >= 0 ? w.value[w.src[l]] : 0;
      make_ready(warp_base + l);
    }
    w.arrived = 0;
  }
  yield();
  // Nothing can overwrite result[lane] before this lane reads it: the next rendezvous
  // completes only when this lane has arrived at it too.
  return w.result[lane];
}

void syncwarp(unsigned mask) { warp_exchange(mask, 0, -1, "__syncwarp"); }

namespace {

float bf16_bits_to_float(uint32_t bits16) {
  const uint32_t u = bits16 << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// The fragment layouts of mma.m16n8k16 for .bf16 A/B and .f32 C/D, written element by
// element as the PTX ISA gives them (groupID = laneid >> 2, threadID_in_group = laneid % 4):
//   A: a_i, i = 0..7 (register i/2, half i%2): row = groupID for i in {0,1,4,5}, else groupID + 8;
//      col = threadID_in_group * 2 + (i & 1), plus 8 for i >= 4.
//   B: b_i, i = 0..3 (register i/2, half i%2): row = threadID_in_group * 2 + (i & 1), plus 8
//      for i >= 2; col = groupID.
//   C/D: c_i, i = 0..3: row = groupID for i < 2, else groupID + 8; col = threadID_in_group * 2 + (i & 1).
void mma_a_coord(unsigned lane, int i, int& row, int& col) {
  const int g = static_cast<int>(lane >> 2), t = static_cast<int>(lane % 4);
  row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
  col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
}
void mma_b_coord(unsigned lane, int i, int& row, int& col) {
  const int g = static_cast<int>(lane >> 2), t = static_cast<int>(lane % 4);
  row = t * 2 + (i & 1) + (i >= 2 ? 8 : 0);
  col = g;
}
void mma_c_coord(unsigned lane, int i, int& row, int& col) {
  const int g = static_cast<int>(lane >> 2), t = static_cast<int>(lane % 4);
  row = i < 2 ? g : g + 8;
  col = t * 2 + (i & 1);
}

void mma_compute(Warp& w) {
  float A[16][16], B[16][8], C[16][8];
  for (unsigned l = 0; l < 32; ++l) {
    int r, c;
    for (int i = 0; i < 8; ++i) {
      mma_a_coord(l, i, r, c);
      A[r][c] = bf16_bits_to_float((w.mma_a[l][i / 2] >> (16 * (i % 2))) & 0xffffu);
    }
    for (int i = 0; i < 4; ++i) {
      mma_b_coord(l, i, r, c);
      B[r][c] = bf16_bits_to_float((w.mma_b[l][i / 2] >> (16 * (i % 2))) & 0xffffu);
    }
    for (int i = 0; i < 4; ++i) {
      mma_c_coord(l, i, r, c);
      C[r][c] = w.mma_c[l][i];
    }
  }
  float D[16][8];
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) {
      double acc = C[m][n];
      for (int k = 0; k < 16; ++k) acc += static_cast<double>(A[m][k]) * B[k][n];  // bf16 x bf16 is exact
      D[m][n] = static_cast<float>(acc);
    }
  for (unsigned l = 0; l < 32; ++l)
    for (int i = 0; i < 4; ++i) {
      int r, c;
      mma_c_coord(l, i, r, c);
      w.mma_d[l][i] = D[r][c];
    }
}

}  // namespace

void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  static const char* const kWhat = "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32";
  Emu& e = emu();
  if (!e.cur) fail("mma.sync outside a kernel");
  const unsigned lane = e.cur->linear % 32, warp = e.cur->linear / 32, warp_base = warp * 32;
  if (e.n_threads - warp_base < 32) fail("mma.sync in a warp of fewer than 32 threads (it needs the whole warp)");
  for (unsigned l = 0; l < 32; ++l)
    if (e.fibers[warp_base + l].state == State::Done) fail("mma.sync while a lane of the warp has exited");
  Warp& w = e.warps[warp];
  if (w.arrived == 0) {
    w.mask = 0xffffffffu;
    w.what = kWhat;
  } else if (w.mask != 0xffffffffu || std::strcmp(w.what, kWhat) != 0) {
    std::fprintf(stderr, "cuda-emu: lanes of one warp meet at different warp operations: %s(0x%08x) vs %s\n", w.what,
                 w.mask, kWhat);
    fail("mismatched warp operations");
  }
  for (int i = 0; i < 4; ++i) w.mma_a[lane][i] = a[i];
  for (int i = 0; i < 2; ++i) w.mma_b[lane][i] = b[i];
  for (int i = 0; i < 4; ++i) w.mma_c[lane][i] = c[i];
  w.arrived |= 1u << lane;
  e.cur->state = State::AtWarp;
  if (w.arrived == 0xffffffffu) {
    e.st.warp_syncs++;
    e.st.mmas++;
    mma_compute(w);
    for (unsigned l = 0; l < 32; ++l) make_ready(warp_base + l);
    w.arrived = 0;
  }
  yield();
  // As in warp_exchange: mma_d[lane] is rewritten only by a rendezvous this lane joins.
  for (int i = 0; i < 4; ++i) d[i] = w.mma_d[lane][i];
}

bool check_launch(const void* fn, dim3 grid, dim3 block, size_t smem) {
  Emu& e = emu();
  const uint64_t threads = static_cast<uint64_t>(block.x) * block.y * block.z;
  bool ok = threads > 0 && threads <= 1024 && block.z <= 64 && grid.x > 0 && grid.y > 0 && grid.z > 0 &&
            grid.y <= 65535 && grid.z <= 65535;
  size_t limit = kDefaultSmem;
  auto it = e.max_dyn_smem.find(fn);
  if (it != e.max_dyn_smem.end() && static_cast<size_t>(it->second) > limit) limit = it->second;
  if (smem > limit) {
    std::fprintf(stderr, "cuda-emu: launch asks for %zu bytes of dynamic shared memory, limit %zu%s\n", smem, limit,
                 limit == kDefaultSmem ? " (no cudaFuncSetAttribute opt-in)" : "");
    ok = false;
  }
  if (!ok) e.last_error = cudaErrorInvalidConfiguration;
  return ok;
}

void run_grid(const void* fn, dim3 grid, dim3 block, size_t smem, const std::function<void()>& body) {
  Emu& e = emu();
  e.st.launches++;
  e.body = &body;
  e.n_threads = block.x * block.y * block.z;
  e.smem.assign(smem > 0 ? smem : 16, 0xff);
  gridDim = grid;
  blockDim = block;
  const uint64_t nblocks = static_cast<uint64_t>(grid.x) * grid.y * grid.z;
  std::vector<uint64_t> order(nblocks);
  for (uint64_t b = 0; b < nblocks; ++b) order[b] = b;
  if (e.seed != 0)
    for (uint64_t b = nblocks; b > 1; --b) std::swap(order[b - 1], order[next_rand() % b]);
  for (uint64_t b : order) {
    blockIdx = uint3{static_cast<unsigned>(b % grid.x), static_cast<unsigned>((b / grid.x) % grid.y),
                     static_cast<unsigned>(b / (static_cast<uint64_t>(grid.x) * grid.y))};
    e.st.blocks++;
    run_block();
  }
  threadIdx = uint3{0, 0, 0};
  blockIdx = uint3{0, 0, 0};
  e.body = nullptr;
}

}  // namespace sdllm_emu

// ---- stream capture -------------------------------------------------------------------
namespace sdllm_emu {
namespace {
struct Capture {
  bool active = false, invalid = false;
  cudaStream_t stream = nullptr;
  std::vector<std::function<void()>> steps;
};
Capture& capture_state() {
  static Capture c;
  return c;
}
}  // namespace
bool capturing() { return capture_state().active; }
void capture(std::function<void()> step) { capture_state().steps.push_back(std::move(step)); }
cudaError_t invalidate_capture() {
  capture_state().invalid = true;
  return cudaErrorStreamCaptureUnsupported;
}
}  // namespace sdllm_emu

struct CUgraph_st {
  std::vector<std::function<void()>> steps;
};
struct CUgraphExec_st {
  std::vector<std::function<void()>> steps;
};

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  auto& c = sdllm_emu::capture_state();
  if (c.active) return cudaErrorInvalidValue;
  c = sdllm_emu::Capture{};
  c.active = true;
  c.stream = s;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph) {
  auto& c = sdllm_emu::capture_state();
  if (!c.active || c.stream != s) return cudaErrorInvalidValue;
  c.active = false;
  if (c.invalid) {
    *graph = nullptr;
    return cudaErrorStreamCaptureInvalidated;
  }
  *graph = new CUgraph_st{std::move(c.steps)};
  c.steps.clear();
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (!graph) return cudaErrorInvalidValue;
  *exec = new CUgraphExec_st{graph->steps};
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t) {
  if (!exec || sdllm_emu::capturing()) return cudaErrorInvalidValue;
  sdllm_emu::emu().st.graph_launches++;
  for (auto& step : exec->steps) step();
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** p, size_t bytes) {
  if (sdllm_emu::capturing()) return sdllm_emu::invalidate_capture();
  *p = std::malloc(bytes ? bytes : 1);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFreeHost(void* p) {
  if (sdllm_emu::capturing()) return sdllm_emu::invalidate_capture();
  std::free(p);
  return cudaSuccess;
}

// ---- runtime API ------------------------------------------------------------------------
using sdllm_emu::emu;

cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (sdllm_emu::capturing()) return sdllm_emu::invalidate_capture();
  *p = std::malloc(bytes ? bytes : 1);
  if (!*p) return emu().last_error = cudaErrorMemoryAllocation;
  std::memset(*p, 0xff, bytes);  // NaN floats: reads of memory no one wrote show up
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (sdllm_emu::capturing()) return sdllm_emu::invalidate_capture();
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (sdllm_emu::capturing()) return sdllm_emu::invalidate_capture();  // synchronous
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t) {
  if (sdllm_emu::capturing()) {
    sdllm_emu::capture([=]() {
      if (bytes) std::memmove(dst, src, bytes);
    });
    return cudaSuccess;
  }
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) {
  if (sdllm_emu::capturing()) {
    sdllm_emu::capture([=]() {
      if (bytes) std::memset(p, value, bytes);
    });
    return cudaSuccess;
  }
  return cudaMemset(p, value, bytes);
}
cudaError_t cudaDeviceSynchronize() { return sdllm_emu::capturing() ? sdllm_emu::invalidate_capture() : cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  return sdllm_emu::capturing() ? sdllm_emu::invalidate_capture() : cudaSuccess;
}
cudaError_t cudaGetLastError() {
  cudaError_t e = emu().last_error;
  emu().last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return emu().last_error; }
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error (emulated)";
    case cudaErrorInvalidValue: return "invalid argument (emulated)";
    case cudaErrorMemoryAllocation: return "out of memory (emulated)";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument (emulated)";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected (emulated)";
    case cudaErrorInvalidDevice: return "invalid device ordinal (emulated)";
    default: return "unknown error (emulated)";
  }
}
cudaError_t cudaGetDevice(int* dev) {
  *dev = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int dev) { return dev == 0 ? cudaSuccess : (emu().last_error = cudaErrorInvalidDevice); }
cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* s) {
  static char token;
  *s = reinterpret_cast<cudaStream_t>(&token);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = 8; return cudaSuccess;  // small, to exercise split paths
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = 227 * 1024; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
  }
  return cudaErrorInvalidValue;
}
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || static_cast<size_t>(value) > sdllm_emu::kMaxSmem)
    return emu().last_error = cudaErrorInvalidValue;
  emu().max_dyn_smem[func] = value;
  return cudaSuccess;
}
