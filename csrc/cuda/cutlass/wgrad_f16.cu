// CUTLASS conv3d wgrad, float32 output, serial split-K: float16 (conv3d_kernels.h).
// One kernel per source, so the families compile in parallel.
#include "conv3d_cutlass.cuh"

namespace vganzoo {
namespace cutlass_conv3d {

const Ops kWgradHalf = Runner<WgradKernel<DType::kHalf>>::ops("cutlass_wgrad_f16");

}  // namespace cutlass_conv3d
}  // namespace vganzoo
