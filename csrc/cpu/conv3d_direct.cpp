// Direct 3-D convolution for layers with very few output channels (the discriminators' score heads:
// 512 -> 1 over a 4x4x4 volume, 256 -> 1 patch heads, 512 -> 2 VGAN head).
//
// oneDNN and ATen treat such a layer as a GEMM with one or two output columns and reach well under
// 1 GFLOP/s on it (2 ms for MoCoGAN's 262k-MAC video head at batch 8). Here the input is viewed
// channels-last (one small transpose) and every output value is c_out dot products of contiguous
// c_in-long rows with the matching filter taps, the bias and activation applied before the store.
// float32 on CPUs with AVX2 + FMA (checked at run time) takes an intrinsics version of the inner loop;
// everything else (other CPUs, other architectures, float64) a portable one written for the
// auto-vectoriser. The kernel also computes transposed convolutions, taken only when forced
// (VGANZOO_CPU_STRATEGY=direct): GEMM + col2im is faster on the zoo's transposed heads. A layer whose window
// covers its whole (unpadded) input (MoCoGAN's and VGAN's final scores) is one matrix product instead.
#include "cpu/conv3d_direct.h"

#include "cpu/bias_act.h"

#include <ATen/Parallel.h>

#if defined(__x86_64__) && defined(__GNUC__)  // GCC / Clang on x86-64: target attributes, cpu checks
#define VGANZOO_X86 1
#include <immintrin.h>
#else
#define VGANZOO_X86 0
#endif

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

