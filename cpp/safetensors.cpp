// safetensors: mmap of the file and strict validation of its header, so that no
// later kernel can read outside the map or see two tensors sharing bytes.
#include "safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "json.h"

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#define NOMINMAX
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace sdllm {

// ---------------------------------------------------------------------------
// MappedFile

#ifdef _WIN32

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  // UTF-8 paths: convert to UTF-16 so non-ASCII directory names work.
  int wlen = MultiByteToWideChar(CP_UTF8, 0, path.c_str(), -1, nullptr, 0);
  std::wstring wpath(wlen > 0 ? wlen : 1, L'\0');
  if (wlen > 0) MultiByteToWideChar(CP_UTF8, 0, path.c_str(), -1, &wpath[0], wlen);
  HANDLE fh = CreateFileW(wpath.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING,
                          FILE_ATTRIBUTE_NORMAL, nullptr);
  if (fh == INVALID_HANDLE_VALUE)
    throw std::runtime_error("cannot open " + path + ": error " + std::to_string(GetLastError()));
  m->file_handle_ = fh;
  LARGE_INTEGER sz;
  if (!GetFileSizeEx(fh, &sz))
    throw std::runtime_error("cannot stat " + path + ": error " + std::to_string(GetLastError()));
  m->size_ = static_cast<size_t>(sz.QuadPart);
  if (m->size_ == 0) return m;
  HANDLE mh = CreateFileMappingW(fh, nullptr, PAGE_READONLY, 0, 0, nullptr);
  if (!mh) throw std::runtime_error("cannot map " + path + ": error " + std::to_string(GetLastError()));
  m->mapping_handle_ = mh;
  void* p = MapViewOfFile(mh, FILE_MAP_READ, 0, 0, 0);
  if (!p) throw std::runtime_error("cannot map " + path + ": error " + std::to_string(GetLastError()));
  m->data_ = static_cast<const uint8_t*>(p);
  return m;
}

void MappedFile::release(const void*, size_t) const {}

MappedFile::~MappedFile() {
  if (data_) UnmapViewOfFile(data_);
  if (mapping_handle_) CloseHandle(static_cast<HANDLE>(mapping_handle_));
  if (file_handle_) CloseHandle(static_cast<HANDLE>(file_handle_));
}

