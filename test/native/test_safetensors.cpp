// Tests of the safetensors reader (cpp/safetensors.h): valid headers, every malformed
// header it must refuse with a message naming the file, random corruption, and files
// mapped from disk. Exits non-zero on any failure.
#include <random>
#include <string>
#include <vector>

#include "loader_test_harness.h"
#include "safetensors.h"

using namespace sdllm;
using namespace sdllm_test;

namespace {

// ---------------------------------------------------------------------------
// safetensors

SafetensorsFile st_parse(const std::vector<uint8_t>& img) { return parse_safetensors(img.data(), img.size(), "mem.safetensors"); }

void st_reject(const std::string& what, const std::string& header, size_t data_bytes,
               std::vector<std::string> needles) {
  needles.insert(needles.begin(), "mem.safetensors");
  auto img = st_image(header, data_bytes);
  expect_throw("safetensors rejects " + what, [&] { st_parse(img); }, needles);
}

void test_safetensors_valid() {
  auto img = st_image(R"({"__metadata__": {"format": "pt"},
      "b": {"dtype": "BF16", "shape": [4], "data_offsets": [24, 32]},
      "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
      "e": {"dtype": "F16", "shape": [0, 5], "data_offsets": [32, 32]},
      "i": {"dtype": "I64", "shape": [1], "data_offsets": [32, 40]}})",
                      40);
  SafetensorsFile f = st_parse(img);
  check(f.tensors.size() == 4, "four tensors, metadata ignored");
  check(f.tensors[0].name == "a" && f.tensors[1].name == "b", "sorted by offset");
  const TensorInfo* a = f.find("a");
  const TensorInfo* b = f.find("b");
  check(a && a->supported && a->dtype == DType::F32 && a->shape == std::vector<int64_t>{2, 3}, "a parsed");
  check(b && b->dtype == DType::BF16 && b->byte_length() == 8, "b parsed");
  const size_t header_len = img.size() - 8 - 40;
  check(a->data == img.data() + 8 + header_len && b->data == img.data() + 8 + header_len + 24, "data pointers");
  check(f.find("e") && f.find("e")->byte_length() == 0, "empty tensor accepted");
  check(f.find("i") && !f.find("i")->supported && f.find("i")->dtype_name == "I64", "I64 parsed but unsupported");
  check(f.find("__metadata__") == nullptr, "metadata is not a tensor");
  check(st_parse(st_image("{}", 0)).tensors.empty(), "empty header");
  check(st_parse(st_image(R"({"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}})", 4)).tensors[0].shape.empty(),
        "scalar tensor");
}

