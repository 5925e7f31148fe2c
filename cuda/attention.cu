// attention.cu: windowed suffix attention of Streaming-dLLM (op_attention semantics).
// Queries: the rows fed this step (current block + kept suffix window + trailing
// position). Keys/values: segment 0 (the prefix KV cache) then segment 1 (the query
// rows' own K/V); either may be empty. Bidirectional (no mask), GQA (query head h reads
// kv head h / (n_heads / n_kv_heads)), online softmax in float32.
//
// Versions (all one kernel template, attn_kernel<D>):
//   D = 64, D = 128: head_dim fixed at compile time (LLaDA, Dream).
//   D = 0:           generic fallback, head_dim read at run time (any even or odd size up
//                    to 256, e.g. 16/32/80/96; opts in to > 48 KiB shared memory if needed).
//   splits == 1:     one pass; writes the normalised output.
//   splits > 1:      split along the keys (flash-decoding), used when there are few
//                    query rows: block z handles one key range and writes a partial
//                    (max, sum, unnormalised output) to the workspace; attn_combine_kernel
//                    merges the partials of each (row, head).
// Layout: a block of 4 warps takes one kv head and 8 "items" (query row x query head of
// that kv head's group), 2 per warp, so GQA groups share the K/V tiles in shared memory.
// Per tile of 32 keys: the block stages K (rows padded by one float against bank
// conflicts) and V; lane j of a warp scores key j for each of its items, the warp takes
// max/sum with shuffles, and each lane accumulates head_dim/32 output dims, broadcasting
// the probabilities with __shfl_sync.
// Test: build/test/test/native/cuda/test_cuda_ops attention (see embedding.cu for the build).
#include "common.cuh"

