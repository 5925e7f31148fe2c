// See cuda_probe.h. The prototypes below are the few driver-API entry points we call,
// declared here so that the build needs no CUDA headers.
#include "cuda_probe.h"

#include <cstdio>
#include <cstdlib>

#ifdef _WIN32
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace sdllm {
namespace {

#ifdef _WIN32
void* open_library(const char* name) { return reinterpret_cast<void*>(LoadLibraryA(name)); }
void* symbol(void* lib, const char* name) {
  return reinterpret_cast<void*>(GetProcAddress(reinterpret_cast<HMODULE>(lib), name));
}
std::string last_error() { return "LoadLibrary failed with code " + std::to_string(GetLastError()); }
const char* const kDriverNames[] = {"nvcuda.dll"};
const char* const kCublasNames[] = {"cublas64_13.dll", "cublas64_12.dll", "cublas64_11.dll"};
#else
void* open_library(const char* name) { return dlopen(name, RTLD_NOW | RTLD_LOCAL); }
void* symbol(void* lib, const char* name) { return dlsym(lib, name); }
std::string last_error() {
  const char* e = dlerror();
  return e ? e : "unknown dlopen error";
}
const char* const kDriverNames[] = {"libcuda.so.1", "libcuda.so"};
const char* const kCublasNames[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"};
#endif

using CuInit = int (*)(unsigned);
using CuDriverGetVersion = int (*)(int*);
using CuDeviceGetCount = int (*)(int*);
using CuDeviceGet = int (*)(int*, int);
using CuDeviceGetName = int (*)(char*, int, int);
using CuDeviceTotalMem = int (*)(size_t*, int);
using CuDeviceGetAttribute = int (*)(int*, int, int);
constexpr int kAttrComputeCapabilityMajor = 75;
constexpr int kAttrComputeCapabilityMinor = 76;

// Opens the first library of `names` that loads; `override_env` names a full path to try first.
void* open_first(const char* override_env, const char* const* names, size_t count, std::string& opened,
                 std::string& error) {
  if (const char* path = std::getenv(override_env)) {
    if (void* lib = open_library(path)) {
      opened = path;
      return lib;
    }
    error = std::string(override_env) + "=" + path + ": " + last_error();
    return nullptr;
  }
  for (size_t i = 0; i < count; i++) {
    if (void* lib = open_library(names[i])) {
      opened = names[i];
      return lib;
    }
    if (i == 0) error = last_error();  // the canonical name's error is the one worth showing
  }
  return nullptr;
}

// The driver's release number ("535.104.05"): NVML's nvmlSystemGetDriverVersion, else the
// first token after "Kernel Module" in /proc/driver/nvidia/version (Linux).
std::string driver_release() {
#ifndef _WIN32
  using NvmlInit = int (*)();
  using NvmlVersion = int (*)(char*, unsigned);
  if (void* nvml = open_library("libnvidia-ml.so.1")) {
    auto init = reinterpret_cast<NvmlInit>(symbol(nvml, "nvmlInit_v2"));
    auto get = reinterpret_cast<NvmlVersion>(symbol(nvml, "nvmlSystemGetDriverVersion"));
    auto shutdown = reinterpret_cast<NvmlInit>(symbol(nvml, "nvmlShutdown"));
    if (init && get && init() == 0) {
      char buf[96] = {0};
      const int rc = get(buf, sizeof(buf) - 1);
      if (shutdown) shutdown();
      if (rc == 0 && buf[0]) return buf;
    }
  }
  if (FILE* f = std::fopen("/proc/driver/nvidia/version", "r")) {
    char line[512] = {0};
    const size_t n = std::fread(line, 1, sizeof(line) - 1, f);
    std::fclose(f);
    const std::string text(line, n);
    const size_t at = text.find("Kernel Module");
    if (at != std::string::npos) {
      size_t b = text.find_first_of("0123456789", at);
      if (b != std::string::npos) {
        size_t e = text.find_first_not_of("0123456789.", b);
        return text.substr(b, e == std::string::npos ? std::string::npos : e - b);
      }
    }
  }
#endif
  return "";
}

}  // namespace

CudaProbe probe_cuda() {
  CudaProbe p;
  void* driver = open_first("SDLLM_CUDA_DRIVER", kDriverNames, sizeof(kDriverNames) / sizeof(*kDriverNames),
                            p.driver_library, p.driver_error);
  if (driver) {
    auto init = reinterpret_cast<CuInit>(symbol(driver, "cuInit"));
    auto version = reinterpret_cast<CuDriverGetVersion>(symbol(driver, "cuDriverGetVersion"));
    auto count = reinterpret_cast<CuDeviceGetCount>(symbol(driver, "cuDeviceGetCount"));
    auto get = reinterpret_cast<CuDeviceGet>(symbol(driver, "cuDeviceGet"));
    auto name = reinterpret_cast<CuDeviceGetName>(symbol(driver, "cuDeviceGetName"));
    auto mem = reinterpret_cast<CuDeviceTotalMem>(symbol(driver, "cuDeviceTotalMem_v2"));
    auto attr = reinterpret_cast<CuDeviceGetAttribute>(symbol(driver, "cuDeviceGetAttribute"));
    if (!init || !version || !count || !get || !name || !mem || !attr) {
      p.driver_error = p.driver_library + " lacks the driver API entry points (too old a driver?)";
    } else if (int rc = init(0); rc != 0) {
      p.driver_error = "cuInit failed with CUresult " + std::to_string(rc) + " (no usable GPU, or the driver is not loaded)";
    } else {
      p.driver_found = true;
      version(&p.driver_version);
      p.driver_release = driver_release();
      int n = 0;
      count(&n);
      for (int i = 0; i < n; i++) {
        int dev = 0;
        if (get(&dev, i) != 0) continue;
        CudaDevice d;
        char buf[256] = {0};
        name(buf, sizeof(buf) - 1, dev);
        d.name = buf;
        size_t bytes = 0;
        mem(&bytes, dev);
        d.total_memory = bytes;
        attr(&d.cc_major, kAttrComputeCapabilityMajor, dev);
        attr(&d.cc_minor, kAttrComputeCapabilityMinor, dev);
        p.devices.push_back(d);
      }
    }
  }
  // Probing only: cuBLAS is opened by the CUDA backend itself when it is used.
  void* cublas = open_first("SDLLM_CUBLAS_LIBRARY", kCublasNames, sizeof(kCublasNames) / sizeof(*kCublasNames),
                            p.cublas_library, p.cublas_error);
  p.cublas_found = cublas != nullptr;
  if (p.cublas_found) p.cublas_error.clear();
  return p;
}

}  // namespace sdllm
