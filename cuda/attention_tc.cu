// attention_tc.cu: the windowed-suffix attention of Streaming-dLLM (op_attention
// semantics) on BF16 tensor cores, F32 accumulation, online softmax.
// Queries: the rows fed this step (current block + kept suffix window + trailing
// position). Keys/values: segment 0 (the prefix KV cache) then segment 1 (the query rows'
// own K/V); either may be empty. Bidirectional (no mask), GQA (query head h reads kv head
// h / (n_heads / n_kv_heads)), head_dim 64 or 128 (attention_tc_supported); other head
// sizes stay on cuda/attention.cu.
//
// Versions:
//   v1 (this file, attn_tc_kernel<D, T0, T1>): a block of 4 warps takes one kv head and
//     64 "items" (query row x query head of that kv head's group, so a GQA group shares
//     the K/V tiles), 16 items per warp = the M of one m16n8k16 mma. Per tile of 64 keys
//     the block stages K (bf16 pairs along the head dim, rows padded by 8 bf16) and V
//     transposed (bf16 pairs along the keys) in shared memory, converting from the
//     element types T0 (segment 0) and T1 (segment 1) — float today; a BF16 cache only
//     needs the load_pair/load_one overloads below for __nv_bfloat16, which exist. Each
//     warp keeps its Q fragments (bf16) and its output accumulator (16 x D f32) in
//     registers: S = Q K^T is 8 x D/16 mma, the scores get the scale in log2 units, the
//     key mask and the running row max (quad shuffles); P = exp2(S - m) is rounded to
//     bf16 and reused straight from the S accumulator registers as the A fragments of
//     O += P V (D/8 x 4 mma), the standard C-to-A register reuse of m16n8k16. Row sums
//     of P (of the bf16-rounded values, so that the weights are normalised exactly as
//     multiplied) stay per lane until the end. Warps whose 16 items all lie beyond the
//     last item skip the mma (they still stage tiles and meet the barriers).
//   splits > 1: split along the keys (flash-decoding) when the blocks are few (few query
//     rows or few kv heads): block z handles a key range that is a multiple of 64 keys
//     and writes a partial (max in log2 units, sum, unnormalised output) to the
//     workspace; attn_tc_combine_kernel merges the partials of each (row, head).
//   Not yet (next versions): ldmatrix for the fragment loads (plain 32-bit shared loads
//     now), cp.async double buffering of the K/V tiles, a BF16 KV cache wired through
//     AttentionParams, 128-item blocks for long query runs (vanilla / step 0).
// Numerics: q, k, v and p are rounded to bf16 (round to nearest even); products are
// exact and accumulate in f32; softmax max/sums in f32. Against op_attention on the same
// bf16-rounded q/k/v the normalised MSE is ~1e-6 (the rounding of p), against the f32
// op ~1e-5 (test_cuda_ops prints both).
// Test (CPU emulator, tensor-core fragments included):
//   build/native-tests/test/native/cuda/test_cuda_ops attention_tc
//   build/native-tests/test/native/cuda/test_cuda_ops mma        (the mma emulation itself)
// nvcc check: nvcc -std=c++17 -arch=sm_80 -Werror=all-warnings -c cuda/attention_tc.cu -I cpp
#include "common.cuh"
#include "mma.cuh"