namespace sdllm {
namespace cuda {

namespace {

constexpr int kWarps = 4, kItemsPerWarp = 2, kItems = kWarps * kItemsPerWarp, kTileKeys = 32;
constexpr int kThreads = kWarps * 32;
constexpr int kMaxGenericHeadDim = 256;

struct AttnArgs {
  AttentionParams p;
  int group;        // n_heads / n_kv_heads
  int64_t n_items;  // n_q * group, per kv head
  int splits;
  int64_t chunk;    // keys per split, a multiple of kTileKeys
  float* part_o;    // [splits, n_q * n_heads, head_dim] when splits > 1
  float* part_ml;   // [splits, n_q * n_heads, 2]
};

size_t attn_smem_bytes(int hd) {
  return sizeof(float) * (static_cast<size_t>(kTileKeys) * (hd + 1) + static_cast<size_t>(kTileKeys) * hd +
                          static_cast<size_t>(kItems) * hd);
}

}  // namespace

template <int D>
__global__ void __launch_bounds__(kThreads) attn_kernel(AttnArgs a) {
  constexpr int NA = D > 0 ? D / 32 + (D % 32 ? 1 : 0) : kMaxGenericHeadDim / 32;
  const AttentionParams& p = a.p;
  const int hd = D > 0 ? D : p.head_dim;
  const int g = blockIdx.y, split = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  SDLLM_DYN_SMEM(float, smem);
  float* ks = smem;                   // [kTileKeys][hd + 1]
  float* vs = ks + kTileKeys * (hd + 1);  // [kTileKeys][hd]
  float* qs = vs + kTileKeys * hd;        // [kItems][hd]
  const int64_t item0 = static_cast<int64_t>(blockIdx.x) * kItems;

  for (int idx = threadIdx.x; idx < kItems * hd; idx += blockDim.x) {
    const int it = idx / hd, d = idx % hd;
    const int64_t item = item0 + it;
    float v = 0.f;
    if (item < a.n_items) {
      const int64_t row = item / a.group;
      const int h = g * a.group + static_cast<int>(item % a.group);
      v = p.q[row * p.q_stride + static_cast<int64_t>(h) * hd + d];
    }
    qs[idx] = v;
  }

  const int64_t n_keys = p.n_k0 + p.n_k1;
  const int64_t k_begin = static_cast<int64_t>(split) * a.chunk;
  const int64_t k_end = k_begin + a.chunk < n_keys ? k_begin + a.chunk : n_keys;

  float m[kItemsPerWarp], l[kItemsPerWarp], acc[kItemsPerWarp][NA];
  for (int r = 0; r < kItemsPerWarp; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.f;
    for (int i = 0; i < NA; ++i) acc[r][i] = 0.f;
  }

  for (int64_t t = k_begin; t < k_end; t += kTileKeys) {
    __syncthreads();  // the previous tile (and, first time, nothing) is no longer read
    for (int idx = threadIdx.x; idx < kTileKeys * hd; idx += blockDim.x) {
      const int j = idx / hd, d = idx % hd;
      const int64_t key = t + j;
      float kv = 0.f, vv = 0.f;
      if (key < k_end) {
        const int64_t off = static_cast<int64_t>(g) * hd + d;
        if (key < p.n_k0) {
          kv = p.k0[key * p.kv0_stride + off];
          vv = p.v0[key * p.kv0_stride + off];
        } else {
          kv = p.k1[(key - p.n_k0) * p.kv1_stride + off];
          vv = p.v1[(key - p.n_k0) * p.kv1_stride + off];
        }
      }
      ks[j * (hd + 1) + d] = kv;
      vs[j * hd + d] = vv;
    }
    __syncthreads();

    float prob[kItemsPerWarp];
    const bool key_ok = t + lane < k_end;
    for (int r = 0; r < kItemsPerWarp; ++r) {
      const float* q = qs + (warp * kItemsPerWarp + r) * hd;
      const float* k = ks + lane * (hd + 1);
      float s = 0.f;
      for (int d = 0; d < hd; ++d) s += q[d] * k[d];
      s = key_ok ? s * p.scale : -INFINITY;
      const float m_new = fmaxf(m[r], warp_max(s));  // finite: key t is always valid
      const float pr = key_ok ? expf(s - m_new) : 0.f;
      const float corr = expf(m[r] - m_new);  // 0 on the first tile (m = -inf)
      l[r] = l[r] * corr + warp_sum(pr);
      for (int i = 0; i < NA; ++i) acc[r][i] *= corr;
      m[r] = m_new;
      prob[r] = pr;
    }
    for (int j = 0; j < kTileKeys; ++j) {
      float v[NA];
      for (int i = 0; i < NA; ++i) {
        const int d = lane + 32 * i;
        v[i] = (D > 0 && D % 32 == 0) || d < hd ? vs[j * hd + d] : 0.f;
      }
      for (int r = 0; r < kItemsPerWarp; ++r) {
        const float pj = __shfl_sync(kFullMask, prob[r], j);
        for (int i = 0; i < NA; ++i) acc[r][i] += pj * v[i];
      }
    }
  }

  for (int r = 0; r < kItemsPerWarp; ++r) {
    const int64_t item = item0 + warp * kItemsPerWarp + r;
    if (item >= a.n_items) continue;
    const int64_t row = item / a.group;
    const int h = g * a.group + static_cast<int>(item % a.group);
    if (a.splits == 1) {
      const float inv = l[r] > 0.f ? 1.0f / l[r] : 0.f;
      float* o = p.out + row * p.out_stride + static_cast<int64_t>(h) * hd;
      for (int i = 0; i < NA; ++i) {
        const int d = lane + 32 * i;
        if (d < hd) o[d] = acc[r][i] * inv;
      }
    } else {
      const int64_t slot = static_cast<int64_t>(split) * p.n_q * p.n_heads + row * p.n_heads + h;
      float* o = a.part_o + slot * hd;
      for (int i = 0; i < NA; ++i) {
        const int d = lane + 32 * i;
        if (d < hd) o[d] = acc[r][i];
      }
      if (lane == 0) {
        a.part_ml[slot * 2] = m[r];
        a.part_ml[slot * 2 + 1] = l[r];
      }
    }
  }
}

// One block per (row, head): out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s.
__global__ void __launch_bounds__(128) attn_combine_kernel(AttnArgs a) {
  const AttentionParams& p = a.p;
  const int64_t slot = blockIdx.x;  // row * n_heads + h
  const int64_t row = slot / p.n_heads;
  const int h = static_cast<int>(slot % p.n_heads);
  const int64_t stride = p.n_q * p.n_heads;
  float mx = -INFINITY;
  for (int s = 0; s < a.splits; ++s) {
    const float* ml = a.part_ml + (s * stride + slot) * 2;
    if (ml[1] > 0.f) mx = fmaxf(mx, ml[0]);
  }
  float total = 0.f;
  for (int s = 0; s < a.splits; ++s) {
    const float* ml = a.part_ml + (s * stride + slot) * 2;
    if (ml[1] > 0.f) total += ml[1] * expf(ml[0] - mx);
  }
  const float inv = total > 0.f ? 1.0f / total : 0.f;
  float* o = p.out + row * p.out_stride + static_cast<int64_t>(h) * p.head_dim;
  for (int d = threadIdx.x; d < p.head_dim; d += blockDim.x) {
    float sum = 0.f;
    for (int s = 0; s < a.splits; ++s) {
      const float* ml = a.part_ml + (s * stride + slot) * 2;
      if (ml[1] > 0.f) sum += a.part_o[(s * stride + slot) * p.head_dim + d] * expf(ml[0] - mx);
    }
    o[d] = sum * inv;
  }
}

static int64_t split_chunk(int64_t n_keys, int splits) {
  int64_t chunk = (n_keys + splits - 1) / splits;
  chunk = (chunk + kTileKeys - 1) / kTileKeys * kTileKeys;
  return chunk > 0 ? chunk : kTileKeys;
}

int attention_auto_splits(const AttentionParams& p, int sm_count) {
  if (p.n_kv_heads <= 0) return 1;
  const int64_t group = p.n_heads / p.n_kv_heads;
  const int64_t blocks = (p.n_q * group + kItems - 1) / kItems * p.n_kv_heads;
  const int64_t n_keys = p.n_k0 + p.n_k1;
  if (sm_count <= 0) sm_count = 1;
  if (blocks <= 0 || blocks >= 2 * sm_count || n_keys < 4 * 128) return 1;
  int64_t s = (2 * sm_count + blocks - 1) / blocks;
  if (s > n_keys / 128) s = n_keys / 128;  // at least 128 keys per split
  if (s > 32) s = 32;
  return s < 1 ? 1 : static_cast<int>(s);
}

size_t attention_workspace_bytes(const AttentionParams& p, int splits) {
  if (splits <= 1) return 0;
  return sizeof(float) * static_cast<size_t>(splits) * p.n_q * p.n_heads * (p.head_dim + 2);
}

int attention(const AttentionParams& p, const AttentionLaunch& l, void* stream) {
  if (p.n_q <= 0) return 0;
  if (p.n_heads <= 0 || p.n_kv_heads <= 0 || p.n_heads % p.n_kv_heads != 0 || p.head_dim <= 0 ||
      p.head_dim > kMaxGenericHeadDim)
    return 1;  // cudaErrorInvalidValue
  int splits = l.splits;
  if (splits <= 0) {
    int sms = l.sm_count;
    if (sms <= 0) {
      int dev = 0;
      if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
        sms = 1;
    }
    splits = attention_auto_splits(p, sms);
  }
  const int64_t n_keys = p.n_k0 + p.n_k1;
  int64_t chunk = split_chunk(n_keys, splits);
  if (splits > 1) {
    splits = static_cast<int>((n_keys + chunk - 1) / chunk);  // no empty split
    if (splits < 1) splits = 1;
  }
  if (splits == 1) chunk = n_keys > 0 ? n_keys : kTileKeys;
  if (splits > 1 && (!l.workspace || l.workspace_bytes < attention_workspace_bytes(p, splits))) return 1;

  AttnArgs a;
  a.p = p;
  a.group = p.n_heads / p.n_kv_heads;
  a.n_items = p.n_q * a.group;
  a.splits = splits;
  a.chunk = chunk;
  a.part_o = splits > 1 ? static_cast<float*>(l.workspace) : nullptr;
  a.part_ml = splits > 1 ? a.part_o + static_cast<size_t>(splits) * p.n_q * p.n_heads * p.head_dim : nullptr;

  const dim3 grid(ceil_div(a.n_items, kItems), static_cast<unsigned>(p.n_kv_heads), static_cast<unsigned>(splits));
  const dim3 block(kThreads);
  const size_t smem = attn_smem_bytes(p.head_dim);
  int err;
  if (p.head_dim == 64 && !l.force_generic) {
    err = SDLLM_LAUNCH(attn_kernel<64>, grid, block, smem, stream, a);
  } else if (p.head_dim == 128 && !l.force_generic) {
    err = SDLLM_LAUNCH(attn_kernel<128>, grid, block, smem, stream, a);
  } else {
    if (smem > 48 * 1024) {
      err = static_cast<int>(cudaFuncSetAttribute(attn_kernel<0>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                  static_cast<int>(smem)));
      if (err) return err;
    }
    err = SDLLM_LAUNCH(attn_kernel<0>, grid, block, smem, stream, a);
  }
  if (err || splits == 1) return err;
  return SDLLM_LAUNCH(attn_combine_kernel, dim3(static_cast<unsigned>(p.n_q * p.n_heads)), dim3(128), 0, stream, a);
}

}  // namespace cuda
}  // namespace sdllm
