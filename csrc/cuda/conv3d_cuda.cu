// CUDA implementation of vganzoo::conv3d_bias_act / conv_transpose3d_bias_act.
//
// Covered by our own implicit-GEMM kernel (kernels/conv3d_igemm.cuh): forward convolutions with
// groups == 1, float32 (exact FMA kernel) or float16 / bfloat16 (tensor cores, sm_80+), any stride,
// padding and dilation, sizes whose element counts fit 32-bit GEMM indices. The kernel works in NDHWC:
// a contiguous input is viewed channels-last (one copy) and the output is converted back to the input's
// memory format (the op pays for that layout change). Everything else (transposed convolutions,
// groups > 1, float64, huge tensors) falls back to ATen's convolution followed by our in-place bias +
// activation epilogue kernel. `vganzoo.ops.explain` reports which path a call takes.
//
// Only c10/cuda headers are used for streams, guards and launch checks (no cuBLAS / ATen-CUDA headers).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>
#include <string>

#include "common.h"
#include "entry_points.h"
#include "kernels/common.cuh"
#include "kernels/conv3d_igemm.cuh"

namespace vganzoo {
namespace cuda {
namespace {

namespace ck = vganzoo::cuda_kernels;

enum class Path { Empty, IgemmTensorCore, IgemmFp32, AtenEpilogue };

struct Plan {
  Path path;
  std::string reason;
};

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// Input channels are padded to this multiple in the packed weight (zero taps), so that a 3-channel
// first layer still feeds whole 16-wide K fragments to the tensor cores with few wasted lanes.
constexpr int64_t kChannelPad = 4;
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

// Whether torch lets cuDNN convolutions use TF32 (torch.backends.cudnn.allow_tf32 /
// torch.backends.cudnn.conv.fp32_precision). Then eager float32 convolutions run on tensor cores and
// our exact-FMA float32 kernel cannot keep up, so float32 takes cuDNN + our epilogue, with eager's numerics.
bool tf32_allowed() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 14)
  return at::globalContext().allowTF32CuDNN(at::Float32Op::CONV);
#else
  return at::globalContext().allowTF32CuDNN();
#endif
}

// Developer override for benchmarking the paths against each other: "igemm" (our kernel wherever it
// covers the call) or "aten" (ATen + fused epilogue everywhere). Read per call so a benchmark can switch.
const char* forced_strategy() { return std::getenv("VGANZOO_CUDA_STRATEGY"); }

Plan choose_path(const ConvGeometry& g, const at::Tensor& x) {
  if (g.n == 0) return {Path::Empty, "empty batch: output allocated, nothing computed"};
  const char* forced = forced_strategy();
  if (forced != nullptr && std::strcmp(forced, "aten") == 0) {
    return {Path::AtenEpilogue, "forced by VGANZOO_CUDA_STRATEGY=aten: ATen (cuDNN) + fused bias/act epilogue"};
  }
  if (g.transposed) return {Path::AtenEpilogue, "transposed convolution: ATen (cuDNN) + fused bias/act epilogue"};
  if (g.groups != 1) return {Path::AtenEpilogue, "groups > 1: ATen (cuDNN) + fused bias/act epilogue"};
  const int64_t m = g.n * g.out[0] * g.out[1] * g.out[2];
  const int64_t k = g.k[0] * g.k[1] * g.k[2] * round_up(g.c_in, kChannelPad);
  if (m > kInt32Max || k > kInt32Max || x.numel() > kInt32Max * 8 || m * g.c_out > kInt32Max * 8) {
    return {Path::AtenEpilogue, "tensor too large for the 32-bit GEMM indexing: ATen + fused epilogue"};
  }
  switch (x.scalar_type()) {
    case at::kHalf:
    case at::kBFloat16: {
      int major = 0;
      C10_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, x.device().index()));
      if (major < 8) return {Path::AtenEpilogue, "tensor-core kernel needs sm_80+: ATen + fused epilogue"};
      return {Path::IgemmTensorCore, "implicit-GEMM kernel, tensor cores (WMMA), fused bias/act epilogue"};
    }
    case at::kFloat:
      if (tf32_allowed() && !(forced != nullptr && std::strcmp(forced, "igemm") == 0)) {
        return {Path::AtenEpilogue, "float32 with TF32 allowed for cuDNN convolutions: cuDNN (TF32 tensor cores) + "
                                    "fused bias/act epilogue; our float32 kernel is exact FMA"};
      }
      return {Path::IgemmFp32, "implicit-GEMM kernel, float32 FMA, fused bias/act epilogue"};
    default:
      return {Path::AtenEpilogue, "float64: ATen + fused bias/act epilogue"};
  }
}