namespace sdllm {
namespace cuda {

namespace {

constexpr int kTcWarps = 4;
constexpr int kTcThreads = 32 * kTcWarps;
constexpr int kTcItems = 16 * kTcWarps;  // items (query row x query head) per block
constexpr int kTcKeys = 64;              // keys per tile
constexpr int kTcPad = 8;                // bf16 of padding per shared-memory row (bank spread)
constexpr int kTcMaxSplits = 32;

template <class T0, class T1>
struct TcArgs {
  const float* q;
  int64_t q_stride;
  const T0* k0;
  const T0* v0;
  int64_t n_k0, kv0_stride;
  const T1* k1;
  const T1* v1;
  int64_t n_k1, kv1_stride;
  float* out;
  int64_t out_stride;
  int n_heads, group;
  int64_t n_q, n_items;  // n_items = n_q * group per kv head
  float scale_log2;      // scale * log2(e): scores in log2 units for exp2f
  int splits;
  int64_t chunk;         // keys per split, a multiple of kTcKeys
  float* part_o;         // [splits, n_q, n_heads, D] when splits > 1
  float* part_ml;        // [splits, n_q, n_heads, 2]
};

struct TcCombineArgs {
  const float* part_o;
  const float* part_ml;
  float* out;
  int64_t out_stride, n_q;
  int n_heads, head_dim, splits;
};

}  // namespace

// K/V element loads by storage type: a pair of consecutive elements as one packed bf16x2
// register, or one element as float. (Outside the anonymous namespace: the BF16 overloads
// are not used until a BF16 cache is wired in.)
namespace tc_load {
__device__ __forceinline__ uint32_t load_pair(const float* p) { return pack_bf16x2(p[0], p[1]); }
__device__ __forceinline__ uint32_t load_pair(const __nv_bfloat16* p) {
  return pack_bf16x2(__bfloat162float(p[0]), __bfloat162float(p[1]));  // exact: already bf16
}
__device__ __forceinline__ float load_one(const float* p) { return *p; }
__device__ __forceinline__ float load_one(const __nv_bfloat16* p) { return __bfloat162float(*p); }
}  // namespace tc_load

namespace {

// Query row of an item (row-major over rows, then heads of the group), or nullptr past the end.
template <int D, class T0, class T1>
__device__ __forceinline__ const float* item_q(const TcArgs<T0, T1>& a, int kvh, int64_t item) {
  if (item >= a.n_items) return nullptr;
  const int64_t row = item / a.group;
  const int h = kvh * a.group + static_cast<int>(item % a.group);
  return a.q + row * a.q_stride + static_cast<int64_t>(h) * D;
}

// p = exp2(x - m) for two scores, rounded to bf16 and packed; the rounded values go to `sum`.
__device__ __forceinline__ uint32_t prob_pair(float x0, float x1, float m, float& sum) {
  const uint32_t r = pack_bf16x2(exp2f(x0 - m), exp2f(x1 - m));
  sum += bf16x2_lo(r) + bf16x2_hi(r);
  return r;
}

}  // namespace

template <int D, class T0, class T1>
__global__ void __launch_bounds__(kTcThreads) attn_tc_kernel(TcArgs<T0, T1> a) {
  static_assert(D % 16 == 0 && D <= 128, "head_dim must be a multiple of 16, at most 128");
  constexpr int KW = (D + kTcPad) / 2;        // 32-bit words per K row in shared memory
  constexpr int VW = (kTcKeys + kTcPad) / 2;  // words per row of V^T
  constexpr int KSTEPS = D / 16;              // k-steps of S = Q K^T over the head dim
  constexpr int STILES = kTcKeys / 8;         // n-tiles of S (8 keys each)
  constexpr int OTILES = D / 8;               // n-tiles of O (8 dims each)
  constexpr int PSTEPS = kTcKeys / 16;        // k-steps of O += P V over the keys
  using tc_load::load_one;
  using tc_load::load_pair;
  SDLLM_DYN_SMEM(uint32_t, smem);
  uint32_t* ks = smem;                 // [kTcKeys][KW]: K tile, bf16 pairs along the head dim
  uint32_t* vs = smem + kTcKeys * KW;  // [D][VW]: V tile transposed, bf16 pairs along the keys

  const int kvh = blockIdx.y, split = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int gq = lane >> 2, tq = lane & 3;  // groupID, threadID_in_group of the fragment layouts
  const int64_t w_item0 = static_cast<int64_t>(blockIdx.x) * kTcItems + warp * 16;
  const bool active = w_item0 < a.n_items;  // warp-uniform

  // Q as A fragments (16 items x D), bf16, kept for the whole key loop. Rows gq and gq + 8.
  uint32_t qf[KSTEPS][4];
  {
    const float* qa = item_q<D>(a, kvh, w_item0 + gq);
    const float* qb = item_q<D>(a, kvh, w_item0 + gq + 8);
    for (int s = 0; s < KSTEPS; ++s) {
      const int c = 16 * s + 2 * tq;
      qf[s][0] = qa ? pack_bf16x2(qa[c], qa[c + 1]) : 0u;
      qf[s][1] = qb ? pack_bf16x2(qb[c], qb[c + 1]) : 0u;
      qf[s][2] = qa ? pack_bf16x2(qa[c + 8], qa[c + 9]) : 0u;
      qf[s][3] = qb ? pack_bf16x2(qb[c + 8], qb[c + 9]) : 0u;
    }
  }

  const int64_t n_keys = a.n_k0 + a.n_k1;
  const int64_t k_begin = static_cast<int64_t>(split) * a.chunk;
  const int64_t k_end = k_begin + a.chunk < n_keys ? k_begin + a.chunk : n_keys;
  const int64_t kv_off = static_cast<int64_t>(kvh) * D;

  float o[OTILES][4];
  for (int i = 0; i < OTILES; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m_a = -INFINITY, m_b = -INFINITY;  // running max of rows gq / gq + 8, log2 units
  float l_a = 0.f, l_b = 0.f;              // this lane's share of the row sums

  for (int64_t t0 = k_begin; t0 < k_end; t0 += kTcKeys) {
    __syncthreads();  // the previous tile is no longer read
    for (int idx = threadIdx.x; idx < kTcKeys * (D / 2); idx += kTcThreads) {
      const int j = idx / (D / 2), dp = idx % (D / 2);
      const int64_t key = t0 + j;
      uint32_t w = 0u;
      if (key < k_end) {
        w = key < a.n_k0 ? load_pair(a.k0 + key * a.kv0_stride + kv_off + 2 * dp)
                         : load_pair(a.k1 + (key - a.n_k0) * a.kv1_stride + kv_off + 2 * dp);
      }
      ks[j * KW + dp] = w;
    }
    for (int idx = threadIdx.x; idx < (kTcKeys / 2) * D; idx += kTcThreads) {
      const int jp = idx / D, d = idx % D;
      float x[2];
      for (int e = 0; e < 2; ++e) {
        const int64_t key = t0 + 2 * jp + e;
        x[e] = 0.f;  // keys past the end: V = 0, so that p = 0 times it stays 0
        if (key < k_end) {
          x[e] = key < a.n_k0 ? load_one(a.v0 + key * a.kv0_stride + kv_off + d)
                              : load_one(a.v1 + (key - a.n_k0) * a.kv1_stride + kv_off + d);
        }
      }
      vs[d * VW + jp] = pack_bf16x2(x[0], x[1]);
    }
    __syncthreads();
    if (!active) continue;

    // S = Q K^T: B(k = dim, n = key) = K[key][dim], pairs along the dims of one K row.
    float s[STILES][4];
    for (int nt = 0; nt < STILES; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
      const uint32_t* krow = ks + (nt * 8 + gq) * KW + tq;
      for (int st = 0; st < KSTEPS; ++st) {
        const uint32_t b[2] = {krow[st * 8], krow[st * 8 + 4]};
        mma_m16n8k16_bf16(s[nt], qf[st], b, s[nt]);
      }
    }
    // Scale to log2 units, mask the keys past the end, row max over the tile.
    float mx_a = -INFINITY, mx_b = -INFINITY;
    for (int nt = 0; nt < STILES; ++nt) {
      for (int e = 0; e < 4; ++e) {
        const int64_t key = t0 + nt * 8 + 2 * tq + (e & 1);
        const float x = key < k_end ? s[nt][e] * a.scale_log2 : -INFINITY;
        s[nt][e] = x;
        if (e < 2) mx_a = fmaxf(mx_a, x);
        else mx_b = fmaxf(mx_b, x);
      }
    }
    // The 4 lanes of a quad hold the same two rows.
    mx_a = fmaxf(mx_a, __shfl_xor_sync(kFullMask, mx_a, 1));
    mx_b = fmaxf(mx_b, __shfl_xor_sync(kFullMask, mx_b, 1));
    mx_a = fmaxf(mx_a, __shfl_xor_sync(kFullMask, mx_a, 2));
    mx_b = fmaxf(mx_b, __shfl_xor_sync(kFullMask, mx_b, 2));
    const float mn_a = fmaxf(m_a, mx_a), mn_b = fmaxf(m_b, mx_b);  // finite: key t0 is valid
    const float corr_a = exp2f(m_a - mn_a), corr_b = exp2f(m_b - mn_b);  // 0 on the first tile
    l_a *= corr_a;
    l_b *= corr_b;
    for (int i = 0; i < OTILES; ++i) {
      o[i][0] *= corr_a;
      o[i][1] *= corr_a;
      o[i][2] *= corr_b;
      o[i][3] *= corr_b;
    }
    m_a = mn_a;
    m_b = mn_b;

    // O += P V. P's A fragment for keys [16 ps, 16 ps + 16) is the C layout of S tiles
    // 2 ps (keys +0..7: registers 0, 1) and 2 ps + 1 (keys +8..15: registers 2, 3).
    // B(k = key, n = dim) = V[key][dim]: pairs along the keys of one V^T row.
    for (int ps = 0; ps < PSTEPS; ++ps) {
      uint32_t pf[4];
      pf[0] = prob_pair(s[2 * ps][0], s[2 * ps][1], m_a, l_a);
      pf[1] = prob_pair(s[2 * ps][2], s[2 * ps][3], m_b, l_b);
      pf[2] = prob_pair(s[2 * ps + 1][0], s[2 * ps + 1][1], m_a, l_a);
      pf[3] = prob_pair(s[2 * ps + 1][2], s[2 * ps + 1][3], m_b, l_b);
      for (int ot = 0; ot < OTILES; ++ot) {
        const uint32_t* vrow = vs + (ot * 8 + gq) * VW + ps * 8 + tq;
        const uint32_t b[2] = {vrow[0], vrow[4]};
        mma_m16n8k16_bf16(o[ot], pf, b, o[ot]);
      }
    }
  }
  if (!active) return;
  l_a += __shfl_xor_sync(kFullMask, l_a, 1);
  l_b += __shfl_xor_sync(kFullMask, l_b, 1);
  l_a += __shfl_xor_sync(kFullMask, l_a, 2);
  l_b += __shfl_xor_sync(kFullMask, l_b, 2);

  for (int half = 0; half < 2; ++half) {
    const int64_t item = w_item0 + gq + 8 * half;
    if (item >= a.n_items) continue;
    const int64_t row = item / a.group;
    const int h = kvh * a.group + static_cast<int>(item % a.group);
    const float l = half ? l_b : l_a, m = half ? m_b : m_a;
    if (a.splits == 1) {
      const float inv = l > 0.f ? 1.0f / l : 0.f;  // no keys at all: zero output
      float* out = a.out + row * a.out_stride + static_cast<int64_t>(h) * D + 2 * tq;
      for (int ot = 0; ot < OTILES; ++ot) {
        out[ot * 8] = o[ot][2 * half] * inv;
        out[ot * 8 + 1] = o[ot][2 * half + 1] * inv;
      }
    } else {
      const int64_t slot = (static_cast<int64_t>(split) * a.n_q + row) * a.n_heads + h;
      float* po = a.part_o + slot * D + 2 * tq;
      for (int ot = 0; ot < OTILES; ++ot) {
        po[ot * 8] = o[ot][2 * half];
        po[ot * 8 + 1] = o[ot][2 * half + 1];
      }
      if (tq == 0) {
        a.part_ml[slot * 2] = m;
        a.part_ml[slot * 2 + 1] = l;
      }
    }
  }
}

// One block per (row, head), one thread per output dim:
// out = sum_s 2^(m_s - M) o_s / sum_s 2^(m_s - M) l_s over the splits that saw keys.
__global__ void __launch_bounds__(128) attn_tc_combine_kernel(TcCombineArgs a) {
  const int64_t slot = blockIdx.x;  // row * n_heads + h
  const int64_t row = slot / a.n_heads;
  const int h = static_cast<int>(slot % a.n_heads);
  const int64_t stride = a.n_q * a.n_heads;
  float mx = -INFINITY;
  for (int s = 0; s < a.splits; ++s) {
    const float* ml = a.part_ml + (s * stride + slot) * 2;
    if (ml[1] > 0.f) mx = fmaxf(mx, ml[0]);
  }
  float den = 0.f;
  for (int s = 0; s < a.splits; ++s) {
    const float* ml = a.part_ml + (s * stride + slot) * 2;
    if (ml[1] > 0.f) den += ml[1] * exp2f(ml[0] - mx);
  }
  const float inv = den > 0.f ? 1.0f / den : 0.f;
  float* o = a.out + row * a.out_stride + static_cast<int64_t>(h) * a.head_dim;
  for (int d = threadIdx.x; d < a.head_dim; d += blockDim.x) {
    float sum = 0.f;
    for (int s = 0; s < a.splits; ++s) {
      const float* ml = a.part_ml + (s * stride + slot) * 2;
      if (ml[1] > 0.f) sum += a.part_o[(s * stride + slot) * a.head_dim + d] * exp2f(ml[0] - mx);
    }
    o[d] = sum * inv;
  }
}

namespace {

int64_t tc_chunk(int64_t n_keys, int splits) {
  int64_t chunk = (n_keys + splits - 1) / splits;
  chunk = (chunk + kTcKeys - 1) / kTcKeys * kTcKeys;
  return chunk > 0 ? chunk : kTcKeys;
}

// The number of splits the launch really uses for a request (no empty split).
int tc_effective_splits(int64_t n_keys, int splits) {
  if (splits <= 1 || n_keys <= 0) return 1;
  const int64_t chunk = tc_chunk(n_keys, splits);
  const int64_t s = (n_keys + chunk - 1) / chunk;
  return s < 1 ? 1 : static_cast<int>(s);
}

template <int D, class T0, class T1>
int launch_tc(const TcArgs<T0, T1>& a, int n_kv_heads, void* stream) {
  const size_t smem = sizeof(uint32_t) * (static_cast<size_t>(kTcKeys) * ((D + kTcPad) / 2) +
                                          static_cast<size_t>(D) * ((kTcKeys + kTcPad) / 2));
  const dim3 grid(ceil_div(a.n_items, kTcItems), static_cast<unsigned>(n_kv_heads), static_cast<unsigned>(a.splits));
  auto* kernel = attn_tc_kernel<D, T0, T1>;
  return SDLLM_LAUNCH(kernel, grid, dim3(kTcThreads), smem, stream, a);
}

}  // namespace

bool attention_tc_supported(const AttentionParams& p) {
  return (p.head_dim == 64 || p.head_dim == 128) && p.n_heads > 0 && p.n_kv_heads > 0 &&
         p.n_heads % p.n_kv_heads == 0;
}

int attention_tc_auto_splits(const AttentionParams& p, int sm_count) {
  if (p.n_kv_heads <= 0 || p.n_heads % p.n_kv_heads != 0) return 1;
  const int64_t group = p.n_heads / p.n_kv_heads;
  const int64_t blocks = (p.n_q * group + kTcItems - 1) / kTcItems * p.n_kv_heads;
  const int64_t n_keys = p.n_k0 + p.n_k1;
  if (sm_count <= 0) sm_count = 1;
  // Aim at two blocks per SM; every split keeps at least two tiles of keys.
  if (blocks <= 0 || blocks >= 2 * sm_count || n_keys < 4 * kTcKeys) return 1;
  int64_t s = (2 * sm_count + blocks - 1) / blocks;
  if (s > n_keys / (2 * kTcKeys)) s = n_keys / (2 * kTcKeys);
  if (s > kTcMaxSplits) s = kTcMaxSplits;
  return s < 1 ? 1 : static_cast<int>(s);
}

size_t attention_tc_workspace_bytes(const AttentionParams& p, int splits) {
  const int s = tc_effective_splits(p.n_k0 + p.n_k1, splits);
  if (s <= 1) return 0;
  return sizeof(float) * static_cast<size_t>(s) * static_cast<size_t>(p.n_q) * static_cast<size_t>(p.n_heads) *
         static_cast<size_t>(p.head_dim + 2);
}

int attention_tc(const AttentionParams& p, const AttentionLaunch& l, void* stream) {
  if (p.n_q <= 0) return 0;
  if (!attention_tc_supported(p)) return 1;  // cudaErrorInvalidValue
  int splits = l.splits;
  if (splits <= 0) {
    int sms = l.sm_count;
    if (sms <= 0) {
      int dev = 0;
      if (cudaGetDevice(&dev) != cudaSuccess ||
          cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
        sms = 1;
    }
    splits = attention_tc_auto_splits(p, sms);
  }
  if (splits > kTcMaxSplits) splits = kTcMaxSplits;
  const int64_t n_keys = p.n_k0 + p.n_k1;
  splits = tc_effective_splits(n_keys, splits);
  if (splits > 1 && (!l.workspace || l.workspace_bytes < attention_tc_workspace_bytes(p, splits))) return 1;

  TcArgs<float, float> a;
  a.q = p.q;
  a.q_stride = p.q_stride;
  a.k0 = p.k0;
  a.v0 = p.v0;
  a.n_k0 = p.n_k0;
  a.kv0_stride = p.kv0_stride;
  a.k1 = p.k1;
  a.v1 = p.v1;
  a.n_k1 = p.n_k1;
  a.kv1_stride = p.kv1_stride;
  a.out = p.out;
  a.out_stride = p.out_stride;
  a.n_heads = p.n_heads;
  a.group = p.n_heads / p.n_kv_heads;
  a.n_q = p.n_q;
  a.n_items = p.n_q * a.group;
  a.scale_log2 = p.scale * 1.4426950408889634f;
  a.splits = splits;
  a.chunk = splits > 1 ? tc_chunk(n_keys, splits) : (n_keys > 0 ? n_keys : kTcKeys);
  a.part_o = splits > 1 ? static_cast<float*>(l.workspace) : nullptr;
  a.part_ml = splits > 1 ? a.part_o + static_cast<size_t>(splits) * p.n_q * p.n_heads * p.head_dim : nullptr;

  const int err = p.head_dim == 64 ? launch_tc<64>(a, p.n_kv_heads, stream) : launch_tc<128>(a, p.n_kv_heads, stream);
  if (err || splits == 1) return err;
  TcCombineArgs c;
  c.part_o = a.part_o;
  c.part_ml = a.part_ml;
  c.out = p.out;
  c.out_stride = p.out_stride;
  c.n_q = p.n_q;
  c.n_heads = p.n_heads;
  c.head_dim = p.head_dim;
  c.splits = splits;
  return SDLLM_LAUNCH(attn_tc_combine_kernel, dim3(static_cast<unsigned>(p.n_q * p.n_heads)), dim3(128), 0, stream, c);
}

}  // namespace cuda
}  // namespace sdllm
