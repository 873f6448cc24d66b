// Memory-format conversions the CPU paths need, faster than ATen's generic strided copy.
#pragma once

#include <ATen/ATen.h>

namespace vganzoo {
namespace cpu {

// dst (N, C, T, H, W) contiguous <- src, the same sizes stored channels_last_3d. float32 only; dst may be
// a slice along N of a larger contiguous tensor. Cache-blocked 16 x 16 tiles, parallel over (n, tile row).
void channels_last_to_contiguous_f32(const at::Tensor& src, at::Tensor& dst);

}  // namespace cpu
}  // namespace vganzoo
