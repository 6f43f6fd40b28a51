// The tensor handle, argument readers, error conversion, creation, data in and out,
// autograd and views.
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <cstring>
#include <sstream>

#include "common.h"

namespace bn {

Napi::FunctionReference TensorHandle::constructor;
std::atomic<int64_t> TensorHandle::live{0};
static Napi::FunctionReference errorClass;

// ---------------------------------------------------------------- handle

void TensorHandle::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "TensorHandle",
                                   {InstanceMethod("dispose", &TensorHandle::Dispose),
                                    InstanceMethod("isAlive", &TensorHandle::IsAlive)});
  constructor = Napi::Persistent(cls);
  constructor.SuppressDestruct();
  exports.Set("TensorHandle", cls);
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {
  if (info.Length() == 1 && info[0].IsExternal()) {
    tensor = std::move(*info[0].As<Napi::External<at::Tensor>>().Data());
    alive = true;
    live++;
  }
}

TensorHandle::~TensorHandle() {
  if (alive) live--;
}

Napi::Value TensorHandle::Wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Undefined();
  return constructor.New({Napi::External<at::Tensor>::New(env, &t)});
}

bool TensorHandle::Is(const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(constructor.Value());
}

Napi::Value TensorHandle::Dispose(const Napi::CallbackInfo& info) {
  if (alive) {
    tensor = at::Tensor();
    alive = false;
    live--;
  }
  return info.Env().Undefined();
}

Napi::Value TensorHandle::IsAlive(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), alive);
}

// ---------------------------------------------------------------- errors

void SetErrorClass(Napi::Env env, Napi::Function cls) {
  errorClass = Napi::Persistent(cls);
  errorClass.SuppressDestruct();
}

static void CollectShapes(const Napi::Value& v, Napi::Array& out, uint32_t& n) {
  if (TensorHandle::Is(v)) {
    auto* h = TensorHandle::Unwrap(v.As<Napi::Object>());
    Napi::Env env = v.Env();
    if (!h->alive || !h->tensor.defined()) {
      out.Set(n++, Napi::String::New(env, "disposed"));
      return;
    }
    auto sizes = h->tensor.sizes();
    Napi::Array shape = Napi::Array::New(env, sizes.size());
    for (size_t i = 0; i < sizes.size(); i++) shape.Set(i, Napi::Number::New(env, (double)sizes[i]));
    out.Set(n++, shape);
  } else if (v.IsArray()) {
    auto arr = v.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value e = arr.Get(i);
      if (TensorHandle::Is(e)) CollectShapes(e, out, n);
    }
  }
}

void ThrowOpError(const Napi::CallbackInfo& info, const char* op, const std::string& msg) {
  Napi::Env env = info.Env();
  Napi::Array shapes = Napi::Array::New(env);
  uint32_t n = 0;
  for (size_t i = 0; i < info.Length(); i++) CollectShapes(info[i], shapes, n);
  // libtorch messages can carry an "Exception raised from ..." tail; keep the first part.
  std::string clean = msg;
  auto cut = clean.find("\nException raised from");
  if (cut != std::string::npos) clean = clean.substr(0, cut);
  if (!errorClass.IsEmpty()) {
    Napi::Object err = errorClass.New({Napi::String::New(env, op), shapes, Napi::String::New(env, clean)});
    throw Napi::Error(env, err);
  }
  throw Napi::Error::New(env, std::string(op) + ": " + clean);
}

void ThrowArg(const Napi::CallbackInfo& info, const char* op, size_t index, const char* expected) {
  std::ostringstream s;
  s << op << ": argument " << index << " must be " << expected << ".";
  throw Napi::TypeError::New(info.Env(), s.str());
}

// ---------------------------------------------------------------- argument readers

at::Tensor& Args::tensor(size_t i) const {
  if (i >= info.Length() || !TensorHandle::Is(info[i])) ThrowArg(info, op, i, "a Tensor");
  auto* h = TensorHandle::Unwrap(info[i].As<Napi::Object>());
  if (!h->alive) {
    throw Napi::Error::New(info.Env(), std::string(op) +
                                           ": a tensor argument was already disposed. Keep it alive "
                                           "with keep() or return it from its scope.");
  }
  return h->tensor;
}

