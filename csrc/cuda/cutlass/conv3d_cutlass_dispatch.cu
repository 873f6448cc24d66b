// Which compiled CUTLASS kernel serves (kernel, dtype) (conv3d_kernels.h). No CUTLASS header: quick to build.
#include "conv3d_kernels.h"

namespace vganzoo {
namespace cutlass_conv3d {

const Ops* ops(Kernel kernel, DType dtype) {
  static const Ops* const table[kNumKernels][kNumDTypes] = {
      {&kFpropBFloat16, &kFpropHalf, &kFpropTF32},
      {&kDgradUnitStrideBFloat16, &kDgradUnitStrideHalf, &kDgradUnitStrideTF32},
      {&kDgradStridedBFloat16, &kDgradStridedHalf, &kDgradStridedTF32},
      {&kWgradBFloat16, &kWgradHalf, &kWgradTF32},
  };
  const int k = static_cast<int>(kernel), t = static_cast<int>(dtype);
  if (k < 0 || k >= kNumKernels || t < 0 || t >= kNumDTypes) return nullptr;
  return table[k][t];
}

// cutlass::Status's values (cutlass/cutlass.h), named without including CUTLASS here.
const char* status_name(int status) {
  static const char* const names[] = {"success",           "misaligned operand", "invalid data type",
                                      "invalid layout",    "invalid problem",    "not supported",
                                      "workspace null",    "internal error",     "architecture mismatch",
                                      "insufficient driver", "memory allocation", "invalid status"};
  constexpr int kCount = sizeof(names) / sizeof(names[0]);
  return status >= 0 && status < kCount ? names[status] : "unknown status";
}

}  // namespace cutlass_conv3d
}  // namespace vganzoo
