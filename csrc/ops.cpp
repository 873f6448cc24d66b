// Operator schemas (namespace `vganzoo`) and the import-only Python module `vganzoo._C`.
// Implementations are registered per device: csrc/cpu/*.cpp in `vganzoo._C`, csrc/cuda/*.cu in the
// separate `vganzoo._C_cuda` (csrc/cuda/module.cpp), which is loaded after this one.
#include <Python.h>
#include <torch/library.h>

TORCH_LIBRARY(vganzoo, m) {
  m.def("conv3d_bias_act(Tensor x, Tensor weight, Tensor? bias, int[3] stride, int[3] padding, "
        "int[3] dilation, int groups, str activation, float negative_slope) -> Tensor");
  m.def("conv_transpose3d_bias_act(Tensor x, Tensor weight, Tensor? bias, int[3] stride, int[3] padding, "
        "int[3] output_padding, int[3] dilation, int groups, str activation, float negative_slope) -> Tensor");
  // The convolution's gradients (x, weight, bias as output_mask asks; undefined otherwise) from `grad`, the
  // gradient of the pre-activation, for the backward of both ops above (csrc/autograd.cpp): ATen's
  // convolution_backward on every device, and on CUDA also the CUTLASS kernels. Not differentiable itself
  // (the double backward takes ATen's ops).
  m.def("conv3d_bias_act_backward(Tensor grad, Tensor x, Tensor weight, int[3] stride, int[3] padding, "
        "int[3] output_padding, int[3] dilation, int groups, bool transposed, bool[3] output_mask) "
        "-> (Tensor, Tensor, Tensor)");
  // Which code path a call with these arguments takes (a human-readable line); never computes.
  m.def("explain(Tensor x, Tensor weight, Tensor? bias, int[3] stride, int[3] padding, int[3] output_padding, "
        "int[3] dilation, int groups, bool transposed, str activation) -> str");
}

// `import vganzoo._C` only needs to load this shared object so that the static registrations above
// run; the module itself exposes nothing.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", "vganzoo fused operators (load only)",
                                          -1, nullptr, nullptr, nullptr, nullptr, nullptr};
  return PyModule_Create(&module_def);
}
