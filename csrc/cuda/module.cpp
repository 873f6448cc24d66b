// The import-only Python module `vganzoo._C_cuda`: the CUDA kernels of the operators that `vganzoo._C`
// declares (csrc/ops.cpp), registered for the CUDA dispatch key by csrc/cuda/*.cu when this shared object
// loads. It is a separate extension so that a CUDA build's CPU operators load without it and a CPU-only
// torch never loads CUDA code; vganzoo/ops/_ext.py imports it after `_C`, only when torch has CUDA.
#include <Python.h>

PyMODINIT_FUNC PyInit__C_cuda(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C_cuda", "vganzoo CUDA kernels (load only)",
                                          -1, nullptr, nullptr, nullptr, nullptr, nullptr};
  return PyModule_Create(&module_def);
}
