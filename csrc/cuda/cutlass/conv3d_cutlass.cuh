// The CUTLASS conv3d kernel configurations behind conv3d_kernels.h, and the glue from its plain Problem /
// Epilogue to CUTLASS's device API. Included by one small .cu per kernel family (fprop_bf16.cu, ...), so the
// families compile in parallel and a change to one recompiles one. Torch-free.
//
// Template arguments follow CUTLASS's own SM80 conv3d unit tests (test/unit/conv/device/conv3d_*_sm80.cu):
// DefaultConv3d{Fprop,Dgrad,Wgrad} + conv::device::ImplicitGemmConvolution, OpClassTensorOp, arch::Sm80.
#pragma once

// torch's nvcc flags disable the half / bfloat16 operators; CUTLASS expects the CUDA headers' defaults, and
// these sources include no torch header.
#undef __CUDA_NO_HALF_OPERATORS__
#undef __CUDA_NO_HALF_CONVERSIONS__
#undef __CUDA_NO_BFLOAT16_CONVERSIONS__
#undef __CUDA_NO_HALF2_OPERATORS__

#include <cutlass/cutlass.h>
#include <cutlass/conv/conv3d_problem_size.h>
#include <cutlass/conv/device/implicit_gemm_convolution.h>
#include <cutlass/conv/kernel/default_conv3d_dgrad.h>
#include <cutlass/conv/kernel/default_conv3d_fprop.h>
#include <cutlass/conv/kernel/default_conv3d_wgrad.h>
#include <cutlass/epilogue/thread/linear_combination.h>
#include <cutlass/epilogue/thread/linear_combination_generic.h>
#include <cutlass/gemm/threadblock/threadblock_swizzle.h>
#include <cutlass/layout/tensor.h>

#include <type_traits>

#include "conv3d_kernels.h"

namespace vganzoo {
namespace cutlass_conv3d {

// vganzoo::Act codes (csrc/common.h; cuda_kernels::ActCode in kernels/common.cuh): 0 none, 1 relu,
// 2 leaky_relu, 3 tanh, 4 sigmoid. Read at run time from the epilogue's parameters, so one kernel serves
// every activation (five times fewer instantiations; the switch is uniform across a thread block).
enum RuntimeActCode : int { kActNone = 0, kActRelu = 1, kActLeakyRelu = 2, kActTanh = 3, kActSigmoid = 4 };

// An activation functor for cutlass::epilogue::thread::LinearCombinationGeneric whose kind and slope are
// arguments: the epilogue's Params inherit `Arguments` and pass themselves to the functor.
template <typename T>
struct RuntimeActivation {
  struct Arguments {
    int act = kActNone;
    float slope = 0.f;
  };

  CUTLASS_HOST_DEVICE
  static float apply(float v, int act, float slope) {
    switch (act) {
      case kActRelu: return v > 0.f ? v : 0.f;
      case kActLeakyRelu: return v > 0.f ? v : v * slope;
      case kActTanh: return tanhf(v);
      case kActSigmoid: return 1.f / (1.f + expf(-v));
      default: return v;
    }
  }

  CUTLASS_HOST_DEVICE
  T operator()(T const& value, Arguments const& args = Arguments()) const {
    return T(apply(float(value), args.act, args.slope));
  }
};

template <typename T, int N>
struct RuntimeActivation<cutlass::Array<T, N>> {
  using Arguments = typename RuntimeActivation<T>::Arguments;

