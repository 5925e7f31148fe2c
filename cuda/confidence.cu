// confidence.cu: per requested logits row, x0 and its confidence (op_confidence). Only ids
// and confidences leave the GPU.
//
// Versions:
//   v1 (before issue 16): one block of 256 threads per row, one pass, sums in double.
//     32 rows filled 32 of 132 SMs and the Gumbel path took two double logs per token.
//   v2 (this file): each row's vocabulary is cut into `slices` contiguous ranges
//     (confidence_slices: enough blocks for ~4 per SM, 1..32 slices, at least 512 tokens
//     each), one block of 256 threads per (row, slice), and a combine kernel (one warp per
//     row) merges the slices in id order. No double precision inside the vocabulary loop:
//       pass 1 over the slice: max and argmax (strict >, ascending ids: lowest id on
//         ties), runner-up (a tie with the max makes it equal to the max), and with
//         temperature > 0 the Gumbel-max proposal argmax(l - T log(-log u)) in float, with
//         -log u computed from the RNG's integer so that u near 1 keeps its precision
//         (-log1p(-(1 - u)), 1 - u exact in integers);
//       block max M of the slice (shuffles + shared memory);
//       pass 2 (the slice again, from L1/L2): S = sum exp((l - M) / c) and
//         E = sum exp((l - M) / c) (l - M) / c in float with compensated (Kahan) sums,
//         all threads relative to the same M, so no rescaling anywhere in the loop;
//       block merge with compensated adds, one state per (row, slice) to the workspace.
//     The combine rebases the <= 32 slice states to the row max in double (a few values
//     per row) and computes the confidence: prob = exp((l[x0] - max)/c) / S,
//     margin = (1 - exp((second - max)/c)) / S, entropy = E/S - log S (sum p log p),
//     random = rng_uniform(seed, key, 0xFFFFFFFFFFFF). Without a workspace (the old
//     two-argument launcher) every row is one slice and the block finalises itself.
//   Confidence temperature c (ConfidenceParams::confidence_temperature) is applied here,
//   as in the CPU op; the Gumbel scores use the raw logits.
// RNG: u = rng_uniform(seed, row_keys[r], token) (cpp/rng.h), the same counters as the CPU
// op; without row_keys the row index is the key.
// Agreement with the CPU op (double sums): ids exact unless two Gumbel scores are within
// ~1e-6 of each other; confidences to ~1e-7 relative (test_cuda_ops prints the worst).
// Test: build/native-tests/test/native/cuda/test_cuda_ops confidence
#include "common.cuh"

