// The machine's measured FMA peak: a register-only FMA loop on every pool thread at once,
// no memory traffic, in the widest vectors the GEMM uses (AVX-512 when use_avx512(),
// else AVX2), so "% of peak" is against what the engine could reach. Benchmarks print GFLOP/s beside it (bench/batch.ts through the
// addon's measureFmaPeak, bench/native). 0 where the CPU has no AVX2+FMA.
#pragma once
#include <cstdint>

#include "threadpool.h"

namespace sdllm {

// FLOPs done by `iters` iterations on each of `threads` pool workers (0 = the pool size).
double fma_peak_flops(ThreadPool& pool, int64_t iters, int threads = 0);
// Best GFLOP/s of `rounds` timed runs of about `seconds` each.
double fma_peak_gflops(ThreadPool& pool, double seconds, int rounds = 3, int threads = 0);

}  // namespace sdllm