namespace vganzoo {
namespace cpu {
namespace {

bool float32_or_64(const at::Tensor& x) {
  return x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble;
}

constexpr int kLanes = 8;  // independent partial sums per output channel (vector width of AVX2 floats)

template <typename T>
inline T apply_act(T v, Act act, T slope) {
  switch (act) {
    case Act::Relu: return v > T(0) ? v : T(0);
    case Act::LeakyRelu: return v > T(0) ? v : v * slope;
    case Act::Tanh: return std::tanh(v);
    case Act::Sigmoid: return T(1) / (T(1) + std::exp(-v));
    case Act::None: break;
  }
  return v;
}

struct Layout {
  // Input as (N, T, H, W, C) contiguous, weight as (C_out, KT, KH, KW, C) contiguous.
  int64_t c, in_t, in_h, in_w;
  int64_t out_t, out_h, out_w;
  int64_t k[3];
  // Output strides in elements (n, c_out, t, h, w): either memory format.
  int64_t ys[5];
  // Per dimension d and output index o: the taps that reach the input, entries
  // [tap_begin[d][o], tap_begin[d][o + 1]) of tap_k[d] (filter index) and tap_i[d] (input index).
  const int32_t* tap_begin[3];
  const int32_t* tap_k[3];
  const int32_t* tap_i[3];
};

// Input index along dimension d feeding output index o through tap k; false where none does (padding,
// or for a transposed convolution a tap that falls between the strided input positions).
inline bool input_index(const ConvGeometry& g, int d, int64_t o, int64_t k, int64_t& i) {
  if (!g.transposed) {
    i = o * g.stride[d] - g.pad[d] + k * g.dil[d];
    return i >= 0 && i < g.in[d];
  }
  const int64_t num = o + g.pad[d] - k * g.dil[d];
  if (num < 0 || num % g.stride[d] != 0) return false;
  i = num / g.stride[d];
  return i < g.in[d];
}

struct TapTable {
  std::vector<int32_t> begin, k, i;
};

TapTable build_taps(const ConvGeometry& g, int d) {
  TapTable t;
  t.begin.reserve(g.out[d] + 1);
  for (int64_t o = 0; o < g.out[d]; ++o) {
    t.begin.push_back(static_cast<int32_t>(t.k.size()));
    for (int64_t k = 0; k < g.k[d]; ++k) {
      int64_t i;
      if (input_index(g, d, o, k, i)) {
        t.k.push_back(static_cast<int32_t>(k));
        t.i.push_back(static_cast<int32_t>(i));
      }
    }
  }
  t.begin.push_back(static_cast<int32_t>(t.k.size()));
  return t;
}

// Offsets of the input rows and filter taps feeding output (n, ot, oh, ow); returns how many.
inline int64_t gather_taps(const Layout& L, int64_t n, int64_t ot, int64_t oh, int64_t ow, int64_t* x_off,
                           int64_t* w_off) {
  int64_t count = 0;
  for (int32_t a = L.tap_begin[0][ot]; a < L.tap_begin[0][ot + 1]; ++a) {
    for (int32_t b = L.tap_begin[1][oh]; b < L.tap_begin[1][oh + 1]; ++b) {
      for (int32_t c = L.tap_begin[2][ow]; c < L.tap_begin[2][ow + 1]; ++c) {
        x_off[count] = (((n * L.in_t + L.tap_i[0][a]) * L.in_h + L.tap_i[1][b]) * L.in_w + L.tap_i[2][c]) * L.c;
        w_off[count] = ((L.tap_k[0][a] * L.k[1] + L.tap_k[1][b]) * L.k[2] + L.tap_k[2][c]) * L.c;
        ++count;
      }
    }
  }
  return count;
}

template <typename T, int COUT>
inline void store_outputs(const Layout& L, T* y, int64_t n, int64_t ot, int64_t oh, int64_t ow, const T* sums,
                          const T* bias, Act act, T slope) {
  T* yo = y + n * L.ys[0] + ot * L.ys[2] + oh * L.ys[3] + ow * L.ys[4];
  for (int o = 0; o < COUT; ++o) yo[o * L.ys[1]] = apply_act(sums[o] + (bias ? bias[o] : T(0)), act, slope);
}

// sums[o] = sum over the taps of dot(x row, filter o's tap row), length L.c each.
// Portable version (any CPU, float32 and float64), written for the auto-vectoriser.
template <typename T, int COUT>
void dots_portable(const T* __restrict x, const T* __restrict w, const Layout& L, const int64_t* x_off,
                   const int64_t* w_off, int64_t taps, T* sums) {
  const int64_t C = L.c, w_out_stride = L.k[0] * L.k[1] * L.k[2] * C;
  T acc[COUT][kLanes] = {};
  T tail[COUT] = {};
  for (int64_t t = 0; t < taps; ++t) {
    const T* xr = x + x_off[t];
    const T* wr = w + w_off[t];
    int64_t ci = 0;
    for (; ci + kLanes <= C; ci += kLanes) {
      for (int o = 0; o < COUT; ++o) {
        for (int j = 0; j < kLanes; ++j) acc[o][j] += xr[ci + j] * wr[o * w_out_stride + ci + j];
      }
    }
    for (; ci < C; ++ci) {
      for (int o = 0; o < COUT; ++o) tail[o] += xr[ci] * wr[o * w_out_stride + ci];
    }
  }
  for (int o = 0; o < COUT; ++o) {
    sums[o] = tail[o];
    for (int j = 0; j < kLanes; ++j) sums[o] += acc[o][j];
  }
}

#if VGANZOO_X86
// float32 with AVX2 + FMA intrinsics: two 8-wide accumulators per output channel, in registers.
template <int COUT>
__attribute__((target("avx2,fma"))) void dots_avx2(const float* __restrict x, const float* __restrict w,
                                                    const Layout& L, const int64_t* x_off, const int64_t* w_off,
                                                    int64_t taps, float* sums) {
  const int64_t C = L.c, w_out_stride = L.k[0] * L.k[1] * L.k[2] * C;
  __m256 acc0[COUT], acc1[COUT];
  float tail[COUT];
  for (int o = 0; o < COUT; ++o) {
    acc0[o] = _mm256_setzero_ps();
    acc1[o] = _mm256_setzero_ps();
    tail[o] = 0.f;
  }
  for (int64_t t = 0; t < taps; ++t) {
    const float* xr = x + x_off[t];
    const float* wr = w + w_off[t];
    int64_t ci = 0;
    for (; ci + 16 <= C; ci += 16) {
      const __m256 xa = _mm256_loadu_ps(xr + ci), xb = _mm256_loadu_ps(xr + ci + 8);
      for (int o = 0; o < COUT; ++o) {
        acc0[o] = _mm256_fmadd_ps(xa, _mm256_loadu_ps(wr + o * w_out_stride + ci), acc0[o]);
        acc1[o] = _mm256_fmadd_ps(xb, _mm256_loadu_ps(wr + o * w_out_stride + ci + 8), acc1[o]);
      }
    }
    for (; ci < C; ++ci) {
      for (int o = 0; o < COUT; ++o) tail[o] += xr[ci] * wr[o * w_out_stride + ci];
    }
  }
  for (int o = 0; o < COUT; ++o) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, _mm256_add_ps(acc0[o], acc1[o]));
    sums[o] = tail[o];
    for (int j = 0; j < 8; ++j) sums[o] += lanes[j];
  }
}

bool cpu_has_avx2_fma() {
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return ok;
}
#else
bool cpu_has_avx2_fma() { return false; }
#endif

template <typename T, int COUT>
void run(const T* x, const T* w, const T* bias, T* y, const Layout& L, int64_t rows, Act act, T slope) {
  const int64_t max_taps = L.k[0] * L.k[1] * L.k[2];
  const int64_t macs_per_row = L.out_w * max_taps * L.c * COUT;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(macs_per_row, 1));
  [[maybe_unused]] const bool avx2 = cpu_has_avx2_fma();
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> x_off(max_taps), w_off(max_taps);
    T sums[COUT];
    for (int64_t row = begin; row < end; ++row) {  // row = (n, ot, oh); all W positions
      const int64_t oh = row % L.out_h, ot = (row / L.out_h) % L.out_t, n = row / (L.out_h * L.out_t);
      for (int64_t ow = 0; ow < L.out_w; ++ow) {
        const int64_t taps = gather_taps(L, n, ot, oh, ow, x_off.data(), w_off.data());
#if VGANZOO_X86
        if constexpr (std::is_same_v<T, float>) {
          if (avx2) {
            dots_avx2<COUT>(x, w, L, x_off.data(), w_off.data(), taps, sums);
          } else {
            dots_portable<T, COUT>(x, w, L, x_off.data(), w_off.data(), taps, sums);
          }
        } else
#endif
        {
          dots_portable<T, COUT>(x, w, L, x_off.data(), w_off.data(), taps, sums);
        }
        store_outputs<T, COUT>(L, y, n, ot, oh, ow, sums, bias, act, slope);
      }
    }
  });
}

}  // namespace

