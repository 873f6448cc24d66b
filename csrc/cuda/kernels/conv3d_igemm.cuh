// Torch-free implicit-GEMM 3-D convolution with the bias + activation applied in the epilogue.
//
// Layouts: input NDHWC (N, T, H, W, C_in); packed weight (C_out, kT, kH, kW, C_in_pad) with the input
// channels zero-padded to C_in_pad (so the 3-channel first layers stay on the tensor-core path); output
// NDHWC (N, T_out, H_out, W_out, C_out).
// GEMM view: M = N * T_out * H_out * W_out output pixels, N_gemm = C_out, K = kT * kH * kW * C_in_pad;
// A[m][k] is gathered from the input on the fly (zero outside the padded input / beyond C_in),
// B[k][n] = weight[n][k]. Accumulation is float32 in every variant.
//   * conv3d_igemm_wmma_kernel<__half | __nv_bfloat16 | float, kVec>: tensor cores, 4 warps, block tile
//     64 x 64 x 32, each warp 32 x 32; WMMA 16x16x16 for fp16 / bf16, 16x16x8 TF32 for float32 (inputs
//     rounded to TF32 as they enter the fragments: the launcher takes it only where torch allows TF32).
//   * conv3d_igemm_simt_kernel<float, kVec>: exact float32 FMA, 256 threads, block tile 64 x 64 x 16,
//     4 x 4 outputs per thread.
// kVec (the launcher checks: c_in is a multiple of the run length, 16 for the tensor-core kernel and 4
// for the float32 FMA one, so c_in_pad == c_in, and the input is 16-byte aligned): each thread's run of
// consecutive k lies inside one filter tap, i.e. consecutive channels of one input pixel, so it is
// decoded once and moved with 16-byte loads. Otherwise every element is gathered on its own.
// After the K loop the tile is still on chip; bias and activation are applied there and the result is
// written once. Index arithmetic is 32-bit for M, K and C; the launcher guarantees the element counts fit.
#pragma once

#include <mma.h>

#include "common.cuh"

