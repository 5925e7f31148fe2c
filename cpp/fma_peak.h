// The machine's measured FMA peak: a register-only AVX2 FMA loop on every pool thread at
// once, no memory traffic. Benchmarks print GFLOP/s beside it (bench/batch.ts through the
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