at::Tensor Args::optTensor(size_t i) const { return missing(i) ? at::Tensor() : tensor(i); }

std::vector<at::Tensor> Args::tensors(size_t i) const {
  if (i >= info.Length() || !info[i].IsArray()) ThrowArg(info, op, i, "an array of Tensors");
  auto arr = info[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr.Get(k);
    if (!TensorHandle::Is(v)) ThrowArg(info, op, i, "an array of Tensors");
    auto* h = TensorHandle::Unwrap(v.As<Napi::Object>());
    if (!h->alive) throw Napi::Error::New(info.Env(), std::string(op) + ": a tensor in the list was disposed.");
    out.push_back(h->tensor);
  }
  return out;
}

double Args::num(size_t i) const {
  if (i >= info.Length() || !info[i].IsNumber()) ThrowArg(info, op, i, "a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

// True when d is an integer that fits int64 exactly; checked before any cast (casting NaN,
// infinities or |d| >= 2^63 is undefined behaviour).
static bool IsInt64(double d) { return std::isfinite(d) && std::fabs(d) < 9.2e18 && d == std::trunc(d); }

int64_t Args::int64(size_t i) const {
  double d = num(i);
  if (!IsInt64(d)) ThrowArg(info, op, i, "an integer");
  return (int64_t)d;
}

bool Args::boolean(size_t i) const {
  if (i >= info.Length() || !info[i].IsBoolean()) ThrowArg(info, op, i, "a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

std::string Args::str(size_t i) const {
  if (i >= info.Length() || !info[i].IsString()) ThrowArg(info, op, i, "a string");
  return info[i].As<Napi::String>().Utf8Value();
}

std::vector<int64_t> Args::ints(size_t i) const {
  if (i >= info.Length() || !info[i].IsArray()) ThrowArg(info, op, i, "an array of integers");
  auto arr = info[i].As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr.Get(k);
    if (!v.IsNumber()) ThrowArg(info, op, i, "an array of integers");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!IsInt64(d)) ThrowArg(info, op, i, "an array of integers");
    out[k] = (int64_t)d;
  }
  return out;
}

at::Scalar Args::scalar(size_t i) const {
  if (i < info.Length() && info[i].IsBoolean()) return at::Scalar(info[i].As<Napi::Boolean>().Value());
  if (i >= info.Length() || !info[i].IsNumber()) ThrowArg(info, op, i, "a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  // Integral JS numbers become integer scalars so int tensors stay int (PyTorch's rule).
  if (std::isfinite(d) && std::fabs(d) < 9.007199254740992e15 && d == std::trunc(d)) return at::Scalar((int64_t)d);
  return at::Scalar(d);
}

c10::optional<at::Scalar> Args::optScalar(size_t i) const {
  if (missing(i)) return c10::nullopt;
  return scalar(i);
}

at::Tensor Args::tensorOrScalar(size_t i) const {
  if (i < info.Length() && (info[i].IsNumber() || info[i].IsBoolean())) {
    at::Tensor t = at::scalar_tensor(scalar(i), at::TensorOptions().dtype(
                                                    info[i].IsBoolean() ? at::kBool
                                                    : scalar(i).isIntegral(false) ? at::kLong
                                                                                  : at::kDouble));
    t.unsafeGetTensorImpl()->set_wrapped_number(true);
    return t;
  }
  return tensor(i);
}

at::ScalarType ParseDtype(const std::string& s) {
  if (s == "float32") return at::kFloat;
  if (s == "float64") return at::kDouble;
  if (s == "bfloat16") return at::kBFloat16;
  if (s == "float16") return at::kHalf;
  if (s == "int64") return at::kLong;
  if (s == "int32") return at::kInt;
  if (s == "uint8") return at::kByte;
  if (s == "bool") return at::kBool;
  throw std::invalid_argument("unknown dtype '" + s +
                              "'. Known: float32, float64, bfloat16, float16, int64, int32, uint8, bool");
}

const char* DtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return "unsupported";
  }
}

at::ScalarType Args::dtype(size_t i, at::ScalarType fallback) const {
  if (missing(i)) return fallback;
  return ParseDtype(str(i));
}

at::Device Args::device(size_t i) const {
  if (missing(i)) return at::Device(at::kCPU);
  std::string s = str(i);
  at::Device d(s);  // throws c10::Error on a malformed string
  if (d.is_cuda() && !at::hasCUDA())
    throw std::runtime_error("device '" + s +
                             "' asked for, but this libtorch has no CUDA. Build with LIBTORCH=<a CUDA "
                             "libtorch> or use device 'cpu'.");
  return d;
}

void Export(Napi::Env env, Napi::Object exports, const char* name, NativeFn fn) {
  exports.Set(name, Napi::Function::New(env, fn, name));
}

// ---------------------------------------------------------------- creation


static at::TensorOptions Opts(const Args& a, size_t dtypeAt, size_t deviceAt) {
  return at::TensorOptions().dtype(a.dtype(dtypeAt, at::kFloat)).device(a.device(deviceAt));
}

// fromBuffer(typedArray, shape, dtype, device): one copy from JS memory into the tensor.
OP(FromBuffer) {
  GUARD("tensor") {
    if (!info[0].IsTypedArray()) ThrowArg(info, "tensor", 0, "a TypedArray");
    auto ta = info[0].As<Napi::TypedArray>();
    auto shape = a.ints(1);
    at::ScalarType st = a.dtype(2, at::kFloat);
    at::ScalarType src;
    switch (ta.TypedArrayType()) {
      case napi_float32_array: src = at::kFloat; break;
      case napi_float64_array: src = at::kDouble; break;
      case napi_int32_array: src = at::kInt; break;
      case napi_bigint64_array: src = at::kLong; break;
      case napi_uint8_array:
      case napi_uint8_clamped_array: src = at::kByte; break;  // bool: read bytes, then != 0 below
      case napi_uint16_array: src = at::kBFloat16; break;  // raw bf16 bits; fp16 via dtype below
      default: throw std::invalid_argument("unsupported TypedArray type for tensor()");
    }
    if (src == at::kBFloat16 && st == at::kHalf) src = at::kHalf;
    int64_t numel = 1;
    for (auto d : shape) {
      if (d < 0) throw std::invalid_argument("shape has a negative dimension");
      numel *= d;
    }
    if ((size_t)numel != ta.ElementLength())
      throw std::invalid_argument("shape [" + c10::Join(",", shape) + "] holds " + std::to_string(numel) +
                                  " elements but the data has " + std::to_string(ta.ElementLength()));
    auto ab = ta.ArrayBuffer();
    void* ptr = static_cast<uint8_t*>(ab.Data()) + ta.ByteOffset();
    at::Tensor view = at::from_blob(ptr, shape, at::TensorOptions().dtype(src));
    at::Device dev = a.device(3);
    // A bool tensor from raw bytes: any non-zero byte is true (raw copies of other bytes into
    // kBool would be undefined behaviour in libtorch).
    if (st == at::kBool && src == at::kByte) return W(view.ne(0).to(dev));
    if (dev.is_cpu()) return W(src == st ? view.clone() : view.to(dev, st, false, true));
    // To a GPU through pinned memory, asynchronously: a copy from pageable memory would wait for
    // every kernel queued before it (a labels tensor each step would stall the pipeline). The
    // host caching allocator keeps the pinned block until the copy has completed.
    at::Tensor host = at::empty(shape, at::TensorOptions().dtype(st).pinned_memory(true));
    host.copy_(view);
    return W(host.to(dev, st, /*non_blocking=*/true, false));
  }
  END
}

OP(Zeros) { GUARD("zeros") { return W(at::zeros(a.ints(0), Opts(a, 1, 2))); } END }
OP(Ones) { GUARD("ones") { return W(at::ones(a.ints(0), Opts(a, 1, 2))); } END }
OP(Empty) { GUARD("empty") { return W(at::empty(a.ints(0), Opts(a, 1, 2))); } END }
OP(Full) { GUARD("full") { return W(at::full(a.ints(0), a.scalar(1), Opts(a, 2, 3))); } END }
OP(Arange) {
  GUARD("arange") { return W(at::arange(a.scalar(0), a.scalar(1), a.scalar(2), Opts(a, 3, 4))); }
  END
}
OP(Rand) { GUARD("rand") { return W(at::rand(a.ints(0), Opts(a, 1, 2))); } END }
OP(Randn) { GUARD("randn") { return W(at::randn(a.ints(0), Opts(a, 1, 2))); } END }
OP(Randint) {
  GUARD("randint") {
    auto o = at::TensorOptions().dtype(a.dtype(3, at::kLong)).device(a.device(4));
    return W(at::randint(a.int64(0), a.int64(1), a.ints(2), o));
  }
  END
}
OP(Randperm) {
  GUARD("randperm") { return W(at::randperm(a.int64(0), at::TensorOptions().dtype(at::kLong))); }
  END
}

// ---------------------------------------------------------------- information and data

OP(Shape) {
  Args a{info, "shape"};
  auto sizes = a.tensor(0).sizes();
  Napi::Array out = Napi::Array::New(info.Env(), sizes.size());
  for (size_t i = 0; i < sizes.size(); i++) out.Set(i, Napi::Number::New(info.Env(), (double)sizes[i]));
  return out;
}
OP(Dtype) {
  Args a{info, "dtype"};
  return Napi::String::New(info.Env(), DtypeName(a.tensor(0).scalar_type()));
}
OP(DeviceOf) {
  Args a{info, "device"};
  return Napi::String::New(info.Env(), a.tensor(0).device().str());
}
// Channels-last as libtorch's convolutions will take it: contiguous in that format AND suggested
// by the strides. A 1-channel NCHW tensor [N, 1, H, W] is contiguous in both formats, but
// suggest_memory_format() calls it NCHW, and a convolution with such a weight or input writes NCHW.
static bool IsChannelsLast(const at::Tensor& t) {
  if (!t.is_contiguous(at::MemoryFormat::ChannelsLast)) return false;
  return t.dim() != 4 || t.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
}

OP(IsContiguous) {
  GUARD("isContiguous") {
    auto& t = a.tensor(0);
    bool cl = !a.missing(1) && a.str(1) == "channelsLast";
    return Napi::Boolean::New(info.Env(), cl ? IsChannelsLast(t) : t.is_contiguous());
  }
  END
}
OP(Item) {
  GUARD("item") {
    auto& t = a.tensor(0);
    if (t.numel() != 1)
      throw std::invalid_argument("item() needs a tensor with one element; this one has " +
                                  std::to_string(t.numel()));
    if (t.scalar_type() == at::kBool) return Napi::Boolean::New(info.Env(), t.item<bool>());
    return Napi::Number::New(info.Env(), t.item<double>());
  }
  END
}

// toBuffer(t): a fresh TypedArray holding the elements in row-major order.
OP(ToBuffer) {
  GUARD("toArray") {
    at::Tensor t = a.tensor(0).detach();
    if (!t.device().is_cpu()) t = t.cpu();
    at::ScalarType st = t.scalar_type();
    if (!a.missing(1)) st = ParseDtype(a.str(1));
    else if (st == at::kBFloat16 || st == at::kHalf) st = at::kFloat;
    t = t.to(st).contiguous();
    Napi::Env env = info.Env();
    size_t bytes = t.numel() * t.element_size();
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, bytes);
    if (bytes) std::memcpy(ab.Data(), t.data_ptr(), bytes);
    size_t n = t.numel();
    switch (st) {
      case at::kFloat: return Napi::Float32Array::New(env, n, ab, 0);
      case at::kDouble: return Napi::Float64Array::New(env, n, ab, 0);
      case at::kInt: return Napi::Int32Array::New(env, n, ab, 0);
      case at::kLong: return Napi::BigInt64Array::New(env, n, ab, 0);
      case at::kByte:
      case at::kBool: return Napi::Uint8Array::New(env, n, ab, 0);
      default: throw std::invalid_argument("toArray: unsupported dtype");
    }
  }
  END
}

