// Torch-free device helpers shared by the vganzoo CUDA kernels: dtype conversion and activations.
// Activation codes match vganzoo::Act in csrc/common.h: 0 none, 1 relu, 2 leaky_relu, 3 tanh, 4 sigmoid.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace vganzoo {
namespace cuda_kernels {

enum ActCode : int { kActNone = 0, kActRelu = 1, kActLeakyRelu = 2, kActTanh = 3, kActSigmoid = 4 };

template <typename T>
__device__ __forceinline__ float to_float(T v);
template <>
__device__ __forceinline__ float to_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

__device__ __forceinline__ float apply_act(float v, int act, float slope) {
  switch (act) {
    case kActRelu: return fmaxf(v, 0.f);
    case kActLeakyRelu: return v > 0.f ? v : v * slope;
    case kActTanh: return tanhf(v);
    case kActSigmoid: return 1.f / (1.f + __expf(-v));
    default: return v;
  }
}

// In-place bias + activation over a conv output computed elsewhere (the ATen fallback's epilogue).
// One pass, no integer division in the inner loops (a 64-bit division per element made it slower than
// eager's separate bias and activation kernels).
// NCDHW: y is `planes` = N * C planes of `s` elements; grid.y walks the planes (channel = plane % c once
// per plane), grid.x * blockDim.x threads stride over a plane.
template <typename T>
__global__ void bias_act_planes_kernel(T* __restrict__ y, const T* __restrict__ bias, int64_t planes, int64_t c,
                                       int64_t s, int act, float slope) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t plane = blockIdx.y; plane < planes; plane += gridDim.y) {
    const float b = bias != nullptr ? to_float(bias[plane % c]) : 0.f;
    T* row = y + plane * s;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < s; i += step) {
      row[i] = from_float<T>(apply_act(to_float(row[i]) + b, act, slope));
    }
  }
}

// NDHWC: y is `total` elements, channel = index % c (32-bit when the launcher says it fits).
template <typename T, typename Index>
__global__ void bias_act_channels_last_kernel(T* __restrict__ y, const T* __restrict__ bias, Index total, Index c,
                                              int act, float slope) {
  const Index step = static_cast<Index>(blockDim.x) * gridDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    float v = to_float(y[i]);
    if (bias != nullptr) v += to_float(bias[i % c]);
    y[i] = from_float<T>(apply_act(v, act, slope));
  }
}

}  // namespace cuda_kernels
}  // namespace vganzoo