const char* path_name(Path p) {
  switch (p) {
    case Path::Empty: return "empty";
    case Path::IgemmTensorCore: return "igemm_tensor_core";
    case Path::IgemmFp32: return "igemm_fp32";
    case Path::AtenEpilogue: return "aten_conv+bias_act_epilogue";
  }
  return "?";
}

ck::ConvParams make_params(const ConvGeometry& g, int64_t c_in_pad, Act act, double slope) {
  ck::ConvParams p{};
  p.n = static_cast<int>(g.n);
  p.c_in = static_cast<int>(g.c_in);
  p.c_in_pad = static_cast<int>(c_in_pad);
  p.c_out = static_cast<int>(g.c_out);
  p.in_t = static_cast<int>(g.in[0]), p.in_h = static_cast<int>(g.in[1]), p.in_w = static_cast<int>(g.in[2]);
  p.out_t = static_cast<int>(g.out[0]), p.out_h = static_cast<int>(g.out[1]), p.out_w = static_cast<int>(g.out[2]);
  p.k_t = static_cast<int>(g.k[0]), p.k_h = static_cast<int>(g.k[1]), p.k_w = static_cast<int>(g.k[2]);
  p.s_t = static_cast<int>(g.stride[0]), p.s_h = static_cast<int>(g.stride[1]), p.s_w = static_cast<int>(g.stride[2]);
  p.p_t = static_cast<int>(g.pad[0]), p.p_h = static_cast<int>(g.pad[1]), p.p_w = static_cast<int>(g.pad[2]);
  p.d_t = static_cast<int>(g.dil[0]), p.d_h = static_cast<int>(g.dil[1]), p.d_w = static_cast<int>(g.dil[2]);
  p.m = static_cast<int>(g.n * g.out[0] * g.out[1] * g.out[2]);
  p.k = static_cast<int>(g.k[0] * g.k[1] * g.k[2] * c_in_pad);
  p.act = static_cast<int>(act);
  p.slope = static_cast<float>(slope);
  return p;
}

// Whether the kernels' vectorised loads apply: runs of `run` consecutive k stay inside one tap (c_in is a
// multiple of the run, so no channel padding) and both operands are 16-byte aligned.
bool vector_loads_ok(int64_t c_in, int64_t run, const at::Tensor& x, const at::Tensor& w) {
  const auto aligned = [](const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; };
  return c_in % run == 0 && aligned(x.const_data_ptr()) && aligned(w.const_data_ptr());
}

