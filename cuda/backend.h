/* backend.h: the C ABI of the CUDA backend library (libsdllm_cuda.so).
 *
 * The addon (cpp/cuda_backend.cpp) dlopens the library, calls
 * sdllm_cuda_api(SDLLM_CUDA_ABI_VERSION) and uses nothing else: a table of plain C
 * functions over opaque handles, so the addon needs no CUDA headers and a CPU-only
 * install never loads CUDA. Plain C types only; include from C or C++.
 *
 * Semantics: a model is the device copy of an already loaded host checkpoint (weights
 * kept in their storage dtype); a session is one KV cache ([capacity, n_kv_heads *
 * head_dim] float32 keys and values per layer) plus scratch buffers that grow with the
 * largest request seen; session_forward and forward_batch run the shared forward of
 * cpp/forward.cpp (the one the CPU backend runs) on the CUDA ops and copy back only the
 * ids and confidences (and the logits when out_logits is set).
 *
 * Errors: functions returning int give 0 on success; a NULL handle or a non-zero status
 * means failure, and last_error() then holds a message for this thread. No function
 * throws or aborts on bad input. Destroy sessions before their model.
 * Threads: forwards on one model are serialised (one stream, one cuBLAS handle and one
 * set of scratch buffers per model, sized ahead at session_create); different models
 * run concurrently. One session must not be used by two threads at once.
 *
 * Versioning: SDLLM_CUDA_ABI_VERSION changes whenever a struct or a function of this
 * file changes. sdllm_cuda_api(v) returns NULL when v is not the library's version.
 */
#ifndef SDLLM_CUDA_BACKEND_H_
#define SDLLM_CUDA_BACKEND_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SDLLM_CUDA_ABI_VERSION 2

/* session_forward / forward_batch status for a request the shared forward rejected
 * (last_error() holds the same message as the CPU backend's); other failures return 1. */
#define SDLLM_CUDA_INVALID_REQUEST 2

#if defined(_WIN32)
#define SDLLM_CUDA_EXPORT __declspec(dllexport)
#else
#define SDLLM_CUDA_EXPORT __attribute__((visibility("default")))
#endif

typedef struct SdllmCudaModel SdllmCudaModel;
typedef struct SdllmCudaSession SdllmCudaSession;

/* A row-major host tensor [rows, cols] (1-D tensors: rows = 1). dtype as cpp/dtype.h:
 * 0 = F32, 1 = F16, 2 = BF16. data == NULL: absent (QKV biases of LLaDA). */
typedef struct SdllmCudaTensor {
  const void* data;
  int32_t dtype;
  int64_t rows, cols;
} SdllmCudaTensor;

typedef struct SdllmCudaLayer {
  SdllmCudaTensor attn_norm, ff_norm;  /* [1, d_model] */
  SdllmCudaTensor wq, wk, wv, wo;      /* [out, in] */
  SdllmCudaTensor bq, bk, bv;          /* [1, out] or absent */
  SdllmCudaTensor w_gate, w_up, w_down;
} SdllmCudaLayer;

/* How the linear layers run on cuBLAS (cublasGemmEx cannot mix a 16-bit weight with a
 * float32 activation):
 *  EXACT: float32 activations as the CPU backend; 16-bit weights are widened (exactly)
 *         into a per-session float32 scratch, a bounded chunk of rows at a time, and
 *         multiplied with an F32 GEMM (compute 32F, no TF32). Same arithmetic as the
 *         CPU reference up to summation order; costs extra weight traffic.
 *  WEIGHT_DTYPE: the activations are rounded (to nearest even) to the weight dtype and
 *         the GEMM runs A = B = BF16/F16, C = F32, compute 32F (tensor cores). Faster,
 *         not comparable bit for bit with the CPU backend.
 *  F32 weights run the same F32 GEMM in both modes. */
#define SDLLM_CUDA_GEMM_EXACT 0
#define SDLLM_CUDA_GEMM_WEIGHT_DTYPE 1

