// CPU speed switches: libtorch's CPU autocast (mixed precision), c10::InferenceMode, and an
// in-place layout change of a parameter (set_data) for channels-last models.
//
// Autocast and InferenceMode are thread-local state in libtorch. Every op of budgetnet runs on
// the Node main thread, so setting them here affects exactly the ops JavaScript calls next.
#include <ATen/autocast_mode.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include <memory>
#include <vector>

#include "common.h"

namespace bn {

// libtorch 2.4 turned the per-device autocast functions (is_cpu_enabled, set_enabled for CUDA,
// get_autocast_gpu_dtype, ...) into one set taking the device type, and later releases deprecate
// the old names; these four pick whichever this libtorch has.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
static bool AcEnabled(c10::DeviceType d) { return at::autocast::is_autocast_enabled(d); }
static void AcSetEnabled(c10::DeviceType d, bool on) { at::autocast::set_autocast_enabled(d, on); }
static at::ScalarType AcDtype(c10::DeviceType d) { return at::autocast::get_autocast_dtype(d); }
static void AcSetDtype(c10::DeviceType d, at::ScalarType t) { at::autocast::set_autocast_dtype(d, t); }
#else
static bool AcEnabled(c10::DeviceType d) {
  return d == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
static void AcSetEnabled(c10::DeviceType d, bool on) {
  if (d == c10::DeviceType::CUDA)
    at::autocast::set_enabled(on);
  else
    at::autocast::set_cpu_enabled(on);
}
static at::ScalarType AcDtype(c10::DeviceType d) {
  return d == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
static void AcSetDtype(c10::DeviceType d, at::ScalarType t) {
  if (d == c10::DeviceType::CUDA)
    at::autocast::set_autocast_gpu_dtype(t);
  else
    at::autocast::set_autocast_cpu_dtype(t);
}
#endif

bool AutocastCpuOn() { return AcEnabled(c10::DeviceType::CPU); }

// The device type an autocast call is about: "cpu" (the default) or "cuda".
static c10::DeviceType AutocastDevice(const Args& a, size_t i) {
  if (a.missing(i)) return c10::DeviceType::CPU;
  std::string s = a.str(i);
  if (s == "cpu") return c10::DeviceType::CPU;
  if (s == "cuda") {
    if (!at::hasCUDA())
      throw std::invalid_argument("autocast on 'cuda' asked for, but this libtorch has no CUDA (or no GPU is visible)");
    return c10::DeviceType::CUDA;
  }
  throw std::invalid_argument("autocast device must be 'cpu' or 'cuda'. Received: device='" + s + "'");
}

static at::ScalarType AutocastDtype(const Args& a, size_t i) {
  at::ScalarType t = a.dtype(i, at::kBFloat16);
  // CPU autocast in libtorch 1.13 only has kernels registered for bfloat16 (float16 is
  // accepted by the setter but the op lists then cast to a type most CPU kernels lack); CUDA
  // autocast is run in bfloat16 here too (float16 would need a gradient scaler).
  if (t != at::kBFloat16)
    throw std::invalid_argument(std::string("autocast supports dtype 'bfloat16' only. Received: dtype='") +
                                DtypeName(t) + "'");
  return t;
}

static Napi::Object StateObject(Napi::Env env, c10::DeviceType d) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("enabled", Napi::Boolean::New(env, AcEnabled(d)));
  o.Set("dtype", Napi::String::New(env, DtypeName(AcDtype(d))));
  return o;
}

// autocastState(device?) -> {enabled, dtype} of "cpu" (default) or "cuda" autocast
OP(AutocastState) {
  GUARD("autocastState") { return StateObject(info.Env(), AutocastDevice(a, 0)); }
  END
}

// autocastEnter(enabled, dtype, device?) -> the previous {enabled, dtype} of that device's
// autocast. Like torch.autocast(device)'s __enter__: sets the state and counts one more nesting level.
OP(AutocastEnter) {
  GUARD("autocastEnter") {
    bool enabled = a.boolean(0);
    at::ScalarType dtype = AutocastDtype(a, 1);
    c10::DeviceType dev = AutocastDevice(a, 2);
    Napi::Object prev = StateObject(info.Env(), dev);
    AcSetEnabled(dev, enabled);
    AcSetDtype(dev, dtype);
    at::autocast::increment_nesting();
    return prev;
  }
  END
}

// autocastExit(prevEnabled, prevDtype, device?): restores the state autocastEnter returned. When the
// outermost region closes, the cache of weights already cast to bfloat16 is cleared, so the
// next step casts the updated float32 master weights again (torch.autocast's __exit__).
OP(AutocastExit) {
  GUARD("autocastExit") {
    bool enabled = a.boolean(0);
    at::ScalarType dtype = a.dtype(1, at::kBFloat16);
    c10::DeviceType dev = AutocastDevice(a, 2);
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    AcSetEnabled(dev, enabled);
    AcSetDtype(dev, dtype);
    return info.Env().Undefined();
  }
  END
}

// A stack of InferenceMode guards: enter pushes one, exit pops the newest. The guard is RAII in
// C++; JavaScript's try/finally in src/perf/inference.ts keeps the pushes and pops paired.
static std::vector<std::unique_ptr<c10::InferenceMode>> inferenceGuards;

OP(InferenceModeEnter) {
  GUARD("inferenceModeEnter") {
    inferenceGuards.push_back(std::make_unique<c10::InferenceMode>(true));
    return Napi::Number::New(info.Env(), (double)inferenceGuards.size());
  }
  END
}

OP(InferenceModeExit) {
  GUARD("inferenceModeExit") {
    if (inferenceGuards.empty()) throw std::logic_error("no inference-mode region is open");
    inferenceGuards.pop_back();
    return Napi::Number::New(info.Env(), (double)inferenceGuards.size());
  }
  END
}

OP(IsInferenceMode) {
  GUARD("isInferenceMode") { return Napi::Boolean::New(info.Env(), c10::InferenceMode::is_enabled()); }
  END
}

// setData(t, src, allowDtype?): t now refers to src's storage, sizes and strides (Tensor.set_data, what
// `param.data = ...` does in Python). Autograd identity, requires_grad and every JavaScript
// handle to t are kept, so an optimizer holding t sees the new layout.
OP(SetData) {
  GUARD("setData") {
    at::Tensor& t = a.tensor(0);
    at::Tensor& src = a.tensor(1);
    if (t.sizes() != src.sizes())
      throw std::invalid_argument("setData: the new data must have the same shape as the tensor");
    bool castOk = !a.missing(2) && a.boolean(2);
    if (t.scalar_type() != src.scalar_type() && !castOk)
      throw std::invalid_argument(std::string("setData: the new data must have the same dtype. Received: dtype='") +
                                  DtypeName(src.scalar_type()) + "', expected '" + DtypeName(t.scalar_type()) + "'");
    at::NoGradGuard noGrad;
    t.set_data(src.detach());
    return info.Env().Undefined();
  }
  END
}

void InitAutocast(Napi::Env env, Napi::Object exports) {
  struct {
    const char* name;
    NativeFn fn;
  } table[] = {
      {"autocastState", AutocastState},
      {"autocastEnter", AutocastEnter},
      {"autocastExit", AutocastExit},
      {"inferenceModeEnter", InferenceModeEnter},
      {"inferenceModeExit", InferenceModeExit},
      {"isInferenceMode", IsInferenceMode},
      {"setData", SetData},
  };
  for (auto& e : table) Export(env, exports, e.name, e.fn);
}

}  // namespace bn
