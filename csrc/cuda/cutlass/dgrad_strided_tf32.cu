// CUTLASS conv3d dgrad, any stride, fused bias + activation: float32 as TF32 (conv3d_kernels.h).
// One kernel per source, so the families compile in parallel.
#include "conv3d_cutlass.cuh"

namespace vganzoo {
namespace cutlass_conv3d {

const Ops kDgradStridedTF32 = Runner<DgradStridedKernel<DType::kTF32>>::ops("cutlass_dgrad_strided_tf32");

}  // namespace cutlass_conv3d
}  // namespace vganzoo