bool full_window_applies(const ConvGeometry& g, const at::Tensor& x) {
  return float32_or_64(x) && is_full_window(g);
}

at::Tensor conv3d_full_window(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                              const std::optional<at::Tensor>& bias, Act act, double slope,
                              at::MemoryFormat out_format) {
  at::Tensor y = full_window_product(g, x, weight, out_format, at::Tensor());
  bias_act_(y, bias, act, slope);
  return y;
}

bool direct_small_cout_supported(const ConvGeometry& g, const at::Tensor& x) {
  return g.groups == 1 && g.c_out <= kDirectMaxCout && g.n > 0 && float32_or_64(x);
}

bool direct_small_cout_applies(const ConvGeometry& g, const at::Tensor& x) {
  // Transposed layers with few output channels go faster through ATen's GEMM + col2im (VGAN's 64 -> 3
  // and 64 -> 1 heads: 1.2x and 4x eager, against 1.1x and 1.4x here); the kernel takes them only when
  // forced (VGANZOO_CPU_STRATEGY=direct).
  if (g.transposed || !direct_small_cout_supported(g, x)) return false;
  // Worth it where the GEMM libraries are at their worst and the filters stay in cache: a few output
  // channels, at least 16 input channels (whole vectors), all filters within kDirectMaxWeightBytes.
  // Measured against oneDNN on the 2-core CI box: 256->1 patch head 2.5x, 64->3 and 16->4 3x3x3 layers
  // 1.1-1.4x; 3 or 8 input channels 0.2-0.4x and 256 KB of 256->4 filters 0.6x (hence the limits).
  const int64_t weight_bytes = g.c_out * g.c_in * g.k[0] * g.k[1] * g.k[2] * static_cast<int64_t>(x.element_size());
  return g.c_in >= 16 && weight_bytes <= kDirectMaxWeightBytes;
}

at::Tensor conv3d_direct_small_cout(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                                    const std::optional<at::Tensor>& bias, Act act, double slope,
                                    at::MemoryFormat out_format) {
  // Channels-last views, materialised (a permute + copy; a no-op copy if x already is channels-last).
  const at::Tensor xp = x.permute({0, 2, 3, 4, 1}).contiguous();
  // Filters as (C_out, KT, KH, KW, C_in); a transposed convolution's weight is (C_in, C_out, KT, KH, KW).
  const at::Tensor wp = g.transposed ? weight.permute({1, 2, 3, 4, 0}).contiguous()
                                     : weight.permute({0, 2, 3, 4, 1}).contiguous();
  at::Tensor b;
  if (bias.has_value() && bias->defined()) b = bias->contiguous();
  at::Tensor y = at::empty(output_sizes(g), x.options().memory_format(out_format));

  Layout L;
  L.c = g.c_in;
  L.in_t = g.in[0], L.in_h = g.in[1], L.in_w = g.in[2];
  L.out_t = g.out[0], L.out_h = g.out[1], L.out_w = g.out[2];
  for (int d = 0; d < 3; ++d) L.k[d] = g.k[d];
  for (int d = 0; d < 5; ++d) L.ys[d] = y.stride(d);
  const TapTable taps[3] = {build_taps(g, 0), build_taps(g, 1), build_taps(g, 2)};
  for (int d = 0; d < 3; ++d) {
    L.tap_begin[d] = taps[d].begin.data();
    L.tap_k[d] = taps[d].k.data();
    L.tap_i[d] = taps[d].i.data();
  }
  const int64_t rows = g.n * g.out[0] * g.out[1];

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "vganzoo_conv3d_direct", [&] {
    const scalar_t* xd = xp.data_ptr<scalar_t>();
    const scalar_t* wd = wp.data_ptr<scalar_t>();
    const scalar_t* bd = b.defined() ? b.data_ptr<scalar_t>() : nullptr;
    scalar_t* yd = y.data_ptr<scalar_t>();
    const scalar_t s = static_cast<scalar_t>(slope);
    switch (g.c_out) {
      case 1: run<scalar_t, 1>(xd, wd, bd, yd, L, rows, act, s); break;
      case 2: run<scalar_t, 2>(xd, wd, bd, yd, L, rows, act, s); break;
      case 3: run<scalar_t, 3>(xd, wd, bd, yd, L, rows, act, s); break;
      default: run<scalar_t, 4>(xd, wd, bd, yd, L, rows, act, s); break;
    }
  });
  return y;
}

}  // namespace cpu
}  // namespace vganzoo
