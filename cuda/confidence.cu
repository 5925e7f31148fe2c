// confidence.cu: per requested logits row, x0 and its confidence (op_confidence), in one
// pass over the vocabulary. Only ids and confidences leave the GPU.
// Versions: one kernel, one block of 256 threads per row. Each thread scans the token ids
// t, t + 256, ... (ascending) keeping: max and argmax (lowest id on ties), the runner-up
// value (margin; a tie with the max makes it equal to the max), S = sum exp(l - max) and
// E = sum exp(l - max) (l - max) in double, rebased in double when the max grows
// (entropy: sum p log p = E/S - log S), and with temperature > 0 the Gumbel-max proposal
// argmax(l - T log(-log u)), u = rng_uniform(seed, row_keys[r], token), scored in double
// (lowest id on ties). The per-thread states are merged with warp shuffles (xor
// butterfly), then across the 8 warps through shared memory. kind == Random gives
// conf = rng_uniform(seed, key, 0xFFFFFFFFFFFF) and x0 = argmax, as the CPU op. Without
// row_keys the row index is the key. Confidences come from the un-noised softmax.
// Difference from the CPU op: exp(l - max) of one element is taken in float32 (the sums
// are double); confidences agree to ~1e-7 relative.
// Test: build/test/test/native/cuda/test_cuda_ops confidence (see embedding.cu for the build).
#include "common.cuh"

namespace sdllm {
namespace cuda {

namespace {

constexpr int kThreads = 256;
constexpr uint64_t kRandomCounter = 0xFFFFFFFFFFFFull;  // the CPU op's counter for kind Random
constexpr int kNoId = 0x7fffffff;

struct ConfState {
  float max, second;
  int arg;
  double sum, ent;
  double gbest;
  int garg;
};

__device__ __forceinline__ void rebase(ConfState& s, float m) {
  if (s.sum == 0.0 || m == s.max) return;
  const double d = static_cast<double>(s.max) - static_cast<double>(m), c = exp(d);
  s.ent = c * (s.ent + d * s.sum);
  s.sum *= c;
}

// a := a merged with b (either order of token ranges: ties resolve by the lower id).
__device__ __forceinline__ void merge(ConfState& a, ConfState b) {
  const float m = fmaxf(a.max, b.max);
  if (m != -INFINITY) {
    rebase(a, m);
    rebase(b, m);
  }
  const bool b_wins = b.max > a.max || (b.max == a.max && b.arg < a.arg);
  const float loser = b_wins ? a.max : b.max;
  const float win_second = b_wins ? b.second : a.second;
  a.second = fmaxf(fmaxf(loser, win_second), b_wins ? a.second : b.second);
  if (b_wins) a.arg = b.arg;
  a.max = m;
  a.sum += b.sum;
  a.ent += b.ent;
  if (b.gbest > a.gbest || (b.gbest == a.gbest && b.garg < a.garg)) {
    a.gbest = b.gbest;
    a.garg = b.garg;
  }
}

__device__ __forceinline__ ConfState shfl_state(const ConfState& s, int o) {
  ConfState r;
  r.max = __shfl_xor_sync(kFullMask, s.max, o);
  r.second = __shfl_xor_sync(kFullMask, s.second, o);
  r.arg = __shfl_xor_sync(kFullMask, s.arg, o);
  r.sum = __shfl_xor_sync(kFullMask, s.sum, o);
  r.ent = __shfl_xor_sync(kFullMask, s.ent, o);
  r.gbest = __shfl_xor_sync(kFullMask, s.gbest, o);
  r.garg = __shfl_xor_sync(kFullMask, s.garg, o);
  return r;
}

__device__ __forceinline__ ConfState empty_state() {
  ConfState s;
  s.max = -INFINITY;
  s.second = -INFINITY;
  s.arg = kNoId;
  s.sum = 0.0;
  s.ent = 0.0;
  s.gbest = -INFINITY;
  s.garg = kNoId;
  return s;
}

}  // namespace

__global__ void __launch_bounds__(kThreads) confidence_kernel(ConfidenceParams p) {
  __shared__ ConfState warp_states[kThreads / 32];
  const int64_t r = blockIdx.x;
  const float* l = p.logits + r * p.row_stride;
  const uint64_t key = p.row_keys ? p.row_keys[r] : static_cast<uint64_t>(r);
  const double temperature = p.temperature > 0.f ? static_cast<double>(p.temperature) : 0.0;
  ConfState s = empty_state();
  for (int64_t t = threadIdx.x; t < p.vocab; t += blockDim.x) {
    const float v = l[t];
    if (v > s.max) {  // strict: a later equal value is a tie and the lower id stays
      rebase(s, v);
      s.second = s.max;
      s.max = v;
      s.arg = static_cast<int>(t);
    } else {
      s.second = fmaxf(s.second, v);
    }
    if (s.max != -INFINITY) {
      const float d = v - s.max;
      const double e = static_cast<double>(expf(d));
      s.sum += e;
      if (e > 0.0) s.ent += e * static_cast<double>(d);
    }
    if (temperature > 0.0) {
      const double u = rng_uniform(p.seed, key, static_cast<uint64_t>(t));
      const double g = static_cast<double>(v) - temperature * log(-log(u));
      if (g > s.gbest) {
        s.gbest = g;
        s.garg = static_cast<int>(t);
      }
    }
  }
  for (int o = 16; o > 0; o >>= 1) merge(s, shfl_state(s, o));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_states[warp] = s;
  __syncthreads();
  if (warp != 0) return;
  s = lane < static_cast<int>(blockDim.x / 32) ? warp_states[lane] : empty_state();
  for (int o = 16; o > 0; o >>= 1) merge(s, shfl_state(s, o));
  if (lane != 0) return;

  const int arg = s.arg == kNoId ? 0 : s.arg;
  const int x0 = temperature > 0.0 && s.garg != kNoId ? s.garg : arg;
  double conf = 0.0;
  if (p.kind == ConfidenceKind::Random) {
    conf = rng_uniform(p.seed, key, kRandomCounter);
  } else if (s.sum > 0.0) {
    switch (p.kind) {
      case ConfidenceKind::Prob:
        conf = exp(static_cast<double>(l[x0]) - static_cast<double>(s.max)) / s.sum;
        break;
      case ConfidenceKind::Margin:
        conf = (1.0 - exp(static_cast<double>(s.second) - static_cast<double>(s.max))) / s.sum;
        break;
      default:  // Entropy: sum p log p
        conf = s.ent / s.sum - log(s.sum);
        break;
    }
  }
  p.out_ids[r] = x0;
  p.out_conf[r] = static_cast<float>(conf);
}

int confidence(const ConfidenceParams& p, void* stream) {
  if (p.n_rows <= 0) return 0;
  if (p.vocab <= 0 || p.vocab > 0x7fffffff) return 1;  // cudaErrorInvalidValue
  return SDLLM_LAUNCH(confidence_kernel, dim3(static_cast<unsigned>(p.n_rows)), dim3(kThreads), 0, stream, p);
}

const char* error_string(int err) { return cudaGetErrorString(static_cast<cudaError_t>(err)); }

}  // namespace cuda
}  // namespace sdllm