// ---------------------------------------------------------------- autograd

OP(SetRequiresGrad) {
  GUARD("requiresGrad") {
    a.tensor(0).set_requires_grad(a.boolean(1));
    return info.Env().Undefined();
  }
  END
}
OP(RequiresGrad) {
  Args a{info, "requiresGrad"};
  return Napi::Boolean::New(info.Env(), a.tensor(0).requires_grad());
}
OP(Grad) { GUARD("grad") { return W(a.tensor(0).grad()); } END }
OP(SetGrad) {
  GUARD("setGrad") {
    auto& t = a.tensor(0);
    at::Tensor g = a.optTensor(1);
    if (g.defined()) {
      TORCH_CHECK(g.sizes() == t.sizes(), "assigned grad has shape [", c10::Join(",", g.sizes()),
                  "] but the tensor has shape [", c10::Join(",", t.sizes()), "]");
      TORCH_CHECK(g.scalar_type() == t.scalar_type(), "assigned grad has dtype ", DtypeName(g.scalar_type()),
                  " but the tensor has dtype ", DtypeName(t.scalar_type()));
      TORCH_CHECK(g.device() == t.device(), "assigned grad is on ", g.device().str(), " but the tensor is on ",
                  t.device().str());
    }
    t.mutable_grad() = g;
    return info.Env().Undefined();
  }
  END
}
OP(Backward) {
  GUARD("backward") {
    auto& t = a.tensor(0);
    at::Tensor g = a.optTensor(1);
    bool retain = !a.missing(2) && a.boolean(2);
    if (!t.requires_grad())
      throw std::invalid_argument(
          "backward() on a tensor that does not require grad: no parameter with requiresGrad fed it, "
          "or it was computed inside noGrad()");
    if (!g.defined() && t.numel() != 1)
      throw std::invalid_argument("backward() without a gradient needs a scalar; this tensor has shape [" +
                                  c10::Join(",", t.sizes()) + "]");
    t.backward(g, retain, false);
    return info.Env().Undefined();
  }
  END
}
OP(Detach) { GUARD("detach") { return W(a.tensor(0).detach()); } END }
OP(SetGradEnabled) {
  Args a{info, "setGradEnabled"};
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(a.boolean(0));
  return Napi::Boolean::New(info.Env(), prev);
}
OP(IsGradEnabled) { return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled()); }