namespace sdllm {
namespace cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxSlices = 32;
constexpr int64_t kMinSliceTokens = 512;
constexpr uint64_t kRandomCounter = 0xFFFFFFFFFFFFull;  // the CPU op's counter for kind Random
constexpr int kNoId = 0x7fffffff;

// A compensated float sum: value = hi + lo.
struct FSum {
  float hi, lo;
};
__device__ __forceinline__ void fsum_add(FSum& s, float x) {  // Kahan
  const float y = x + s.lo;
  const float t = s.hi + y;
  s.lo = y - (t - s.hi);
  s.hi = t;
}
__device__ __forceinline__ FSum fsum_merge(FSum a, FSum b) {  // TwoSum of the high parts
  const float s = a.hi + b.hi;
  const float bp = s - a.hi;
  const float err = (a.hi - (s - bp)) + (b.hi - bp);
  return FSum{s, a.lo + b.lo + err};
}

// One slice of one row (also the per-thread and per-warp partial states). sum/ent are
// relative to the slice's max `ref`.
struct SliceState {
  float max, second;
  int arg;
  float sum_hi, sum_lo, ent_hi, ent_lo;
  float gbest;
  int garg;
  float ref;
};

__device__ __forceinline__ SliceState empty_state() {
  SliceState s;
  s.max = s.second = s.gbest = s.ref = -INFINITY;
  s.arg = s.garg = kNoId;
  s.sum_hi = s.sum_lo = s.ent_hi = s.ent_lo = 0.f;
  return s;
}

// a := a merged with b; sums relative to the same reference. Ties: the lower id wins.
__device__ __forceinline__ void merge_same_ref(SliceState& a, const SliceState& b) {
  const bool b_wins = b.max > a.max || (b.max == a.max && b.arg < a.arg);
  const float loser = b_wins ? a.max : b.max;
  a.second = fmaxf(fmaxf(a.second, b.second), loser);
  if (b_wins) {
    a.max = b.max;
    a.arg = b.arg;
  }
  const FSum s = fsum_merge(FSum{a.sum_hi, a.sum_lo}, FSum{b.sum_hi, b.sum_lo});
  const FSum e = fsum_merge(FSum{a.ent_hi, a.ent_lo}, FSum{b.ent_hi, b.ent_lo});
  a.sum_hi = s.hi;
  a.sum_lo = s.lo;
  a.ent_hi = e.hi;
  a.ent_lo = e.lo;
  if (b.gbest > a.gbest || (b.gbest == a.gbest && b.garg < a.garg)) {
    a.gbest = b.gbest;
    a.garg = b.garg;
  }
}

__device__ __forceinline__ SliceState shfl_state(const SliceState& s, int o) {
  SliceState r;
  r.max = __shfl_xor_sync(kFullMask, s.max, o);
  r.second = __shfl_xor_sync(kFullMask, s.second, o);
  r.arg = __shfl_xor_sync(kFullMask, s.arg, o);
  r.sum_hi = __shfl_xor_sync(kFullMask, s.sum_hi, o);
  r.sum_lo = __shfl_xor_sync(kFullMask, s.sum_lo, o);
  r.ent_hi = __shfl_xor_sync(kFullMask, s.ent_hi, o);
  r.ent_lo = __shfl_xor_sync(kFullMask, s.ent_lo, o);
  r.gbest = __shfl_xor_sync(kFullMask, s.gbest, o);
  r.garg = __shfl_xor_sync(kFullMask, s.garg, o);
  r.ref = s.ref;
  return r;
}

// -log(u) for u = rng_uniform(seed, key, counter), in float: u < 1/2 directly, u >= 1/2 as
// -log1p(-(1 - u)) with 1 - u formed exactly from the integer (u = (m + 1/2) / 2^53).
__device__ __forceinline__ float neg_log_uniform(uint64_t seed, uint64_t key, uint64_t counter) {
  const uint64_t m = rng_mix64(seed ^ rng_mix64(key ^ rng_mix64(counter))) >> 11;
  constexpr float k2m53 = 1.1102230246251565e-16f;  // 2^-53
  if (m < (1ull << 52)) return -logf((static_cast<float>(m) + 0.5f) * k2m53);
  const float one_minus_u = (static_cast<float>((1ull << 53) - 1 - m) + 0.5f) * k2m53;
  return -log1pf(-one_minus_u);
}

// The final id and confidence of a row from its merged state (double on a few values).
__device__ __forceinline__ void finalize(const ConfidenceParams& p, int64_t r, uint64_t key, float max, float second,
                                         int arg, double sum, double ent, int garg, double inv) {
  const bool gumbel = p.temperature > 0.f && garg != kNoId;
  const int x0 = gumbel ? garg : (arg == kNoId ? 0 : arg);
  double conf = 0.0;
  if (p.kind == ConfidenceKind::Random) {
    conf = rng_uniform(p.seed, key, kRandomCounter);
  } else if (sum > 0.0) {
    const double m = static_cast<double>(max);
    switch (p.kind) {
      case ConfidenceKind::Prob:
        conf = exp((static_cast<double>(p.logits[r * p.row_stride + x0]) - m) * inv) / sum;
        break;
      case ConfidenceKind::Margin:
        conf = (1.0 - exp((static_cast<double>(second) - m) * inv)) / sum;
        break;
      default:  // Entropy: sum p log p = E/S - log S
        conf = ent / sum - log(sum);
        break;
    }
  }
  p.out_ids[r] = x0;
  p.out_conf[r] = static_cast<float>(conf);
}

__device__ __forceinline__ uint64_t row_key(const ConfidenceParams& p, int64_t r) {
  return p.row_keys ? p.row_keys[r] : static_cast<uint64_t>(r);
}

__device__ __forceinline__ float inv_ctemp(const ConfidenceParams& p) {
  return p.confidence_temperature > 0.f ? 1.0f / p.confidence_temperature : 1.0f;
}

}  // namespace

