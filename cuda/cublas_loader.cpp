// cublas_loader.cpp: dlopen of libcublas.so.13 / .12, lookup of the v2 entry points, and
// one cublasCreate/cublasDestroy per candidate (the next candidate is tried when it
// fails). See cublas_loader.h.
#include "cublas_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

namespace sdllm {
namespace cuda {

namespace {

template <class F>
bool resolve(void* lib, const char* name, F& fn, std::string* error) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn && error) *error += std::string(" missing symbol ") + name + ";";
  return fn != nullptr;
}

}  // namespace

bool cublas_try_load(const char* const* names, int n_names, Cublas* out, std::string* error) {
  std::string tried, reasons;
  for (int i = 0; i < n_names; ++i) {
    if (!names[i] || !*names[i]) continue;
    tried += tried.empty() ? names[i] : std::string(", ") + names[i];
    void* lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = dlerror();
      reasons += std::string("\n  ") + names[i] + ": " + (why ? why : "not found");
      continue;
    }
    Cublas c;
    std::string missing;
    bool ok = resolve(lib, "cublasCreate_v2", c.create, &missing);
    ok = resolve(lib, "cublasDestroy_v2", c.destroy, &missing) && ok;
    ok = resolve(lib, "cublasSetStream_v2", c.set_stream, &missing) && ok;
    ok = resolve(lib, "cublasGemmEx", c.gemm_ex, &missing) && ok;
    if (!ok) {
      reasons += std::string("\n  ") + names[i] + ": loaded but not a usable cuBLAS:" + missing;
      dlclose(lib);
      continue;
    }
    // A library that loads can still refuse to start, e.g. a cuBLAS 13 on a driver older
    // than it needs (CUBLAS_STATUS_NOT_INITIALIZED): try a handle, and the next candidate
    // when that fails.
    Cublas::Handle probe = nullptr;
    const int status = c.create(&probe);
    if (status != kCublasStatusSuccess) {
      reasons += std::string("\n  ") + names[i] + ": loaded, but cublasCreate failed with status " +
                 std::to_string(status) + (status == 1 ? " (CUBLAS_STATUS_NOT_INITIALIZED: often a driver older than this cuBLAS needs)" : "");
      dlclose(lib);
      continue;
    }
    c.destroy(probe);
    c.library = lib;
    c.path = names[i];
    *out = c;
    return true;
  }
  if (error) {
    *error = "streaming-dllm: the CUDA backend needs cuBLAS, and none of " + tried +
             " could be loaded:" + reasons +
             "\nInstall cuBLAS for your CUDA version (the CUDA toolkit's libcublas, e.g. the apt package "
             "libcublas-13-0 or libcublas-12-x, or `pip install nvidia-cublas-cu12` and add its lib directory to "
             "LD_LIBRARY_PATH), point SDLLM_CUBLAS_LIBRARY at the library file, or use the CPU backend.";
  }
  return false;
}

const Cublas* cublas_load(std::string* error) {
  static std::once_flag once;
  static Cublas lib;
  static bool ok = false;
  static std::string failure;
  std::call_once(once, [] {
    // Same variable as the probe in cpp/cuda_probe.cpp, so what inspect finds is what loads.
    const char* names[] = {std::getenv("SDLLM_CUBLAS_LIBRARY"), "libcublas.so.13", "libcublas.so.12", "libcublas.so"};
    ok = cublas_try_load(names, 4, &lib, &failure);
  });
  if (!ok) {
    if (error) *error = failure;
    return nullptr;
  }
  return &lib;
}

}  // namespace cuda
}  // namespace sdllm
