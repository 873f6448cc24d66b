// Vectorised, parallel in-place bias + activation over a 3-D conv output (see bias_act.h).
#include "cpu/bias_act.h"

#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <cmath>

namespace vganzoo {
namespace cpu {
namespace {

using at::vec::Vectorized;
using Vec = Vectorized<float>;

// Elements per parallel task: large enough to amortise scheduling, small enough to balance.
constexpr int64_t kGrain = 32768;

template <Act A>
inline float act_scalar(float v, float slope) {
  if constexpr (A == Act::Relu) return v > 0.f ? v : 0.f;
  if constexpr (A == Act::LeakyRelu) return v > 0.f ? v : v * slope;
  if constexpr (A == Act::Tanh) return std::tanh(v);
  if constexpr (A == Act::Sigmoid) return 1.f / (1.f + std::exp(-v));
  return v;
}

template <Act A>
inline Vec act_vec(Vec v, Vec slope) {
  const Vec zero(0.f);
  if constexpr (A == Act::Relu) return at::vec::maximum(v, zero);
  if constexpr (A == Act::LeakyRelu) return Vec::blendv(v * slope, v, v > zero);
  if constexpr (A == Act::Tanh) return v.tanh();
  if constexpr (A == Act::Sigmoid) return Vec(1.f) / (Vec(1.f) + v.neg().exp());
  return v;
}

// One contiguous run of `len` floats sharing one bias value (contiguous layout: one (n, c) plane).
template <Act A>
inline void run_plane_f32(float* p, int64_t len, float b, float slope) {
  const Vec vb(b), vs(slope);
  int64_t i = 0;
  for (; i + Vec::size() <= len; i += Vec::size()) {
    act_vec<A>(Vec::loadu(p + i) + vb, vs).store(p + i);
  }
  for (; i < len; ++i) p[i] = act_scalar<A>(p[i] + b, slope);
}

// One row of C floats with a per-channel bias vector (channels_last_3d layout).
template <Act A>
inline void run_row_f32(float* p, const float* bias, int64_t c, float slope) {
  const Vec vs(slope);
  int64_t i = 0;
  for (; i + Vec::size() <= c; i += Vec::size()) {
    Vec v = Vec::loadu(p + i);
    if (bias) v = v + Vec::loadu(bias + i);
    act_vec<A>(v, vs).store(p + i);
  }
  for (; i < c; ++i) p[i] = act_scalar<A>(p[i] + (bias ? bias[i] : 0.f), slope);
}

template <Act A>
void bias_act_f32(float* y, const float* bias, int64_t n, int64_t c, int64_t s, bool channels_last, float slope) {
  if (!channels_last) {
    const int64_t planes = n * c;
    const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(s, 1));
    at::parallel_for(0, planes, grain, [&](int64_t begin, int64_t end) {
      for (int64_t pl = begin; pl < end; ++pl) {
        run_plane_f32<A>(y + pl * s, s, bias ? bias[pl % c] : 0.f, slope);
      }
    });
  } else {
    const int64_t rows = n * s;
    const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(c, 1));
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) run_row_f32<A>(y + r * c, bias, c, slope);
    });
  }
}

// Generic (float64 / float16 / bfloat16): computed in opmath precision, scalar loop.
template <typename scalar_t, Act A>
void bias_act_generic(scalar_t* y, const scalar_t* bias, int64_t n, int64_t c, int64_t s, bool channels_last,
                      double slope) {
  using opmath_t = at::opmath_type<scalar_t>;
  const opmath_t sl = static_cast<opmath_t>(slope);
  auto act = [sl](opmath_t v) -> opmath_t {
    if constexpr (A == Act::Relu) return v > opmath_t(0) ? v : opmath_t(0);
    if constexpr (A == Act::LeakyRelu) return v > opmath_t(0) ? v : v * sl;
    if constexpr (A == Act::Tanh) return std::tanh(v);
    if constexpr (A == Act::Sigmoid) return opmath_t(1) / (opmath_t(1) + std::exp(-v));
    return v;
  };
  const int64_t total = n * c * s;
  at::parallel_for(0, total, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t ch = channels_last ? i % c : (i / s) % c;
      opmath_t v = static_cast<opmath_t>(y[i]);
      if (bias) v += static_cast<opmath_t>(bias[ch]);
      y[i] = static_cast<scalar_t>(act(v));
    }
  });
}

template <Act A>
void dispatch_dtype(at::Tensor& y, const at::Tensor& bias, int64_t n, int64_t c, int64_t s, bool cl, double slope) {
  if (y.scalar_type() == at::kFloat) {
    bias_act_f32<A>(y.data_ptr<float>(), bias.defined() ? bias.data_ptr<float>() : nullptr, n, c, s, cl,
                    static_cast<float>(slope));
    return;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, y.scalar_type(), "vganzoo_bias_act", [&] {
    bias_act_generic<scalar_t, A>(y.data_ptr<scalar_t>(), bias.defined() ? bias.data_ptr<scalar_t>() : nullptr,
                                  n, c, s, cl, slope);
  });
}

}  // namespace

void bias_act_(at::Tensor& y, const std::optional<at::Tensor>& bias_opt, Act act, double negative_slope) {
  at::Tensor bias = (bias_opt.has_value() && bias_opt->defined()) ? bias_opt->contiguous() : at::Tensor();
  if (act == Act::None && !bias.defined()) return;
  if (y.numel() == 0) return;
  const bool cl = !y.is_contiguous() && y.is_contiguous(at::MemoryFormat::ChannelsLast3d);
  TORCH_CHECK(cl || y.is_contiguous(), "bias_act_: output must be contiguous or channels_last_3d");
  const int64_t n = y.size(0), c = y.size(1), s = y.numel() / std::max<int64_t>(n * c, 1);
  if (act == Act::Tanh || act == Act::Sigmoid) {
    // This file is compiled for the baseline ISA, where tanh / exp are scalar libm calls (~10x slower
    // than ATen's run-time-dispatched AVX2 / AVX-512 kernels: VGAN's 64 -> 3 tanh head lost 0.2x to
    // eager on it). The bias pass here, then ATen's in-place activation: two memory-bound passes.
    if (bias.defined()) dispatch_dtype<Act::None>(y, bias, n, c, s, cl, negative_slope);
    if (act == Act::Tanh) {
      y.tanh_();
    } else {
      y.sigmoid_();
    }
    return;
  }
  switch (act) {
    case Act::None: dispatch_dtype<Act::None>(y, bias, n, c, s, cl, negative_slope); break;
    case Act::Relu: dispatch_dtype<Act::Relu>(y, bias, n, c, s, cl, negative_slope); break;
    case Act::LeakyRelu: dispatch_dtype<Act::LeakyRelu>(y, bias, n, c, s, cl, negative_slope); break;
    case Act::Tanh: dispatch_dtype<Act::Tanh>(y, bias, n, c, s, cl, negative_slope); break;
    case Act::Sigmoid: dispatch_dtype<Act::Sigmoid>(y, bias, n, c, s, cl, negative_slope); break;
  }
}

}  // namespace cpu
}  // namespace vganzoo