#else

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error("cannot stat " + path + ": " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error("cannot map " + path + ": not a regular file");
  }
  m->size_ = static_cast<size_t>(st.st_size);
  if (m->size_ > 0) {
    void* p = mmap(nullptr, m->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      throw std::runtime_error("cannot map " + path + ": " + std::strerror(err));
    }
    m->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps its own reference to the file
  return m;
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::release(const void* p, size_t n) const {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t b = reinterpret_cast<uintptr_t>(p), e = b + n;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(data_), hi = lo + size_;
  b = std::max(b, lo);
  e = std::min(e, hi);
  b = (b + page - 1) / page * page;  // whole pages inside the range only
  e = e / page * page;
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

#endif

// ---------------------------------------------------------------------------
// Header parsing

namespace {

// The safetensors reference implementation refuses headers above 100 MB; a real
// 8B checkpoint's header is a few tens of kB.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

// Element sizes of every dtype the format defines, so that tensors the engine
// does not use can still be checked for size and overlap.
int64_t any_dtype_size(const std::string& d) {
  static const std::pair<const char*, int64_t> table[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1}, {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1},
      {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E8M0", 1}, {"C64", 8}};
  for (const auto& e : table)
    if (d == e.first) return e.second;
  return 0;
}

bool weight_dtype(const std::string& d, DType* out) {
  if (d == "F32") { *out = DType::F32; return true; }
  if (d == "F16") { *out = DType::F16; return true; }
  if (d == "BF16") { *out = DType::BF16; return true; }
  return false;
}

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = by_name.find(name);
  return it == by_name.end() ? nullptr : &tensors[it->second];
}

SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& label) {
  auto fail = [&](const std::string& why) -> void { throw std::runtime_error(label + ": " + why); };
  if (size < 8)
    fail("file is " + std::to_string(size) + " bytes, too short for the 8-byte safetensors header size");
  const uint64_t header_len = read_le64(data);
  if (header_len > size - 8)
    fail("header size " + std::to_string(header_len) + " exceeds the file size " + std::to_string(size) +
         " (truncated or not a safetensors file)");
  if (header_len > kMaxHeaderBytes)
    fail("header size " + std::to_string(header_len) + " is larger than the 100 MB limit");
  const uint8_t* data_section = data + 8 + header_len;
  const uint64_t data_len = size - 8 - header_len;

  JsonValue header;
  try {
    header = parse_json(std::string_view(reinterpret_cast<const char*>(data + 8), header_len));
  } catch (const JsonError& e) {
    fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object())
    fail(std::string("header is not a JSON object (found ") + json_type_name(header.type) + ")");

  SafetensorsFile out;
  out.label = label;
  for (const auto& kv : header.object) {
    const std::string& name = kv.first;
    if (name == "__metadata__") continue;  // free-form strings, not a tensor
    const JsonValue& entry = kv.second;
    auto tfail = [&](const std::string& why) { fail("tensor '" + name + "': " + why); };
    if (!entry.is_object()) tfail("entry is not a JSON object");

    TensorInfo t;
    t.name = name;
    const JsonValue* dt = entry.find("dtype");
    const JsonValue* shape = entry.find("shape");
    const JsonValue* offsets = entry.find("data_offsets");
    if (!dt) tfail("missing \"dtype\"");
    if (!shape) tfail("missing \"shape\"");
    if (!offsets) tfail("missing \"data_offsets\"");
    if (!dt->is_string()) tfail("\"dtype\" is not a string");
    t.dtype_name = dt->string;
    const int64_t elem = any_dtype_size(t.dtype_name);
    if (elem == 0) tfail("unsupported dtype '" + t.dtype_name + "' (supported: F32, F16, BF16)");
    t.supported = weight_dtype(t.dtype_name, &t.dtype);

    if (!shape->is_array()) tfail("\"shape\" is not an array");
    uint64_t count = 1;
    bool overflow = false;
    for (const auto& d : shape->array) {
      if (!d.is_number() || !d.is_int || d.integer < 0)
        tfail("\"shape\" must hold non-negative integers");
      const uint64_t u = static_cast<uint64_t>(d.integer);
      if (u != 0 && count > UINT64_MAX / u) overflow = true;
      else count *= u;
      t.shape.push_back(d.integer);
    }
    // Once any dimension is zero the product is zero whatever overflowed before.
    if (std::find(t.shape.begin(), t.shape.end(), 0) != t.shape.end()) { overflow = false; count = 0; }
    if (!overflow && count > UINT64_MAX / static_cast<uint64_t>(elem)) overflow = true;
    if (overflow) tfail("shape " + shape_string(t.shape) + " has more bytes than fit in 64 bits");
    const uint64_t expected = count * static_cast<uint64_t>(elem);

    if (!offsets->is_array() || offsets->array.size() != 2) tfail("\"data_offsets\" is not an array of two integers");
    for (const auto& o : offsets->array)
      if (!o.is_number() || !o.is_int || o.integer < 0) tfail("\"data_offsets\" must hold non-negative integers");
    t.begin = static_cast<uint64_t>(offsets->array[0].integer);
    t.end = static_cast<uint64_t>(offsets->array[1].integer);
    const std::string range = "[" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "]";
    if (t.begin > t.end) tfail("data_offsets " + range + " begin after end");
    if (t.end > data_len)
      tfail("data_offsets " + range + " reach beyond the data section of " + std::to_string(data_len) +
            " bytes (file truncated?)");
    if (t.byte_length() != expected)
      tfail("byte length " + std::to_string(t.byte_length()) + " from data_offsets " + range +
            " does not equal prod(shape " + shape_string(t.shape) + ") * " + std::to_string(elem) + " (" +
            t.dtype_name + ") = " + std::to_string(expected));
    t.data = data_section + t.begin;
    out.tensors.push_back(std::move(t));
  }

  std::sort(out.tensors.begin(), out.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // After sorting by begin, two non-empty ranges overlap exactly when one starts
  // before the furthest end seen so far. Empty tensors own no bytes.
  const TensorInfo* furthest = nullptr;
  for (const auto& t : out.tensors) {
    if (t.byte_length() == 0) continue;
    if (furthest && t.begin < furthest->end)
      fail("tensors '" + furthest->name + "' [" + std::to_string(furthest->begin) + ", " +
           std::to_string(furthest->end) + "] and '" + t.name + "' [" + std::to_string(t.begin) + ", " +
           std::to_string(t.end) + "] overlap");
    if (!furthest || t.end > furthest->end) furthest = &t;
  }
  for (size_t i = 0; i < out.tensors.size(); ++i) out.by_name.emplace(out.tensors[i].name, i);
  return out;
}

SafetensorsFile open_safetensors(const std::string& path) {
  std::shared_ptr<MappedFile> m = MappedFile::open(path);
  SafetensorsFile f = parse_safetensors(m->data(), m->size(), path);
  f.file = std::move(m);
  return f;
}

}  // namespace sdllm
