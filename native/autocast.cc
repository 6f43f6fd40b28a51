// CPU speed switches: libtorch's CPU autocast (mixed precision), c10::InferenceMode, and an
// in-place layout change of a parameter (set_data) for channels-last models.
//
// Autocast and InferenceMode are thread-local state in libtorch. Every op of budgetnet runs on
// the Node main thread, so setting them here affects exactly the ops JavaScript calls next.
#include <ATen/autocast_mode.h>
#include <c10/core/InferenceMode.h>

#include <memory>
#include <vector>

#include "common.h"

namespace bn {

static at::ScalarType AutocastDtype(const Args& a, size_t i) {
  at::ScalarType t = a.dtype(i, at::kBFloat16);
  // CPU autocast in libtorch 1.13 only has kernels registered for bfloat16 (float16 is
  // accepted by the setter but the op lists then cast to a type most CPU kernels lack).
  if (t != at::kBFloat16)
    throw std::invalid_argument(std::string("CPU autocast supports dtype 'bfloat16' only. Received: dtype='") +
                                DtypeName(t) + "'");
  return t;
}

static Napi::Object StateObject(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("enabled", Napi::Boolean::New(env, at::autocast::is_cpu_enabled()));
  o.Set("dtype", Napi::String::New(env, DtypeName(at::autocast::get_autocast_cpu_dtype())));
  return o;
}

// autocastState() -> {enabled, dtype}
OP(AutocastState) {
  GUARD("autocastState") { return StateObject(info.Env()); }
  END
}

// autocastEnter(enabled, dtype) -> the previous {enabled, dtype}. Like torch.autocast's
// __enter__: sets the state and counts one more nesting level.
OP(AutocastEnter) {
  GUARD("autocastEnter") {
    bool enabled = a.boolean(0);
    at::ScalarType dtype = AutocastDtype(a, 1);
    Napi::Object prev = StateObject(info.Env());
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::increment_nesting();
    return prev;
  }
  END
}

// autocastExit(prevEnabled, prevDtype): restores the state autocastEnter returned. When the
// outermost region closes, the cache of weights already cast to bfloat16 is cleared, so the
// next step casts the updated float32 master weights again (torch.autocast's __exit__).
OP(AutocastExit) {
  GUARD("autocastExit") {
    bool enabled = a.boolean(0);
    at::ScalarType dtype = a.dtype(1, at::kBFloat16);
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
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