  CUTLASS_HOST_DEVICE
  cutlass::Array<T, N> operator()(cutlass::Array<T, N> const& values, Arguments const& args = Arguments()) const {
    cutlass::Array<T, N> out;
    CUTLASS_PRAGMA_UNROLL
    for (int i = 0; i < N; ++i) out[i] = T(RuntimeActivation<T>::apply(float(values[i]), args.act, args.slope));
    return out;
  }
};

// Per dtype: operand and output elements, the mma.sync instruction and one tile configuration (the zoo's
// layers have 64-512 channels: a 128x128 block tile, 2x2 warps of 64x64; K depth of 64 bytes per stage).
template <DType T>
struct Config;

// bfloat16 / float16: the same tile, 16-bit in and out.
template <typename Element16>
struct SixteenBitConfig {
  using Element = Element16;
  using Output = Element16;
  using Instruction = cutlass::gemm::GemmShape<16, 8, 16>;
  using Threadblock = cutlass::gemm::GemmShape<128, 128, 32>;
  using Warp = cutlass::gemm::GemmShape<64, 64, 32>;
  static constexpr int kStages = 4;
};

template <>
struct Config<DType::kBFloat16> : SixteenBitConfig<cutlass::bfloat16_t> {};

template <>
struct Config<DType::kHalf> : SixteenBitConfig<cutlass::half_t> {};

// float32 tensors read as TF32 (same 32-bit storage; the tensor cores use the top 19 bits).
template <>
struct Config<DType::kTF32> {
  using Element = cutlass::tfloat32_t;
  using Output = float;
  using Instruction = cutlass::gemm::GemmShape<16, 8, 8>;
  using Threadblock = cutlass::gemm::GemmShape<128, 128, 16>;
  using Warp = cutlass::gemm::GemmShape<64, 64, 16>;
  static constexpr int kStages = 4;
};

using Layout = cutlass::layout::TensorNDHWC;
using Accumulator = float;

// act(alpha * acc + beta * bias): the fused epilogue of fprop and dgrad.
template <DType T>
using BiasActEpilogue =
    cutlass::epilogue::thread::LinearCombinationGeneric<RuntimeActivation, typename Config<T>::Output,
                                                        128 / cutlass::sizeof_bits<typename Config<T>::Output>::value,
                                                        Accumulator, Accumulator>;

// Weight gradients in float32 (exact serial split-K partial sums; the caller casts to the weight's dtype).
using WgradEpilogue = cutlass::epilogue::thread::LinearCombination<float, 128 / cutlass::sizeof_bits<float>::value,
                                                                   Accumulator, Accumulator>;

template <DType T>
using FpropKernel = typename cutlass::conv::kernel::DefaultConv3dFprop<
    typename Config<T>::Element, Layout, typename Config<T>::Element, Layout, typename Config<T>::Output, Layout,
    Accumulator, cutlass::arch::OpClassTensorOp, cutlass::arch::Sm80, typename Config<T>::Threadblock,
    typename Config<T>::Warp, typename Config<T>::Instruction, BiasActEpilogue<T>,
    cutlass::gemm::threadblock::GemmIdentityThreadblockSwizzle<4>, Config<T>::kStages, cutlass::arch::OpMultiplyAdd,
    cutlass::conv::IteratorAlgorithm::kOptimized>::Kernel;

// Data gradient (also a transposed convolution's forward): CUTLASS's optimized iterators need every stride
// 1; the analytic ones take any stride (not dilation).
template <DType T, int Swizzle, cutlass::conv::IteratorAlgorithm Algorithm, cutlass::conv::StrideSupport Strides>
using DgradKernel = typename cutlass::conv::kernel::DefaultConv3dDgrad<
    typename Config<T>::Element, Layout, typename Config<T>::Element, Layout, typename Config<T>::Output, Layout,
    Accumulator, cutlass::arch::OpClassTensorOp, cutlass::arch::Sm80, typename Config<T>::Threadblock,
    typename Config<T>::Warp, typename Config<T>::Instruction, BiasActEpilogue<T>,
    cutlass::gemm::threadblock::GemmIdentityThreadblockSwizzle<Swizzle>, Config<T>::kStages,
    cutlass::arch::OpMultiplyAdd, Algorithm, Strides>::Kernel;

template <DType T>
using DgradUnitStrideKernel =
    DgradKernel<T, 4, cutlass::conv::IteratorAlgorithm::kOptimized, cutlass::conv::StrideSupport::kUnity>;

template <DType T>
using DgradStridedKernel =
    DgradKernel<T, 1, cutlass::conv::IteratorAlgorithm::kAnalytic, cutlass::conv::StrideSupport::kStrided>;

template <DType T>
using WgradKernel = typename cutlass::conv::kernel::DefaultConv3dWgrad<
    typename Config<T>::Element, Layout, typename Config<T>::Element, Layout, float, Layout, Accumulator,
    cutlass::arch::OpClassTensorOp, cutlass::arch::Sm80, typename Config<T>::Threadblock, typename Config<T>::Warp,
    typename Config<T>::Instruction, WgradEpilogue, cutlass::gemm::threadblock::GemmIdentityThreadblockSwizzle<1>,
    Config<T>::kStages, cutlass::arch::OpMultiplyAdd, cutlass::conv::IteratorAlgorithm::kOptimized>::Kernel;

inline cutlass::conv::Conv3dProblemSize problem_size(const Problem& p) {
  return cutlass::conv::Conv3dProblemSize(p.n, p.d, p.h, p.w, p.c, p.k, p.t, p.r, p.s, p.z, p.p, p.q, p.pad_d,
                                          p.pad_h, p.pad_w, p.stride_d, p.stride_h, p.stride_w, p.dilation_d,
                                          p.dilation_h, p.dilation_w, cutlass::conv::Mode::kCrossCorrelation,
                                          p.split_k_slices, /*groups=*/1);
}

// The device-level operator for one kernel, driven from Problem / Epilogue.
template <typename KernelT>
struct Runner {
  using Operator = cutlass::conv::device::ImplicitGemmConvolution<KernelT>;
  using Arguments = typename Operator::Arguments;
  using ElementA = typename Operator::ElementA;
  using ElementB = typename Operator::ElementB;
  using ElementC = typename Operator::ElementC;
  using OutputOp = typename Operator::EpilogueOutputOp;
  static constexpr cutlass::conv::Operator kOp = Operator::kConvolutionalOperator;

