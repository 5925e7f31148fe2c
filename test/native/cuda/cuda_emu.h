// cuda_emu.h: runs CUDA kernel sources on the CPU, for tests only.
//
// Compile a .cu file as C++ with:
//   g++ -x c++ -std=c++17 -DSDLLM_CUDA_EMULATION -include cuda_emu.h cuda/<op>.cu ...
// and link cuda_emu.cpp. Every CUDA thread of a block runs as its own fiber (ucontext)
// on one OS thread; blocks of a grid run one after another. __syncthreads is a real
// barrier (it releases only when every thread of the block has arrived; a thread that
// has exited while others wait is reported as a divergent barrier), warp shuffles and
// __syncwarp are rendezvous of the lanes named in the mask, and the order in which
// runnable fibers (and blocks) run comes from a schedule seed (emu_set_schedule), so
// that a missing barrier changes the result from one schedule to the next. The tensor-core
// instruction mma.sync m16n8k16 (bf16 in, f32 accumulate) is a warp rendezvous too
// (sdllm_emu::mma_m16n8k16_bf16, called by cuda/mma.cuh under SDLLM_CUDA_EMULATION).
// Shared memory: `__shared__` locals become function statics (one block runs at a
// time), dynamic shared memory (SDLLM_DYN_SMEM in cuda/common.cuh) is a per-launch
// buffer filled with NaN bytes before each block. cudaMalloc'd memory is filled with
// 0xFF bytes (NaN floats) so that reads of unwritten memory show up.
// What this cannot check: docs/CUDA_TESTING.md.
#pragma once
#ifndef SDLLM_CUDA_EMULATION
#define SDLLM_CUDA_EMULATION 1
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <functional>
#include <type_traits>

// ---- qualifiers ---------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __shared__ static
#define __constant__ static
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

// ---- built-in vector types and indices -----------------------------------------------
struct uint3 { unsigned int x, y, z; };
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
};
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;
constexpr int warpSize = 32;

// ---- runtime API subset ------------------------------------------------------------
enum cudaError_t : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
};
typedef struct CUstream_st* cudaStream_t;
enum cudaMemcpyKind { cudaMemcpyHostToHost = 0, cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2,
                      cudaMemcpyDeviceToDevice = 3, cudaMemcpyDefault = 4 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaDeviceAttr { cudaDevAttrMaxSharedMemoryPerBlockOptin = 97, cudaDevAttrMultiProcessorCount = 16,
                     cudaDevAttrComputeCapabilityMajor = 75, cudaDevAttrComputeCapabilityMinor = 76 };

cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s = nullptr);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetDevice(int* dev);
// One emulated device (index 0); streams are tokens, everything runs synchronously.
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaMallocHost(void** p, size_t bytes);
cudaError_t cudaFreeHost(void* p);

// Stream capture and graphs: while a stream captures, kernel launches, async copies and
// memsets (and cuBLAS stand-in calls) are recorded instead of run; a graph launch runs
// them in order. Kernel arguments are captured by value, copies read their source at
// launch time, as CUDA graphs do. As in CUDA's capture modes, an allocation, a free or a
// synchronisation during a capture fails and invalidates it.
typedef struct CUgraph_st* cudaGraph_t;
typedef struct CUgraphExec_st* cudaGraphExec_t;
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1,
                             cudaStreamCaptureModeRelaxed = 2 };
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value);
template <class F>
cudaError_t cudaFuncSetAttribute(F* func, cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(func), attr, value);
}

