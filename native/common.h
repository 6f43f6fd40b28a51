// Shared pieces of the budgetnet addon: the tensor handle, argument readers and the
// guard that turns every native exception into a JavaScript NativeOpError.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

namespace bn {

// A JavaScript handle over one at::Tensor. dispose() drops the reference at once; the
// destructor (run by V8's finalizer) is only the fallback for handles never disposed.
class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::FunctionReference constructor;
  static std::atomic<int64_t> live;

  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Value Wrap(Napi::Env env, at::Tensor t);
  static bool Is(const Napi::Value& v);

  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

  at::Tensor tensor;
  bool alive = false;

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsAlive(const Napi::CallbackInfo& info);
};

// Registered from JavaScript at load: new NativeOpError(op, shapes, message).
void SetErrorClass(Napi::Env env, Napi::Function cls);
[[noreturn]] void ThrowOpError(const Napi::CallbackInfo& info, const char* op, const std::string& msg);
[[noreturn]] void ThrowArg(const Napi::CallbackInfo& info, const char* op, size_t index, const char* expected);

// Runs f(); any c10::Error or std::exception becomes NativeOpError naming op and the shapes
// of every tensor argument.
template <class F>
Napi::Value Guard(const char* op, const Napi::CallbackInfo& info, F&& f) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    ThrowOpError(info, op, e.what_without_backtrace());
  } catch (const std::exception& e) {
    ThrowOpError(info, op, e.what());
  }
}

// Op definitions: OP(Name) { GUARD("opName") { ...body returning a Napi::Value... } END }
// names the op once for its error messages; W(t) wraps a result tensor in a new handle.
#define OP(name) static Napi::Value name(const Napi::CallbackInfo& info)
#define GUARD(opname) \
  [[maybe_unused]] Args a{info, opname}; \
  return Guard(opname, info, [&]() -> Napi::Value
#define END );
#define W(x) TensorHandle::Wrap(info.Env(), (x))

// Argument readers. Each throws a clear TypeError naming the op and the argument index.
struct Args {
  const Napi::CallbackInfo& info;
  const char* op;

  size_t size() const { return info.Length(); }
  bool missing(size_t i) const { return i >= info.Length() || info[i].IsUndefined() || info[i].IsNull(); }
  at::Tensor& tensor(size_t i) const;
  at::Tensor optTensor(size_t i) const;  // undefined/null -> undefined tensor
  std::vector<at::Tensor> tensors(size_t i) const;
  double num(size_t i) const;
  int64_t int64(size_t i) const;
  bool boolean(size_t i) const;
  std::string str(size_t i) const;
  std::vector<int64_t> ints(size_t i) const;
  at::Scalar scalar(size_t i) const;
  c10::optional<at::Scalar> optScalar(size_t i) const;
  // A tensor, or a JS number/boolean turned into a wrapped-number tensor (PyTorch's rule
  // for Python scalars in type promotion).
  at::Tensor tensorOrScalar(size_t i) const;
  at::ScalarType dtype(size_t i, at::ScalarType fallback) const;
  at::Device device(size_t i) const;
};

at::ScalarType ParseDtype(const std::string& s);
const char* DtypeName(at::ScalarType t);

// Registration helpers, one call per exported function.
using NativeFn = Napi::Value (*)(const Napi::CallbackInfo&);
void Export(Napi::Env env, Napi::Object exports, const char* name, NativeFn fn);

void InitTensor(Napi::Env env, Napi::Object exports);
void InitMath(Napi::Env env, Napi::Object exports);
void InitNN(Napi::Env env, Napi::Object exports);
void InitAllocator(Napi::Env env, Napi::Object exports);
bool InstallCachingAllocator();
void InitAugment(Napi::Env env, Napi::Object exports);
void InitAutocast(Napi::Env env, Napi::Object exports);
bool AutocastCpuOn();  // CPU autocast is on for the ops called now (native/autocast.cc)
void InitProfiler(Napi::Env env, Napi::Object exports);
void InitPlan(Napi::Env env, Napi::Object exports);
bool HavePlan();  // built with oneDNN's headers (native/plan.cc)
void InitDist(Napi::Env env, Napi::Object exports);
void InitFusedBn(Napi::Env env, Napi::Object exports);
void InitConvTrain(Napi::Env env, Napi::Object exports);
// conv2d through oneDNN with the kernels measured fastest per shape and phase (native/conv_train.cc),
// or nullopt where it does not apply (then at::conv2d).
std::optional<at::Tensor> TrainConv2d(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                                      const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                                      const std::vector<int64_t>& dilation, int64_t groups);
// running = (1 - momentum) * running + momentum * batch, for mean and (unbiased) variance, outside
// autograd; nothing when the module tracks no running statistics (either undefined).
void UpdateRunningStats(at::Tensor& runningMean, at::Tensor& runningVar, const at::Tensor& mean,
                        const at::Tensor& var, double momentum);
bool HaveDist();  // built with Gloo's headers (native/dist.cc)


}  // namespace bn
