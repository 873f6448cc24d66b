// Autograd for vganzoo::conv3d_bias_act / conv_transpose3d_bias_act, in C++ for every device.
//
// Backward: the activation's derivative from the saved output (never the pre-activation) with ATen's
// activation-backward kernels, then input, weight and bias gradients from ATen's convolution_backward. Every step is
// an ATen op, so the backward is itself differentiable (R1 / gradient penalties need double backward).
//
// This used to be torch.library.register_autograd in Python; its wrapper costs ~0.14 ms of host time per
// call (it re-fills the schema defaults every time), which left a GPU waiting on small layers. Fake
// (meta) kernels stay in Python (vganzoo/ops/fused.py); under torch.compile the forward below reaches
// them through the dispatcher and AOTAutograd traces the backward's ATen ops.
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <string>
#include <vector>

#include "common.h"

namespace vganzoo {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using ConvSig = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, at::IntArrayRef,
                           at::IntArrayRef, at::IntArrayRef, int64_t, c10::string_view, double);
using ConvTSig = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, at::IntArrayRef,
                            at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, int64_t, c10::string_view, double);

// grad * d act / d pre-activation, from the saved output, with ATen's own backward kernels (one fused
// pass each, and differentiable for double backward). negative_slope >= 0 is checked on entry, so
// out > 0 exactly where the pre-activation was > 0.
at::Tensor activation_grad(const at::Tensor& grad, const at::Tensor& out, Act act, double slope) {
  switch (act) {
    case Act::None: return grad;
    case Act::Relu: return at::threshold_backward(grad, out, 0);
    case Act::LeakyRelu: return at::leaky_relu_backward(grad, out, slope, /*self_is_result=*/true);
    case Act::Tanh: return at::tanh_backward(grad, out);
    case Act::Sigmoid: return at::sigmoid_backward(grad, out);
  }
  return grad;
}

struct ConvBiasAct : public torch::autograd::Function<ConvBiasAct> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                            at::IntArrayRef output_padding, at::IntArrayRef dilation, int64_t groups, bool transposed,
                            c10::string_view activation, double negative_slope) {
    const Act act = parse_activation(activation, negative_slope);
    at::Tensor out;
    {
      at::AutoDispatchBelowADInplaceOrView below;
      if (transposed) {
        static auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("vganzoo::conv_transpose3d_bias_act", "")
                             .typed<ConvTSig>();
        out = op.call(x, weight, bias, stride, padding, output_padding, dilation, groups, activation, negative_slope);
      } else {
        static auto op =
            c10::Dispatcher::singleton().findSchemaOrThrow("vganzoo::conv3d_bias_act", "").typed<ConvSig>();
        out = op.call(x, weight, bias, stride, padding, dilation, groups, activation, negative_slope);
      }
    }
    ctx->saved_data["stride"] = stride.vec();
    ctx->saved_data["padding"] = padding.vec();
    ctx->saved_data["output_padding"] = transposed ? output_padding.vec() : std::vector<int64_t>{0, 0, 0};
    ctx->saved_data["dilation"] = dilation.vec();
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["transposed"] = transposed;
    ctx->saved_data["act"] = static_cast<int64_t>(act);
    ctx->saved_data["slope"] = negative_slope;
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    ctx->save_for_backward({x, weight, act == Act::None ? at::Tensor() : out});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& out = saved[2];
    const Act act = static_cast<Act>(ctx->saved_data["act"].toInt());
    const at::Tensor g = activation_grad(grad_outputs[0], out, act, ctx->saved_data["slope"].toDouble());
    // needs_input_grad indexes the tensor inputs that were given: x, weight, then bias only if defined.
    const bool need_x = ctx->needs_input_grad(0), need_w = ctx->needs_input_grad(1);
    const bool need_b = ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2);
    at::Tensor grad_x, grad_w, grad_b;
    if (need_x || need_w || need_b) {
      const auto stride = ctx->saved_data["stride"].toIntVector();
      const auto padding = ctx->saved_data["padding"].toIntVector();
      const auto output_padding = ctx->saved_data["output_padding"].toIntVector();
      const auto dilation = ctx->saved_data["dilation"].toIntVector();
      // The bias gradient comes from the same call (the backends reduce it alongside).
      const std::vector<c10::SymInt> bias_sizes{g.sym_size(1)};
      auto grads = at::convolution_backward_symint(
          g, x, weight, need_b ? at::OptionalSymIntArrayRef(bias_sizes) : at::OptionalSymIntArrayRef(),
          c10::fromIntArrayRefSlow(stride), c10::fromIntArrayRefSlow(padding), c10::fromIntArrayRefSlow(dilation),
          ctx->saved_data["transposed"].toBool(), c10::fromIntArrayRefSlow(output_padding),
          c10::SymInt(ctx->saved_data["groups"].toInt()), {need_x, need_w, need_b});
      grad_x = std::get<0>(grads);
      grad_w = std::get<1>(grads);
      grad_b = std::get<2>(grads);
    }
    // One entry per forward argument after ctx (non-tensors get undefined gradients).
    return {grad_x, grad_w, grad_b, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor conv3d_autograd(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                           at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                           c10::string_view activation, double negative_slope) {
  return ConvBiasAct::apply(x, weight, bias, stride, padding, at::IntArrayRef{}, dilation, groups, false, activation,
                            negative_slope);
}

at::Tensor conv_transpose3d_autograd(const at::Tensor& x, const at::Tensor& weight,
                                     const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                     at::IntArrayRef padding, at::IntArrayRef output_padding,
                                     at::IntArrayRef dilation, int64_t groups, c10::string_view activation,
                                     double negative_slope) {
  return ConvBiasAct::apply(x, weight, bias, stride, padding, output_padding, dilation, groups, true, activation,
                            negative_slope);
}

}  // namespace
}  // namespace vganzoo

TORCH_LIBRARY_IMPL(vganzoo, Autograd, m) {
  m.impl("conv3d_bias_act", &vganzoo::conv3d_autograd);
  m.impl("conv_transpose3d_bias_act", &vganzoo::conv_transpose3d_autograd);
}