// ---- half / bfloat16 (storage types; conversions are exact widenings) ---------------------
struct __half { uint16_t x; };
struct __nv_bfloat16 { uint16_t x; };
inline float __bfloat162float(__nv_bfloat16 h) {
  uint32_t u = static_cast<uint32_t>(h.x) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float __half2float(__half h) {
  uint32_t sign = (h.x & 0x8000u) << 16, ex = (h.x >> 10) & 0x1f, mant = h.x & 0x3ffu, u;
  if (ex == 0) {
    if (mant == 0) {
      u = sign;
    } else {
      ex = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) { mant <<= 1; ex--; }
      u = sign | (ex << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (ex == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((ex + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round-to-nearest-even conversions to bfloat16 (what __float2bfloat16_rn and the
// cvt.rn.bf16x2.f32 instruction do on the device; NaN stays a quiet NaN).
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{static_cast<uint16_t>((u >> 16) | 0x40u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return __nv_bfloat16{static_cast<uint16_t>(u >> 16)};
}
struct __nv_bfloat162 { __nv_bfloat16 x, y; };  // x: the low 16 bits of the 32-bit register
inline __nv_bfloat162 __floats2bfloat162_rn(float lo, float hi) {
  return __nv_bfloat162{__float2bfloat16_rn(lo), __float2bfloat16_rn(hi)};
}

// ---- math intrinsics ------------------------------------------------------------------

inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
template <class T> inline T __ldg(const T* p) { return *p; }

// Atomics: one OS thread runs all fibers and a fiber is never pre-empted between two
// yield points, so plain read-modify-write is atomic here.
template <class T> inline T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
template <class T> inline T atomicMax(T* p, T v) { T old = *p; if (v > old) *p = v; return old; }
template <class T> inline T atomicMin(T* p, T v) { T old = *p; if (v < old) *p = v; return old; }
template <class T> inline T atomicExch(T* p, T v) { T old = *p; *p = v; return old; }
template <class T> inline T atomicCAS(T* p, T cmp, T v) { T old = *p; if (old == cmp) *p = v; return old; }
inline void __threadfence() {}
inline void __threadfence_block() {}

// ---- the scheduler ------------------------------------------------------------------------
namespace sdllm_emu {

// Seed of the fiber/block order: 0 runs fibers round-robin in thread order; any other
// value picks the next runnable fiber (and the block order) pseudo-randomly.
void set_schedule(uint64_t seed);
uint64_t schedule();
// Counters of the last launches, for tests that want to assert the emulator was exercised.
struct Stats { uint64_t launches, blocks, barriers, warp_syncs, switches, mmas, graph_launches; };
Stats stats();

void syncthreads();
void syncwarp(unsigned mask);
// Warp-collective matrix multiply-accumulate, the semantics of
//   mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {d0..d3}, {a0..a3}, {b0, b1}, {c0..c3}
// D (16x8) = A (16x16) * B (16x8) + C (16x8). Every one of the 32 lanes of the warp must
// call it (the .aligned form: same instruction, full warp); each passes its own fragment
// registers in the layouts of the PTX ISA ("Matrix Fragments for mma.m16n8k16 with
// floating point type"): a[4] and b[2] hold two bf16 each (low half = lower element
// index), c[4]/d[4] one float each. The emulator gathers the 32 lanes' fragments at a
// rendezvous, forms A, B and C, computes D with the bf16 products summed in double and
// rounded once to float, and scatters D back in the C/D layout. d may alias c.
void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]);
// The lane-exchange primitive behind every shuffle: lane l receives the 8 bytes that lane
// src_lane[l] deposited; returns this lane's result.
uint64_t warp_exchange(unsigned mask, uint64_t bits, int src_lane, const char* what);
unsigned lane_id();
void* dyn_smem();
bool check_launch(const void* fn, dim3 grid, dim3 block, size_t smem);
void run_grid(const void* fn, dim3 grid, dim3 block, size_t smem, const std::function<void()>& body);

template <class T>
inline uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type wider than 8 bytes");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
inline T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

// Stream capture (see the runtime API above): whether one is active, and recording a step.
bool capturing();
void capture(std::function<void()> step);
// Marks the active capture invalid (an operation CUDA forbids during capture); returns the error.
cudaError_t invalidate_capture();

template <class Kernel, class... Args>
inline cudaError_t launch(Kernel* kernel, dim3 grid, dim3 block, size_t smem, Args... args) {
  if (!check_launch(reinterpret_cast<const void*>(kernel), grid, block, smem)) return cudaErrorInvalidConfiguration;
  if (capturing()) {
    capture([=]() { run_grid(reinterpret_cast<const void*>(kernel), grid, block, smem, [&]() { kernel(args...); }); });
    return cudaSuccess;
  }
  run_grid(reinterpret_cast<const void*>(kernel), grid, block, smem, [&]() { kernel(args...); });
  return cudaSuccess;
}

}  // namespace sdllm_emu

inline void __syncthreads() { sdllm_emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { sdllm_emu::syncwarp(mask); }

template <class T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  const int lane = static_cast<int>(sdllm_emu::lane_id());
  const int s = (lane / width) * width + (src % width);
  return sdllm_emu::from_bits<T>(sdllm_emu::warp_exchange(mask, sdllm_emu::to_bits(v), s, "__shfl_sync"));
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  const int lane = static_cast<int>(sdllm_emu::lane_id());
  int s = lane ^ lane_mask;
  if (s / width != lane / width) s = lane;
  return sdllm_emu::from_bits<T>(sdllm_emu::warp_exchange(mask, sdllm_emu::to_bits(v), s, "__shfl_xor_sync"));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int lane = static_cast<int>(sdllm_emu::lane_id());
  const int s = (lane % width) + static_cast<int>(delta) < width ? lane + static_cast<int>(delta) : lane;
  return sdllm_emu::from_bits<T>(sdllm_emu::warp_exchange(mask, sdllm_emu::to_bits(v), s, "__shfl_down_sync"));
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int lane = static_cast<int>(sdllm_emu::lane_id());
  const int s = (lane % width) >= static_cast<int>(delta) ? lane - static_cast<int>(delta) : lane;
  return sdllm_emu::from_bits<T>(sdllm_emu::warp_exchange(mask, sdllm_emu::to_bits(v), s, "__shfl_up_sync"));
}