namespace vganzoo {
namespace cuda_kernels {

struct ConvParams {
  int n, c_in, c_in_pad, c_out;
  int in_t, in_h, in_w;
  int out_t, out_h, out_w;
  int k_t, k_h, k_w;
  int s_t, s_h, s_w;
  int p_t, p_h, p_w;
  int d_t, d_h, d_w;
  int m;  // n * out_t * out_h * out_w
  int k;  // k_t * k_h * k_w * c_in_pad
  int act;
  float slope;
};

// The output pixel m, as the corner of its receptive field in the (unpadded) input.
struct PixelOrigin {
  int64_t base;  // element offset of input pixel (n, 0, 0, 0)
  int t0, h0, w0;
  bool valid;
};

__device__ __forceinline__ PixelOrigin decode_pixel(const ConvParams& p, int m) {
  PixelOrigin o;
  o.valid = m < p.m;
  const int mm = o.valid ? m : 0;
  const int wo = mm % p.out_w;
  const int ho = (mm / p.out_w) % p.out_h;
  const int to = (mm / (p.out_w * p.out_h)) % p.out_t;
  const int n = mm / (p.out_w * p.out_h * p.out_t);
  o.base = static_cast<int64_t>(n) * p.in_t * p.in_h * p.in_w * p.c_in;
  o.t0 = to * p.s_t - p.p_t;
  o.h0 = ho * p.s_h - p.p_h;
  o.w0 = wo * p.s_w - p.p_w;
  return o;
}

// The element offset of A[m][k] (the input value that weight tap k multiplies for output pixel m) in
// the NDHWC input, or -1 where it is padding (outside the input, a padded channel or k beyond K).
__device__ __forceinline__ int64_t gather_offset(const ConvParams& p, const PixelOrigin& o, int k) {
  if (!o.valid || k >= p.k) return -1;
  const int c = k % p.c_in_pad;
  if (c >= p.c_in) return -1;
  int tap = k / p.c_in_pad;
  const int kw = tap % p.k_w;
  tap /= p.k_w;
  const int kh = tap % p.k_h;
  const int kt = tap / p.k_h;
  const int ti = o.t0 + kt * p.d_t, hi = o.h0 + kh * p.d_h, wi = o.w0 + kw * p.d_w;
  if (ti < 0 || ti >= p.in_t || hi < 0 || hi >= p.in_h || wi < 0 || wi >= p.in_w) return -1;
  return o.base + ((static_cast<int64_t>(ti) * p.in_h + hi) * p.in_w + wi) * p.c_in + c;
}

// A[m][k], or `zero` where padded. T may be a raw 16-bit storage type (the tensor-core kernel moves
// fp16/bf16 as bits: zero == 0).
template <typename T>
__device__ __forceinline__ T gather_a(const T* __restrict__ x, const ConvParams& p, const PixelOrigin& o, int k,
                                      T zero) {
  const int64_t off = gather_offset(p, o, k);
  return off < 0 ? zero : x[off];
}

template <typename T>
__device__ __forceinline__ T load_b(const T* __restrict__ w, const ConvParams& p, int n, int k, T zero) {
  if (n >= p.c_out || k >= p.k) return zero;
  return w[static_cast<int64_t>(n) * p.k + k];
}

template <typename T>
__device__ __forceinline__ void store_out(T* __restrict__ y, const T* __restrict__ bias, const ConvParams& p, int m,
                                          int n, float acc) {
  if (m >= p.m || n >= p.c_out) return;
  if (bias != nullptr) acc += to_float(bias[n]);
  y[static_cast<int64_t>(m) * p.c_out + n] = from_float<T>(apply_act(acc, p.act, p.slope));
}

// ---------------------------------------------------------------------------------------------------
// Tensor-core kernel (fp16 / bf16 inputs, fp32 accumulation).

namespace wmma_cfg {
constexpr int kBM = 64, kBN = 64, kBK = 32;
constexpr int kThreads = 128;           // 4 warps as 2 x 2, each 32 x 32
constexpr int kPadAB = 8;               // shared-memory row padding (elements) against bank conflicts
constexpr int kPadC = 4;

// Per element type: the WMMA fragment type, the fragment depth, and the integer type the loads move.
template <typename T>
struct Traits {  // __half, __nv_bfloat16: 16x16x16 on the storage type, moved as raw 16-bit patterns
  using Frag = T;
  using Bits = unsigned short;
  static constexpr int kK = 16;
  static constexpr bool kTf32 = false;
};
template <>
struct Traits<float> {  // float32 storage, TF32 math: 16x16x8, moved as raw 32-bit patterns
  using Frag = nvcuda::wmma::precision::tf32;
  using Bits = unsigned int;
  static constexpr int kK = 8;
  static constexpr bool kTf32 = true;
};
}  // namespace wmma_cfg

template <typename T, bool kVec>
__global__ void __launch_bounds__(wmma_cfg::kThreads, 4)
conv3d_igemm_wmma_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                         T* __restrict__ y, ConvParams p) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  using namespace wmma_cfg;
  using Frag = typename Traits<T>::Frag;
  constexpr int kK = Traits<T>::kK;
  __shared__ __align__(32) T a_tile[kBM][kBK + kPadAB];
  __shared__ __align__(32) T b_tile[kBN][kBK + kPadAB];  // B column-major: b_tile[n][k]
  __shared__ __align__(32) float c_tile[kBM][kBN + kPadC];

  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int warp_m = warp / 2, warp_n = warp % 2;
  const int m0 = blockIdx.x * kBM, n0 = blockIdx.y * kBN;

  // Loading: thread tid owns row (tid / 2) of A and column (tid / 2) of B, 16 consecutive k each
  // (both tiles are k-contiguous, so a run is two 16-byte shared-memory stores on the kVec path).
  const int ld_row = tid / 2, ld_k = (tid % 2) * (kBK / 2);
  const PixelOrigin origin = decode_pixel(p, m0 + ld_row);

