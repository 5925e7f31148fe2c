// cublas_loader.h: cuBLAS loaded at run time with dlopen, so that the CUDA backend (and
// the package) neither links nor ships cuBLAS and a machine without it gets a clear
// error instead of a failed library load. The prototypes are declared here, from the
// documented cuBLAS v2 API; enum arguments are passed as int (their C ABI).
#pragma once
#include <string>

namespace sdllm {
namespace cuda {

// The few cuBLAS constants the backend passes (cublas_api.h / library_types.h values).
enum : int {
  kCublasStatusSuccess = 0,
  kCublasOpN = 0,
  kCublasOpT = 1,
  kCudaR32F = 0,
  kCudaR16F = 2,
  kCudaR16BF = 14,
  kCublasCompute32F = 68,
  kCublasCompute32FFastTF32 = 77,
  kCublasGemmDefault = -1,
};

struct Cublas {
  using Handle = void*;  // cublasHandle_t
  int (*create)(Handle* handle) = nullptr;                 // cublasCreate_v2
  int (*destroy)(Handle handle) = nullptr;                 // cublasDestroy_v2
  int (*set_stream)(Handle handle, void* stream) = nullptr;  // cublasSetStream_v2
  // cublasGemmEx: C = alpha op(A) op(B) + beta C, column-major.
  int (*gemm_ex)(Handle handle, int transa, int transb, int m, int n, int k, const void* alpha, const void* a,
                 int a_type, int lda, const void* b, int b_type, int ldb, const void* beta, void* c, int c_type,
                 int ldc, int compute_type, int algo) = nullptr;
  void* library = nullptr;
  std::string path;  // the file that was loaded
};

// Loads cuBLAS once per process (thread-safe) and returns it, or nullptr with *error set
// to a message naming the libraries tried, why each failed, and what to install. A
// candidate counts only when its symbols resolve and cublasCreate succeeds (it is called
// once and the handle destroyed, so call this after cudaSetDevice); otherwise the next
// name in the list is tried (e.g. libcublas.so.13 on a driver too old for it, then .12). The environment variable
// SDLLM_CUBLAS_LIBRARY, when set, names the library file to try first.
const Cublas* cublas_load(std::string* error);

// One uncached attempt with an explicit list of library names (tests).
bool cublas_try_load(const char* const* names, int n_names, Cublas* out, std::string* error);

}  // namespace cuda
}  // namespace sdllm
