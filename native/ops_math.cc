// Elementwise math, comparisons, reductions, matmul and the in-place updates optimizers use.
// Unary and binary ops are table-driven: one native function per table, the entry (name and
// ATen call) passed as the function's data, so errors still name the op.
#include <c10/core/GradMode.h>

#include "common.h"

namespace bn {


struct UnaryEntry {
  const char* name;
  at::Tensor (*fn)(const at::Tensor&);
};
struct BinaryEntry {
  const char* name;
  at::Tensor (*fn)(const at::Tensor&, const at::Tensor&);
};
struct InplaceEntry {
  const char* name;
  void (*fn)(at::Tensor&, const at::Tensor&);
};

static const UnaryEntry kUnary[] = {
    {"neg", [](const at::Tensor& x) { return at::neg(x); }},
    {"abs", [](const at::Tensor& x) { return at::abs(x); }},
    {"exp", [](const at::Tensor& x) { return at::exp(x); }},
    {"log", [](const at::Tensor& x) { return at::log(x); }},
    {"sqrt", [](const at::Tensor& x) { return at::sqrt(x); }},
    {"rsqrt", [](const at::Tensor& x) { return at::rsqrt(x); }},
    {"square", [](const at::Tensor& x) { return at::square(x); }},
    {"reciprocal", [](const at::Tensor& x) { return at::reciprocal(x); }},
    {"sign", [](const at::Tensor& x) { return at::sign(x); }},
    {"floor", [](const at::Tensor& x) { return at::floor(x); }},
    {"ceil", [](const at::Tensor& x) { return at::ceil(x); }},
    {"round", [](const at::Tensor& x) { return at::round(x); }},
    {"sin", [](const at::Tensor& x) { return at::sin(x); }},
    {"cos", [](const at::Tensor& x) { return at::cos(x); }},
    {"isnan", [](const at::Tensor& x) { return at::isnan(x); }},
    {"isfinite", [](const at::Tensor& x) { return at::isfinite(x); }},
    {"logicalNot", [](const at::Tensor& x) { return at::logical_not(x); }},
    {"relu", [](const at::Tensor& x) { return at::relu(x); }},
    // hardtanh, as torch.nn.ReLU6; in reduced precision clamp, whose backward libtorch 1.13 has for
    // bfloat16 on the CPU (hardtanh's does not: "hardshrink_backward_cpu not implemented for
    // BFloat16", which also stops PyTorch 1.13 itself from training a ReLU6 net under autocast).
    // The two differ only in the gradient at exactly 0 and 6.
    {"relu6",
     [](const at::Tensor& x) {
       return x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf ? at::clamp(x, 0, 6)
                                                                               : at::hardtanh(x, 0, 6);
     }},
    {"sigmoid", [](const at::Tensor& x) { return at::sigmoid(x); }},
    {"tanh", [](const at::Tensor& x) { return at::tanh(x); }},
    {"silu", [](const at::Tensor& x) { return at::silu(x); }},
    {"hardswish", [](const at::Tensor& x) { return at::hardswish(x); }},
    {"hardsigmoid", [](const at::Tensor& x) { return at::hardsigmoid(x); }},
    {"mish", [](const at::Tensor& x) { return at::mish(x); }},
    {"softplus", [](const at::Tensor& x) { return at::softplus(x, 1, 20); }},
};

static const BinaryEntry kBinary[] = {
    {"add", [](const at::Tensor& x, const at::Tensor& y) { return at::add(x, y); }},
    {"sub", [](const at::Tensor& x, const at::Tensor& y) { return at::sub(x, y); }},
    {"mul", [](const at::Tensor& x, const at::Tensor& y) { return at::mul(x, y); }},
    {"div", [](const at::Tensor& x, const at::Tensor& y) { return at::div(x, y); }},
    {"pow", [](const at::Tensor& x, const at::Tensor& y) { return at::pow(x, y); }},
    {"remainder", [](const at::Tensor& x, const at::Tensor& y) { return at::remainder(x, y); }},
    {"maximum", [](const at::Tensor& x, const at::Tensor& y) { return at::maximum(x, y); }},
    {"minimum", [](const at::Tensor& x, const at::Tensor& y) { return at::minimum(x, y); }},
    {"eq", [](const at::Tensor& x, const at::Tensor& y) { return at::eq(x, y); }},
    {"ne", [](const at::Tensor& x, const at::Tensor& y) { return at::ne(x, y); }},
    {"lt", [](const at::Tensor& x, const at::Tensor& y) { return at::lt(x, y); }},
    {"le", [](const at::Tensor& x, const at::Tensor& y) { return at::le(x, y); }},
    {"gt", [](const at::Tensor& x, const at::Tensor& y) { return at::gt(x, y); }},
    {"ge", [](const at::Tensor& x, const at::Tensor& y) { return at::ge(x, y); }},
    {"logicalAnd", [](const at::Tensor& x, const at::Tensor& y) { return at::logical_and(x, y); }},
    {"logicalOr", [](const at::Tensor& x, const at::Tensor& y) { return at::logical_or(x, y); }},
    {"matmul", [](const at::Tensor& x, const at::Tensor& y) { return at::matmul(x, y); }},
};

// In-place updates for optimizers and initializers; they run without recording autograd.
static const InplaceEntry kInplace[] = {
    {"add_", [](at::Tensor& x, const at::Tensor& y) { x.add_(y); }},
    {"sub_", [](at::Tensor& x, const at::Tensor& y) { x.sub_(y); }},
    {"mul_", [](at::Tensor& x, const at::Tensor& y) { x.mul_(y); }},
    {"div_", [](at::Tensor& x, const at::Tensor& y) { x.div_(y); }},
    {"copy_", [](at::Tensor& x, const at::Tensor& y) { x.copy_(y); }},
    {"maximum_", [](at::Tensor& x, const at::Tensor& y) { at::maximum_out(x, x, y); }},
};

static Napi::Value UnaryDispatch(const Napi::CallbackInfo& info) {
  auto* e = static_cast<const UnaryEntry*>(info.Data());
  Args a{info, e->name};
  return Guard(e->name, info, [&]() -> Napi::Value { return W(e->fn(a.tensor(0))); });
}

static Napi::Value BinaryDispatch(const Napi::CallbackInfo& info) {
  auto* e = static_cast<const BinaryEntry*>(info.Data());
  Args a{info, e->name};
  return Guard(e->name, info,
               [&]() -> Napi::Value { return W(e->fn(a.tensorOrScalar(0), a.tensorOrScalar(1))); });
}

static Napi::Value InplaceDispatch(const Napi::CallbackInfo& info) {
  auto* e = static_cast<const InplaceEntry*>(info.Data());
  Args a{info, e->name};
  return Guard(e->name, info, [&]() -> Napi::Value {
    c10::NoGradGuard no_grad;
    e->fn(a.tensor(0), a.tensorOrScalar(1));
    return info.Env().Undefined();
  });
}

// ---------------------------------------------------------------- other in-place updates

// addScaled_(x, y, alpha): x += alpha * y
OP(AddScaled_) {
  GUARD("addScaled_") {
    c10::NoGradGuard g;
    a.tensor(0).add_(a.tensor(1), a.scalar(2));
    return info.Env().Undefined();
  }
  END
}
// addcmul_(x, t1, t2, value): x += value * t1 * t2
OP(Addcmul_) {
  GUARD("addcmul_") {
    c10::NoGradGuard g;
    a.tensor(0).addcmul_(a.tensor(1), a.tensor(2), a.scalar(3));
    return info.Env().Undefined();
  }
  END
}
// addcdiv_(x, t1, t2, value): x += value * t1 / t2
OP(Addcdiv_) {
  GUARD("addcdiv_") {
    c10::NoGradGuard g;
    a.tensor(0).addcdiv_(a.tensor(1), a.tensor(2), a.scalar(3));
    return info.Env().Undefined();
  }
  END
}
// lerp_(x, end, weight): x += weight * (end - x)
OP(Lerp_) {
  GUARD("lerp_") {
    c10::NoGradGuard g;
    a.tensor(0).lerp_(a.tensor(1), a.scalar(2));
    return info.Env().Undefined();
  }
  END
}
OP(Fill_) {
  GUARD("fill_") {
    c10::NoGradGuard g;
    a.tensor(0).fill_(a.scalar(1));
    return info.Env().Undefined();
  }
  END
}
OP(Zero_) {
  GUARD("zero_") {
    c10::NoGradGuard g;
    a.tensor(0).zero_();
    return info.Env().Undefined();
  }
  END
}
OP(Clamp_) {
  GUARD("clamp_") {
    c10::NoGradGuard g;
    a.tensor(0).clamp_(a.optScalar(1), a.optScalar(2));
    return info.Env().Undefined();
  }
  END
}
OP(Sqrt_) {
  GUARD("sqrt_") {
    c10::NoGradGuard g;
    a.tensor(0).sqrt_();
    return info.Env().Undefined();
  }
  END
}
// relu_(x): in place and recorded by autograd (PyTorch's ReLU(inplace=True)). Only for a fresh
// intermediate no one else reads, e.g. a BatchNorm output; autograd raises if a saved tensor is modified.
OP(Relu_) {
  GUARD("relu_") {
    at::relu_(a.tensor(0));
    return info.Env().Undefined();
  }
  END
}
// Initializers: fill x in place from a distribution, using libtorch's generator.
OP(Uniform_) {
  GUARD("uniform_") {
    c10::NoGradGuard g;
    a.tensor(0).uniform_(a.num(1), a.num(2));
    return info.Env().Undefined();
  }
  END
}
OP(Normal_) {
  GUARD("normal_") {
    c10::NoGradGuard g;
    a.tensor(0).normal_(a.num(1), a.num(2));
    return info.Env().Undefined();
  }
  END
}
OP(Bernoulli) { GUARD("bernoulli") { return W(at::bernoulli(a.tensor(0))); } END }

// ---------------------------------------------------------------- elementwise with options

OP(Where) {
  GUARD("where") { return W(at::where(a.tensor(0), a.tensorOrScalar(1), a.tensorOrScalar(2))); }
  END
}
OP(Clamp) { GUARD("clamp") { return W(at::clamp(a.tensor(0), a.optScalar(1), a.optScalar(2))); } END }
OP(LeakyRelu) { GUARD("leakyRelu") { return W(at::leaky_relu(a.tensor(0), a.scalar(1))); } END }
OP(Elu) { GUARD("elu") { return W(at::elu(a.tensor(0), a.scalar(1))); } END }
OP(Gelu) {
  GUARD("gelu") { return W(at::gelu(a.tensor(0), a.missing(1) ? "none" : a.str(1))); }
  END
}
// addAlpha(x, y, alpha) = x + alpha * y (with autograd)
OP(AddAlpha) { GUARD("add") { return W(at::add(a.tensor(0), a.tensorOrScalar(1), a.scalar(2))); } END }
OP(Linear) { GUARD("linear") { return W(at::linear(a.tensor(0), a.tensor(1), a.optTensor(2))); } END }

// ---------------------------------------------------------------- reductions
// All take (t, dims | undefined, keepdim). dims undefined reduces everything.

static std::vector<int64_t> Dims(const Args& a, size_t i, const at::Tensor& t) {
  if (a.missing(i)) {
    std::vector<int64_t> all(t.dim());
    for (int64_t d = 0; d < t.dim(); d++) all[d] = d;
    return all;
  }
  return a.ints(i);
}
static bool Keep(const Args& a, size_t i) { return !a.missing(i) && a.boolean(i); }

OP(Sum) {
  GUARD("sum") {
    auto& t = a.tensor(0);
    if (a.missing(1)) return W(at::sum(t));
    return W(at::sum(t, a.ints(1), Keep(a, 2)));
  }
  END
}
OP(Mean) {
  GUARD("mean") {
    auto& t = a.tensor(0);
    if (a.missing(1)) return W(at::mean(t));
    return W(at::mean(t, a.ints(1), Keep(a, 2)));
  }
  END
}
OP(Amax) { GUARD("max") { auto& t = a.tensor(0); return W(at::amax(t, Dims(a, 1, t), Keep(a, 2))); } END }
OP(Amin) { GUARD("min") { auto& t = a.tensor(0); return W(at::amin(t, Dims(a, 1, t), Keep(a, 2))); } END }
OP(Argmax) {
  GUARD("argmax") {
    c10::optional<int64_t> dim;
    if (!a.missing(1)) dim = a.int64(1);
    return W(at::argmax(a.tensor(0), dim, Keep(a, 2)));
  }
  END
}
OP(Argmin) {
  GUARD("argmin") {
    c10::optional<int64_t> dim;
    if (!a.missing(1)) dim = a.int64(1);
    return W(at::argmin(a.tensor(0), dim, Keep(a, 2)));
  }
  END
}
// var(t, dims, correction, keepdim); std likewise. correction 1 is Bessel's.
OP(Var) {
  GUARD("var") {
    auto& t = a.tensor(0);
    auto dims = Dims(a, 1, t);
    return W(at::var(t, at::OptionalIntArrayRef(dims), a.int64(2), Keep(a, 3)));
  }
  END
}
OP(Std) {
  GUARD("std") {
    auto& t = a.tensor(0);
    auto dims = Dims(a, 1, t);
    return W(at::std(t, at::OptionalIntArrayRef(dims), a.int64(2), Keep(a, 3)));
  }
  END
}
// norm(t, p, dims, keepdim): the vector p-norm over dims.
OP(Norm) {
  GUARD("norm") {
    auto& t = a.tensor(0);
    auto dims = Dims(a, 2, t);
    return W(at::linalg_vector_norm(t, a.scalar(1), at::OptionalIntArrayRef(dims), Keep(a, 3), c10::nullopt));
  }
  END
}
OP(Logsumexp) {
  GUARD("logsumexp") { auto& t = a.tensor(0); return W(at::logsumexp(t, Dims(a, 1, t), Keep(a, 2))); }
  END
}
OP(Topk) {
  GUARD("topk") {
    auto r = at::topk(a.tensor(0), a.int64(1), a.int64(2), true, true);
    Napi::Array out = Napi::Array::New(info.Env(), 2);
    out.Set((uint32_t)0, W(std::get<0>(r)));
    out.Set((uint32_t)1, W(std::get<1>(r)));
    return out;
  }
  END
}
// allclose-style check used by tests and parity checks: max |x - y| as a JS number.
OP(MaxAbsDiff) {
  GUARD("maxAbsDiff") {
    c10::NoGradGuard g;
    auto d = (a.tensor(0).to(at::kDouble) - a.tensor(1).to(at::kDouble)).abs();
    return Napi::Number::New(info.Env(), d.numel() ? d.max().item<double>() : 0.0);
  }
  END
}
// Global L2 norm of a list of tensors (gradient clipping); foreach-style, one crossing.
OP(GlobalNorm) {
  GUARD("globalNorm") {
    c10::NoGradGuard g;
    auto ts = a.tensors(0);
    double p = a.num(1);
    std::vector<at::Tensor> norms;
    for (auto& t : ts)
      if (t.defined()) norms.push_back(at::linalg_vector_norm(t, p, c10::nullopt, false, c10::nullopt));
    if (norms.empty()) return Napi::Number::New(info.Env(), 0.0);
    return Napi::Number::New(info.Env(),
                             at::linalg_vector_norm(at::stack(norms), p, c10::nullopt, false, c10::nullopt)
                                 .item<double>());
  }
  END
}

// One SGD step over a parameter group (torch.optim.SGD's rule, its foreach form): one crossing
// and, on CUDA, multi-tensor kernels instead of ~5 launches per parameter. Arguments: params,
// grads, momentum buffers (empty on the group's first step: they are created and returned),
// lr, momentum, dampening, weightDecay, nesterov. The gradients are left as they were.
OP(SgdStep) {
  GUARD("sgdStep") {
    c10::NoGradGuard g;
    auto ps = a.tensors(0);
    auto gs = a.tensors(1);
    auto bs = a.tensors(2);
    double lr = a.num(3), momentum = a.num(4), dampening = a.num(5), wd = a.num(6);
    bool nesterov = a.boolean(7);
    if (gs.size() != ps.size() || (!bs.empty() && bs.size() != ps.size()))
      throw std::invalid_argument("params, grads and buffers must have the same length (got " +
                                  std::to_string(ps.size()) + ", " + std::to_string(gs.size()) + ", " +
                                  std::to_string(bs.size()) + ")");
    for (size_t i = 0; i < ps.size(); i++) {
      TORCH_CHECK(gs[i].sizes() == ps[i].sizes() && gs[i].device() == ps[i].device(), "parameter ", i, " has shape ",
                  ps[i].sizes(), " on ", ps[i].device().str(), " but its gradient ", gs[i].sizes(), " on ",
                  gs[i].device().str());
      if (!bs.empty())
        TORCH_CHECK(bs[i].sizes() == ps[i].sizes(), "parameter ", i, " has shape ", ps[i].sizes(),
                    " but its momentum buffer ", bs[i].sizes());
    }
    Napi::Env env = info.Env();
    if (ps.empty()) return env.Undefined();
    const bool first = bs.empty();
    // d = grad + wd * p: a new list, so the gradients stay as backward left them
    std::vector<at::Tensor> d = wd != 0 ? at::_foreach_add(gs, ps, wd) : gs;
    bool dOwned = wd != 0;
    if (momentum != 0) {
      if (first) {
        bs.reserve(ps.size());
        for (auto& t : d) bs.push_back(t.clone());
      } else {
        at::_foreach_mul_(bs, momentum);
        at::_foreach_add_(bs, d, 1 - dampening);
      }
      if (nesterov) {
        if (dOwned) at::_foreach_add_(d, bs, momentum);
        else d = at::_foreach_add(d, bs, momentum);
      } else {
        d = bs;
      }
    }
    at::_foreach_add_(ps, d, -lr);
    if (!(first && momentum != 0)) return env.Undefined();
    Napi::Array out = Napi::Array::New(env, bs.size());
    for (size_t i = 0; i < bs.size(); i++) out.Set((uint32_t)i, W(bs[i]));
    return out;
  }
  END
}

void InitMath(Napi::Env env, Napi::Object exports) {
  for (auto& e : kUnary)
    exports.Set(e.name, Napi::Function::New(env, UnaryDispatch, e.name, const_cast<UnaryEntry*>(&e)));
  for (auto& e : kBinary)
    exports.Set(e.name, Napi::Function::New(env, BinaryDispatch, e.name, const_cast<BinaryEntry*>(&e)));
  for (auto& e : kInplace)
    exports.Set(e.name, Napi::Function::New(env, InplaceDispatch, e.name, const_cast<InplaceEntry*>(&e)));
  struct {
    const char* name;
    NativeFn fn;
  } table[] = {
      {"relu_", Relu_}, {"addScaled_", AddScaled_}, {"addcmul_", Addcmul_}, {"addcdiv_", Addcdiv_}, {"lerp_", Lerp_},
      {"fill_", Fill_}, {"zero_", Zero_}, {"clamp_", Clamp_}, {"sqrt_", Sqrt_}, {"uniform_", Uniform_},
      {"normal_", Normal_}, {"bernoulli", Bernoulli}, {"where", Where}, {"clamp", Clamp},
      {"leakyRelu", LeakyRelu}, {"elu", Elu}, {"gelu", Gelu}, {"addAlpha", AddAlpha}, {"linear", Linear},
      {"sum", Sum}, {"mean", Mean}, {"amax", Amax}, {"amin", Amin}, {"argmax", Argmax}, {"argmin", Argmin},
      {"var", Var}, {"std", Std}, {"norm", Norm}, {"logsumexp", Logsumexp}, {"topk", Topk},
      {"maxAbsDiff", MaxAbsDiff}, {"globalNorm", GlobalNorm}, {"sgdStep", SgdStep},
  };
  for (auto& e : table) Export(env, exports, e.name, e.fn);
}

}  // namespace bn
