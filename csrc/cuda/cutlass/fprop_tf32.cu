// CUTLASS conv3d fprop, fused bias + activation: float32 as TF32 (conv3d_kernels.h).
// One kernel per source, so the families compile in parallel.
#include "conv3d_cutlass.cuh"

namespace vganzoo {
namespace cutlass_conv3d {

const Ops kFpropTF32 = Runner<FpropKernel<DType::kTF32>>::ops("cutlass_fprop_tf32");

}  // namespace cutlass_conv3d
}  // namespace vganzoo
