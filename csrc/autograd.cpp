// Autograd for vganzoo::conv3d_bias_act / conv_transpose3d_bias_act, in C++ for every device.
//
// Backward: the activation's derivative from the saved output (never the pre-activation) with ATen's
// activation-backward kernels, then input, weight and bias gradients from ATen's convolution_backward. Every step is
// an ATen op, so the backward is itself differentiable (R1 / gradient penalties need double backward).
// A first-order backward of CUDA tensors (create_graph=False: grad mode off) goes through
// vganzoo::conv3d_bias_act_backward instead, whose CUDA kernel may take the CUTLASS kernels
// (csrc/cuda/conv3d_cuda.cu); other devices get the same convolution_backward from it (registered below).
//
// This used to be torch.library.register_autograd in Python; its wrapper costs ~0.14 ms of host time per
// call (it re-fills the schema defaults every time), which left a GPU waiting on small layers. Fake
// (meta) kernels stay in Python (vganzoo/ops/fused.py); under torch.compile the forward below reaches
// them through the dispatcher and AOTAutograd traces the backward's ATen ops.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <array>
#include <string>
#include <tuple>
#include <vector>

#include "common.h"
#include "op_handles.h"

namespace vganzoo {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

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

// A layer whose whole input is one window (a convolution with the kernel as large as its unpadded input, or
// a transposed convolution of a 1x1x1 input onto one kernel-sized output) is a matrix product, and so are
// its gradients. ATen's CPU convolution backward takes 2.5 ms for MoCoGAN's 512 -> 1 video head at batch 4
// (one thread) against 0.07 ms for the two products. Every device: the products are plain ATen ops, and on
// the GPU cuDNN ran these layers' forward at 1-5 GFLOP/s (benchmarks/RESULTS.md), so its backward is not
// expected to do better than a cuBLAS product (GPU timing pending: the bench's video-D fwd+bwd row).
bool full_window_grads_apply(const at::Tensor& x, const at::Tensor& weight, at::IntArrayRef padding,
                    at::IntArrayRef output_padding, at::IntArrayRef dilation, int64_t groups, bool transposed) {
  if (groups != 1 || x.dim() != 5) return false;
  // Symbolic shapes (torch.compile with dynamic shapes) take the general path: no guards from here.
  if (x.unsafeGetTensorImpl()->has_symbolic_sizes_strides() ||
      weight.unsafeGetTensorImpl()->has_symbolic_sizes_strides()) {
    return false;
  }
  for (int d = 0; d < 3; ++d) {
    if (padding[d] != 0 || dilation[d] != 1) return false;
    if (transposed ? (x.size(2 + d) != 1 || output_padding[d] != 0) : weight.size(2 + d) != x.size(2 + d)) {
      return false;
    }
  }
  return true;
}

// Gradients of the full-window layer from ATen matrix products (differentiable, like the general path).
std::tuple<at::Tensor, at::Tensor, at::Tensor> full_window_backward(const at::Tensor& g, const at::Tensor& x,
                                                                    const at::Tensor& weight, bool transposed,
                                                                    bool need_x, bool need_w, bool need_b) {
  const int64_t n = x.size(0);
  at::Tensor grad_x, grad_w, grad_b;
  if (!transposed) {  // y (n, c_out) = x (n, K) @ w (c_out, K)^T
    const at::Tensor g2 = g.reshape({n, weight.size(0)});
    if (need_x) grad_x = at::mm(g2, weight.reshape({weight.size(0), -1})).reshape(x.sizes());
    if (need_w) grad_w = at::mm(g2.t(), x.reshape({n, -1})).reshape(weight.sizes());
    if (need_b) grad_b = g2.sum(0);
  } else {  // y (n, c_out * k) = x (n, c_in) @ w (c_in, c_out * k)
    const at::Tensor g2 = g.reshape({n, -1});
    if (need_x) grad_x = at::mm(g2, weight.reshape({weight.size(0), -1}).t()).reshape(x.sizes());
    if (need_w) grad_w = at::mm(x.reshape({n, weight.size(0)}).t(), g2).reshape(weight.sizes());
    if (need_b) grad_b = g.sum({0, 2, 3, 4});
  }
  return {grad_x, grad_w, grad_b};
}

// vganzoo::conv3d_bias_act_backward on every device without its own kernel: ATen's convolution_backward.
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_backward_aten(const at::Tensor& grad, const at::Tensor& x,
                                                                  const at::Tensor& weight, at::IntArrayRef stride,
                                                                  at::IntArrayRef padding,
                                                                  at::IntArrayRef output_padding,
                                                                  at::IntArrayRef dilation, int64_t groups,
                                                                  bool transposed, std::array<bool, 3> mask) {
  const std::vector<c10::SymInt> bias_sizes{grad.sym_size(1)};
  const std::vector<int64_t> no_output_padding{0, 0, 0};
  return at::convolution_backward_symint(
      grad, x, weight, mask[2] ? at::OptionalSymIntArrayRef(bias_sizes) : at::OptionalSymIntArrayRef(),
      c10::fromIntArrayRefSlow(stride), c10::fromIntArrayRefSlow(padding), c10::fromIntArrayRefSlow(dilation),
      transposed, c10::fromIntArrayRefSlow(transposed ? output_padding : at::IntArrayRef(no_output_padding)),
      c10::SymInt(groups), mask);
}

// Whether the backward may call vganzoo::conv3d_bias_act_backward (the device's own gradient kernels): a
// first-order backward (grad mode off; a double backward needs ATen's differentiable ops) of concrete CUDA
// tensors (not traced by torch.compile: no symbolic sizes, no Python subclass such as FakeTensor), so a
// compiled graph keeps exactly the ATen ops it had.
bool device_backward_applies(const at::Tensor& g, const at::Tensor& x, const at::Tensor& weight) {
  if (c10::GradMode::is_enabled() || !g.is_cuda()) return false;
  for (const at::Tensor* t : {&g, &x, &weight}) {
    if (t->unsafeGetTensorImpl()->has_symbolic_sizes_strides() || t->key_set().has(c10::DispatchKey::Python)) {
      return false;
    }
  }
  return true;
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
        out = conv_transpose3d_op().call(x, weight, bias, stride, padding, output_padding, dilation, groups,
                                         activation, negative_slope);
      } else {
        out = conv3d_op().call(x, weight, bias, stride, padding, dilation, groups, activation, negative_slope);
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
      const bool transposed = ctx->saved_data["transposed"].toBool();
      const int64_t groups = ctx->saved_data["groups"].toInt();
      if (full_window_grads_apply(x, weight, padding, output_padding, dilation, groups, transposed)) {
        std::tie(grad_x, grad_w, grad_b) = full_window_backward(g, x, weight, transposed, need_x, need_w, need_b);
      } else if (device_backward_applies(g, x, weight)) {
        at::AutoDispatchBelowADInplaceOrView below;
        std::tie(grad_x, grad_w, grad_b) = conv_backward_op().call(g, x, weight, stride, padding, output_padding,
                                                                   dilation, groups, transposed,
                                                                   {need_x, need_w, need_b});
      } else {
        // The bias gradient comes from the same call (the backends reduce it alongside).
        const std::vector<c10::SymInt> bias_sizes{g.sym_size(1)};
        std::tie(grad_x, grad_w, grad_b) = at::convolution_backward_symint(
            g, x, weight, need_b ? at::OptionalSymIntArrayRef(bias_sizes) : at::OptionalSymIntArrayRef(),
            c10::fromIntArrayRefSlow(stride), c10::fromIntArrayRefSlow(padding), c10::fromIntArrayRefSlow(dilation),
            transposed, c10::fromIntArrayRefSlow(output_padding), c10::SymInt(groups), {need_x, need_w, need_b});
      }
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

TORCH_LIBRARY_IMPL(vganzoo, CompositeExplicitAutograd, m) {
  m.impl("conv3d_bias_act_backward", &vganzoo::conv_backward_aten);
}

TORCH_LIBRARY_IMPL(vganzoo, Autograd, m) {
  m.impl("conv3d_bias_act", &vganzoo::conv3d_autograd);
  m.impl("conv_transpose3d_bias_act", &vganzoo::conv_transpose3d_autograd);
}
