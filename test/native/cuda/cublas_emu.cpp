// See cublas_emu.h. The GEMM follows cuBLAS's column-major definition
// C = alpha op(A) op(B) + beta C with op(X) = X or X^T, A = B element types required to
// match (cublasGemmEx has no BF16 x F32 combination: such a call returns
// CUBLAS_STATUS_NOT_SUPPORTED here as on the device), C F32, compute 32F; leading
// dimensions are checked as cuBLAS does. Products are summed in double.
#include "cublas_emu.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "../../../cpp/dtype.h"
#include "cublas_loader.h"

namespace sdllm_cublas_emu {

Stats& stats() {
  static Stats s;
  return s;
}

namespace {

using namespace sdllm::cuda;
constexpr int kNotInitialized = 1, kInvalidValue = 7, kNotSupported = 15;
int g_handle_token;

int create(void** h) {
  *h = &g_handle_token;
  stats().handles++;
  return kCublasStatusSuccess;
}
int destroy(void* h) {
  if (h != &g_handle_token) return kNotInitialized;
  stats().handles--;
  return kCublasStatusSuccess;
}
int set_stream(void* h, void*) { return h == &g_handle_token ? kCublasStatusSuccess : kNotInitialized; }

double element(const void* p, int type, int64_t i) {
  switch (type) {
    case kCudaR32F: return static_cast<const float*>(p)[i];
    case kCudaR16F: return sdllm::f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return sdllm::bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
  }
}

int reject(int status, const char* why) {
  std::fprintf(stderr, "cublas-emu: cublasGemmEx rejected: %s\n", why);
  stats().rejected++;
  return status;
}

int gemm_ex(void* h, int transa, int transb, int m, int n, int k, const void* alpha, const void* a, int a_type,
            int lda, const void* b, int b_type, int ldb, const void* beta, void* c, int c_type, int ldc,
            int compute_type, int algo) {
  if (h != &g_handle_token) return reject(kNotInitialized, "bad handle");
  if (m < 0 || n < 0 || k < 0) return reject(kInvalidValue, "negative size");
  if ((transa != kCublasOpN && transa != kCublasOpT) || (transb != kCublasOpN && transb != kCublasOpT))
    return reject(kInvalidValue, "transposition");
  if (lda < std::max(1, transa == kCublasOpN ? m : k)) return reject(kInvalidValue, "lda");
  if (ldb < std::max(1, transb == kCublasOpN ? k : n)) return reject(kInvalidValue, "ldb");
  if (ldc < std::max(1, m)) return reject(kInvalidValue, "ldc");
  if (a_type != b_type) return reject(kNotSupported, "A and B types differ");
  if (a_type != kCudaR32F && a_type != kCudaR16F && a_type != kCudaR16BF) return reject(kNotSupported, "A type");
  if (c_type != kCudaR32F) return reject(kNotSupported, "C type (the backend only asks for F32)");
  if (compute_type != kCublasCompute32F) return reject(kNotSupported, "compute type (expected 32F, no TF32)");
  if (algo != kCublasGemmDefault) return reject(kNotSupported, "algo");
  if (a_type == kCudaR32F) stats().gemm_f32++;
  else if (a_type == kCudaR16BF) stats().gemm_bf16++;
  else stats().gemm_f16++;
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  // The product itself; recorded instead of run while a stream captures (cuda_emu.h).
  auto run = [=]() {
    float* cc = static_cast<float*>(c);
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < m; ++i) {
        double s = 0;
        for (int l = 0; l < k; ++l) {
          const int64_t ai = transa == kCublasOpN ? i + static_cast<int64_t>(l) * lda : l + static_cast<int64_t>(i) * lda;
          const int64_t bi = transb == kCublasOpN ? l + static_cast<int64_t>(j) * ldb : j + static_cast<int64_t>(l) * ldb;
          s += element(a, a_type, ai) * element(b, b_type, bi);
        }
        float& out = cc[i + static_cast<int64_t>(j) * ldc];
        // beta == 0: C is not read (it may hold NaN), as cuBLAS.
        out = be == 0.f ? static_cast<float>(al * s) : static_cast<float>(al * s + be * out);
      }
    }
  };
  if (sdllm_emu::capturing()) {
    sdllm_emu::capture(run);
  } else {
    run();
  }
  return kCublasStatusSuccess;
}

}  // namespace
}  // namespace sdllm_cublas_emu

namespace sdllm {
namespace cuda {

const Cublas* cublas_load(std::string* error) {
  static Cublas lib;
  lib.create = sdllm_cublas_emu::create;
  lib.destroy = sdllm_cublas_emu::destroy;
  lib.set_stream = sdllm_cublas_emu::set_stream;
  lib.gemm_ex = sdllm_cublas_emu::gemm_ex;
  lib.path = "cublas-emu (CPU stand-in)";
  (void)error;
  return &lib;
}

}  // namespace cuda
}  // namespace sdllm