// Block (row blockIdx.x, slice blockIdx.y). ws == nullptr: one slice per row, finalised here.
__global__ void __launch_bounds__(kThreads) confidence_slice_kernel(ConfidenceParams p, SliceState* ws, int64_t chunk) {
  __shared__ SliceState warp_states[kWarps];
  __shared__ float warp_max[kWarps];
  const int64_t r = blockIdx.x;
  const int slice = blockIdx.y;
  const int64_t begin = static_cast<int64_t>(slice) * chunk;
  const int64_t end = begin + chunk < p.vocab ? begin + chunk : p.vocab;
  const float* l = p.logits + r * p.row_stride;
  const uint64_t key = row_key(p, r);
  const float temperature = p.temperature > 0.f ? p.temperature : 0.f;
  const float inv = inv_ctemp(p);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  // Pass 1: max/argmax/runner-up, Gumbel proposal.
  SliceState s = empty_state();
  for (int64_t t = begin + threadIdx.x; t < end; t += kThreads) {
    const float v = l[t];
    if (v > s.max) {  // strict: a later equal value is a tie and the lower id stays
      s.second = s.max;
      s.max = v;
      s.arg = static_cast<int>(t);
    } else {
      s.second = fmaxf(s.second, v);
    }
    if (temperature > 0.f) {
      const float g = v - temperature * logf(neg_log_uniform(p.seed, key, static_cast<uint64_t>(t)));
      if (g > s.gbest) {
        s.gbest = g;
        s.garg = static_cast<int>(t);
      }
    }
  }
  // The slice's max, the common reference of every thread's sums.
  float m = s.max;
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(kFullMask, m, o));
  if (lane == 0) warp_max[warp] = m;
  __syncthreads();
  m = warp_max[0];
  for (int w = 1; w < kWarps; ++w) m = fmaxf(m, warp_max[w]);
  s.ref = m;

  // Pass 2: sums relative to m, compensated, no rescaling.
  if (m != -INFINITY) {
    FSum sum{0.f, 0.f}, ent{0.f, 0.f};
    for (int64_t t = begin + threadIdx.x; t < end; t += kThreads) {
      const float d = (l[t] - m) * inv;
      const float e = expf(d);
      fsum_add(sum, e);
      if (e > 0.f) fsum_add(ent, e * d);  // exp(-inf) * -inf would be NaN
    }
    s.sum_hi = sum.hi;
    s.sum_lo = sum.lo;
    s.ent_hi = ent.hi;
    s.ent_lo = ent.lo;
  }

  for (int o = 16; o > 0; o >>= 1) merge_same_ref(s, shfl_state(s, o));
  if (lane == 0) warp_states[warp] = s;
  __syncthreads();
  if (threadIdx.x != 0) return;
  for (int w = 1; w < kWarps; ++w) merge_same_ref(s, warp_states[w]);
  if (ws) {
    ws[r * gridDim.y + slice] = s;
    return;
  }
  finalize(p, r, key, s.max, s.second, s.arg, static_cast<double>(s.sum_hi) + static_cast<double>(s.sum_lo),
           static_cast<double>(s.ent_hi) + static_cast<double>(s.ent_lo), s.garg, static_cast<double>(inv));
}

