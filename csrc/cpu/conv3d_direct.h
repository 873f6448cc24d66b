// Direct convolution for few-output-channel layers (score heads), see conv3d_direct.cpp.
#pragma once

#include <ATen/ATen.h>

#include "common.h"

namespace vganzoo {
namespace cpu {

constexpr int64_t kDirectMaxCout = 4;
// Largest filter bank (bytes) the direct kernel takes on: it re-reads all filters for every output
// position, so they must stay in the core's L2 (512 KiB on the CI box, 256 KiB on many others).
constexpr int64_t kDirectMaxWeightBytes = int64_t{128} << 10;

// is_full_window (common.h) for float32/float64: one matrix product + the bias/activation pass.
bool full_window_applies(const ConvGeometry& g, const at::Tensor& x);
at::Tensor conv3d_full_window(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                              const std::optional<at::Tensor>& bias, Act act, double slope,
                              at::MemoryFormat out_format);

// What the kernel computes (either direction): groups == 1, c_out <= kDirectMaxCout, float32/float64.
bool direct_small_cout_supported(const ConvGeometry& g, const at::Tensor& x);

// Automatic choice: supported, non-transposed, c_in >= 16, filters that fit in cache.
bool direct_small_cout_applies(const ConvGeometry& g, const at::Tensor& x);

// y = act(conv3d(x, weight) + bias) in `out_format` (or the transposed convolution, g.transposed);
// x and weight in any layout.
at::Tensor conv3d_direct_small_cout(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                                    const std::optional<at::Tensor>& bias, Act act, double slope,
                                    at::MemoryFormat out_format);

}  // namespace cpu
}  // namespace vganzoo
