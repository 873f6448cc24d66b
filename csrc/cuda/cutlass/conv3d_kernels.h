// Interface to the CUTLASS conv3d kernels (csrc/cuda/cutlass/*.cu), free of torch and of CUTLASS headers,
// so that the launcher (csrc/cuda/conv3d_cuda.cu) includes neither the other's headers. Built only when
// setup.py found CUTLASS (VGANZOO_WITH_CUTLASS).
//
// Every kernel is CUTLASS 2.x implicit GEMM (multistage cp.async + mma.sync, Sm80 arch tag; runs on sm_80
// and sm_90) over NDHWC tensors, fp32 accumulation:
//   kFprop            y  (N,Z,P,Q,K) = conv(x (N,D,H,W,C), w (K,T,R,S,C)), epilogue act(acc + bias[k])
//   kDgradUnitStride  dx (N,D,H,W,C) from dy (N,Z,P,Q,K) and w; every stride 1 (optimized iterators)
//   kDgradStrided     the same for any stride (analytic iterators); epilogue act(acc + bias[c])
//                     (a transposed convolution is this dgrad: its input is "dy", its output "dx")
//   kWgrad            dw (K,T,R,S,C) float32 from dy and x; serial split-K over N*Z*P*Q
// Operands a, b, d per kernel (CUTLASS's roles): fprop (x, w, y); dgrad (dy, w, dx); wgrad (dy, x, dw).
// Element types: bfloat16 or float16 operands with a 16-bit output (wgrad: float32), or float32 operands
// read as TF32 with a float32 output. Channel counts must be multiples of kAlignment(dtype) (128-bit
// accesses), pointers 16-byte aligned, dilation 1 for strided dgrad; can_implement() says so per problem.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace vganzoo {
namespace cutlass_conv3d {

enum class DType : int { kBFloat16 = 0, kHalf = 1, kTF32 = 2 };
enum class Kernel : int { kFprop = 0, kDgradUnitStride = 1, kDgradStrided = 2, kWgrad = 3 };
constexpr int kNumDTypes = 3;
constexpr int kNumKernels = 4;

// Channels per 128-bit access: the multiple every channel count must be.
constexpr int alignment(DType t) { return t == DType::kTF32 ? 4 : 8; }

// One convolution in CUTLASS's terms (a conv3d of an (N,D,H,W,C) activation with a (K,T,R,S,C) filter giving
// an (N,Z,P,Q,K) output), whichever of its three GEMMs a kernel computes.
struct Problem {
  int n, d, h, w, c;
  int k, t, r, s;
  int z, p, q;
  int pad_d, pad_h, pad_w;
  int stride_d, stride_h, stride_w;
  int dilation_d, dilation_h, dilation_w;
  int split_k_slices;  // wgrad only (serial split-K); 1 elsewhere
};

// The fused epilogue of fprop / dgrad: d = act(acc + bias) with `bias` (a d-typed vector over the output's
// channels, 16-byte aligned) or none; act is a vganzoo::Act code (csrc/common.h), slope its leaky slope.
struct Epilogue {
  const void* bias = nullptr;
  int act = 0;
  float slope = 0.f;
};

// One compiled kernel: what CUTLASS's device API offers, behind plain function pointers. Status codes are
// cutlass::Status values (0 = success).
struct Ops {
  const char* name;
  int (*can_implement)(const Problem&);
  std::size_t (*workspace_bytes)(const Problem&);  // device scratch run() needs (split-K semaphores)
  int (*run)(const Problem&, const void* a, const void* b, void* d, const Epilogue&, void* workspace,
             cudaStream_t stream);
};

// The compiled kernels, one per source (fprop_bf16.cu, ...); reach them through ops().
extern const Ops kFpropBFloat16, kFpropHalf, kFpropTF32;
extern const Ops kDgradUnitStrideBFloat16, kDgradUnitStrideHalf, kDgradUnitStrideTF32;
extern const Ops kDgradStridedBFloat16, kDgradStridedHalf, kDgradStridedTF32;
extern const Ops kWgradBFloat16, kWgradHalf, kWgradTF32;

// The kernel for (kernel, dtype), or nullptr where none is compiled.
const Ops* ops(Kernel kernel, DType dtype);
const char* status_name(int status);

}  // namespace cutlass_conv3d
}  // namespace vganzoo
