// The CUTLASS path of the CUDA ops (csrc/cuda/cutlass/): which calls it can take, and running them on torch
// tensors. Forward: a convolution is CUTLASS's fprop with bias + activation fused in its epilogue; a
// transposed convolution is its dgrad (same epilogue). Backward (conv3d_bias_act_backward, the incoming
// gradient already multiplied by the activation's derivative): dgrad + wgrad, or for a transposed
// convolution fprop + wgrad. Without CUTLASS in the build every call is ineligible (the reason says so).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <optional>
#include <string>
#include <tuple>

#include "common.h"

namespace vganzoo {
namespace cuda {

bool cutlass_built();

// "" where CUTLASS's forward kernel can run this call; otherwise why not (for explain()).
std::string cutlass_forward_ineligible(const ConvGeometry& g, const at::Tensor& x);

// y = act(conv(x, weight) + bias) (or the transposed convolution) in the memory format of output_memory_format(x).
at::Tensor cutlass_forward(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias, Act act, double slope);

// "" where CUTLASS's kernels can compute every gradient that `mask` (x, weight, bias) asks for.
std::string cutlass_backward_ineligible(const ConvGeometry& g, const at::Tensor& x, std::array<bool, 3> mask);

// (grad_x, grad_weight, grad_bias) of the layer from `grad` (the pre-activation gradient); undefined where
// `mask` does not ask.
std::tuple<at::Tensor, at::Tensor, at::Tensor> cutlass_backward(const ConvGeometry& g, const at::Tensor& grad,
                                                                const at::Tensor& x, const at::Tensor& weight,
                                                                std::array<bool, 3> mask);

}  // namespace cuda
}  // namespace vganzoo