// ---------------------------------------------------------------- views and layout

OP(Reshape) { GUARD("reshape") { return W(a.tensor(0).reshape(a.ints(1))); } END }
OP(View) { GUARD("view") { return W(a.tensor(0).view(a.ints(1))); } END }
OP(Permute) { GUARD("permute") { return W(a.tensor(0).permute(a.ints(1))); } END }
OP(Transpose) { GUARD("transpose") { return W(a.tensor(0).transpose(a.int64(1), a.int64(2))); } END }
OP(Contiguous) {
  GUARD("contiguous") {
    bool cl = !a.missing(1) && a.str(1) == "channelsLast";
    auto& t = a.tensor(0);
    // an ambiguous tensor (one channel) gets channels-last strides for real, as PyTorch's
    // .to(memory_format=torch.channels_last) gives them, so libtorch's convolutions see it so
    if (cl && t.is_contiguous(at::MemoryFormat::ChannelsLast) && !IsChannelsLast(t))
      return W(t.clone(at::MemoryFormat::ChannelsLast));
    return W(t.contiguous(cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
  }
  END
}
OP(Slice) {
  GUARD("slice") { return W(a.tensor(0).slice(a.int64(1), a.int64(2), a.int64(3), a.int64(4))); }
  END
}
OP(Narrow) { GUARD("narrow") { return W(a.tensor(0).narrow(a.int64(1), a.int64(2), a.int64(3))); } END }
OP(Select) { GUARD("select") { return W(a.tensor(0).select(a.int64(1), a.int64(2))); } END }
OP(IndexSelect) {
  GUARD("indexSelect") { return W(at::index_select(a.tensor(0), a.int64(1), a.tensor(2))); }
  END
}
OP(Gather) { GUARD("gather") { return W(at::gather(a.tensor(0), a.int64(1), a.tensor(2))); } END }
OP(Cat) { GUARD("cat") { return W(at::cat(a.tensors(0), a.int64(1))); } END }
OP(Stack) { GUARD("stack") { return W(at::stack(a.tensors(0), a.int64(1))); } END }
OP(Flip) { GUARD("flip") { return W(at::flip(a.tensor(0), a.ints(1))); } END }
OP(Squeeze) {
  GUARD("squeeze") { return W(a.missing(1) ? a.tensor(0).squeeze() : a.tensor(0).squeeze(a.int64(1))); }
  END
}
OP(Unsqueeze) { GUARD("unsqueeze") { return W(a.tensor(0).unsqueeze(a.int64(1))); } END }
OP(Expand) { GUARD("expand") { return W(a.tensor(0).expand(a.ints(1))); } END }
OP(Clone) { GUARD("clone") { return W(a.tensor(0).clone()); } END }
OP(Flatten) { GUARD("flatten") { return W(a.tensor(0).flatten(a.int64(1), a.int64(2))); } END }
// pad(t, pads, mode, value): pads as in torch.nn.functional.pad (last dim first).
OP(Pad) {
  GUARD("pad") {
    auto& t = a.tensor(0);
    auto pads = a.ints(1);
    std::string mode = a.missing(2) ? "constant" : a.str(2);
    if (mode == "constant") return W(at::constant_pad_nd(t, pads, a.missing(3) ? 0.0 : a.num(3)));
    if (pads.size() != 4 || t.dim() < 3)
      throw std::invalid_argument(mode + " padding takes 4 pads (left, right, top, bottom) on a 3-d or 4-d tensor");
    if (mode == "reflect") return W(at::reflection_pad2d(t, pads));
    if (mode == "replicate") return W(at::replication_pad2d(t, pads));
    throw std::invalid_argument("unknown pad mode '" + mode + "'. Known: constant, reflect, replicate");
  }
  END
}
OP(To) {
  GUARD("to") {
    auto& t = a.tensor(0);
    at::ScalarType st = a.dtype(1, t.scalar_type());
    at::Device dev = a.missing(2) ? t.device() : a.device(2);
    return W(t.to(dev, st));
  }
  END
}
OP(OneHot) { GUARD("oneHot") { return W(at::one_hot(a.tensor(0), a.int64(1))); } END }

void InitTensor(Napi::Env env, Napi::Object exports) {
  TensorHandle::Init(env, exports);
  struct {
    const char* name;
    NativeFn fn;
  } table[] = {
      {"fromBuffer", FromBuffer}, {"zeros", Zeros}, {"ones", Ones}, {"empty", Empty}, {"full", Full},
      {"arange", Arange}, {"rand", Rand}, {"randn", Randn}, {"randint", Randint}, {"randperm", Randperm},
      {"shape", Shape}, {"dtype", Dtype}, {"device", DeviceOf}, {"isContiguous", IsContiguous},
      {"item", Item}, {"toBuffer", ToBuffer}, {"setRequiresGrad", SetRequiresGrad},
      {"requiresGrad", RequiresGrad}, {"grad", Grad}, {"setGrad", SetGrad}, {"backward", Backward},
      {"detach", Detach}, {"setGradEnabled", SetGradEnabled}, {"isGradEnabled", IsGradEnabled},
      {"reshape", Reshape}, {"view", View}, {"permute", Permute}, {"transpose", Transpose},
      {"contiguous", Contiguous}, {"slice", Slice}, {"narrow", Narrow}, {"select", Select},
      {"indexSelect", IndexSelect}, {"gather", Gather}, {"cat", Cat}, {"stack", Stack}, {"flip", Flip},
      {"squeeze", Squeeze}, {"unsqueeze", Unsqueeze}, {"expand", Expand}, {"clone", Clone},
      {"flatten", Flatten}, {"pad", Pad}, {"to", To}, {"oneHot", OneHot},
  };
  for (auto& e : table) Export(env, exports, e.name, e.fn);
}

}  // namespace bn
