// A stand-in libcublas for the loader test of test_cuda_ops: the four v2 entry points the
// loader resolves, with cublasCreate_v2 returning SDLLM_FAKE_CREATE_STATUS (built twice by
// CMakeLists.txt: 1 = CUBLAS_STATUS_NOT_INITIALIZED, as a cuBLAS too new for the driver
// does, and 0 = success), so that the fall-through to the next candidate is exercised.
#ifndef SDLLM_FAKE_CREATE_STATUS
#error "define SDLLM_FAKE_CREATE_STATUS"
#endif

namespace {
int g_handle;
int g_live = 0;
}  // namespace

extern "C" {
int cublasCreate_v2(void** handle) {
  if (SDLLM_FAKE_CREATE_STATUS != 0) return SDLLM_FAKE_CREATE_STATUS;
  *handle = &g_handle;
  ++g_live;
  return 0;
}
int cublasDestroy_v2(void* handle) {
  if (handle != &g_handle) return 7;  // CUBLAS_STATUS_INVALID_VALUE
  --g_live;
  return 0;
}
int cublasSetStream_v2(void*, void*) { return 0; }
int cublasGemmEx(void*, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                 const void*, void*, int, int, int, int) {
  return 0;
}
// For the test: handles created and not destroyed.
int sdllm_fake_cublas_live_handles() { return g_live; }
}
