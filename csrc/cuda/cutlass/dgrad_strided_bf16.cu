// CUTLASS conv3d dgrad, any stride, fused bias + activation: bfloat16 (conv3d_kernels.h).
// One kernel per source, so the families compile in parallel.
#include "conv3d_cutlass.cuh"

namespace vganzoo {
namespace cutlass_conv3d {

const Ops kDgradStridedBFloat16 = Runner<DgradStridedKernel<DType::kBFloat16>>::ops("cutlass_dgrad_strided_bf16");

}  // namespace cutlass_conv3d
}  // namespace vganzoo
