// Embedding lookup: copies table rows, widening the file dtype to float32.
#include <algorithm>
#include <cstring>

#include "../cpu_features.h"
#include "../ops.h"
#include "kernels.h"

namespace sdllm {

void op_embedding(const WeightView& table, const int32_t* ids, int64_t n, float* out) {
  const int64_t d = table.cols;
  for (int64_t i = 0; i < n; ++i) {
    // Out-of-range ids give a zero row rather than reading outside the mapping.
    float* o = out + i * d;
    const int64_t r = ids[i];
    if (r < 0 || r >= table.rows) {
      std::memset(o, 0, sizeof(float) * d);
      continue;
    }
    if (table.dtype == DType::F32) {
      std::memcpy(o, static_cast<const float*>(table.data) + r * d, sizeof(float) * d);
    } else if (use_avx2_fma()) {
      kernels::avx2_widen(table, r * d, d, o);
    } else {
      for (int64_t c = 0; c < d; ++c) o[c] = table.at(r, c);
    }
  }
}

void op_embedding(const WeightView& table, const int32_t* ids, int64_t n, float* out, ThreadPool& pool) {
  const int64_t d = table.cols;
  const int64_t grain = std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(1, d));
  if (n <= grain || pool.size() == 1) return op_embedding(table, ids, n, out);
  pool.parallel_for(n, grain, [&](int64_t b, int64_t e, int) { op_embedding(table, ids + b, e - b, out + b * d); });
}

}  // namespace sdllm
