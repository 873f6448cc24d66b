// CUTLASS conv3d wgrad, float32 output, serial split-K: float32 as TF32 (conv3d_kernels.h).
// One kernel per source, so the families compile in parallel.
#include "conv3d_cutlass.cuh"

namespace vganzoo {
namespace cutlass_conv3d {

const Ops kWgradTF32 = Runner<WgradKernel<DType::kTF32>>::ops("cutlass_wgrad_tf32");

}  // namespace cutlass_conv3d
}  // namespace vganzoo
