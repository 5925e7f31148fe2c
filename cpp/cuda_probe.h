// Finds out, without the CUDA toolkit, whether this host can run the CUDA backend:
// the driver library, its version (the CUDA version it supports and its release number),
// the devices, and a loadable cuBLAS. Only dlopen/dlsym
// of the driver API; nothing is linked, so a CPU-only host never loads CUDA.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sdllm {

struct CudaDevice {
  std::string name;
  uint64_t total_memory = 0;
  int cc_major = 0, cc_minor = 0;
};

struct CudaProbe {
  bool driver_found = false;
  std::string driver_library;  // the file that was opened
  std::string driver_error;    // why the driver is unusable, when it is
  int driver_version = 0;      // the CUDA version the driver supports (cuDriverGetVersion), e.g. 12040 for 12.4
  std::string driver_release;  // the driver's own version, e.g. "535.104.05" (NVML, else /proc); "" if unknown
  std::vector<CudaDevice> devices;
  bool cublas_found = false;
  std::string cublas_library;
  std::string cublas_error;
};

CudaProbe probe_cuda();

}  // namespace sdllm
