// Autocast (torch.autocast / automatic mixed precision) for vganzoo::conv3d_bias_act,
// conv_transpose3d_bias_act and explain, on every device autocast has a dispatch key for.
//
// ATen puts conv3d and conv_transpose3d on autocast's lower-precision list: inside
// torch.autocast(device, dtype) their float32 inputs (x, weight, bias) are cast to `dtype` and the
// result is in `dtype`. STConv3d / STConvTranspose3d are drop-ins for nn.Conv3d / nn.ConvTranspose3d,
// so the fused ops follow the same policy. Without these kernels the autocast key falls through: a
// float32 layer stayed float32 under autocast, and a bfloat16 activation (the output of an autocast
// linear or 2-D conv) met a float32 weight and was rejected as a dtype mismatch.
//
// at::autocast::cached_cast casts only eligible tensors (floating point on the autocast device, not
// float64) and caches the casts of leaf weights that require grad for the rest of the autocast region,
// as ATen's own autocast kernels do. The casts are ordinary differentiable ops below this key, so the
// gradients reach the float32 parameters.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/library.h>

#include <optional>
#include <string>

#include "op_handles.h"

namespace vganzoo {
namespace {

// What each kernel below does before re-entering the op: leave this autocast key for the rest of the
// call, then cast the tensor arguments to the autocast dtype.
template <c10::DeviceType Device>
struct AutocastArgs {
  c10::impl::ExcludeDispatchKeyGuard no_autocast{at::autocast::get_autocast_dispatch_key_from_device_type(Device)};
  at::ScalarType dtype = at::autocast::get_autocast_dtype(Device);

  at::Tensor operator()(const at::Tensor& t) const { return at::autocast::cached_cast(dtype, t, Device); }
  std::optional<at::Tensor> operator()(const std::optional<at::Tensor>& t) const {
    return at::autocast::cached_cast(dtype, t, Device);
  }
};

template <c10::DeviceType Device>
at::Tensor conv3d_autocast(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                           at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                           c10::string_view activation, double negative_slope) {
  const AutocastArgs<Device> cast;
  return conv3d_op().call(cast(x), cast(weight), cast(bias), stride, padding, dilation, groups, activation,
                          negative_slope);
}

template <c10::DeviceType Device>
at::Tensor conv_transpose3d_autocast(const at::Tensor& x, const at::Tensor& weight,
                                     const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                     at::IntArrayRef padding, at::IntArrayRef output_padding,
                                     at::IntArrayRef dilation, int64_t groups, c10::string_view activation,
                                     double negative_slope) {
  const AutocastArgs<Device> cast;
  return conv_transpose3d_op().call(cast(x), cast(weight), cast(bias), stride, padding, output_padding, dilation,
                                    groups, activation, negative_slope);
}

// explain reports the path of the call as autocast would run it (in the autocast dtype).
template <c10::DeviceType Device>
std::string explain_autocast(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                             at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef output_padding,
                             at::IntArrayRef dilation, int64_t groups, bool transposed,
                             c10::string_view activation) {
  const AutocastArgs<Device> cast;
  return explain_op().call(cast(x), cast(weight), cast(bias), stride, padding, output_padding, dilation, groups,
                           transposed, activation);
}

}  // namespace
}  // namespace vganzoo

#define VGANZOO_AUTOCAST_IMPL(KEY, DEVICE)                                                    \
  TORCH_LIBRARY_IMPL(vganzoo, KEY, m) {                                                       \
    m.impl("conv3d_bias_act", &vganzoo::conv3d_autocast<DEVICE>);                             \
    m.impl("conv_transpose3d_bias_act", &vganzoo::conv_transpose3d_autocast<DEVICE>);         \
    m.impl("explain", &vganzoo::explain_autocast<DEVICE>);                                    \
  }

VGANZOO_AUTOCAST_IMPL(AutocastCPU, c10::DeviceType::CPU)
VGANZOO_AUTOCAST_IMPL(AutocastCUDA, c10::DeviceType::CUDA)
