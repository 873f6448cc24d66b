// CUDA implementation of vganzoo::conv3d_bias_act / conv_transpose3d_bias_act.
//
// Covered by our own implicit-GEMM kernel (kernels/conv3d_igemm.cuh): forward convolutions with
// groups == 1, float32 (exact FMA kernel; or TF32 tensor cores on sm_80+ where torch allows TF32 for
// convolutions, as cuDNN then uses it too, opt-in with VGANZOO_CUDA_TF32=1 until validated on a GPU) or
// float16 / bfloat16 (tensor cores, sm_80+), any stride,
// padding and dilation, sizes whose element counts fit 32-bit GEMM indices. The kernel works in NDHWC:
// a contiguous input is viewed channels-last (one copy) and the output is converted back to the input's
// memory format (the op pays for that layout change). Everything else (transposed convolutions,
// groups > 1, float64, huge tensors) falls back to ATen's convolution followed by our in-place bias +
// activation epilogue kernel; a layer whose whole input is one window (score heads, 1x1x1-input
// transposed layers) is one matrix product. `vganzoo.ops.explain` reports which path a call takes.
//
// Where the build has CUTLASS (VGANZOO_WITH_CUTLASS) its implicit-GEMM kernels are a third candidate
// (conv3d_cutlass.h): fprop for convolutions, dgrad for transposed ones, bias + activation fused in their
// epilogue; bfloat16 / float16, and float32 as TF32 where torch allows TF32 for convolutions; groups 1,
// dilation 1, channel counts multiples of 8 (16-bit) or 4 (TF32). The autotuner times it beside the others
// per configuration. The backward (conv3d_bias_act_backward, called by csrc/autograd.cpp) is tuned the same
// way: CUTLASS dgrad + wgrad (fprop + wgrad for a transposed convolution) against ATen's
// convolution_backward (cuDNN).
//
// Only c10/cuda headers are used for streams, guards and launch checks (no cuBLAS / ATen-CUDA headers).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>
#include <string>
#include <tuple>
#include <vector>

#include "common.h"
#include "entry_points.h"
#include "kernels/common.cuh"
#include "conv3d_cutlass.h"
#include "kernels/conv3d_igemm.cuh"

