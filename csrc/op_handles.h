// The operators' C++ signatures (schemas: csrc/ops.cpp) and their typed dispatcher handles, for the
// kernels that re-enter the dispatcher below their own dispatch key (csrc/autograd.cpp, csrc/autocast.cpp).
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <array>
#include <optional>
#include <string>
#include <tuple>

namespace vganzoo {

using ConvSig = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, at::IntArrayRef,
                           at::IntArrayRef, at::IntArrayRef, int64_t, c10::string_view, double);
using ConvTSig = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, at::IntArrayRef,
                            at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, int64_t, c10::string_view, double);
using ConvBackwardSig = std::tuple<at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor&, const at::Tensor&, const at::Tensor&, at::IntArrayRef, at::IntArrayRef, at::IntArrayRef,
    at::IntArrayRef, int64_t, bool, std::array<bool, 3>);
using ExplainSig = std::string(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                               at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, int64_t, bool,
                               c10::string_view);

inline const c10::TypedOperatorHandle<ConvSig>& conv3d_op() {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("vganzoo::conv3d_bias_act", "").typed<ConvSig>();
  return op;
}

inline const c10::TypedOperatorHandle<ConvTSig>& conv_transpose3d_op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("vganzoo::conv_transpose3d_bias_act", "").typed<ConvTSig>();
  return op;
}

inline const c10::TypedOperatorHandle<ConvBackwardSig>& conv_backward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("vganzoo::conv3d_bias_act_backward", "")
                             .typed<ConvBackwardSig>();
  return op;
}

inline const c10::TypedOperatorHandle<ExplainSig>& explain_op() {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("vganzoo::explain", "").typed<ExplainSig>();
  return op;
}

}  // namespace vganzoo
