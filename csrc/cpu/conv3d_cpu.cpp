// CPU implementation of vganzoo::conv3d_bias_act / conv_transpose3d_bias_act.
//
// The convolution itself runs in oneDNN (through ATen's mkldnn fused-convolution operators, with the
// bias and activation applied as oneDNN post-ops while the output tile is hot) or, where that is not
// available or not faster, through ATen's convolution followed by one in-place, vectorised, parallel
// bias + activation pass (cpu/bias_act.cpp). No extra output-sized allocation in either path.
// The output keeps the input's memory format (common.h: output_memory_format).
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "common.h"
#include "entry_points.h"
#include "cpu/bias_act.h"
#include "cpu/conv3d_direct.h"
#include "cpu/layout.h"

namespace vganzoo {
namespace cpu {
namespace {

enum class Path { Empty, OneDnnFused, OneDnnFusedChannelsLast, AtenEpilogue, GemmTransposeEpilogue, DirectSmallCout, FullWindowGemm };

const c10::OperatorHandle* find_op(const char* name) {
  auto handle = c10::Dispatcher::singleton().findSchema({name, ""});
  if (!handle.has_value()) return nullptr;
  return new c10::OperatorHandle(*handle);  // one per op for the process lifetime (cached by the caller)
}

const c10::OperatorHandle* onednn_conv() {
  static const c10::OperatorHandle* op = find_op("mkldnn::_convolution_pointwise");
  return op;
}

const c10::OperatorHandle* onednn_conv_transpose() {
  static const c10::OperatorHandle* op = find_op("mkldnn::_convolution_transpose_pointwise");
  return op;
}

// Developer override for benchmarking the paths against each other: "aten", "onednn", "onednn_cl", "gemm"
// (transposed, groups 1), "direct" (groups 1, c_out <= 4, float32/64). A forced path that
// does not apply to a call falls back to the automatic choice.
const char* forced_strategy() {
  return std::getenv("VGANZOO_CPU_STRATEGY");  // read per call so a benchmark can switch it
}

struct Plan {
  Path path;
  std::string reason;
};

Plan choose_path(const ConvGeometry& g, const at::Tensor& x, bool /*has_bias*/, Act /*act*/) {
  if (g.n == 0) return {Path::Empty, "empty batch: output allocated, nothing computed"};
  const bool onednn_ok = at::hasMKLDNN() && x.scalar_type() == at::kFloat &&
                         (g.transposed ? onednn_conv_transpose() != nullptr : onednn_conv() != nullptr);
  const bool input_cl = output_memory_format(x) == at::MemoryFormat::ChannelsLast3d;
  // oneDNN's deconvolution needs output_padding < stride in every dimension.
  const bool onednn_geometry_ok = !g.transposed || [&] {
    for (int d = 0; d < 3; ++d) {
      if (g.out_pad[d] >= g.stride[d]) return false;
    }
    return true;
  }();
  if (const char* forced = forced_strategy(); forced != nullptr && *forced != '\0') {
    const std::string f(forced);
    TORCH_CHECK(f == "auto" || f == "aten" || f == "onednn" || f == "onednn_cl" || f == "gemm" || f == "direct",
                "VGANZOO_CPU_STRATEGY must be one of auto, aten, onednn, onednn_cl, gemm, direct; got '", f, "'");
    const char* why = "forced by VGANZOO_CPU_STRATEGY";
    if (f == "aten") return {Path::AtenEpilogue, why};
    if (f == "direct" && direct_small_cout_supported(g, x)) return {Path::DirectSmallCout, why};
    if (f == "gemm" && g.transposed && g.groups == 1) return {Path::GemmTransposeEpilogue, why};
    if (f == "onednn_cl" && onednn_ok && onednn_geometry_ok) return {Path::OneDnnFusedChannelsLast, why};
    if (f == "onednn" && onednn_ok && onednn_geometry_ok) return {Path::OneDnnFused, why};
    // The forced path does not apply to this call: the automatic choice below.
  }
  if (full_window_applies(g, x)) {
    return {Path::FullWindowGemm, g.transposed ? "1x1x1 input spread over one kernel-sized output: one matrix product, then bias/act pass"
                                               : "kernel covers the whole unpadded input: one matrix product, then bias/act pass"};
  }
  if (direct_small_cout_applies(g, x)) {
    return {Path::DirectSmallCout, "few output channels: direct dot products over channels-last rows, bias/act before the store"};
  }
  if (!onednn_ok) {
    return {Path::AtenEpilogue, x.scalar_type() == at::kFloat ? "oneDNN fused convolution unavailable in this torch"
                                                              : "dtype is not float32 (oneDNN fused path is float32 only)"};
  }
  if (g.transposed) {
    // ATen's GEMM + col2im transposed convolution beats oneDNN where the GEMM is tall and thin:
    // a 1x1x1 input (the generator's first layer) or a few output channels (VGAN's 64 -> 1 mask head:
    // 4x eager, 64 -> 3 video head: 1.2x, against 1.1x / 0.94x through oneDNN).
    // Measured on the zoo's layers in benchmarks/bench_ops.py (--strategies).
    const int64_t in_spatial = g.in[0] * g.in[1] * g.in[2];
    const bool gemm_ok = g.groups == 1 && !input_cl;
    if (gemm_ok && in_spatial == 1) {
      return {Path::GemmTransposeEpilogue, "1x1x1 input: GEMM + col2im transposed convolution, then bias/act pass"};
    }
    if (gemm_ok && g.c_out <= 4) {
      return {Path::GemmTransposeEpilogue, "at most 4 output channels: GEMM + col2im transposed convolution, then bias/act pass"};
    }
    if (!onednn_geometry_ok) {
      return {Path::AtenEpilogue, "output_padding >= stride is not supported by oneDNN's deconvolution"};
    }
    return {Path::OneDnnFused, "oneDNN transposed convolution + post-op"};
  }
  if (input_cl) return {Path::OneDnnFused, "oneDNN convolution + post-op on the channels_last_3d input"};
  // A channels-last round trip (forced: VGANZOO_CPU_STRATEGY=onednn_cl) does not pay on contiguous
  // inputs, not even for the 3-channel first layers with the tiled transpose back: 0.54-1.0x eager with
  // 2 threads against 1.07-1.6x here (2-core box, batch 8, benchmarks/RESULTS.md).
  return {Path::OneDnnFused, "oneDNN convolution + post-op"};
}

const char* path_name(Path p) {
  switch (p) {
    case Path::Empty: return "empty";
    case Path::OneDnnFused: return "onednn_fused";
    case Path::OneDnnFusedChannelsLast: return "onednn_fused_channels_last";
    case Path::AtenEpilogue: return "aten_conv+bias_act_pass";
    case Path::GemmTransposeEpilogue: return "gemm_col2im_transpose+bias_act_pass";
    case Path::DirectSmallCout: return "direct_small_cout";
    case Path::FullWindowGemm: return "full_window_gemm+bias_act_pass";
  }
  return "?";
}

at::Tensor run_onednn(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                      const std::optional<at::Tensor>& bias, Act act, double slope, bool to_channels_last) {
  const auto fmt = output_memory_format(x);
  at::Tensor xin = to_channels_last ? x.contiguous(at::MemoryFormat::ChannelsLast3d) : x.contiguous(fmt);
  std::vector<int64_t> stride(g.stride, g.stride + 3), pad(g.pad, g.pad + 3), dil(g.dil, g.dil + 3),
      out_pad(g.out_pad, g.out_pad + 3);
  c10::List<std::optional<at::Scalar>> scalars;
  if (act == Act::LeakyRelu) scalars.push_back(at::Scalar(slope));
  torch::jit::Stack stack;
  stack.emplace_back(xin);
  stack.emplace_back(weight);
  // oneDNN reads the bias as a dense vector: a strided view (a column of a bigger tensor) would be
  // read at the wrong offsets, silently.
  stack.emplace_back(bias.has_value() && bias->defined() ? c10::IValue(bias->contiguous()) : c10::IValue());
  stack.emplace_back(pad);
  if (g.transposed) stack.emplace_back(out_pad);
  stack.emplace_back(stride);
  stack.emplace_back(dil);
  stack.emplace_back(g.groups);
  stack.emplace_back(std::string(activation_name(act)));
  stack.emplace_back(scalars);
  stack.emplace_back(c10::IValue());  // algorithm
  (g.transposed ? onednn_conv_transpose() : onednn_conv())->callBoxed(&stack);
  at::Tensor y = stack.back().toTensor();
  if (to_channels_last) return y;  // the caller converts (run_onednn_channels_last_round_trip)
  return y.is_contiguous(fmt) ? y : y.contiguous(fmt);
}

// oneDNN on a channels_last_3d copy of a contiguous input, the output converted back to contiguous.
// The batch runs in chunks of about kRoundTripChunkBytes of output, so that each chunk's channels-last
// result is still in cache when the tiled transpose (cpu/layout.cpp) reads it.
constexpr int64_t kRoundTripChunkBytes = int64_t{4} << 20;

at::Tensor run_onednn_channels_last_round_trip(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                                               const std::optional<at::Tensor>& bias, Act act, double slope) {
  const at::Tensor xcl = x.contiguous(at::MemoryFormat::ChannelsLast3d);
  if (output_memory_format(x) == at::MemoryFormat::ChannelsLast3d) {
    return run_onednn(g, xcl, weight, bias, act, slope, true);  // already channels-last in and out
  }
  at::Tensor y = at::empty(output_sizes(g), x.options());
  const int64_t sample_bytes = y.numel() / g.n * static_cast<int64_t>(y.element_size());
  const int64_t chunk = std::max<int64_t>(1, kRoundTripChunkBytes / std::max<int64_t>(sample_bytes, 1));
  for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
    const int64_t n1 = std::min(g.n, n0 + chunk);
    ConvGeometry part = g;
    part.n = n1 - n0;
    at::Tensor y_cl = run_onednn(part, xcl.slice(0, n0, n1), weight, bias, act, slope, true);
    at::Tensor dst = y.slice(0, n0, n1);
    if (y_cl.is_contiguous(at::MemoryFormat::ChannelsLast3d) && !y_cl.is_contiguous()) {
      channels_last_to_contiguous_f32(y_cl, dst);
    } else {
      dst.copy_(y_cl);  // degenerate sizes (one channel, 1x1x1 output): any layout is both formats
    }
  }
  return y;
}

at::Tensor run_aten(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                    const std::optional<at::Tensor>& bias, Act act, double slope) {
  const auto fmt = output_memory_format(x);
  at::Tensor y = at::convolution(x, weight, std::nullopt, at::IntArrayRef(g.stride, 3), at::IntArrayRef(g.pad, 3),
                                 at::IntArrayRef(g.dil, 3), g.transposed, at::IntArrayRef(g.out_pad, 3), g.groups);
  if (!y.is_contiguous(fmt)) y = y.contiguous(fmt);
  bias_act_(y, bias, act, slope);
  return y;
}

at::Tensor forward(const char* op, const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                   at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef output_padding,
                   at::IntArrayRef dilation, int64_t groups, bool transposed, c10::string_view activation,
                   double negative_slope) {
  const Act act = parse_activation(activation, negative_slope);
  const ConvGeometry g =
      check_conv_args(op, x, weight, bias, stride, padding, output_padding, dilation, groups, transposed);
  const Plan plan = choose_path(g, x, bias.has_value() && bias->defined(), act);
  switch (plan.path) {
    case Path::Empty:
      return at::empty(output_sizes(g), x.options().memory_format(output_memory_format(x)));
    case Path::OneDnnFused:
    case Path::OneDnnFusedChannelsLast:
      try {
        if (plan.path == Path::OneDnnFusedChannelsLast) {
          return run_onednn_channels_last_round_trip(g, x, weight, bias, act, negative_slope);
        }
        return run_onednn(g, x, weight, bias, act, negative_slope, false);
      } catch (const std::exception&) {
        // oneDNN rejects a few exotic geometries at primitive creation (as c10::Error or as its own
        // dnnl::error, e.g. a transposed layer with output_padding >= stride): the arguments were
        // validated above, so compute them through ATen, which raises its own error if it must.
        break;
      }
    case Path::GemmTransposeEpilogue: {
      at::Tensor y = at::slow_conv_transpose3d(x.contiguous(), weight.contiguous(), at::IntArrayRef(g.k, 3),
                                               std::nullopt, at::IntArrayRef(g.stride, 3), at::IntArrayRef(g.pad, 3),
                                               at::IntArrayRef(g.out_pad, 3), at::IntArrayRef(g.dil, 3));
      bias_act_(y, bias, act, negative_slope);
      // Chosen automatically only for contiguous inputs; forced on a channels-last one, the output
      // still follows the input's memory format.
      const auto fmt = output_memory_format(x);
      return y.is_contiguous(fmt) ? y : y.contiguous(fmt);
    }
    case Path::FullWindowGemm:
      return conv3d_full_window(g, x, weight, bias, act, negative_slope, output_memory_format(x));
    case Path::DirectSmallCout:
      return conv3d_direct_small_cout(g, x, weight, bias, act, negative_slope, output_memory_format(x));
    case Path::AtenEpilogue:
      break;
  }
  return run_aten(g, x, weight, bias, act, negative_slope);
}

VGANZOO_DEVICE_ENTRY_POINTS("ext/cpu:")

}  // namespace
}  // namespace cpu
}  // namespace vganzoo

TORCH_LIBRARY_IMPL(vganzoo, CPU, m) {
  m.impl("conv3d_bias_act", &vganzoo::cpu::conv3d_entry);
  m.impl("conv_transpose3d_bias_act", &vganzoo::cpu::conv_transpose3d_entry);
  m.impl("explain", &vganzoo::cpu::explain_entry);
}
