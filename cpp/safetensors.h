// Memory-mapped safetensors files: the map itself and a validated table of the tensors
// in it. Weights are never copied; a TensorInfo points into the map, which must outlive it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "dtype.h"

namespace sdllm {

// A whole file mapped read-only. Pages are loaded by the OS on first touch, so a
// 16 GB checkpoint costs address space, not memory, until the weights are used.
struct MappedFile {
  // Throws std::runtime_error("cannot open <path>: <reason>") and the like.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  // Tells the OS that [p, p + n) will not be read again: its whole pages leave the
  // resident set (they are re-read from the file if touched after all). No-op on Windows.
  void release(const void* p, size_t n) const;
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;  // nullptr for an empty file (mmap refuses length 0)
  size_t size_ = 0;
#ifdef _WIN32
  void* file_handle_ = nullptr;
  void* mapping_handle_ = nullptr;
#endif
};

struct TensorInfo {
  std::string name;
  // The dtype as written. Only F32/F16/BF16 are usable weights (supported = true);
  // other standard safetensors dtypes are validated but rejected when used, so a
  // checkpoint carrying e.g. an unused I64 buffer still loads.
  std::string dtype_name;
  bool supported = false;
  DType dtype = DType::F32;  // meaningful only when supported
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // data_offsets, relative to the data section
  const uint8_t* data = nullptr;
  uint64_t byte_length() const { return end - begin; }
};

// The validated header of one file. Tensors are sorted by their data offsets.
struct SafetensorsFile {
  std::shared_ptr<MappedFile> file;  // may be null when parsed from a plain buffer
  std::string label;                 // the path used in error messages
  std::vector<TensorInfo> tensors;
  std::unordered_map<std::string, size_t> by_name;

  const TensorInfo* find(const std::string& name) const;
};

// Validates a complete safetensors image held in memory. `label` (normally the path)
// starts every error message. The returned pointers point into `data`.
SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& label);

// Maps `path` and parses it; the result keeps the map alive.
SafetensorsFile open_safetensors(const std::string& path);

// "[a, b]" for error messages.
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace sdllm