namespace vganzoo {
namespace cuda {
namespace {

namespace ck = vganzoo::cuda_kernels;

enum class Path { Empty, IgemmTensorCore, IgemmTf32, IgemmFp32, AtenEpilogue, FullWindowGemm, Cutlass };

// Whether float32 convolutions may use TF32: torch's own switch for cuDNN convolutions
// (torch.backends.cudnn.allow_tf32 / torch.backends.cudnn.conv.fp32_precision; on by default), so our
// kernel and the cuDNN path it is timed against compute at the same precision.
bool tf32_allowed() { return at::globalContext().allowTF32CuDNN(at::Float32Op::CONV); }

// The TF32 variant of our kernel was written and compiled without a GPU at hand: until a GPU run has
// validated it (tests/test_ops_cuda.py::test_tf32_kernel_where_torch_allows_tf32, the harness smoke test),
// it is opt-in with VGANZOO_CUDA_TF32=1 (read per call). Without it, float32 takes the exact FMA kernel
// (timed against cuDNN, which uses TF32 when torch allows it).
bool tf32_kernel_enabled() {
  const char* env = std::getenv("VGANZOO_CUDA_TF32");
  return env != nullptr && std::strcmp(env, "1") == 0;
}

struct Plan {
  Path path;
  std::string reason;
  bool tune = false;         // time the candidates on this call and keep the fastest
  Path igemm = Path::Empty;  // our kernel's variant where it is a candidate (Empty: not one)
  bool cutlass = false;      // CUTLASS is a candidate
};

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// Input channels are padded to this multiple in the packed weight (zero taps), so that a 3-channel
// first layer still feeds whole 16-wide K fragments to the tensor cores with few wasted lanes.
constexpr int64_t kChannelPad = 4;
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

// Developer override, read per call so a benchmark can switch: "igemm" (our kernel wherever it covers
// the call), "aten" (ATen + fused epilogue everywhere), "cutlass" (the CUTLASS kernels wherever they can
// run it), "no-cutlass" (autotuned without CUTLASS); unset or "auto": autotuned (below). The backward
// follows the same variable ("igemm" and "aten": ATen's convolution_backward).
enum class Strategy { Auto, Igemm, Aten, Cutlass, NoCutlass };

Strategy forced_strategy() {
  const char* env = std::getenv("VGANZOO_CUDA_STRATEGY");
  if (env == nullptr || env[0] == '\0' || std::strcmp(env, "auto") == 0) return Strategy::Auto;
  if (std::strcmp(env, "igemm") == 0) return Strategy::Igemm;
  if (std::strcmp(env, "aten") == 0) return Strategy::Aten;
  if (std::strcmp(env, "cutlass") == 0) return Strategy::Cutlass;
  if (std::strcmp(env, "no-cutlass") == 0) return Strategy::NoCutlass;
  TORCH_CHECK(false, "VGANZOO_CUDA_STRATEGY must be 'auto', 'igemm', 'aten', 'cutlass' or 'no-cutlass', got '", env,
              "'");
}

// Why CUTLASS is not a candidate for this forward call ("" where it is).
std::string cutlass_excluded(const ConvGeometry& g, const at::Tensor& x, Strategy forced) {
  if (forced == Strategy::NoCutlass) return "excluded by VGANZOO_CUDA_STRATEGY=no-cutlass";
  if (forced == Strategy::Igemm) return "excluded by VGANZOO_CUDA_STRATEGY=igemm";
  return cutlass_forward_ineligible(g, x);
}

// Autotuning. Neither path wins everywhere (measured on an H200, benchmarks/RESULTS.md): our kernel is
// up to 3x faster than cuDNN on the zoo's middle discriminator layers, cuDNN several times faster on
// the 1-2 channel heads and on some wide layers. So, like cudnn.benchmark, the first call of each
// configuration times every candidate (our kernel, cuDNN + epilogue, CUTLASS; a few runs each, on the
// current stream) and the fastest is remembered for the process. Not during CUDA graph capture (no
// timing possible): the first candidate then (our kernel, else CUTLASS), nothing cached.
// The key: dtype, TF32 mode, device, memory format, bias, activation, whether CUTLASS may compete, forward
// or backward (with the backward's gradient mask), and the geometry (transposed and output padding too).
using TuneKey = std::array<int64_t, 31>;

constexpr float kNotTimed = -1.f;

struct Tuned {
  Path path;                            // backward: Cutlass or AtenEpilogue (ATen's convolution_backward)
  float igemm_ms, aten_ms, cutlass_ms;  // kNotTimed where not a candidate
};

std::mutex& tune_mutex() {
  static std::mutex m;
  return m;
}

std::map<TuneKey, Tuned>& tune_cache() {
  static std::map<TuneKey, Tuned> cache;
  return cache;
}

// `pass`: 0 for the forward; for the backward 1 + its gradient mask (x, weight, bias bits).
TuneKey tune_key(const ConvGeometry& g, const at::Tensor& x, bool has_bias, Act act, bool with_cutlass,
                 int64_t pass = 0) {
  const bool cl = output_memory_format(x) == at::MemoryFormat::ChannelsLast3d;
  // Every candidate changes with TF32 (cuDNN's math, and which of our kernels runs).
  const int64_t tf32 = x.scalar_type() == at::kFloat ? tf32_allowed() + 2 * tf32_kernel_enabled() : 0;
  return {static_cast<int64_t>(x.scalar_type()), tf32, x.device().index(), cl, has_bias, static_cast<int64_t>(act),
          with_cutlass, pass, g.transposed,
          g.n, g.c_in, g.c_out, g.in[0], g.in[1], g.in[2], g.k[0], g.k[1], g.k[2],
          g.stride[0], g.stride[1], g.stride[2], g.pad[0], g.pad[1], g.pad[2], g.dil[0], g.dil[1], g.dil[2],
          g.out_pad[0], g.out_pad[1], g.out_pad[2], g.groups};
}

bool find_tuned(const TuneKey& key, Tuned* out) {
  std::lock_guard<std::mutex> lock(tune_mutex());
  auto it = tune_cache().find(key);
  if (it == tune_cache().end()) return false;
  *out = it->second;
  return true;
}

std::string fmt_ms(float ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f ms", ms);
  return buf;
}

int compute_major(const at::Tensor& x) {
  int major = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, x.device().index()));
  return major;
}

// Our kernel's variant for this call, or Path::Empty with the reason it cannot run it.
Path igemm_variant(const ConvGeometry& g, const at::Tensor& x, std::string* why_not) {
  if (g.transposed) return *why_not = "transposed convolution", Path::Empty;
  if (g.groups != 1) return *why_not = "groups > 1", Path::Empty;
  const int64_t m = g.n * g.out[0] * g.out[1] * g.out[2];
  const int64_t k = g.k[0] * g.k[1] * g.k[2] * round_up(g.c_in, kChannelPad);
  if (m > kInt32Max || k > kInt32Max || x.numel() > kInt32Max * 8 || m * g.c_out > kInt32Max * 8) {
    return *why_not = "tensor too large for the 32-bit GEMM indexing", Path::Empty;
  }
  switch (x.scalar_type()) {
    case at::kHalf:
    case at::kBFloat16:
      if (compute_major(x) < 8) return *why_not = "tensor-core kernel needs sm_80+", Path::Empty;
      return Path::IgemmTensorCore;
    case at::kFloat:
      return tf32_allowed() && tf32_kernel_enabled() && compute_major(x) >= 8 ? Path::IgemmTf32 : Path::IgemmFp32;
    default:
      return *why_not = "float64", Path::Empty;
  }
}

const char* igemm_reason(Path p) {
  switch (p) {
    case Path::IgemmTensorCore: return "implicit-GEMM kernel, tensor cores (WMMA), fused bias/act epilogue";
    case Path::IgemmTf32:
      return "implicit-GEMM kernel, TF32 tensor cores (WMMA; torch allows TF32 for convolutions), fused bias/act "
             "epilogue";
    default: return "implicit-GEMM kernel, float32 FMA, fused bias/act epilogue";
  }
}

constexpr const char* kCutlassReason = "CUTLASS implicit GEMM (multistage mma.sync), fused bias/act epilogue";
constexpr const char* kAtenReason = "ATen (cuDNN) + fused bias/act epilogue";

std::string timing_note(const Tuned& t) {
  std::string note = "autotuned for this configuration:";
  if (t.igemm_ms != kNotTimed) note += " our kernel " + fmt_ms(t.igemm_ms) + ",";
  if (t.cutlass_ms != kNotTimed) note += " CUTLASS " + fmt_ms(t.cutlass_ms) + ",";
  return note + " cuDNN + fused epilogue " + fmt_ms(t.aten_ms);
}

Plan choose_path(const ConvGeometry& g, const at::Tensor& x, bool has_bias, Act act) {
  if (g.n == 0) return {Path::Empty, "empty batch: output allocated, nothing computed"};
  const Strategy forced = forced_strategy();
  if (forced == Strategy::Aten) return {Path::AtenEpilogue, std::string(kAtenReason) + "; forced by VGANZOO_CUDA_STRATEGY=aten"};
  const std::string no_cutlass = cutlass_excluded(g, x, forced);
  const bool cutlass = no_cutlass.empty();
  if (forced == Strategy::Cutlass && cutlass) {
    return {Path::Cutlass, std::string(kCutlassReason) + "; forced by VGANZOO_CUDA_STRATEGY=cutlass"};
  }
  // Forced CUTLASS that cannot run the call takes the usual choice and says why.
  const std::string forced_note =
      forced == Strategy::Cutlass ? "; VGANZOO_CUDA_STRATEGY=cutlass, but not CUTLASS: " + no_cutlass : "";
  if (is_full_window(g) && forced != Strategy::Igemm) {
    // One matrix product (cuBLAS through at::mm) instead of a convolution: the score heads and VGAN's
    // 1x1x1-input first layer, where cuDNN + epilogue and our kernel both ran 0.73-0.89x eager (RESULTS.md).
    return {Path::FullWindowGemm, std::string(g.transposed ? "1x1x1 input spread over one kernel-sized output: one matrix product (at::mm), then fused bias/act epilogue"
                                                           : "kernel covers the whole unpadded input: one matrix product (at::addmm / at::mm), then fused bias/act epilogue") +
                                      forced_note};
  }
  std::string no_igemm;
  const Path igemm = igemm_variant(g, x, &no_igemm);
  if (igemm == Path::Empty && !cutlass) {
    return {Path::AtenEpilogue, no_igemm + ": " + kAtenReason + forced_note};
  }
  if (forced == Strategy::Igemm) {
    if (igemm == Path::Empty) return {Path::AtenEpilogue, no_igemm + ": " + kAtenReason};
    return {igemm, std::string(igemm_reason(igemm)) + "; forced by VGANZOO_CUDA_STRATEGY=igemm"};
  }
  // Timing-based choices can differ from process to process (as with cudnn.benchmark), so under
  // torch.use_deterministic_algorithms(True) nothing is timed: our kernel, whose reduction order is fixed
  // (no atomics, no split-K), gives the same bits in every run; without it, ATen as before.
  if (at::globalContext().deterministicAlgorithms()) {
    if (igemm == Path::Empty) return {Path::AtenEpilogue, no_igemm + ": " + kAtenReason + "; deterministic algorithms"};
    return {igemm, std::string(igemm_reason(igemm)) +
                       "; torch.use_deterministic_algorithms(True): our kernel without autotuning, bitwise repeatable"};
  }
  Plan plan;
  plan.igemm = igemm;
  plan.cutlass = cutlass;
  Tuned tuned{};
  if (find_tuned(tune_key(g, x, has_bias, act, cutlass), &tuned)) {
    plan.path = tuned.path;
    plan.reason = tuned.path == Path::AtenEpilogue ? kAtenReason
                  : tuned.path == Path::Cutlass    ? kCutlassReason
                                                   : igemm_reason(tuned.path);
    plan.reason += "; " + timing_note(tuned) + forced_note;
    return plan;
  }
  plan.path = igemm != Path::Empty ? igemm : Path::Cutlass;
  plan.reason = plan.path == Path::Cutlass ? kCutlassReason : igemm_reason(igemm);
  plan.reason += std::string("; not tuned yet: its first call times ") +
                 (igemm != Path::Empty && cutlass ? "our kernel, CUTLASS and cuDNN + fused epilogue"
                  : cutlass                       ? "CUTLASS against cuDNN + fused epilogue"
                                                  : "it against cuDNN + fused epilogue") +
                 " and keeps the fastest" + (cutlass ? "" : " (not CUTLASS: " + no_cutlass + ")") + forced_note;
  plan.tune = true;
  return plan;
}

const char* path_name(Path p) {
  switch (p) {
    case Path::Empty: return "empty";
    case Path::IgemmTensorCore: return "igemm_tensor_core";
    case Path::IgemmTf32: return "igemm_tf32";
    case Path::IgemmFp32: return "igemm_fp32";
    case Path::AtenEpilogue: return "aten_conv+bias_act_epilogue";
    case Path::FullWindowGemm: return "full_window_gemm+bias_act_epilogue";
    case Path::Cutlass: return "cutlass_implicit_gemm";
  }
  return "?";
}

ck::ConvParams make_params(const ConvGeometry& g, int64_t c_in_pad, Act act, double slope) {
  ck::ConvParams p{};
  p.n = static_cast<int>(g.n);
  p.c_in = static_cast<int>(g.c_in);
  p.c_in_pad = static_cast<int>(c_in_pad);
  p.c_out = static_cast<int>(g.c_out);
  p.in_t = static_cast<int>(g.in[0]), p.in_h = static_cast<int>(g.in[1]), p.in_w = static_cast<int>(g.in[2]);
  p.out_t = static_cast<int>(g.out[0]), p.out_h = static_cast<int>(g.out[1]), p.out_w = static_cast<int>(g.out[2]);
  p.k_t = static_cast<int>(g.k[0]), p.k_h = static_cast<int>(g.k[1]), p.k_w = static_cast<int>(g.k[2]);
  p.s_t = static_cast<int>(g.stride[0]), p.s_h = static_cast<int>(g.stride[1]), p.s_w = static_cast<int>(g.stride[2]);
  p.p_t = static_cast<int>(g.pad[0]), p.p_h = static_cast<int>(g.pad[1]), p.p_w = static_cast<int>(g.pad[2]);
  p.d_t = static_cast<int>(g.dil[0]), p.d_h = static_cast<int>(g.dil[1]), p.d_w = static_cast<int>(g.dil[2]);
  p.m = static_cast<int>(g.n * g.out[0] * g.out[1] * g.out[2]);
  p.k = static_cast<int>(g.k[0] * g.k[1] * g.k[2] * c_in_pad);
  p.act = static_cast<int>(act);
  p.slope = static_cast<float>(slope);
  return p;
}

// Whether the kernels' vectorised loads apply: runs of `run` consecutive k stay inside one tap (c_in is a
// multiple of the run, so no channel padding) and both operands are 16-byte aligned.
bool vector_loads_ok(int64_t c_in, int64_t run, const at::Tensor& x, const at::Tensor& w) {
  const auto aligned = [](const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; };
  return c_in % run == 0 && aligned(x.const_data_ptr()) && aligned(w.const_data_ptr());
}

template <typename T, typename scalar_t>
void launch_igemm_wmma(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, at::Tensor& y,
                       const ck::ConvParams& p, cudaStream_t stream) {
  const T* xp = reinterpret_cast<const T*>(x.const_data_ptr<scalar_t>());
  const T* wp = reinterpret_cast<const T*>(w.const_data_ptr<scalar_t>());
  const T* bp = b.defined() ? reinterpret_cast<const T*>(b.const_data_ptr<scalar_t>()) : nullptr;
  T* yp = reinterpret_cast<T*>(y.mutable_data_ptr<scalar_t>());
  dim3 grid((p.m + ck::wmma_cfg::kBM - 1) / ck::wmma_cfg::kBM, (p.c_out + ck::wmma_cfg::kBN - 1) / ck::wmma_cfg::kBN);
  if (vector_loads_ok(p.c_in, ck::wmma_cfg::kBK / 2, x, w)) {
    ck::conv3d_igemm_wmma_kernel<T, true><<<grid, ck::wmma_cfg::kThreads, 0, stream>>>(xp, wp, bp, yp, p);
  } else {
    ck::conv3d_igemm_wmma_kernel<T, false><<<grid, ck::wmma_cfg::kThreads, 0, stream>>>(xp, wp, bp, yp, p);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void launch_igemm_simt(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, at::Tensor& y,
                       const ck::ConvParams& p, cudaStream_t stream) {
  const float* bp = b.defined() ? b.const_data_ptr<float>() : nullptr;
  dim3 grid((p.m + ck::simt_cfg::kBM - 1) / ck::simt_cfg::kBM, (p.c_out + ck::simt_cfg::kBN - 1) / ck::simt_cfg::kBN);
  if (vector_loads_ok(p.c_in, 4, x, w)) {
    ck::conv3d_igemm_simt_kernel<float, true><<<grid, ck::simt_cfg::kThreads, 0, stream>>>(
        x.const_data_ptr<float>(), w.const_data_ptr<float>(), bp, y.mutable_data_ptr<float>(), p);
  } else {
    ck::conv3d_igemm_simt_kernel<float, false><<<grid, ck::simt_cfg::kThreads, 0, stream>>>(
        x.const_data_ptr<float>(), w.const_data_ptr<float>(), bp, y.mutable_data_ptr<float>(), p);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, typename scalar_t>
void launch_bias_act(at::Tensor& y, const at::Tensor& b, int64_t c, int64_t s, bool cl, Act act, double slope,
                     cudaStream_t stream) {
  constexpr int kThreads = 256;
  T* yp = reinterpret_cast<T*>(y.mutable_data_ptr<scalar_t>());
  const T* bp = b.defined() ? reinterpret_cast<const T*>(b.const_data_ptr<scalar_t>()) : nullptr;
  const int64_t total = y.numel();
  if (!cl) {
    const int64_t planes = total / s;
    // About 4 elements per thread; enough blocks in x for small plane counts, planes in y (<= 65535).
    const int64_t grid_y = std::min<int64_t>(planes, 65535);
    const int64_t want_x = (s + kThreads * 4 - 1) / (kThreads * 4);
    const int64_t grid_x = std::max<int64_t>(1, std::min<int64_t>(want_x, 65535));
    ck::bias_act_planes_kernel<T><<<dim3(grid_x, grid_y), kThreads, 0, stream>>>(
        yp, bp, planes, c, s, static_cast<int>(act), static_cast<float>(slope));
  } else {
    const int64_t blocks = std::min<int64_t>((total + kThreads * 4 - 1) / (kThreads * 4), 65535 * 16);
    if (total <= std::numeric_limits<uint32_t>::max()) {
      ck::bias_act_channels_last_kernel<T, uint32_t><<<blocks, kThreads, 0, stream>>>(
          yp, bp, static_cast<uint32_t>(total), static_cast<uint32_t>(c), static_cast<int>(act),
          static_cast<float>(slope));
    } else {
      ck::bias_act_channels_last_kernel<T, uint64_t><<<blocks, kThreads, 0, stream>>>(
          yp, bp, static_cast<uint64_t>(total), static_cast<uint64_t>(c), static_cast<int>(act),
          static_cast<float>(slope));
    }
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor run_igemm(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                     const std::optional<at::Tensor>& bias, Act act, double slope, bool tensor_cores) {
  const auto fmt = output_memory_format(x);
  const int64_t c_in_pad = round_up(g.c_in, kChannelPad);
  // NDHWC views: for a channels_last_3d tensor, physical memory is (N, T, H, W, C).
  at::Tensor x_cl = x.contiguous(at::MemoryFormat::ChannelsLast3d);
  // The kernel reads the weight as (C_out, kT, kH, kW, C_in_pad). With no channel padding that is exactly a
  // channels_last_3d weight's memory: no copy if it already is one, one copy (no zero fill) otherwise.
  at::Tensor w_packed;
  if (c_in_pad == g.c_in) {
    w_packed = weight.contiguous(at::MemoryFormat::ChannelsLast3d);
  } else {
    w_packed = at::zeros({g.c_out, g.k[0], g.k[1], g.k[2], c_in_pad}, weight.options());
    w_packed.narrow(4, 0, g.c_in).copy_(weight.permute({0, 2, 3, 4, 1}));
  }
  at::Tensor b = (bias.has_value() && bias->defined()) ? bias->contiguous() : at::Tensor();
  at::Tensor y = at::empty(output_sizes(g), x.options().memory_format(at::MemoryFormat::ChannelsLast3d));
  const ck::ConvParams p = make_params(g, c_in_pad, act, slope);
  auto stream = c10::cuda::getCurrentCUDAStream(x.device().index());

  // Explicit per-dtype launches (no AT_DISPATCH: kernels are instantiated only for the types they support).
  switch (x.scalar_type()) {
    case at::kHalf:
      TORCH_CHECK(tensor_cores, "internal: half-precision igemm requires the tensor-core kernel");
      launch_igemm_wmma<__half, at::Half>(x_cl, w_packed, b, y, p, stream);
      break;
    case at::kBFloat16:
      TORCH_CHECK(tensor_cores, "internal: half-precision igemm requires the tensor-core kernel");
      launch_igemm_wmma<__nv_bfloat16, at::BFloat16>(x_cl, w_packed, b, y, p, stream);
      break;
    case at::kFloat:
      if (tensor_cores) {
        launch_igemm_wmma<float, float>(x_cl, w_packed, b, y, p, stream);  // TF32
      } else {
        launch_igemm_simt(x_cl, w_packed, b, y, p, stream);
      }
      break;
    default:
      TORCH_CHECK(false, "internal: igemm path selected for unsupported dtype ", x.scalar_type());
  }
  return fmt == at::MemoryFormat::ChannelsLast3d ? y : y.contiguous(fmt);
}

void bias_act_cuda_(at::Tensor& y, const std::optional<at::Tensor>& bias, Act act, double slope) {
  const bool has_bias = bias.has_value() && bias->defined();
  if ((act == Act::None && !has_bias) || y.numel() == 0) return;
  const bool cl = !y.is_contiguous() && y.is_contiguous(at::MemoryFormat::ChannelsLast3d);
  TORCH_CHECK(cl || y.is_contiguous(), "bias_act: output must be contiguous or channels_last_3d");
  at::Tensor b = has_bias ? bias->contiguous() : at::Tensor();
  const int64_t total = y.numel(), c = y.size(1), s = total / std::max<int64_t>(y.size(0) * c, 1);
  auto stream = c10::cuda::getCurrentCUDAStream(y.device().index());
  switch (y.scalar_type()) {
    case at::kFloat: launch_bias_act<float, float>(y, b, c, s, cl, act, slope, stream); break;
    case at::kHalf: launch_bias_act<__half, at::Half>(y, b, c, s, cl, act, slope, stream); break;
    case at::kBFloat16: launch_bias_act<__nv_bfloat16, at::BFloat16>(y, b, c, s, cl, act, slope, stream); break;
    default: {
      // float64 (rare on GPU): plain ATen ops, in place.
      if (b.defined()) y.add_(b.view({1, c, 1, 1, 1}));
      switch (act) {
        case Act::Relu: y.relu_(); break;
        case Act::LeakyRelu: at::leaky_relu_(y, slope); break;
        case Act::Tanh: y.tanh_(); break;
        case Act::Sigmoid: y.sigmoid_(); break;
        case Act::None: break;
      }
    }
  }
}

at::Tensor run_aten(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                    const std::optional<at::Tensor>& bias, Act act, double slope) {
  const auto fmt = output_memory_format(x);
  at::Tensor y = at::convolution(x, weight, std::nullopt, at::IntArrayRef(g.stride, 3), at::IntArrayRef(g.pad, 3),
                                 at::IntArrayRef(g.dil, 3), g.transposed, at::IntArrayRef(g.out_pad, 3), g.groups);
  if (!y.is_contiguous(fmt)) y = y.contiguous(fmt);
  bias_act_cuda_(y, bias, act, slope);
  return y;
}

// is_full_window(g): y (N, C_out) = x (N, K) @ w (C_out, K)^T, or for the transposed layer
// y (N, C_out * k) = x (N, C_in) @ w (C_in, C_out * k). With a bias and no activation the bias rides in
// the GEMM (at::addmm); otherwise the epilogue kernel applies them.
at::Tensor run_full_window(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias, Act act, double slope) {
  const bool fold_bias = bias.has_value() && bias->defined() && act == Act::None && !g.transposed;
  at::Tensor y = full_window_product(g, x, weight, output_memory_format(x), fold_bias ? *bias : at::Tensor());
  if (!fold_bias) bias_act_cuda_(y, bias, act, slope);
  return y;
}

// Mean milliseconds of `reps` back-to-back calls of fn on `stream` (after one warm-up call).
template <typename Fn>
float time_ms(Fn&& fn, cudaStream_t stream, int reps) {
  fn();
  cudaEvent_t start, stop;
  C10_CUDA_CHECK(cudaEventCreate(&start));
  C10_CUDA_CHECK(cudaEventCreate(&stop));
  C10_CUDA_CHECK(cudaEventRecord(start, stream));
  for (int i = 0; i < reps; ++i) fn();
  C10_CUDA_CHECK(cudaEventRecord(stop, stream));
  C10_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0.f;
  C10_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  C10_CUDA_CHECK(cudaEventDestroy(start));
  C10_CUDA_CHECK(cudaEventDestroy(stop));
  return ms / reps;
}

at::Tensor run_tuned(const ConvGeometry& g, const at::Tensor& x, const at::Tensor& weight,
                     const std::optional<at::Tensor>& bias, Act act, double slope, const Plan& plan,
                     const TuneKey& key) {
  const bool tensor_cores = plan.igemm != Path::IgemmFp32;
  const auto igemm = [&] { return run_igemm(g, x, weight, bias, act, slope, tensor_cores); };
  const auto aten = [&] { return run_aten(g, x, weight, bias, act, slope); };
  const auto cutlass = [&] { return cutlass_forward(g, x, weight, bias, act, slope); };
  const auto first = [&] { return plan.igemm != Path::Empty ? igemm() : cutlass(); };
  auto stream = c10::cuda::getCurrentCUDAStream(x.device().index());
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  C10_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  if (capture != cudaStreamCaptureStatusNone) return first();
  // Time each candidate twice, alternating, and keep each one's best, so a clock ramp or a stray kernel
  // does not decide.
  constexpr int kReps = 3;
  Tuned t{Path::AtenEpilogue, kNotTimed, kNotTimed, kNotTimed};
  for (int round = 0; round < 2; ++round) {
    const auto best = [](float previous, float now) { return previous == kNotTimed ? now : std::min(previous, now); };
    if (plan.igemm != Path::Empty) t.igemm_ms = best(t.igemm_ms, time_ms(igemm, stream, kReps));
    if (plan.cutlass) t.cutlass_ms = best(t.cutlass_ms, time_ms(cutlass, stream, kReps));
    t.aten_ms = best(t.aten_ms, time_ms(aten, stream, kReps));
  }
  float fastest = t.aten_ms;
  if (t.igemm_ms != kNotTimed && t.igemm_ms <= fastest) t.path = plan.igemm, fastest = t.igemm_ms;
  if (t.cutlass_ms != kNotTimed && t.cutlass_ms < fastest) t.path = Path::Cutlass, fastest = t.cutlass_ms;
  {
    std::lock_guard<std::mutex> lock(tune_mutex());
    tune_cache()[key] = t;
  }
  switch (t.path) {
    case Path::AtenEpilogue: return aten();
    case Path::Cutlass: return cutlass();
    default: return igemm();
  }
}

at::Tensor forward(const char* op, const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                   at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef output_padding,
                   at::IntArrayRef dilation, int64_t groups, bool transposed, c10::string_view activation,
                   double negative_slope) {
  const Act act = parse_activation(activation, negative_slope);
  const ConvGeometry g =
      check_conv_args(op, x, weight, bias, stride, padding, output_padding, dilation, groups, transposed);
  const c10::cuda::CUDAGuard guard(x.device());
  const bool has_bias = bias.has_value() && bias->defined();
  const Plan plan = choose_path(g, x, has_bias, act);
  if (plan.tune) {
    return run_tuned(g, x, weight, bias, act, negative_slope, plan, tune_key(g, x, has_bias, act, plan.cutlass));
  }
  switch (plan.path) {
    case Path::Empty:
      return at::empty(output_sizes(g), x.options().memory_format(output_memory_format(x)));
    case Path::IgemmTensorCore:
    case Path::IgemmTf32:
    case Path::IgemmFp32:
      return run_igemm(g, x, weight, bias, act, negative_slope, plan.path != Path::IgemmFp32);
    case Path::FullWindowGemm:
      return run_full_window(g, x, weight, bias, act, negative_slope);
    case Path::Cutlass:
      return cutlass_forward(g, x, weight, bias, act, negative_slope);
    case Path::AtenEpilogue:
      break;
  }
  return run_aten(g, x, weight, bias, act, negative_slope);
}

VGANZOO_DEVICE_ENTRY_POINTS("ext/cuda:")

// vganzoo::conv3d_bias_act_backward on CUDA: the gradients of the convolution (x, weight, bias as `mask`
// asks) from `grad`, the gradient of the pre-activation. CUTLASS (dgrad + wgrad; fprop + wgrad for a
// transposed convolution) where it can run the call and is measured faster than ATen's
// convolution_backward (cuDNN), or is forced; ATen otherwise.
std::tuple<at::Tensor, at::Tensor, at::Tensor> backward_entry(const at::Tensor& grad, const at::Tensor& x,
                                                              const at::Tensor& weight, at::IntArrayRef stride,
                                                              at::IntArrayRef padding, at::IntArrayRef output_padding,
                                                              at::IntArrayRef dilation, int64_t groups,
                                                              bool transposed, std::array<bool, 3> mask) {
  const char* op = transposed ? "conv_transpose3d_bias_act" : "conv3d_bias_act";
  const ConvGeometry g =
      check_conv_args(op, x, weight, std::nullopt, stride, padding, output_padding, dilation, groups, transposed);
  TORCH_CHECK_VALUE(grad.sizes() == at::IntArrayRef(output_sizes(g)), "conv3d_bias_act_backward: grad has shape ",
                    grad.sizes(), ", the layer's output ", at::IntArrayRef(output_sizes(g)));
  const c10::cuda::CUDAGuard guard(x.device());
  const std::vector<int64_t> bias_sizes{g.c_out};
  const std::vector<int64_t> no_output_padding{0, 0, 0};
  const auto aten = [&] {
    return at::convolution_backward(grad, x, weight, mask[2] ? at::OptionalIntArrayRef(bias_sizes) : at::OptionalIntArrayRef(),
                                    stride, padding, dilation, transposed,
                                    transposed ? output_padding : at::IntArrayRef(no_output_padding), groups, mask);
  };
  const Strategy forced = forced_strategy();
  if (forced == Strategy::Aten || forced == Strategy::Igemm || forced == Strategy::NoCutlass || g.n == 0) return aten();
  if (!cutlass_backward_ineligible(g, x, mask).empty()) return aten();
  const auto cutlass = [&] { return cutlass_backward(g, grad, x, weight, mask); };
  if (forced == Strategy::Cutlass) return cutlass();
  if (at::globalContext().deterministicAlgorithms()) return aten();  // nothing timed (see choose_path)
  const int64_t pass = 1 + mask[0] + 2 * mask[1] + 4 * mask[2];
  const TuneKey key = tune_key(g, x, false, Act::None, true, pass);
  Tuned tuned{};
  if (find_tuned(key, &tuned)) return tuned.path == Path::Cutlass ? cutlass() : aten();
  auto stream = c10::cuda::getCurrentCUDAStream(x.device().index());
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  C10_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  if (capture != cudaStreamCaptureStatusNone) return aten();  // untuned under capture: no timing possible
  constexpr int kReps = 3;
  Tuned t{Path::AtenEpilogue, kNotTimed, kNotTimed, kNotTimed};
  t.cutlass_ms = time_ms(cutlass, stream, kReps);
  t.aten_ms = time_ms(aten, stream, kReps);
  t.cutlass_ms = std::min(t.cutlass_ms, time_ms(cutlass, stream, kReps));
  t.aten_ms = std::min(t.aten_ms, time_ms(aten, stream, kReps));
  if (t.cutlass_ms < t.aten_ms) t.path = Path::Cutlass;
  {
    std::lock_guard<std::mutex> lock(tune_mutex());
    tune_cache()[key] = t;
  }
  return t.path == Path::Cutlass ? cutlass() : aten();
}

}  // namespace
}  // namespace cuda
}  // namespace vganzoo

TORCH_LIBRARY_IMPL(vganzoo, CUDA, m) {
  m.impl("conv3d_bias_act", &vganzoo::cuda::conv3d_entry);
  m.impl("conv_transpose3d_bias_act", &vganzoo::cuda::conv_transpose3d_entry);
  m.impl("explain", &vganzoo::cuda::explain_entry);
  m.impl("conv3d_bias_act_backward", &vganzoo::cuda::backward_entry);
}