  static Arguments arguments(const Problem& p, const void* a, const void* b, void* d, const Epilogue& e) {
    const auto size = problem_size(p);
    auto* d_ptr = static_cast<ElementC*>(d);
    const Layout layout_c = Layout::packed(cutlass::conv::implicit_gemm_tensor_c_extent(kOp, size));
    cutlass::TensorRef<ElementC, Layout> ref_d(d_ptr, layout_c);
    // A bias is the epilogue's source tensor with every stride 0: each output row reads the same
    // channel vector (beta = 1). Without one beta = 0, and CUTLASS never reads the source.
    cutlass::TensorRef<ElementC, Layout> ref_c = ref_d;
    if (e.bias != nullptr) {
      ref_c = cutlass::TensorRef<ElementC, Layout>(static_cast<ElementC*>(const_cast<void*>(e.bias)),
                                                   Layout(typename Layout::Stride(0)));
    }
    return Arguments(
        size,
        cutlass::TensorRef<ElementA, Layout>(
            static_cast<ElementA*>(const_cast<void*>(a)),
            Layout::packed(cutlass::conv::implicit_gemm_tensor_a_extent(kOp, size))),
        cutlass::TensorRef<ElementB, Layout>(
            static_cast<ElementB*>(const_cast<void*>(b)),
            Layout::packed(cutlass::conv::implicit_gemm_tensor_b_extent(kOp, size))),
        ref_c, ref_d, output_params(e), cutlass::conv::SplitKMode::kSerial);
  }

  static typename OutputOp::Params output_params(const Epilogue& e) {
    typename OutputOp::Params params(Accumulator(1), Accumulator(e.bias != nullptr ? 1 : 0));
    if constexpr (std::is_base_of<typename RuntimeActivation<float>::Arguments, typename OutputOp::Params>::value) {
      params.act = e.act;
      params.slope = e.slope;
    }
    return params;
  }

  static int can_implement(const Problem& p) {
    const Epilogue none{};
    return static_cast<int>(Operator::can_implement(arguments(p, nullptr, nullptr, nullptr, none)));
  }

  static std::size_t workspace_bytes(const Problem& p) {
    const Epilogue none{};
    return Operator::get_workspace_size(arguments(p, nullptr, nullptr, nullptr, none));
  }

  static int run(const Problem& p, const void* a, const void* b, void* d, const Epilogue& e, void* workspace,
                 cudaStream_t stream) {
    const Arguments args = arguments(p, a, b, d, e);
    Operator op;
    cutlass::Status status = op.can_implement(args);
    if (status == cutlass::Status::kSuccess) status = op.initialize(args, workspace, stream);
    if (status == cutlass::Status::kSuccess) status = op.run(stream);
    return static_cast<int>(status);
  }

  static constexpr Ops ops(const char* name) { return Ops{name, &can_implement, &workspace_bytes, &run}; }
};

}  // namespace cutlass_conv3d
}  // namespace vganzoo
