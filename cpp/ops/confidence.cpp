// op_confidence: per logits row, in one pass over the vocabulary, the state needed for
// every confidence kind: max and argmax (lowest id on ties), the runner-up value,
// S = sum exp(l - max) and E = sum exp(l - max) (l - max) in double (rebased online
// when the max grows), and the Gumbel-max proposal when temperature > 0. With a
// confidence temperature c the sums are of exp((l - max)/c): `inv` = 1/c scales every
// difference (inv = 1 leaves the arithmetic exactly as without it).
// With AVX2 the max pass of each 256-logit block runs in 8 or 16 float lanes (kernels.h
// LaneMax, merged by take_lanes: the same max, arg and second as the scalar loop), and its
// sums are taken in 8 double lanes with the vectorised exp of vexp_f64.h
// (confidence_avx2.cpp; AVX-512 gives the same bits), about 1 ulp from std::exp; the
// portable path scans and sums with std::exp in order.
// A row is cut into vocabulary chunks that are reduced independently and merged in
// id order, so a handful of rows with a 126k vocabulary still use every thread.
//
// RNG counters (the CUDA twin must use the same): the Gumbel noise of token t in row r
// is u = rng_uniform(seed, row_keys[r], t), score l - T log(-log u) in double; kind
// Random gives conf = rng_uniform(seed, row_keys[r], kRandomCounter) and x0 = argmax.
// Without row_keys the row index is the key.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "../cpu_features.h"
#include "../ops.h"
#include "kernels.h"

namespace sdllm {

namespace {

constexpr uint64_t kRandomCounter = 0xFFFFFFFFFFFFull;  // above any token id
constexpr int64_t kChunk = 16384;
// Logits a block: the block's max is found first, so the sums are rebased at most once per
// block, and the second touch of the block comes from L1.
constexpr int64_t kBlock = 256;

// The kernels a reduction uses, chosen once per call rather than per block.
enum class Path { Scalar, Avx2, Avx512 };

Path current_path() {
  if (!use_avx2_fma()) return Path::Scalar;
  return use_avx512() ? Path::Avx512 : Path::Avx2;
}

struct State {
  float max = -std::numeric_limits<float>::infinity();  // also the reference of sum/ent
  float second = -std::numeric_limits<float>::infinity();
  int64_t arg = -1;
  double sum = 0;
  double ent = 0;
  double gbest = -std::numeric_limits<double>::infinity();
  int64_t garg = -1;
};

// Re-expresses sum/ent relative to a new reference max m >= old.
void rebase(State& s, float old, float m, double inv) {
  if (s.sum == 0 || m == old) return;
  const double d = (static_cast<double>(old) - m) * inv, c = std::exp(d);
  s.ent = c * (s.ent + d * s.sum);
  s.sum *= c;
}

// s := s followed by a block starting at `base` whose max pass ran by lanes (kernels.h
// LaneMax), as the scalar loop in reduce would have left it. The block's max is the
// largest lane max at the lowest index among equal ones; its runner-up the largest of that
// lane's second and every other lane's max.
void take_lanes(State& s, const kernels::LaneMax& lanes, int64_t base) {
  int best = -1;
  for (int i = 0; i < lanes.lanes; ++i) {
    if (lanes.arg[i] < 0) continue;  // nothing above -inf in this lane
    if (best < 0 || lanes.max[i] > lanes.max[best] ||
        (lanes.max[i] == lanes.max[best] && lanes.arg[i] < lanes.arg[best]))
      best = i;
  }
  if (best < 0) return;  // all -inf or NaN: the scalar loop changes nothing either
  float second = lanes.second[best];
  for (int i = 0; i < lanes.lanes; ++i)
    if (i != best) second = std::max(second, lanes.max[i]);
  const float m = lanes.max[best];
  if (m > s.max) {
    s.second = std::max(s.max, second);
    s.max = m;
    s.arg = base + lanes.arg[best];
  } else {
    s.second = std::max(s.second, m);
  }
}

// The max pass over l[b0, b1): max, arg and second of s updated as by the scalar loop.
void scan_block(State& s, const float* l, int64_t b0, int64_t b1, Path path) {
  if (path != Path::Scalar) {  // 8 or 16 lanes at a time, merged
    kernels::LaneMax lanes;
    if (path == Path::Avx512)
      kernels::avx512_block_max(l + b0, b1 - b0, lanes);
    else
      kernels::avx2_block_max(l + b0, b1 - b0, lanes);
    take_lanes(s, lanes, b0);
    return;
  }
  for (int64_t t = b0; t < b1; ++t) {
    const float v = l[t];
    if (v > s.max) {  // strict: an equal later value is a tie and the lower id stays
      s.second = s.max;
      s.max = v;
      s.arg = t;
    } else {
      s.second = std::max(s.second, v);  // a tie with the max makes second == max
    }
  }
}

void reduce(const float* l, int64_t begin, int64_t end, double temperature, double inv, uint64_t seed,
            uint64_t key, State& out) {
  // A local copy: through the reference the compiler must assume that each store to the
  // state may change the logits (both are floats), and kept second, max, sum and ent in
  // memory, a store and a reload per logit (three quarters of this function's time).
  State s = out;
  const Path path = current_path();
  for (int64_t b0 = begin; b0 < end; b0 += kBlock) {
    const int64_t b1 = std::min(end, b0 + kBlock);
    const float old = s.max;
    scan_block(s, l, b0, b1, path);
    if (s.max == -std::numeric_limits<float>::infinity()) continue;  // all -inf so far
    rebase(s, old, s.max, inv);
    const double m = s.max;
    if (path != Path::Scalar) {  // 8 lanes, the same bits with AVX-512 (kernels.h)
      const kernels::ExpSums e = path == Path::Avx512 ? kernels::avx512_exp_sums(l + b0, b1 - b0, m, inv)
                                                      : kernels::avx2_exp_sums(l + b0, b1 - b0, m, inv);
      s.sum += e.sum;
      s.ent += e.ent;
    } else {
      for (int64_t t = b0; t < b1; ++t) {
        const double d = (static_cast<double>(l[t]) - m) * inv;
        const double e = std::exp(d);
        s.sum += e;
        if (e > 0) s.ent += e * d;  // exp(-inf) * -inf would be NaN
      }
    }
    if (temperature > 0) {
      for (int64_t t = b0; t < b1; ++t) {
        const double u = rng_uniform(seed, key, static_cast<uint64_t>(t));
        const double g = static_cast<double>(l[t]) - temperature * std::log(-std::log(u));
        if (g > s.gbest) {
          s.gbest = g;
          s.garg = t;
        }
      }
    }
  }
  out = s;
}

// a := a merged with b, where b covers higher token ids than a.
void merge(State& a, const State& b, double inv) {
  if (b.arg < 0 && b.garg < 0) return;
  const float m = std::max(a.max, b.max);
  State bb = b;
  rebase(a, a.max, m, inv);
  rebase(bb, b.max, m, inv);
  if (b.max > a.max) {
    a.second = std::max(a.max, b.second);
    a.arg = b.arg;
  } else {
    a.second = std::max(a.second, b.max);  // equal maxima: second == max, a's id stays
  }
  a.max = m;
  a.sum += bb.sum;
  a.ent += bb.ent;
  if (b.gbest > a.gbest) {
    a.gbest = b.gbest;
    a.garg = b.garg;
  }
}

}  // namespace

namespace kernels {
const double* exp2_frac64() {
  static const auto table = [] {
    std::array<double, 64> t{};
    for (int j = 0; j < 64; ++j) t[static_cast<size_t>(j)] = std::exp2(j / 64.0);
    return t;
  }();
  return table.data();
}
}  // namespace kernels

ConfidenceMax confidence_max_pass(const float* l, int64_t n) {
  State s;
  const Path path = current_path();
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) scan_block(s, l, b0, std::min(n, b0 + kBlock), path);
  return {s.max, s.second, s.arg};
}

