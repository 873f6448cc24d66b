// In-place bias + activation pass over a conv output (CPU), one read and one write per element.
#pragma once

#include <ATen/ATen.h>

#include "common.h"

namespace vganzoo {
namespace cpu {

// y: (N, C, T, H, W), contiguous or channels_last_3d; bias: (C,) or undefined. Modifies y in place.
void bias_act_(at::Tensor& y, const std::optional<at::Tensor>& bias, Act act, double negative_slope);

}  // namespace cpu
}  // namespace vganzoo
