// The CUTLASS path of the CUDA ops (conv3d_cutlass.h): torch tensors in, the torch-free kernel interface
// (cutlass/conv3d_kernels.h) out. Everything allocated here comes from torch's caching allocator and every
// launch goes to the current stream, so the path is CUDA-graph capturable (no host synchronisation).
#include "conv3d_cutlass.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cstdint>

#ifdef VGANZOO_WITH_CUTLASS
#include "cutlass/conv3d_kernels.h"
#endif

namespace vganzoo {
namespace cuda {

#ifndef VGANZOO_WITH_CUTLASS

bool cutlass_built() { return false; }
std::string cutlass_forward_ineligible(const ConvGeometry&, const at::Tensor&) {
  return "vganzoo._C was built without CUTLASS (.ci/fetch_cutlass.sh, then rebuild)";
}
at::Tensor cutlass_forward(const ConvGeometry&, const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                           Act, double) {
  TORCH_CHECK(false, "internal: vganzoo._C was built without CUTLASS");
}
std::string cutlass_backward_ineligible(const ConvGeometry& g, const at::Tensor& x, std::array<bool, 3>) {
  return cutlass_forward_ineligible(g, x);
}
std::tuple<at::Tensor, at::Tensor, at::Tensor> cutlass_backward(const ConvGeometry&, const at::Tensor&,
                                                                const at::Tensor&, const at::Tensor&,
                                                                std::array<bool, 3>) {
  TORCH_CHECK(false, "internal: vganzoo._C was built without CUTLASS");
}

#else

namespace {

namespace cc = vganzoo::cutlass_conv3d;

constexpr int64_t kOperandAlignmentBytes = 16;  // the kernels' 128-bit accesses
// Serial split-K of the weight gradient: enough thread blocks to fill the card, each slice at least this
// many reduction steps (N * Z * P * Q) so the partial-sum traffic stays small.
constexpr int kMaxSplitK = 16;
constexpr int64_t kMinReductionPerSlice = 2048;
constexpr int kTileM = 128, kTileN = 128;  // cutlass/conv3d_cutlass.cuh's block tile

bool tf32_allowed() { return at::globalContext().allowTF32CuDNN(at::Float32Op::CONV); }

int device_attribute(cudaDeviceAttr attr, int device) {
  int value = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&value, attr, device));
  return value;
}

std::optional<cc::DType> cutlass_dtype(at::ScalarType t) {
  switch (t) {
    case at::kBFloat16: return cc::DType::kBFloat16;
    case at::kHalf: return cc::DType::kHalf;
    case at::kFloat:
      // TF32 exactly where torch lets cuDNN use it for convolutions; exact float32 stays on the other paths.
      if (tf32_allowed()) return cc::DType::kTF32;
      return std::nullopt;
    default: return std::nullopt;
  }
}

int to_int(int64_t v) { return static_cast<int>(v); }

// The convolution in CUTLASS's terms. For a transposed convolution, the convolution whose data gradient it
// is: CUTLASS's activation is the transposed layer's output (C = c_out), its output the layer's input
// (K = c_in), and the (c_in, c_out, k...) weight is that convolution's (K, C, T, R, S) filter.
cc::Problem problem_of(const ConvGeometry& g) {
  cc::Problem p{};
  const int64_t* act_size = g.transposed ? g.out : g.in;
  const int64_t* out_size = g.transposed ? g.in : g.out;
  p.n = to_int(g.n);
  p.d = to_int(act_size[0]), p.h = to_int(act_size[1]), p.w = to_int(act_size[2]);
  p.c = to_int(g.transposed ? g.c_out : g.c_in);
  p.k = to_int(g.transposed ? g.c_in : g.c_out);
  p.t = to_int(g.k[0]), p.r = to_int(g.k[1]), p.s = to_int(g.k[2]);
  p.z = to_int(out_size[0]), p.p = to_int(out_size[1]), p.q = to_int(out_size[2]);
  p.pad_d = to_int(g.pad[0]), p.pad_h = to_int(g.pad[1]), p.pad_w = to_int(g.pad[2]);
  p.stride_d = to_int(g.stride[0]), p.stride_h = to_int(g.stride[1]), p.stride_w = to_int(g.stride[2]);
  p.dilation_d = to_int(g.dil[0]), p.dilation_h = to_int(g.dil[1]), p.dilation_w = to_int(g.dil[2]);
  p.split_k_slices = 1;
  return p;
}

bool unit_stride(const ConvGeometry& g) { return g.stride[0] == 1 && g.stride[1] == 1 && g.stride[2] == 1; }

cc::Kernel dgrad_kernel(const ConvGeometry& g) {
  return unit_stride(g) ? cc::Kernel::kDgradUnitStride : cc::Kernel::kDgradStrided;
}

// What CUTLASS computes for the forward: fprop, or dgrad for a transposed convolution.
cc::Kernel forward_kernel(const ConvGeometry& g) { return g.transposed ? dgrad_kernel(g) : cc::Kernel::kFprop; }
// The input gradient: the other one of the two.
cc::Kernel input_grad_kernel(const ConvGeometry& g) { return g.transposed ? cc::Kernel::kFprop : dgrad_kernel(g); }

// The checks every CUTLASS call shares; "" where they pass.
std::string common_ineligible(const ConvGeometry& g, const at::Tensor& x, std::optional<cc::DType>* dtype) {
  if (g.n == 0) return "empty batch";
  *dtype = cutlass_dtype(x.scalar_type());
  if (!dtype->has_value()) {
    return x.scalar_type() == at::kFloat
               ? "float32 with TF32 disallowed for convolutions (torch.backends.cudnn.allow_tf32 = False): "
                 "CUTLASS runs float32 as TF32 only"
               : "CUTLASS kernels are built for bfloat16, float16 and float32-as-TF32 only";
  }
  if (device_attribute(cudaDevAttrComputeCapabilityMajor, x.device().index()) < 8) {
    return "the CUTLASS kernels need sm_80+";
  }
  if (g.groups != 1) return "groups > 1";
  for (int d = 0; d < 3; ++d) {
    if (g.dil[d] != 1) return "dilation > 1";
  }
  const int64_t align = cc::alignment(**dtype);
  if (g.c_in % align != 0 || g.c_out % align != 0) {
    return "channel counts not multiples of " + std::to_string(align) + " (CUTLASS's 128-bit accesses)";
  }
  return "";
}

std::string kernel_ineligible(cc::Kernel kernel, cc::DType dtype, const cc::Problem& p) {
  const cc::Ops* ops = cc::ops(kernel, dtype);
  if (ops == nullptr) return "no CUTLASS kernel compiled for it";
  const int status = ops->can_implement(p);
  if (status != 0) return std::string(ops->name) + " cannot run it (" + cc::status_name(status) + ")";
  return "";
}

bool aligned(const at::Tensor& t) {
  return reinterpret_cast<std::uintptr_t>(t.const_data_ptr()) % kOperandAlignmentBytes == 0;
}

// t as a 16-byte aligned NDHWC tensor (a view where it already is one, else a copy).
at::Tensor ndhwc(const at::Tensor& t) {
  at::Tensor out = t.contiguous(at::MemoryFormat::ChannelsLast3d);
  if (!aligned(out)) out = out.clone(at::MemoryFormat::ChannelsLast3d);
  return out;
}

at::Tensor aligned_vector(const at::Tensor& t) {
  at::Tensor out = t.contiguous();
  if (!aligned(out)) out = out.clone();
  return out;
}

void check_status(const cc::Ops* ops, int status) {
  TORCH_CHECK(status == 0, "vganzoo CUTLASS kernel ", ops->name, " failed: ", cc::status_name(status));
}

at::Tensor in_format(const at::Tensor& t, at::MemoryFormat fmt) { return t.is_contiguous(fmt) ? t : t.contiguous(fmt); }

// Serial split-K slices for a weight gradient: enough blocks for every SM, each slice a long reduction.
int wgrad_split_k(const cc::Problem& p, int device) {
  const int64_t tiles = ((p.k + kTileM - 1) / kTileM) * ((static_cast<int64_t>(p.c) * p.t * p.r * p.s + kTileN - 1) / kTileN);
  const int64_t reduction = static_cast<int64_t>(p.n) * p.z * p.p * p.q;
  static thread_local int cached_device = -1, cached_sms = 0;
  if (cached_device != device) {
    cached_sms = device_attribute(cudaDevAttrMultiProcessorCount, device);
    cached_device = device;
  }
  int64_t slices = std::min<int64_t>(kMaxSplitK, std::max<int64_t>(1, (2 * cached_sms + tiles - 1) / tiles));
  while (slices > 1 && reduction / slices < kMinReductionPerSlice) --slices;
  return static_cast<int>(slices);
}

void run_kernel(cc::Kernel kernel, cc::DType dtype, const cc::Problem& p, const at::Tensor& a, const at::Tensor& b,
                at::Tensor& d, const cc::Epilogue& epilogue) {
  const cc::Ops* ops = cc::ops(kernel, dtype);
  TORCH_CHECK(ops != nullptr, "internal: no CUTLASS kernel for this call");
  const std::size_t bytes = ops->workspace_bytes(p);
  // Scratch from the caching allocator (split-K semaphores; CUTLASS zeroes it on the stream).
  at::Tensor workspace = bytes > 0 ? at::empty({static_cast<int64_t>(bytes)}, a.options().dtype(at::kByte)) : at::Tensor();
  auto stream = c10::cuda::getCurrentCUDAStream(a.device().index());
  check_status(ops, ops->run(p, a.const_data_ptr(), b.const_data_ptr(), d.mutable_data_ptr(), epilogue,
                             workspace.defined() ? workspace.mutable_data_ptr() : nullptr, stream.stream()));
}

}  // namespace

