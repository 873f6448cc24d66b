// The three op entry points every device registers (conv3d_bias_act, conv_transpose3d_bias_act,
// explain), defined once. Each device implements, in its own namespace:
//   at::Tensor forward(const char* op, x, weight, bias, stride, padding, output_padding, dilation,
//                      groups, transposed, activation, negative_slope);
//   Plan choose_path(const ConvGeometry&, const at::Tensor& x, bool has_bias, Act act);  // .path, .reason
//   const char* path_name(Path);
// and then expands VGANZOO_DEVICE_ENTRY_POINTS("ext/<device>:") in that namespace, which defines
// conv3d_entry, conv_transpose3d_entry and explain_entry for its TORCH_LIBRARY_IMPL block.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "common.h"

#define VGANZOO_DEVICE_ENTRY_POINTS(LABEL)                                                                        \
  at::Tensor conv3d_entry(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,   \
                          at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,              \
                          int64_t groups, c10::string_view activation, double negative_slope) {                   \
    return forward("conv3d_bias_act", x, weight, bias, stride, padding, {}, dilation, groups, false, activation,   \
                   negative_slope);                                                                               \
  }                                                                                                               \
                                                                                                                  \
  at::Tensor conv_transpose3d_entry(const at::Tensor& x, const at::Tensor& weight,                                \
                                    const std::optional<at::Tensor>& bias, at::IntArrayRef stride,                \
                                    at::IntArrayRef padding, at::IntArrayRef output_padding,                      \
                                    at::IntArrayRef dilation, int64_t groups, c10::string_view activation,        \
                                    double negative_slope) {                                                      \
    return forward("conv_transpose3d_bias_act", x, weight, bias, stride, padding, output_padding, dilation,      \
                   groups, true, activation, negative_slope);                                                     \
  }                                                                                                               \
                                                                                                                  \
  std::string explain_entry(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias, \
                            at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef output_padding,      \
                            at::IntArrayRef dilation, int64_t groups, bool transposed,                            \
                            c10::string_view activation) {                                                        \
    const char* op = transposed ? "conv_transpose3d_bias_act" : "conv3d_bias_act";                                \
    const ConvGeometry g =                                                                                        \
        check_conv_args(op, x, weight, bias, stride, padding, output_padding, dilation, groups, transposed);      \
    const bool has_bias = bias.has_value() && bias->defined();                                                    \
    const auto plan = choose_path(g, x, has_bias, parse_activation(activation, 0.2));                             \
    return std::string(LABEL) + path_name(plan.path) + " (" + plan.reason + ")";                                  \
  }