// One warp per row: lane i holds slice i; merged in double, in id order of the slices.
__global__ void __launch_bounds__(32) confidence_combine_kernel(ConfidenceParams p, const SliceState* ws, int slices) {
  const int64_t r = blockIdx.x;
  const int lane = threadIdx.x;
  const SliceState s = lane < slices ? ws[r * slices + lane] : empty_state();
  const double inv = static_cast<double>(inv_ctemp(p));
  float max = s.max, second = s.second, gbest = s.gbest;
  int arg = s.arg, garg = s.garg;
  float rmax = s.ref;
  for (int o = 16; o > 0; o >>= 1) rmax = fmaxf(rmax, __shfl_xor_sync(kFullMask, rmax, o));
  // Rebase this slice's sums from its reference to the row's max.
  double sum = 0.0, ent = 0.0;
  if (s.ref != -INFINITY) {
    const double d = (static_cast<double>(s.ref) - static_cast<double>(rmax)) * inv, c = exp(d);
    const double ss = static_cast<double>(s.sum_hi) + static_cast<double>(s.sum_lo);
    const double se = static_cast<double>(s.ent_hi) + static_cast<double>(s.ent_lo);
    sum = c * ss;
    ent = c * (se + d * ss);
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float omax = __shfl_xor_sync(kFullMask, max, o), osecond = __shfl_xor_sync(kFullMask, second, o);
    const int oarg = __shfl_xor_sync(kFullMask, arg, o);
    const float ogbest = __shfl_xor_sync(kFullMask, gbest, o);
    const int ogarg = __shfl_xor_sync(kFullMask, garg, o);
    sum += __shfl_xor_sync(kFullMask, sum, o);
    ent += __shfl_xor_sync(kFullMask, ent, o);
    const bool other_wins = omax > max || (omax == max && oarg < arg);
    const float loser = other_wins ? max : omax;
    second = fmaxf(fmaxf(second, osecond), loser);
    if (other_wins) {
      max = omax;
      arg = oarg;
    }
    if (ogbest > gbest || (ogbest == gbest && ogarg < garg)) {
      gbest = ogbest;
      garg = ogarg;
    }
  }
  if (lane != 0) return;
  finalize(p, r, row_key(p, r), max, second, arg, sum, ent, garg, inv);
}

int confidence_slices(int64_t n_rows, int64_t vocab, int sm_count) {
  if (n_rows <= 0 || vocab <= 0) return 1;
  if (sm_count <= 0) sm_count = 1;
  const int64_t target = 4 * static_cast<int64_t>(sm_count);  // blocks
  int64_t s = (target + n_rows - 1) / n_rows;
  if (s > vocab / kMinSliceTokens) s = vocab / kMinSliceTokens;
  if (s > kMaxSlices) s = kMaxSlices;
  return s < 1 ? 1 : static_cast<int>(s);
}

size_t confidence_workspace_bytes(int64_t n_rows, int64_t vocab, int sm_count) {
  const int s = confidence_slices(n_rows, vocab, sm_count);
  return s > 1 ? sizeof(SliceState) * static_cast<size_t>(n_rows) * static_cast<size_t>(s) : 0;
}

int confidence(const ConfidenceParams& p, void* workspace, size_t workspace_bytes, int sm_count, void* stream) {
  if (p.n_rows <= 0) return 0;
  if (p.vocab <= 0 || p.vocab > 0x7fffffff || p.n_rows > 0x7fffffff) return 1;  // cudaErrorInvalidValue
  int slices = confidence_slices(p.n_rows, p.vocab, sm_count);
  const size_t per_slice = sizeof(SliceState) * static_cast<size_t>(p.n_rows);
  if (!workspace) slices = 1;
  if (slices > 1 && workspace_bytes < per_slice * static_cast<size_t>(slices))
    slices = static_cast<int>(workspace_bytes / per_slice);  // fewer slices fit: use them
  if (slices < 1) slices = 1;
  const int64_t chunk = (p.vocab + slices - 1) / slices;
  slices = static_cast<int>((p.vocab + chunk - 1) / chunk);  // no empty slice
  SliceState* ws = slices > 1 ? static_cast<SliceState*>(workspace) : nullptr;
  const int err = SDLLM_LAUNCH(confidence_slice_kernel, dim3(static_cast<unsigned>(p.n_rows), static_cast<unsigned>(slices)),
                               dim3(kThreads), 0, stream, p, ws, chunk);
  if (err || slices == 1) return err;
  return SDLLM_LAUNCH(confidence_combine_kernel, dim3(static_cast<unsigned>(p.n_rows)), dim3(32), 0, stream, p,
                      static_cast<const SliceState*>(ws), slices);
}

int confidence(const ConfidenceParams& p, void* stream) { return confidence(p, nullptr, 0, 0, stream); }

const char* error_string(int err) { return cudaGetErrorString(static_cast<cudaError_t>(err)); }

}  // namespace cuda
}  // namespace sdllm
