// CUTLASS conv3d fprop, fused bias + activation: float16 (conv3d_kernels.h).
// One kernel per source, so the families compile in parallel.
#include "conv3d_cutlass.cuh"

namespace vganzoo {
namespace cutlass_conv3d {

const Ops kFpropHalf = Runner<FpropKernel<DType::kHalf>>::ops("cutlass_fprop_f16");

}  // namespace cutlass_conv3d
}  // namespace vganzoo