  wmma::fragment<wmma::accumulator, 16, 16, kK, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.f);

  // Values are moved as raw bit patterns (+0.0 is all zero bits in fp16, bf16 and float32).
  using Bits = typename Traits<T>::Bits;
  static_assert(sizeof(T) == sizeof(Bits), "element type and its bit pattern differ in size");
  // A thread's run of kBK / 2 consecutive k, in 16-byte vectors: 2 for 16-bit types, 4 for float32.
  constexpr int kRunVecs = kBK / 2 * static_cast<int>(sizeof(T)) / 16;
  const Bits* xb = reinterpret_cast<const Bits*>(x);
  const Bits* wb = reinterpret_cast<const Bits*>(w);
  Bits* a_bits = reinterpret_cast<Bits*>(&a_tile[0][0]);
  Bits* b_bits = reinterpret_cast<Bits*>(&b_tile[0][0]);
  Bits* a_run = a_bits + ld_row * (kBK + kPadAB) + ld_k;
  Bits* b_run = b_bits + ld_row * (kBK + kPadAB) + ld_k;
  for (int k0 = 0; k0 < p.k; k0 += kBK) {
    const int k = k0 + ld_k;
    if constexpr (kVec) {
      const uint4 zero4 = make_uint4(0u, 0u, 0u, 0u);
      uint4 a[kRunVecs], b[kRunVecs];
#pragma unroll
      for (int v = 0; v < kRunVecs; ++v) a[v] = b[v] = zero4;
      const int64_t off = gather_offset(p, origin, k);
      if (off >= 0) {
        const uint4* src = reinterpret_cast<const uint4*>(xb + off);
#pragma unroll
        for (int v = 0; v < kRunVecs; ++v) a[v] = __ldg(src + v);
      }
      if (n0 + ld_row < p.c_out && k < p.k) {
        const uint4* src = reinterpret_cast<const uint4*>(wb + static_cast<int64_t>(n0 + ld_row) * p.k + k);
#pragma unroll
        for (int v = 0; v < kRunVecs; ++v) b[v] = __ldg(src + v);
      }
#pragma unroll
      for (int v = 0; v < kRunVecs; ++v) {
        reinterpret_cast<uint4*>(a_run)[v] = a[v];
        reinterpret_cast<uint4*>(b_run)[v] = b[v];
      }
    } else {
#pragma unroll
      for (int kk = 0; kk < kBK / 2; ++kk) {
        a_run[kk] = gather_a<Bits>(xb, p, origin, k + kk, 0);
        b_run[kk] = load_b<Bits>(wb, p, n0 + ld_row, k + kk, 0);
      }
    }
    __syncthreads();
#pragma unroll
    for (int ks = 0; ks < kBK; ks += kK) {
      wmma::fragment<wmma::matrix_a, 16, 16, kK, Frag, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, kK, Frag, wmma::col_major> fb[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], &a_tile[warp_m * 32 + i * 16][ks], kBK + kPadAB);
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], &b_tile[warp_n * 32 + j * 16][ks], kBK + kPadAB);
      if constexpr (Traits<T>::kTf32) {  // round the float32 operands to TF32 (round to nearest)
#pragma unroll
        for (int i = 0; i < 2; ++i) {
#pragma unroll
          for (int e = 0; e < fa[i].num_elements; ++e) fa[i].x[e] = wmma::__float_to_tf32(fa[i].x[e]);
#pragma unroll
          for (int e = 0; e < fb[i].num_elements; ++e) fb[i].x[e] = wmma::__float_to_tf32(fb[i].x[e]);
        }
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }

  // Epilogue: accumulators -> shared tile -> bias + activation -> one coalesced NDHWC write.
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(&c_tile[warp_m * 32 + i * 16][warp_n * 32 + j * 16], acc[i][j], kBN + kPadC,
                              wmma::mem_row_major);
  __syncthreads();
  for (int idx = tid; idx < kBM * kBN; idx += kThreads) {
    const int r = idx / kBN, c = idx % kBN;
    store_out(y, bias, p, m0 + r, n0 + c, c_tile[r][c]);
  }