bool cutlass_built() { return true; }

std::string cutlass_forward_ineligible(const ConvGeometry& g, const at::Tensor& x) {
  std::optional<cc::DType> dtype;
  std::string why = common_ineligible(g, x, &dtype);
  if (!why.empty()) return why;
  return kernel_ineligible(forward_kernel(g), *dtype, problem_of(g));
}

at::Tensor cutlass_forward(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias, Act act, double slope) {
  const cc::DType dtype = *cutlass_dtype(x.scalar_type());
  const at::Tensor x_cl = ndhwc(x);
  // (c_out, c_in, k...) conv weight or (c_in, c_out, k...) transposed weight: channels-last memory is CUTLASS's
  // (K, T, R, S, C) filter either way (see problem_of).
  const at::Tensor w_cl = ndhwc(weight);
  const at::Tensor b = (bias.has_value() && bias->defined()) ? aligned_vector(*bias) : at::Tensor();
  at::Tensor y = at::empty(output_sizes(g), x.options().memory_format(at::MemoryFormat::ChannelsLast3d));
  cc::Epilogue epilogue;
  epilogue.bias = b.defined() ? b.const_data_ptr() : nullptr;
  epilogue.act = static_cast<int>(act);
  epilogue.slope = static_cast<float>(slope);
  run_kernel(forward_kernel(g), dtype, problem_of(g), x_cl, w_cl, y, epilogue);
  return in_format(y, output_memory_format(x));
}

