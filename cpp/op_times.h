// Per-op wall time of the CPU forward, for finding where a forward's time goes:
// with SDLLM_OP_TIMES=1 in the environment, every forward's ForwardOps is wrapped so that
// each call is timed on the calling thread (the CPU ops are synchronous: a pool job ends
// before its call returns), and at process exit a table of calls, total, mean, median, p90 and p99
// time and share per op goes to stderr. Off by default; the wrapper is not built into a
// forward otherwise. The CUDA backend is not wrapped (its calls return before the GPU
// has run them).
//   SDLLM_OP_TIMES=1 node dist/bench/forward-loop.js --batch 8 --rows 32
#pragma once
#include <memory>

#include "forward.h"

namespace sdllm {

// Whether SDLLM_OP_TIMES is set to something other than "" or "0" (read once).
bool op_times_enabled();

// `inner` with every call timed into the process-wide table printed at exit.
std::unique_ptr<ForwardOps> timed_forward_ops(std::unique_ptr<ForwardOps> inner);

}  // namespace sdllm
