// Shared argument checking, shape arithmetic and activation parsing for the fused 3-D conv ops.
// Used by the CPU and the CUDA implementations so that both reject bad input with the same
// clear message (TORCH_CHECK_VALUE -> ValueError, TORCH_CHECK_TYPE -> TypeError in Python).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace vganzoo {

// Activation applied after bias. Codes are shared with the torch-free CUDA kernels.
enum class Act : int { None = 0, Relu = 1, LeakyRelu = 2, Tanh = 3, Sigmoid = 4 };

Act parse_activation(c10::string_view name, double negative_slope);
const char* activation_name(Act act);

struct ConvGeometry {
  int64_t n, c_in, c_out, groups;
  int64_t in[3], out[3], k[3], stride[3], pad[3], dil[3], out_pad[3];
  bool transposed;
};

// Validates every argument of conv3d_bias_act / conv_transpose3d_bias_act and returns the geometry.
// `output_padding` is ignored (may be empty) when `transposed` is false.
ConvGeometry check_conv_args(const char* op, const at::Tensor& x, const at::Tensor& weight,
                             const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                             at::IntArrayRef padding, at::IntArrayRef output_padding,
                             at::IntArrayRef dilation, int64_t groups, bool transposed);

// Output memory format rule (mirrored by the Python fake kernels): channels_last_3d iff the input
// is channels_last_3d-contiguous but not plain contiguous; otherwise contiguous.
at::MemoryFormat output_memory_format(const at::Tensor& x);

std::vector<int64_t> output_sizes(const ConvGeometry& g);

// The whole input is one window, so the layer is one matrix product on every device: groups == 1, no
// padding, dilation 1, and either a convolution whose kernel is as large as its input (one output position
// per sample) or a transposed convolution of a 1x1x1 input onto one kernel-sized output (no output_padding).
bool is_full_window(const ConvGeometry& g);

// The full-window layer's matrix product, in `out_format` (non-transposed) or contiguous (transposed: a
// 1x1x1 input is contiguous in both formats). A defined `bias_in_gemm` (non-transposed only) is added by the
// GEMM itself (addmm); otherwise the caller applies bias and activation. Any device, through ATen.
at::Tensor full_window_product(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                               at::MemoryFormat out_format, const at::Tensor& bias_in_gemm);

}  // namespace vganzoo
