// Torch-free compile harness for the .cuh kernels: instantiates every kernel so that
// `nvcc -Xptxas -v` reports registers, shared memory and spills (used by .ci/cuda_check.sh and
// benchmarks/gpu_check.sh). With --run on a GPU it also runs a tiny float32 conv against a CPU loop, on
// the exact float32 kernel and (sm_80+) on the TF32 tensor-core kernel.
#include <cstdio>
#include <cmath>
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/common.cuh"
#include "kernels/conv3d_igemm.cuh"

namespace ck = vganzoo::cuda_kernels;

template __global__ void ck::conv3d_igemm_wmma_kernel<__half, false>(const __half*, const __half*, const __half*,
                                                                     __half*, ck::ConvParams);
template __global__ void ck::conv3d_igemm_wmma_kernel<__half, true>(const __half*, const __half*, const __half*,
                                                                    __half*, ck::ConvParams);
template __global__ void ck::conv3d_igemm_wmma_kernel<__nv_bfloat16, false>(
    const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*, __nv_bfloat16*, ck::ConvParams);
template __global__ void ck::conv3d_igemm_wmma_kernel<__nv_bfloat16, true>(
    const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*, __nv_bfloat16*, ck::ConvParams);
template __global__ void ck::conv3d_igemm_wmma_kernel<float, false>(const float*, const float*, const float*, float*,
                                                                    ck::ConvParams);
template __global__ void ck::conv3d_igemm_wmma_kernel<float, true>(const float*, const float*, const float*, float*,
                                                                   ck::ConvParams);
template __global__ void ck::conv3d_igemm_simt_kernel<float, false>(const float*, const float*, const float*, float*,
                                                                    ck::ConvParams);
template __global__ void ck::conv3d_igemm_simt_kernel<float, true>(const float*, const float*, const float*, float*,
                                                                   ck::ConvParams);
template __global__ void ck::bias_act_planes_kernel<float>(float*, const float*, int64_t, int64_t, int64_t, int,
                                                           float);
template __global__ void ck::bias_act_planes_kernel<__half>(__half*, const __half*, int64_t, int64_t, int64_t, int,
                                                            float);
template __global__ void ck::bias_act_planes_kernel<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, int64_t,
                                                                   int64_t, int64_t, int, float);
template __global__ void ck::bias_act_channels_last_kernel<float, uint32_t>(float*, const float*, uint32_t, uint32_t,
                                                                            int, float);
template __global__ void ck::bias_act_channels_last_kernel<__nv_bfloat16, uint32_t>(
    __nv_bfloat16*, const __nv_bfloat16*, uint32_t, uint32_t, int, float);

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--run") != 0) {
    std::printf("kernels compiled (pass --run on a GPU machine to execute a smoke test)\n");
    return 0;
  }
  // 1 x 3 x (4, 6, 6) input, 5 output channels, kernel 3, stride 1, padding 1, leaky ReLU.
  ck::ConvParams p{};
  p.n = 1; p.c_in = 3; p.c_in_pad = 4; p.c_out = 5;
  p.in_t = 4; p.in_h = 6; p.in_w = 6; p.out_t = 4; p.out_h = 6; p.out_w = 6;
  p.k_t = p.k_h = p.k_w = 3; p.s_t = p.s_h = p.s_w = 1; p.p_t = p.p_h = p.p_w = 1; p.d_t = p.d_h = p.d_w = 1;
  p.m = 4 * 6 * 6; p.k = 27 * 4; p.act = ck::kActLeakyRelu; p.slope = 0.2f;
  std::vector<float> x(4 * 6 * 6 * 3), w(5 * 27 * 4, 0.f), b(5), y(p.m * 5, -1.f), ref(p.m * 5);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float((i * 37) % 17) / 17.f - 0.5f;
  for (int o = 0; o < 5; ++o) {
    b[o] = 0.1f * o - 0.2f;
    for (int t = 0; t < 27; ++t)
      for (int c = 0; c < 3; ++c) w[(o * 27 + t) * 4 + c] = float((o * 31 + t * 7 + c) % 13) / 13.f - 0.5f;
  }
  for (int m = 0; m < p.m; ++m) {
    const int wo = m % 6, ho = (m / 6) % 6, to = m / 36;
    for (int o = 0; o < 5; ++o) {
      float acc = b[o];
      for (int kt = 0; kt < 3; ++kt)
        for (int kh = 0; kh < 3; ++kh)
          for (int kw = 0; kw < 3; ++kw) {
            const int ti = to + kt - 1, hi = ho + kh - 1, wi = wo + kw - 1;
            if (ti < 0 || ti >= 4 || hi < 0 || hi >= 6 || wi < 0 || wi >= 6) continue;
            for (int c = 0; c < 3; ++c)
              acc += x[((ti * 6 + hi) * 6 + wi) * 3 + c] * w[(o * 27 + (kt * 3 + kh) * 3 + kw) * 4 + c];
          }
      ref[m * 5 + o] = acc > 0.f ? acc : 0.2f * acc;
    }
  }
  float *dx, *dw, *db, *dy;
  cudaMalloc(&dx, x.size() * 4); cudaMalloc(&dw, w.size() * 4); cudaMalloc(&db, b.size() * 4); cudaMalloc(&dy, y.size() * 4);
  cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dw, w.data(), w.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(db, b.data(), b.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dy, y.data(), y.size() * 4, cudaMemcpyHostToDevice);
  dim3 grid((p.m + 63) / 64, (p.c_out + 63) / 64);
  // Runs one kernel on a poisoned output and returns its max abs error against the CPU loop (-1: CUDA error).
  auto check = [&](auto launch, const char* name) {
    cudaMemcpy(dy, y.data(), y.size() * 4, cudaMemcpyHostToDevice);
    launch();
    cudaError_t err = cudaDeviceSynchronize();
    if (err != cudaSuccess) { std::printf("%s: CUDA error: %s\n", name, cudaGetErrorString(err)); return -1.f; }
    std::vector<float> out(y.size());
    cudaMemcpy(out.data(), dy, out.size() * 4, cudaMemcpyDeviceToHost);
    float max_err = 0.f;
    for (size_t i = 0; i < out.size(); ++i) max_err = std::max(max_err, std::abs(out[i] - ref[i]));
    std::printf("smoke test %s: max abs error %g\n", name, max_err);
    return max_err;
  };
  const float err_fp32 = check([&] { ck::conv3d_igemm_simt_kernel<float, false><<<grid, ck::simt_cfg::kThreads>>>(dx, dw, db, dy, p); },
                               "float32 FMA kernel");
  bool ok = err_fp32 >= 0.f && err_fp32 < 1e-4f;
  int major = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  if (major >= 8) {  // TF32 keeps 10 mantissa bits: |error| ~ 1e-3 of the ~27 products summed here
    const float err_tf32 = check([&] { ck::conv3d_igemm_wmma_kernel<float, false><<<grid, ck::wmma_cfg::kThreads>>>(dx, dw, db, dy, p); },
                                 "TF32 tensor-core kernel");
    ok = ok && err_tf32 >= 0.f && err_tf32 < 2e-2f;
  }
  return ok ? 0 : 1;
}
