// The CPU backend's ForwardOps (forward.h): the ops of cpp/ops.h on host memory and the
// thread pool. Scratch arrays live in a per-thread arena reused by the next forward on
// that thread, left uninitialised (the forward writes every element it reads).
#pragma once
#include <memory>

#include "forward.h"
#include "threadpool.h"

namespace sdllm {

std::unique_ptr<ForwardOps> cpu_forward_ops(ThreadPool& pool);

}  // namespace sdllm