#else
  __trap();  // tensor-core path needs sm_80+; the launcher never selects it there
#endif
}

// ---------------------------------------------------------------------------------------------------
// Exact float32 kernel (CUDA cores).

namespace simt_cfg {
constexpr int kBM = 64, kBN = 64, kBK = 16;
constexpr int kThreads = 256;           // 16 x 16 threads, 4 x 4 outputs each
constexpr int kTM = 4, kTN = 4;
}  // namespace simt_cfg

template <typename T, bool kVec>
__global__ void __launch_bounds__(simt_cfg::kThreads)
conv3d_igemm_simt_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                         T* __restrict__ y, ConvParams p) {
  using namespace simt_cfg;
  __shared__ float a_tile[kBK][kBM + 4];  // k-major so a thread's 4 rows are adjacent
  __shared__ float b_tile[kBK][kBN + 4];

  const int tid = threadIdx.x;
  const int m0 = blockIdx.x * kBM, n0 = blockIdx.y * kBN;
  const int ld_row = tid / 4, ld_k = (tid % 4) * 4;  // 64 rows x 16 k: 4 elements per thread
  const PixelOrigin origin = decode_pixel(p, m0 + ld_row);
  const int tm = (tid / 16) * kTM, tn = (tid % 16) * kTN;

  float acc[kTM][kTN];
#pragma unroll
  for (int i = 0; i < kTM; ++i)
#pragma unroll
    for (int j = 0; j < kTN; ++j) acc[i][j] = 0.f;

  for (int k0 = 0; k0 < p.k; k0 += kBK) {
    if constexpr (kVec) {
      static_assert(sizeof(T) == sizeof(float), "the vectorised float32 kernel moves float4 runs");
      const int k = k0 + ld_k;
      float4 a = make_float4(0.f, 0.f, 0.f, 0.f), b = a;
      const int64_t off = gather_offset(p, origin, k);
      if (off >= 0) a = __ldg(reinterpret_cast<const float4*>(x + off));
      if (n0 + ld_row < p.c_out && k < p.k) {
        b = __ldg(reinterpret_cast<const float4*>(w + static_cast<int64_t>(n0 + ld_row) * p.k + k));
      }
      a_tile[ld_k + 0][ld_row] = a.x; a_tile[ld_k + 1][ld_row] = a.y;
      a_tile[ld_k + 2][ld_row] = a.z; a_tile[ld_k + 3][ld_row] = a.w;
      b_tile[ld_k + 0][ld_row] = b.x; b_tile[ld_k + 1][ld_row] = b.y;
      b_tile[ld_k + 2][ld_row] = b.z; b_tile[ld_k + 3][ld_row] = b.w;
    } else {
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        a_tile[ld_k + kk][ld_row] = to_float(gather_a(x, p, origin, k0 + ld_k + kk, from_float<T>(0.f)));
        b_tile[ld_k + kk][ld_row] = to_float(load_b(w, p, n0 + ld_row, k0 + ld_k + kk, from_float<T>(0.f)));
      }
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      float a[kTM], b[kTN];
#pragma unroll
      for (int i = 0; i < kTM; ++i) a[i] = a_tile[kk][tm + i];
#pragma unroll
      for (int j = 0; j < kTN; ++j) b[j] = b_tile[kk][tn + j];
#pragma unroll
      for (int i = 0; i < kTM; ++i)
#pragma unroll
        for (int j = 0; j < kTN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < kTM; ++i)
#pragma unroll
    for (int j = 0; j < kTN; ++j) store_out(y, bias, p, m0 + tm + i, n0 + tn + j, acc[i][j]);
}

}  // namespace cuda_kernels
}  // namespace vganzoo
