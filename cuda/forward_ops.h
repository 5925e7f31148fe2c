// forward_ops.h: the CUDA backend's ForwardOps (cpp/forward.h): the kernels of
// sdllm_cuda.h and backend_ops.h and cuBLAS GEMMs, launched on the model's stream with its
// scratch buffers (the caller holds model.mu). Errors throw backend_detail::Failure.
#pragma once
#include <memory>

#include "backend_state.h"

namespace sdllm {
namespace cuda {

std::unique_ptr<ForwardOps> cuda_forward_ops(SdllmCudaModel& model);

// Reserves the model's scratch for a forward with this plan: the plan's arrays, the GEMM
// input (BF16 mode) and the confidence workspace. The attention workspace depends on each
// sequence's shape and is sized by session_create (backend.cu) or on first use.
void reserve_scratch(SdllmCudaModel& model, const ScratchPlan& plan);

}  // namespace cuda
}  // namespace sdllm
