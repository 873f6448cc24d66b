// CUTLASS conv3d fprop, fused bias + activation: bfloat16 (conv3d_kernels.h).
// One kernel per source, so the families compile in parallel.
#include "conv3d_cutlass.cuh"

namespace vganzoo {
namespace cutlass_conv3d {

const Ops kFpropBFloat16 = Runner<FpropKernel<DType::kBFloat16>>::ops("cutlass_fprop_bf16");

}  // namespace cutlass_conv3d
}  // namespace vganzoo
