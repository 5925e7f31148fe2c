// forward_ops.h: the CUDA backend's ForwardOps (cpp/forward.h): the kernels of
// sdllm_cuda.h and backend_ops.h and cuBLAS GEMMs, launched on the model's stream with its
// scratch buffers (the caller holds model.mu). Errors throw backend_detail::Failure.
#pragma once
#include <memory>

#include "backend_state.h"

namespace sdllm {
namespace cuda {

std::unique_ptr<ForwardOps> cuda_forward_ops(SdllmCudaModel& model);

}  // namespace cuda
}  // namespace sdllm