void test_safetensors_malformed() {
  for (size_t n : {0, 1, 7}) {
    std::vector<uint8_t> img(n, 0);
    expect_throw("file of " + std::to_string(n) + " bytes", [&] { st_parse(img); },
                 {"mem.safetensors", "too short"});
  }
  {
    auto img = st_image("{}", 0);
    img[0] = 200;  // header size beyond the file
    expect_throw("header size beyond the file", [&] { st_parse(img); }, {"mem.safetensors", "exceeds the file size"});
    for (int i = 0; i < 8; ++i) img[i] = 0xff;
    expect_throw("header size 2^64-1", [&] { st_parse(img); }, {"mem.safetensors", "exceeds the file size"});
  }
  st_reject("non-JSON header", "this is not json", 0, {"not valid JSON", "byte 0"});
  st_reject("truncated JSON header", R"({"a": {"dtype": "F32")", 0, {"not valid JSON"});
  st_reject("array header", "[1, 2]", 0, {"not a JSON object"});
  st_reject("duplicate tensor", R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
      "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8, {"duplicate key \"a\""});
  st_reject("entry not an object", R"({"w": 3})", 0, {"tensor 'w'", "not a JSON object"});
  st_reject("missing dtype", R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4, {"tensor 'w'", "missing \"dtype\""});
  st_reject("missing shape", R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4, {"tensor 'w'", "missing \"shape\""});
  st_reject("missing data_offsets", R"({"w": {"dtype": "F32", "shape": [1]}})", 4,
            {"tensor 'w'", "missing \"data_offsets\""});
  st_reject("dtype not a string", R"({"w": {"dtype": 7, "shape": [1], "data_offsets": [0, 4]}})", 4,
            {"tensor 'w'", "\"dtype\" is not a string"});
  st_reject("unknown dtype", R"({"w": {"dtype": "Q4_K", "shape": [1], "data_offsets": [0, 4]}})", 4,
            {"tensor 'w'", "unsupported dtype 'Q4_K'"});
  st_reject("shape not an array", R"({"w": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}})", 4,
            {"tensor 'w'", "\"shape\" is not an array"});
  st_reject("negative dim", R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4,
            {"tensor 'w'", "non-negative integers"});
  st_reject("fractional dim", R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4,
            {"tensor 'w'", "non-negative integers"});
  st_reject("string dim", R"({"w": {"dtype": "F32", "shape": ["1"], "data_offsets": [0, 4]}})", 4,
            {"tensor 'w'", "non-negative integers"});
  st_reject("offsets of length 1", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4]}})", 4,
            {"tensor 'w'", "data_offsets"});
  st_reject("offsets not numbers", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": ["0", "4"]}})", 4,
            {"tensor 'w'", "data_offsets"});
  st_reject("negative offset", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 4,
            {"tensor 'w'", "data_offsets"});
  st_reject("begin after end", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 8,
            {"tensor 'w'", "begin after end"});
  st_reject("end beyond data", R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 12,
            {"tensor 'w'", "beyond the data section"});
  st_reject("huge end offset", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 9223372036854775807]}})", 4,
            {"tensor 'w'", "beyond the data section"});
  st_reject("byte length mismatch", R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", 16,
            {"tensor 'w'", "byte length 12", "= 16"});
  st_reject("BF16 length mismatch", R"({"w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 16]}})", 16,
            {"tensor 'w'", "byte length 16", "= 8"});
  st_reject("shape product overflow",
            R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", 0,
            {"tensor 'w'", "64 bits"});
  st_reject("shape times dtype overflow",
            R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 2], "data_offsets": [0, 0]}})", 0,
            {"tensor 'w'", "64 bits"});
  st_reject("overlap", R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12, {"'a'", "'b'", "overlap"});
  st_reject("unsorted overlap", R"({"b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
      "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 12, {"'a'", "'b'", "overlap"});
  st_reject("contained range", R"({"big": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
      "x": {"dtype": "F32", "shape": [1], "data_offsets": [16, 20]},
      "small": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 20, {"'big'", "'small'", "overlap"});
  st_reject("identical ranges", R"({"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
      "b": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}})", 4, {"overlap"});
  // Overlap hidden behind a short tensor: a long range must be remembered past its neighbour.
  st_reject("overlap past a neighbour", R"({"long": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
      "mid": {"dtype": "F32", "shape": [1], "data_offsets": [32, 36]},
      "late": {"dtype": "F32", "shape": [1], "data_offsets": [28, 32]}})", 36, {"'long'", "'late'", "overlap"});

  // Random corruption of a valid image must only ever be accepted or rejected cleanly.
  auto base = st_image(R"({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
      "b": {"dtype": "BF16", "shape": [4], "data_offsets": [24, 32]}})", 32);
  std::mt19937 rng(99);
  int bad = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    auto img = base;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) img[rng() % img.size()] = static_cast<uint8_t>(rng());
    if (rng() % 4 == 0) img.resize(rng() % img.size());
    try {
      SafetensorsFile f = st_parse(img);
      for (const auto& t : f.tensors)
        if (t.data < img.data() || t.data + t.byte_length() > img.data() + img.size()) ++bad;
    } catch (const std::runtime_error&) {
    } catch (...) {
      ++bad;
    }
  }
  check(bad == 0, "fuzzed safetensors images stay in bounds and throw only runtime_error");
}


void test_mapped_files() {
  auto img = st_image(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 8);
  write_file(tmp_path("one.safetensors"), img);
  SafetensorsFile f = open_safetensors(tmp_path("one.safetensors"));
  check(f.file && f.file->size() == img.size(), "mapped size");
  check(std::memcmp(f.file->data(), img.data(), img.size()) == 0, "mapped bytes");
  check(f.find("a") && f.find("a")->data == f.file->data() + img.size() - 8, "view into the map");
  expect_throw("missing file", [] { open_safetensors(tmp_path("nope.safetensors")); },
               {"cannot open", "nope.safetensors"});
  write_file(tmp_path("empty.safetensors"), std::string());
  expect_throw("empty file", [] { open_safetensors(tmp_path("empty.safetensors")); },
               {"empty.safetensors", "too short"});
  mkdir(tmp_path("adir").c_str(), 0755);
  expect_throw("directory", [] { open_safetensors(tmp_path("adir")); }, {"adir"});
}

}  // namespace

int main() {
  if (!make_tmp_dir("test_safetensors")) return 1;
  test_safetensors_valid();
  test_safetensors_malformed();
  test_mapped_files();
  return finish("safetensors");
}
