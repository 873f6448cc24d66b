// CUTLASS conv3d dgrad, every stride 1, fused bias + activation: bfloat16 (conv3d_kernels.h).
// One kernel per source, so the families compile in parallel.
#include "conv3d_cutlass.cuh"

namespace vganzoo {
namespace cutlass_conv3d {

const Ops kDgradUnitStrideBFloat16 = Runner<DgradUnitStrideKernel<DType::kBFloat16>>::ops("cutlass_dgrad_unit_stride_bf16");

}  // namespace cutlass_conv3d
}  // namespace vganzoo
