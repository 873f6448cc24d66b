// Argument checks shared by the CPU and CUDA implementations (see common.h).
#include "common.h"

namespace vganzoo {

// Every Act in code order. The names live in activation_name() only; vganzoo/ops/activations.py holds
// the same table (name, code) for Python, and tests/ops/test_activations.py checks the two agree.
static constexpr Act kActivations[] = {Act::None, Act::Relu, Act::LeakyRelu, Act::Tanh, Act::Sigmoid};

const char* activation_name(Act act) {
  switch (act) {
    case Act::None: return "none";
    case Act::Relu: return "relu";
    case Act::LeakyRelu: return "leaky_relu";
    case Act::Tanh: return "tanh";
    case Act::Sigmoid: return "sigmoid";
  }
  return "?";
}

Act parse_activation(c10::string_view name, double negative_slope) {
  for (const Act act : kActivations) {
    if (name != activation_name(act)) continue;
    TORCH_CHECK_VALUE(act != Act::LeakyRelu || negative_slope >= 0.0,
                      "negative_slope must be >= 0 for activation='leaky_relu' (the backward pass derives "
                      "the gradient from the saved output), got ", negative_slope);
    return act;
  }
  std::string names;
  for (const Act act : kActivations) {
    names += std::string(names.empty() ? "'" : ", '") + activation_name(act) + "'";
  }
  TORCH_CHECK_VALUE(false, "activation must be one of ", names, ", got '", std::string(name), "'");
}

static void check_triple(const char* op, const char* name, at::IntArrayRef v, int64_t min_value) {
  TORCH_CHECK_VALUE(v.size() == 3, op, ": ", name, " must have 3 elements (T, H, W), got ", v.size());
  for (auto e : v) {
    TORCH_CHECK_VALUE(e >= min_value, op, ": ", name, " must be >= ", min_value, " in every dimension, got ", v);
  }
}

ConvGeometry check_conv_args(const char* op, const at::Tensor& x, const at::Tensor& weight,
                             const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                             at::IntArrayRef padding, at::IntArrayRef output_padding,
                             at::IntArrayRef dilation, int64_t groups, bool transposed) {
  TORCH_CHECK_VALUE(x.dim() == 5, op, ": x must be 5-D (N, C, T, H, W), got a ", x.dim(), "-D tensor of shape ",
                    x.sizes());
  TORCH_CHECK_VALUE(weight.dim() == 5, op, ": weight must be 5-D, got a ", weight.dim(), "-D tensor of shape ",
                    weight.sizes());
  auto floating = [](at::ScalarType t) {
    return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
  };
  TORCH_CHECK_TYPE(floating(x.scalar_type()), op, ": x must be a floating tensor (float32, float16, bfloat16 or "
                   "float64), got ", x.scalar_type());
  TORCH_CHECK_TYPE(weight.scalar_type() == x.scalar_type(), op, ": weight dtype ", weight.scalar_type(),
                   " does not match x dtype ", x.scalar_type());
  TORCH_CHECK_VALUE(weight.device() == x.device(), op, ": weight is on ", weight.device(), " but x is on ",
                    x.device());
  TORCH_CHECK_VALUE(groups >= 1, op, ": groups must be >= 1, got ", groups);
  check_triple(op, "stride", stride, 1);
  check_triple(op, "padding", padding, 0);
  check_triple(op, "dilation", dilation, 1);

  ConvGeometry g{};
  g.transposed = transposed;
  g.groups = groups;
  g.n = x.size(0);
  g.c_in = x.size(1);
  if (transposed) {
    check_triple(op, "output_padding", output_padding, 0);
    TORCH_CHECK_VALUE(weight.size(0) == g.c_in, op, ": weight.shape[0] (", weight.size(0),
                      ") must equal the input channels x.shape[1] (", g.c_in, ") for a transposed convolution");
    TORCH_CHECK_VALUE(g.c_in % groups == 0, op, ": groups (", groups, ") must divide the input channels (", g.c_in, ")");
    g.c_out = weight.size(1) * groups;
  } else {
    TORCH_CHECK_VALUE(g.c_in % groups == 0, op, ": groups (", groups, ") must divide the input channels (", g.c_in, ")");
    TORCH_CHECK_VALUE(weight.size(0) % groups == 0, op, ": groups (", groups,
                      ") must divide the output channels weight.shape[0] (", weight.size(0), ")");
    TORCH_CHECK_VALUE(weight.size(1) * groups == g.c_in, op, ": x has ", g.c_in,
                      " channels but weight expects ", weight.size(1), " x groups (", groups, ") = ",
                      weight.size(1) * groups);
    g.c_out = weight.size(0);
  }
  TORCH_CHECK_VALUE(g.c_out >= 1, op, ": the convolution must have at least one output channel");
  for (int d = 0; d < 3; ++d) {
    g.in[d] = x.size(2 + d);
    g.k[d] = weight.size(2 + d);
    g.stride[d] = stride[d];
    g.pad[d] = padding[d];
    g.dil[d] = dilation[d];
    g.out_pad[d] = transposed ? output_padding[d] : 0;
    TORCH_CHECK_VALUE(g.k[d] >= 1, op, ": weight kernel sizes must be >= 1, got ", weight.sizes());
    TORCH_CHECK_VALUE(g.in[d] >= 1, op, ": x spatial sizes (T, H, W) must be >= 1, got ", x.sizes());
    const int64_t span = g.dil[d] * (g.k[d] - 1) + 1;
    if (transposed) {
      TORCH_CHECK_VALUE(g.out_pad[d] < g.stride[d] || g.out_pad[d] < g.dil[d], op,
                        ": output_padding must be smaller than either stride or dilation, got output_padding=",
                        output_padding, " stride=", stride, " dilation=", dilation);
      g.out[d] = (g.in[d] - 1) * g.stride[d] - 2 * g.pad[d] + span + g.out_pad[d];
      TORCH_CHECK_VALUE(g.out[d] >= 1, op, ": padding ", padding, " is too large: the output would have size ",
                        g.out[d], " in dimension ", "THW"[d]);
    } else {
      TORCH_CHECK_VALUE(span <= g.in[d] + 2 * g.pad[d], op, ": kernel (dilated size ", span, " in dimension ",
                        "THW"[d], ") is larger than the padded input (", g.in[d], " + 2*", g.pad[d], ")");
      g.out[d] = (g.in[d] + 2 * g.pad[d] - span) / g.stride[d] + 1;
    }
  }
  if (bias.has_value() && bias->defined()) {
    const auto& b = *bias;
    TORCH_CHECK_TYPE(b.scalar_type() == x.scalar_type(), op, ": bias dtype ", b.scalar_type(),
                     " does not match x dtype ", x.scalar_type());
    TORCH_CHECK_VALUE(b.device() == x.device(), op, ": bias is on ", b.device(), " but x is on ", x.device());
    TORCH_CHECK_VALUE(b.dim() == 1 && b.size(0) == g.c_out, op, ": bias must have shape (", g.c_out,
                      ",), got ", b.sizes());
  }
  return g;
}

at::MemoryFormat output_memory_format(const at::Tensor& x) {
  if (!x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast3d)) {
    return at::MemoryFormat::ChannelsLast3d;
  }
  return at::MemoryFormat::Contiguous;
}