template <typename T, typename scalar_t>
void launch_igemm_wmma(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, at::Tensor& y,
                       const ck::ConvParams& p, cudaStream_t stream) {
  const T* xp = reinterpret_cast<const T*>(x.const_data_ptr<scalar_t>());
  const T* wp = reinterpret_cast<const T*>(w.const_data_ptr<scalar_t>());
  const T* bp = b.defined() ? reinterpret_cast<const T*>(b.const_data_ptr<scalar_t>()) : nullptr;
  T* yp = reinterpret_cast<T*>(y.mutable_data_ptr<scalar_t>());
  dim3 grid((p.m + ck::wmma_cfg::kBM - 1) / ck::wmma_cfg::kBM, (p.c_out + ck::wmma_cfg::kBN - 1) / ck::wmma_cfg::kBN);
  if (vector_loads_ok(p.c_in, ck::wmma_cfg::kBK / 2, x, w)) {
    ck::conv3d_igemm_wmma_kernel<T, true><<<grid, ck::wmma_cfg::kThreads, 0, stream>>>(xp, wp, bp, yp, p);
  } else {
    ck::conv3d_igemm_wmma_kernel<T, false><<<grid, ck::wmma_cfg::kThreads, 0, stream>>>(xp, wp, bp, yp, p);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void launch_igemm_simt(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, at::Tensor& y,
                       const ck::ConvParams& p, cudaStream_t stream) {
  const float* bp = b.defined() ? b.const_data_ptr<float>() : nullptr;
  dim3 grid((p.m + ck::simt_cfg::kBM - 1) / ck::simt_cfg::kBM, (p.c_out + ck::simt_cfg::kBN - 1) / ck::simt_cfg::kBN);
  if (vector_loads_ok(p.c_in, 4, x, w)) {
    ck::conv3d_igemm_simt_kernel<float, true><<<grid, ck::simt_cfg::kThreads, 0, stream>>>(
        x.const_data_ptr<float>(), w.const_data_ptr<float>(), bp, y.mutable_data_ptr<float>(), p);
  } else {
    ck::conv3d_igemm_simt_kernel<float, false><<<grid, ck::simt_cfg::kThreads, 0, stream>>>(
        x.const_data_ptr<float>(), w.const_data_ptr<float>(), bp, y.mutable_data_ptr<float>(), p);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, typename scalar_t>
void launch_bias_act(at::Tensor& y, const at::Tensor& b, int64_t c, int64_t s, bool cl, Act act, double slope,
                     cudaStream_t stream) {
  constexpr int kThreads = 256;
  constexpr int64_t kMaxBlocks = 65535 * 8;  // grid-stride loop covers the rest
  const int64_t total = y.numel();
  const int64_t blocks = std::min<int64_t>((total + kThreads - 1) / kThreads, kMaxBlocks);
  ck::bias_act_inplace_kernel<T><<<blocks, kThreads, 0, stream>>>(
      reinterpret_cast<T*>(y.mutable_data_ptr<scalar_t>()),
      b.defined() ? reinterpret_cast<const T*>(b.const_data_ptr<scalar_t>()) : nullptr, total, c, s, cl,
      static_cast<int>(act), static_cast<float>(slope));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor run_igemm(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                     const std::optional<at::Tensor>& bias, Act act, double slope, bool tensor_cores) {
  const auto fmt = output_memory_format(x);
  const int64_t c_in_pad = round_up(g.c_in, kChannelPad);
  // NDHWC views: for a channels_last_3d tensor, physical memory is (N, T, H, W, C).
  at::Tensor x_cl = x.contiguous(at::MemoryFormat::ChannelsLast3d);
  at::Tensor w_packed = at::zeros({g.c_out, g.k[0], g.k[1], g.k[2], c_in_pad}, weight.options());
  w_packed.narrow(4, 0, g.c_in).copy_(weight.permute({0, 2, 3, 4, 1}));
  at::Tensor b = (bias.has_value() && bias->defined()) ? bias->contiguous() : at::Tensor();
  at::Tensor y = at::empty(output_sizes(g), x.options().memory_format(at::MemoryFormat::ChannelsLast3d));
  const ck::ConvParams p = make_params(g, c_in_pad, act, slope);
  auto stream = c10::cuda::getCurrentCUDAStream(x.device().index());

  // Explicit per-dtype launches (no AT_DISPATCH: kernels are instantiated only for the types they support).
  switch (x.scalar_type()) {
    case at::kHalf:
      TORCH_CHECK(tensor_cores, "internal: half-precision igemm requires the tensor-core kernel");
      launch_igemm_wmma<__half, at::Half>(x_cl, w_packed, b, y, p, stream);
      break;
    case at::kBFloat16:
      TORCH_CHECK(tensor_cores, "internal: half-precision igemm requires the tensor-core kernel");
      launch_igemm_wmma<__nv_bfloat16, at::BFloat16>(x_cl, w_packed, b, y, p, stream);
      break;
    case at::kFloat:
      launch_igemm_simt(x_cl, w_packed, b, y, p, stream);
      break;
    default:
      TORCH_CHECK(false, "internal: igemm path selected for unsupported dtype ", x.scalar_type());
  }
  return fmt == at::MemoryFormat::ChannelsLast3d ? y : y.contiguous(fmt);
}

void bias_act_cuda_(at::Tensor& y, const std::optional<at::Tensor>& bias, Act act, double slope) {
  const bool has_bias = bias.has_value() && bias->defined();
  if ((act == Act::None && !has_bias) || y.numel() == 0) return;
  const bool cl = !y.is_contiguous() && y.is_contiguous(at::MemoryFormat::ChannelsLast3d);
  TORCH_CHECK(cl || y.is_contiguous(), "bias_act: output must be contiguous or channels_last_3d");
  at::Tensor b = has_bias ? bias->contiguous() : at::Tensor();
  const int64_t total = y.numel(), c = y.size(1), s = total / std::max<int64_t>(y.size(0) * c, 1);
  auto stream = c10::cuda::getCurrentCUDAStream(y.device().index());
  switch (y.scalar_type()) {
    case at::kFloat: launch_bias_act<float, float>(y, b, c, s, cl, act, slope, stream); break;
    case at::kHalf: launch_bias_act<__half, at::Half>(y, b, c, s, cl, act, slope, stream); break;
    case at::kBFloat16: launch_bias_act<__nv_bfloat16, at::BFloat16>(y, b, c, s, cl, act, slope, stream); break;
    default: {
      // float64 (rare on GPU): plain ATen ops, in place.
      if (b.defined()) y.add_(b.view({1, c, 1, 1, 1}));
      switch (act) {
        case Act::Relu: y.relu_(); break;
        case Act::LeakyRelu: at::leaky_relu_(y, slope); break;
        case Act::Tanh: y.tanh_(); break;
        case Act::Sigmoid: y.sigmoid_(); break;
        case Act::None: break;
      }
    }
  }
}

at::Tensor run_aten(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                    const std::optional<at::Tensor>& bias, Act act, double slope) {
  const auto fmt = output_memory_format(x);
  at::Tensor y = at::convolution(x, weight, std::nullopt, at::IntArrayRef(g.stride, 3), at::IntArrayRef(g.pad, 3),
                                 at::IntArrayRef(g.dil, 3), g.transposed, at::IntArrayRef(g.out_pad, 3), g.groups);
  if (!y.is_contiguous(fmt)) y = y.contiguous(fmt);
  bias_act_cuda_(y, bias, act, slope);
  return y;
}

at::Tensor forward(const char* op, const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                   at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef output_padding,
                   at::IntArrayRef dilation, int64_t groups, bool transposed, c10::string_view activation,
                   double negative_slope) {
  const Act act = parse_activation(activation, negative_slope);
  const ConvGeometry g =
      check_conv_args(op, x, weight, bias, stride, padding, output_padding, dilation, groups, transposed);
  const c10::cuda::CUDAGuard guard(x.device());
  const Plan plan = choose_path(g, x);
  switch (plan.path) {
    case Path::Empty:
      return at::empty(output_sizes(g), x.options().memory_format(output_memory_format(x)));
    case Path::IgemmTensorCore:
      return run_igemm(g, x, weight, bias, act, negative_slope, true);
    case Path::IgemmFp32:
      return run_igemm(g, x, weight, bias, act, negative_slope, false);
    case Path::AtenEpilogue:
      break;
  }
  return run_aten(g, x, weight, bias, act, negative_slope);
}

VGANZOO_DEVICE_ENTRY_POINTS("ext/cuda:")

}  // namespace
}  // namespace cuda
}  // namespace vganzoo

TORCH_LIBRARY_IMPL(vganzoo, CUDA, m) {
  m.impl("conv3d_bias_act", &vganzoo::cuda::conv3d_entry);
  m.impl("conv_transpose3d_bias_act", &vganzoo::cuda::conv_transpose3d_entry);
  m.impl("explain", &vganzoo::cuda::explain_entry);
}