typedef struct SdllmCudaModelDesc {
  int64_t d_model, n_heads, n_kv_heads, head_dim, n_layers, mlp_hidden;
  int64_t vocab_size;      /* logits are produced for the first vocab_size rows of lm_head */
  int64_t embedding_size;  /* rows of the embedding table */
  float rope_theta, rms_norm_eps;
  SdllmCudaTensor embedding;   /* [embedding_size, d_model] */
  SdllmCudaTensor final_norm;  /* [1, d_model] */
  SdllmCudaTensor lm_head;     /* [>= vocab_size, d_model]; may share data with embedding (uploaded once) */
  const SdllmCudaLayer* layers; /* n_layers entries */
  int32_t gemm_mode;           /* SDLLM_CUDA_GEMM_* */
  int64_t widen_chunk_elems;   /* EXACT: elements widened per chunk; 0 = default (16M) */
} SdllmCudaModelDesc;

/* One forward (cpp/session.h ForwardRequest). Host pointers. */
typedef struct SdllmCudaForward {
  const int32_t* tokens;       /* [n_tokens] */
  const int32_t* positions;    /* [n_tokens] true position ids */
  int64_t n_tokens;
  int64_t cache_attend;        /* attend to cache slots [0, cache_attend) */
  int64_t cache_write_start;   /* >= 0: rows [0, cache_write_rows) go to slots [start, start + rows) */
  int64_t cache_write_rows;
  int32_t attend_self;         /* also attend to the rows themselves, after the cache segment */
  const int32_t* predict_rows; /* [n_predict] */
  int64_t n_predict;
  int32_t confidence;          /* 0 prob, 1 margin, 2 entropy, 3 random */
  float temperature;           /* > 0: Gumbel-max sampling */
  float confidence_temperature; /* > 0; confidences from softmax(logits / this); 1 = raw logits */
  uint64_t seed, noise_counter;
  int32_t* out_ids;            /* [n_predict] */
  float* out_confidences;      /* [n_predict] */
  float* out_logits;           /* NULL, or [n_predict, vocab_size] */
} SdllmCudaForward;

/* What a model's executor has done and holds (model_stats). */
typedef struct SdllmCudaStats {
  int64_t forwards;               /* forwards (batches) run */
  int64_t last_forward_launches;  /* kernel launches, copies and cuBLAS calls of the last one */
  int64_t last_forward_gemms;     /* cuBLAS calls of the last one */
  int64_t weight_bytes;           /* device bytes of the weights */
  int64_t scratch_bytes;          /* device bytes of the forward's scratch buffers */
  int64_t graph_captures;         /* layers segments captured as CUDA graphs */
  int64_t graph_replays;          /* forwards whose layers segment was a graph replay */
  int32_t last_forward_replayed;  /* 1 when the last one was */
} SdllmCudaStats;

typedef struct SdllmCudaApi {
  uint32_t abi_version; /* SDLLM_CUDA_ABI_VERSION */
  uint32_t struct_size; /* sizeof(SdllmCudaApi) */
  /* Selects the device and loads cuBLAS (cuda/cublas_loader.h); call once before the
   * rest. Fails with a message naming what is missing. */
  int (*init)(int device);
  /* This thread's last error message ("" when none). Valid until the next call. */
  const char* (*last_error)(void);
  /* "device 0: sm_90, 132 SMs; cuBLAS libcublas.so.13" after init. */
  const char* (*describe)(void);
  SdllmCudaModel* (*model_create)(const SdllmCudaModelDesc* desc);
  void (*model_destroy)(SdllmCudaModel* model);
  SdllmCudaSession* (*session_create)(SdllmCudaModel* model, int64_t capacity);
  void (*session_destroy)(SdllmCudaSession* session);
  int (*session_forward)(SdllmCudaSession* session, const SdllmCudaForward* request);
  /* One forward over n sessions of one model (each at most once): rows of all requests
   * share the projections and the MLP; each request's outputs equal what
   * session_forward gives it alone. Runs on the first session's stream. */
  int (*forward_batch)(SdllmCudaSession* const* sessions, const SdllmCudaForward* requests, int64_t n);
  int (*model_stats)(SdllmCudaModel* model, SdllmCudaStats* out);
} SdllmCudaApi;

/* The function table for abi_version, or NULL (last_error is not set) when the library
 * was built for another version. */
SDLLM_CUDA_EXPORT const SdllmCudaApi* sdllm_cuda_api(int abi_version);
typedef const SdllmCudaApi* (*SdllmCudaApiFn)(int abi_version);

#ifdef __cplusplus
}
#endif

#endif /* SDLLM_CUDA_BACKEND_H_ */