std::string cutlass_backward_ineligible(const ConvGeometry& g, const at::Tensor& x, std::array<bool, 3> mask) {
  std::optional<cc::DType> dtype;
  std::string why = common_ineligible(g, x, &dtype);
  if (!why.empty()) return why;
  cc::Problem p = problem_of(g);
  if (mask[0]) {
    why = kernel_ineligible(input_grad_kernel(g), *dtype, p);
    if (!why.empty()) return why;
  }
  if (mask[1]) {
    p.split_k_slices = wgrad_split_k(p, x.device().index());
    why = kernel_ineligible(cc::Kernel::kWgrad, *dtype, p);
  }
  return why;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> cutlass_backward(const ConvGeometry& g, const at::Tensor& grad,
                                                                const at::Tensor& x, const at::Tensor& weight,
                                                                std::array<bool, 3> mask) {
  const cc::DType dtype = *cutlass_dtype(x.scalar_type());
  cc::Problem p = problem_of(g);
  const at::Tensor g_cl = ndhwc(grad);
  const at::Tensor x_cl = ndhwc(x);
  // CUTLASS's "activation" and "output" tensors (problem_of): swapped for a transposed convolution.
  const at::Tensor& activation = g.transposed ? g_cl : x_cl;
  const at::Tensor& output_grad = g.transposed ? x_cl : g_cl;
  at::Tensor grad_x, grad_w, grad_b;
  if (mask[0]) {
    // dgrad (dy, w) -> dx of a convolution; fprop (dy, w) -> dx of a transposed one. No epilogue.
    grad_x = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::ChannelsLast3d));
    const at::Tensor w_cl = ndhwc(weight);
    run_kernel(input_grad_kernel(g), dtype, p, g_cl, w_cl, grad_x, cc::Epilogue{});
    grad_x = in_format(grad_x, output_memory_format(x));
  }
  if (mask[1]) {
    // wgrad (dy, x) -> (K, T, R, S, C) in float32: the weight's channels-last memory.
    p.split_k_slices = wgrad_split_k(p, x.device().index());
    at::Tensor dw = at::empty(weight.sizes(), weight.options().dtype(at::kFloat).memory_format(at::MemoryFormat::ChannelsLast3d));
    run_kernel(cc::Kernel::kWgrad, dtype, p, output_grad, activation, dw, cc::Epilogue{});
    grad_w = dw.to(weight.scalar_type()).contiguous(weight.suggest_memory_format());
  }
  if (mask[2]) grad_b = grad.sum({0, 2, 3, 4});
  return {grad_x, grad_w, grad_b};
}

#endif  // VGANZOO_WITH_CUTLASS

}  // namespace cuda
}  // namespace vganzoo