bool is_full_window(const ConvGeometry& g) {
  if (g.groups != 1 || g.n == 0) return false;
  for (int d = 0; d < 3; ++d) {
    if (g.pad[d] != 0 || g.dil[d] != 1) return false;
    if (g.transposed ? (g.in[d] != 1 || g.out_pad[d] != 0) : g.k[d] != g.in[d]) return false;
  }
  return true;
}

at::Tensor full_window_product(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                               at::MemoryFormat out_format, const at::Tensor& bias_in_gemm) {
  TORCH_CHECK(!(bias_in_gemm.defined() && g.transposed), "internal: full_window_product folds the bias only "
              "into a non-transposed layer");
  if (!g.transposed) {  // (N, C_in*KT*KH*KW) x (C_in*KT*KH*KW, C_out): the input's (c, t, h, w) order is the weight's
    at::Tensor y = at::empty({g.n, g.c_out, 1, 1, 1}, x.options().memory_format(out_format));
    at::Tensor y2 = y.view({g.n, g.c_out});
    const at::Tensor x2 = x.reshape({g.n, -1}), w2 = weight.reshape({g.c_out, -1}).t();
    if (bias_in_gemm.defined()) {
      at::addmm_out(y2, bias_in_gemm, x2, w2);
    } else {
      at::mm_out(y2, x2, w2);
    }
    return y;
  }
  // (N, C_in) x (C_in, C_out*KT*KH*KW) is the output in (c, t, h, w) order.
  at::Tensor y = at::empty({g.n, g.c_out, g.k[0], g.k[1], g.k[2]}, x.options());
  at::Tensor y2 = y.view({g.n, g.c_out * g.k[0] * g.k[1] * g.k[2]});
  at::mm_out(y2, x.reshape({g.n, g.c_in}), weight.reshape({g.c_in, -1}));
  return y;
}

std::vector<int64_t> output_sizes(const ConvGeometry& g) {
  return {g.n, g.c_out, g.out[0], g.out[1], g.out[2]};
}

}  // namespace vganzoo