void op_confidence(const ConfidenceParams& p, ThreadPool& pool) {
  if (p.n_rows <= 0) return;
  const int64_t chunks = std::max<int64_t>(1, (p.vocab + kChunk - 1) / kChunk);
  const int64_t items = p.n_rows * chunks;
  std::vector<State> part(static_cast<size_t>(items));
  const double temperature = p.temperature > 0 ? p.temperature : 0.0;
  const double inv = p.confidence_temperature > 0 ? 1.0 / static_cast<double>(p.confidence_temperature) : 1.0;
  // About 4K logits a chunk (~40 us of double exp): with 64K, the 129 rows of a small
  // vocabulary (336) ran on one thread, 7% of a two-thread forward of the shipped model.
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, std::min(p.vocab, kChunk)));
  pool.parallel_for(items, grain, [&](int64_t b, int64_t e, int) {
    for (int64_t it = b; it < e; ++it) {
      const int64_t r = it / chunks, c = it % chunks;
      const uint64_t key = p.row_keys ? p.row_keys[r] : static_cast<uint64_t>(r);
      reduce(p.logits + r * p.row_stride, c * kChunk, std::min(p.vocab, (c + 1) * kChunk), temperature, inv,
             p.seed, key, part[static_cast<size_t>(it)]);
    }
  });
  for (int64_t r = 0; r < p.n_rows; ++r) {
    State s = part[static_cast<size_t>(r * chunks)];
    for (int64_t c = 1; c < chunks; ++c) merge(s, part[static_cast<size_t>(r * chunks + c)], inv);
    const uint64_t key = p.row_keys ? p.row_keys[r] : static_cast<uint64_t>(r);
    const int64_t x0 = (temperature > 0 && s.garg >= 0) ? s.garg : std::max<int64_t>(0, s.arg);
    double conf = 0;
    if (s.sum > 0) {
      switch (p.kind) {
        case ConfidenceKind::Prob:
          conf = std::exp((static_cast<double>(p.logits[r * p.row_stride + x0]) - s.max) * inv) / s.sum;
          break;
        case ConfidenceKind::Margin:
          conf = (1.0 - std::exp((static_cast<double>(s.second) - s.max) * inv)) / s.sum;
          break;
        case ConfidenceKind::Entropy:  // sum p log p = E/S - log S
          conf = s.ent / s.sum - std::log(s.sum);
          break;
        case ConfidenceKind::Random:
          conf = rng_uniform(p.seed, key, kRandomCounter);
          break;
      }
    } else if (p.kind == ConfidenceKind::Random) {
      conf = rng_uniform(p.seed, key, kRandomCounter);
    }
    p.out_ids[r] = static_cast<int32_t>(x0);
    p.out_conf[r] = static_cast<float>(conf);
  }
}

}  // namespace sdllm
