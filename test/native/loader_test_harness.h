// The pass/fail harness shared by the JSON, safetensors and loader test programs
// (test_json.cpp, test_safetensors.cpp, test_loader.cpp), and what they write files with:
// a temporary directory, whole-file writes and in-memory safetensors images.
#pragma once
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace sdllm_test {

inline int g_passed = 0, g_failed = 0;

inline void check(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::cerr << "FAIL: " << what << "\n";
  }
}

// Runs fn, which must throw an exception of type E whose message contains every needle.
template <typename E = std::runtime_error>
void expect_throw(const std::string& what, const std::function<void()>& fn,
                  const std::vector<std::string>& needles = {}) {
  try {
    fn();
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) {
      if (msg.find(n) == std::string::npos) {
        check(false, what + ": message \"" + msg + "\" lacks \"" + n + "\"");
        return;
      }
    }
    check(true, what);
    return;
  } catch (const std::exception& e) {
    check(false, what + ": wrong exception type: " + e.what());
    return;
  }
  check(false, what + ": did not throw");
}

// A safetensors image with the given header text, padded to 8 bytes as writers do.
inline std::vector<uint8_t> st_image(std::string header, size_t data_bytes) {
  while (header.size() % 8) header += ' ';
  std::vector<uint8_t> out(8 + header.size() + data_bytes, 0);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  for (size_t i = 0; i < data_bytes; ++i) out[8 + header.size() + i] = static_cast<uint8_t>(i);
  return out;
}

// A fresh directory under /tmp for the files a program writes; removed by finish().
inline std::string g_tmp;

inline bool make_tmp_dir(const char* program) {
  std::string tmpl = std::string("/tmp/sdllm_") + program + "_XXXXXX";
  if (!mkdtemp(tmpl.data())) {
    std::perror("mkdtemp");
    return false;
  }
  g_tmp = tmpl;
  return true;
}

inline std::string tmp_path(const std::string& name) { return g_tmp + "/" + name; }

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file(path, std::string(bytes.begin(), bytes.end()));
}

// Removes the temporary directory (if any), prints "NAME: P passed, F failed" and returns
// the exit status.
inline int finish(const char* name) {
  if (!g_tmp.empty() && std::system(("rm -rf '" + g_tmp + "'").c_str()) != 0) std::cerr << "could not remove " << g_tmp << "\n";
  std::cout << name << ": " << g_passed << " passed, " << g_failed << " failed\n";
  return g_failed == 0 ? 0 : 1;
}

}  // namespace sdllm_test
