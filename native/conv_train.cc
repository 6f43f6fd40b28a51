// Training convolutions on the CPU through oneDNN directly: for a float32 channels-last input,
// each phase of a convolution (forward, backward to the input, backward to the weights) runs the
// implementation measured fastest for its shape on this machine, instead of the one libtorch's
// mkldnn_convolution always takes (oneDNN's direct algorithm on NHWC activations).
//
// Why: on the narrow nets budgetnet trains (16-64 channels, 7-32 pixels a side) the convolutions
// are two thirds of a step, and oneDNN's kernels differ by shape. Measured on a 2-core Xeon
// (AVX-512) at batch 128: a 16->16 3x3 convolution at 28x28 runs forward in 1.33 ms with the
// blocked-layout (nChw16c) direct kernel against 1.98 ms with the NHWC one, and with 16 channels
// the two layouts are the same bytes, so no reorder is needed; a 64->64 3x3 at 7x7 runs all three
// phases in 2.9 ms with Winograd F(4x4, 3x3) against 4.1 ms direct.
//
// Candidates per phase: direct on NHWC (libtorch's choice), direct on nChw16c, Winograd on
// nChw16c (3x3, stride 1). Blocked layouts apply where both channel counts are multiples of 16;
// activations are reordered to and from them unless they have 16 channels (same bytes as NHWC).
// Only under autograd's grad mode (training steps); no-grad forwards take libtorch's convolution.
// The first call of a phase at a new shape runs every candidate that oneDNN implements (its
// reference kernels excepted) on the call's own tensors and keeps the fastest: the choice and its
// reorders are timed together. The choices are per process; convChoices()/setConvChoices() read
// and preset them so that a resumed run computes with the same kernels as the run it continues.
//
// BUDGETNET_TRAIN_CONV: "auto" (default), "off" (libtorch's convolution), or a candidate's name to
// take it wherever oneDNN implements it (for A/B measurements).
#include <optional>
#include <vector>

#if BUDGETNET_DNNL
#include <torch/torch.h>
#endif

#include "common.h"

#if BUDGETNET_DNNL

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "plan.h"
#endif

namespace bn {

#if BUDGETNET_DNNL
namespace {

struct Candidate {
  const char* name;
  dnnl::algorithm alg;
  bool blocked;
};
// The last, libtorch's own convolution (at::convolution, at::convolution_backward), always applies.
constexpr int kCandidates = 4, kLibtorch = 3;
const Candidate kCandidate[kCandidates] = {
    {"direct-nhwc", dnnl::algorithm::convolution_direct, false},
    {"direct-blocked", dnnl::algorithm::convolution_direct, true},
    {"winograd", dnnl::algorithm::convolution_winograd, true},
    {"libtorch", dnnl::algorithm::undef, false},
};
enum Phase { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };
const char* const kPhaseName[3] = {"forward", "backwardData", "backwardWeights"};

struct TrainShape {
  int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, oh, ow;
  std::string Key() const {
    char b[160];
    snprintf(b, sizeof b, "n%ld_c%ld_%ldx%ld_o%ld_k%ldx%ld_s%ldx%ld_p%ldx%ld", (long)n, (long)c, (long)h, (long)w, (long)o,
             (long)kh, (long)kw, (long)sh, (long)sw, (long)ph, (long)pw);
    return b;
  }
  memory::dims Src() const { return {n, c, h, w}; }
  memory::dims Wei() const { return {o, c, kh, kw}; }
  memory::dims Dst() const { return {n, o, oh, ow}; }
  memory::dims Strides() const { return {sh, sw}; }
  memory::dims PadL() const { return {ph, pw}; }
  memory::dims PadR() const { return {(oh - 1) * sh + kh - h - ph, (ow - 1) * sw + kw - w - pw}; }
};

// One phase's primitive for one candidate.
struct PhaseImpl {
  bool ok = false;
  dnnl::primitive prim;
  memory::desc src, wei, dst;  // as the primitive takes them (diff_src / diff_weights / diff_dst in backward)
  memory::desc scratch;
};

struct Entry {
  std::array<std::array<PhaseImpl, kCandidates>, 3> impl;
  std::array<bool, 3 * kCandidates> built{};
  std::array<int, 3> chosen{-1, -1, -1};
  uint64_t lastUse = 0;
  bool holdsPrimitives = false;
};

// Primitives (oneDNN's generated code) are kept for this many shapes, the least recently used
// dropped beyond it (a search trains many architectures in one process); the choices stay.
constexpr size_t kMaxShapesWithPrimitives = 64;
uint64_t tick = 0;
size_t shapesWithPrimitives = 0;

std::mutex mu;
std::map<std::string, Entry> cache;
// choices preset by setConvChoices (a resumed run): shape key -> candidate per phase
std::map<std::string, std::array<int, 3>> preset;

// -2 off (libtorch's at::conv2d), -1 auto, k: candidate k wherever it builds
int ParseMode(const std::string& v, const char* what) {
  if (v == "" || v == "auto") return -1;
  if (v == "off") return -2;
  for (int k = 0; k < kCandidates; k++)
    if (v == kCandidate[k].name) return k;
  throw std::invalid_argument(std::string(what) +
                              " must be auto, off, direct-nhwc, direct-blocked, winograd or libtorch. Received: " + v);
}
int mode = -1;
bool modeRead = false;
int Mode() {
  if (!modeRead) {
    const char* e = std::getenv("BUDGETNET_TRAIN_CONV");
    // a bad value fails every conv2d call (a NativeOpError naming the variable) until it is fixed
    mode = ParseMode(e == nullptr ? "auto" : e, "BUDGETNET_TRAIN_CONV (the training convolutions' kernels)");
    modeRead = true;
  }
  return mode;
}
std::string ModeName(int m) { return m == -2 ? "off" : m == -1 ? "auto" : kCandidate[m].name; }

dnnl::stream& ThreadStream() {
  thread_local dnnl::stream s(Engine());
  return s;
}

memory::desc ActDesc(const memory::dims& d, bool blocked) {
  return memory::desc(d, dt::f32, blocked ? tag::nChw16c : tag::nhwc);
}

// The tensor as oneDNN sees it: its sizes and strides.
memory::desc UserDesc(const at::Tensor& t) {
  memory::dims d(t.sizes().begin(), t.sizes().end()), s(t.strides().begin(), t.strides().end());
  return memory::desc(d, dt::f32, s);
}

// The tensor's bytes can be read as `want` without a reorder: the same description, or 16
// channels in NHWC order read as nChw16c (one block of 16: the same bytes).
bool SameBytes(const memory::desc& want, const at::Tensor& t) {
  if (want == UserDesc(t)) return true;
  if (t.dim() != 4 || t.size(1) != 16 || !t.is_contiguous(at::MemoryFormat::ChannelsLast)) return false;
  memory::dims d(t.sizes().begin(), t.sizes().end());
  return want == memory::desc(d, dt::f32, tag::nChw16c) || want == memory::desc(d, dt::f32, tag::nhwc);
}

dnnl::primitive_attr Attr() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

bool Usable(const dnnl::primitive_desc_base& pd) {
  std::string impl = pd.impl_info_str();
  return impl.rfind("ref", 0) != 0 && impl.find("gemm") == std::string::npos;
}

// Builds candidate k's primitive for phase p (false where oneDNN has no fast kernel for it).
bool Build(const TrainShape& s, int k, int p, PhaseImpl& out) {
  const Candidate& c = kCandidate[k];
  if (k == kLibtorch) return out.ok = true;
  if (c.blocked && (s.c % 16 != 0 || s.o % 16 != 0)) return false;
  if (c.alg == dnnl::algorithm::convolution_winograd && (s.kh != 3 || s.kw != 3 || s.sh != 1 || s.sw != 1)) return false;
  try {
    memory::desc src = ActDesc(s.Src(), c.blocked), dst = ActDesc(s.Dst(), c.blocked);
    memory::desc wei(s.Wei(), dt::f32, tag::any);
    dnnl::convolution_forward::primitive_desc fwd(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, c.alg, src, wei, dst, s.Strides(), s.PadL(),
                                        s.PadR()),
        Attr(), Engine());
    if (p == kForward) {
      if (!Usable(fwd)) return false;
      out = {true, dnnl::convolution_forward(fwd), fwd.src_desc(), fwd.weights_desc(), fwd.dst_desc(),
             fwd.scratchpad_desc()};
    } else if (p == kBackwardData) {
      dnnl::convolution_backward_data::primitive_desc bd(
          dnnl::convolution_backward_data::desc(c.alg, src, wei, dst, s.Strides(), s.PadL(), s.PadR()), Attr(), Engine(),
          fwd);
      if (!Usable(bd)) return false;
      out = {true, dnnl::convolution_backward_data(bd), bd.diff_src_desc(), bd.weights_desc(), bd.diff_dst_desc(),
             bd.scratchpad_desc()};
    } else {
      dnnl::convolution_backward_weights::primitive_desc bw(
          dnnl::convolution_backward_weights::desc(c.alg, src, wei, dst, s.Strides(), s.PadL(), s.PadR()), Attr(),
          Engine(), fwd);
      if (!Usable(bw)) return false;
      out = {true, dnnl::convolution_backward_weights(bw), bw.src_desc(), bw.diff_weights_desc(), bw.diff_dst_desc(),
             bw.scratchpad_desc()};
    }
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

// A tensor read by a primitive: its own bytes, or a reordered copy (kept alive by `keep`).
memory Input(const memory::desc& want, const at::Tensor& t, std::vector<at::Tensor>& keep) {
  if (SameBytes(want, t)) return memory(want, Engine(), t.data_ptr());
  memory user(UserDesc(t), Engine(), t.data_ptr());
  at::Tensor buf = at::empty({(int64_t)want.get_size()}, at::kByte);
  keep.push_back(buf);
  memory m(want, Engine(), buf.data_ptr());
  dnnl::reorder(user, m).execute(ThreadStream(), user, m);
  return m;
}

// A tensor written by a primitive: `t` itself, or a buffer reordered into `t` afterwards (Finish).
struct Output {
  memory mem, user;
  bool reorder = false;
};
Output OutputOf(const memory::desc& want, const at::Tensor& t, std::vector<at::Tensor>& keep) {
  if (SameBytes(want, t)) return {memory(want, Engine(), t.data_ptr()), memory(), false};
  at::Tensor buf = at::empty({(int64_t)want.get_size()}, at::kByte);
  keep.push_back(buf);
  return {memory(want, Engine(), buf.data_ptr()), memory(UserDesc(t), Engine(), t.data_ptr()), true};
}
void Finish(Output& o) {
  if (o.reorder) dnnl::reorder(o.mem, o.user).execute(ThreadStream(), o.mem, o.user);
}

// Runs phase p with candidate k and returns its result: forward (x, w) -> y, backward data
// (gy, w) -> gx, backward weights (x, gy) -> gw.
at::Tensor Exec(const PhaseImpl& impl, int k, int p, const TrainShape& s, const at::Tensor& x, const at::Tensor& w,
                const at::Tensor& gy) {
  if (k == kLibtorch) {
    if (p == kForward) return at::convolution(x, w, {}, s.Strides(), s.PadL(), {1, 1}, false, {0, 0}, 1);
    auto g = at::convolution_backward(gy, x, w, c10::nullopt, s.Strides(), s.PadL(), {1, 1}, false, {0, 0}, 1,
                                      {p == kBackwardData, p == kBackwardWeights, false});
    return p == kBackwardData ? std::get<0>(g) : std::get<1>(g);
  }
  at::Tensor out = p == kForward         ? at::empty({s.n, s.o, s.oh, s.ow}, x.options().memory_format(at::MemoryFormat::ChannelsLast))
                   : p == kBackwardData ? at::empty_like(x, at::MemoryFormat::ChannelsLast)
                                        : at::empty_like(w);
  std::vector<at::Tensor> keep;
  std::unordered_map<int, memory> args;
  Output o;
  if (p == kForward) {
    args[DNNL_ARG_SRC] = Input(impl.src, x, keep);
    args[DNNL_ARG_WEIGHTS] = Input(impl.wei, w, keep);
    o = OutputOf(impl.dst, out, keep);
    args[DNNL_ARG_DST] = o.mem;
  } else if (p == kBackwardData) {
    args[DNNL_ARG_DIFF_DST] = Input(impl.dst, gy, keep);
    args[DNNL_ARG_WEIGHTS] = Input(impl.wei, w, keep);
    o = OutputOf(impl.src, out, keep);
    args[DNNL_ARG_DIFF_SRC] = o.mem;
  } else {
    args[DNNL_ARG_SRC] = Input(impl.src, x, keep);
    args[DNNL_ARG_DIFF_DST] = Input(impl.dst, gy, keep);
    o = OutputOf(impl.wei, out, keep);
    args[DNNL_ARG_DIFF_WEIGHTS] = o.mem;
  }
  at::Tensor scratch;
  if (impl.scratch.get_size() > 0) {
    scratch = at::empty({(int64_t)impl.scratch.get_size()}, at::kByte);
    args[DNNL_ARG_SCRATCHPAD] = memory(impl.scratch, Engine(), scratch.data_ptr());
  }
  impl.prim.execute(ThreadStream(), args);
  Finish(o);
  ThreadStream().wait();
  return out;
}

const PhaseImpl* Impl(Entry& e, const TrainShape& s, int k, int p) {
  if (!e.built[p * kCandidates + k]) {
    e.built[p * kCandidates + k] = true;
    Build(s, k, p, e.impl[p][k]);
    if (!e.holdsPrimitives) {
      e.holdsPrimitives = true;
      shapesWithPrimitives++;
    }
  }
  return e.impl[p][k].ok ? &e.impl[p][k] : nullptr;
}

// Phase p at shape s: the preset or forced candidate where it applies, or else the fastest of
// those that build, timed on this call's own tensors (min of 3 runs after one warm-up).
int Choose(Entry& e, const TrainShape& s, int p, const at::Tensor& x, const at::Tensor& w, const at::Tensor& gy) {
  if (e.chosen[p] >= 0) return e.chosen[p];
  const std::string key = s.Key();
  auto pre = preset.find(key);
  int want = pre != preset.end() ? pre->second[p] : Mode() >= 0 ? Mode() : -1;
  if (want >= 0 && Impl(e, s, want, p) != nullptr) return e.chosen[p] = want;
  int best = kLibtorch;
  double bestMs = 1e30;
  for (int k = 0; k < kCandidates; k++) {
    const PhaseImpl* impl = Impl(e, s, k, p);
    if (impl == nullptr) continue;
    Exec(*impl, k, p, s, x, w, gy);
    double ms = 1e30;
    for (int r = 0; r < 3; r++) {
      auto t0 = std::chrono::steady_clock::now();
      Exec(*impl, k, p, s, x, w, gy);
      ms = std::min(ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    if (ms < bestMs) best = k, bestMs = ms;
  }
  return e.chosen[p] = best;
}

// Drops the primitives of the least recently used shape other than `keep`.
void DropOldestPrimitives(const Entry* keep) {
  Entry* oldest = nullptr;
  for (auto& entry : cache)
    if (&entry.second != keep && entry.second.holdsPrimitives &&
        (oldest == nullptr || entry.second.lastUse < oldest->lastUse))
      oldest = &entry.second;
  if (oldest == nullptr) return;
  oldest->impl = {};
  oldest->built = {};
  oldest->holdsPrimitives = false;
  shapesWithPrimitives--;
}

at::Tensor Run(const TrainShape& s, int p, const at::Tensor& x, const at::Tensor& w, const at::Tensor& gy) {
  std::unique_lock<std::mutex> lock(mu);
  Entry& e = cache[s.Key()];
  e.lastUse = ++tick;
  if (!e.holdsPrimitives && shapesWithPrimitives >= kMaxShapesWithPrimitives) DropOldestPrimitives(&e);
  int k = Choose(e, s, p, x, w, gy);
  // a shape whose primitives were dropped builds its chosen one again
  const PhaseImpl* impl = Impl(e, s, k, p);
  if (impl == nullptr) impl = Impl(e, s, k = kLibtorch, p);
  lock.unlock();
  return Exec(*impl, k, p, s, x, w, gy);
}

TrainShape ShapeOf(const at::Tensor& x, const at::Tensor& w, int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
  TrainShape s{x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), w.size(2), w.size(3), sh, sw, ph, pw, 0, 0};
  s.oh = (s.h + 2 * ph - s.kh) / sh + 1;
  s.ow = (s.w + 2 * pw - s.kw) / sw + 1;
  return s;
}

struct ConvTrainFn : public torch::autograd::Function<ConvTrainFn> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, at::Tensor x, at::Tensor w,
                                                int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
    RECORD_FUNCTION("budgetnet::conv2d_forward", std::vector<c10::IValue>({x, w}));
    at::Tensor y = Run(ShapeOf(x, w, sh, sw, ph, pw), kForward, x, w, at::Tensor());
    ctx->save_for_backward({x, w});
    ctx->saved_data["stride"] = std::vector<int64_t>{sh, sw};
    ctx->saved_data["padding"] = std::vector<int64_t>{ph, pw};
    return {y};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    at::Tensor x = saved[0], w = saved[1];
    auto st = ctx->saved_data["stride"].toIntVector(), pd = ctx->saved_data["padding"].toIntVector();
    TrainShape s = ShapeOf(x, w, st[0], st[1], pd[0], pd[1]);
    at::Tensor gx, gw;
    if (grads[0].defined()) {
      at::Tensor gy = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
      if (ctx->needs_input_grad(0)) {
        RECORD_FUNCTION("budgetnet::conv2d_backward_data", std::vector<c10::IValue>({gy, w}));
        gx = Run(s, kBackwardData, x, w, gy);
      }
      if (ctx->needs_input_grad(1)) {
        RECORD_FUNCTION("budgetnet::conv2d_backward_weights", std::vector<c10::IValue>({x, gy}));
        gw = Run(s, kBackwardWeights, x, w, gy);
      }
    }
    return {gx, gw, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

std::optional<at::Tensor> TrainConv2d(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                                      const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                                      const std::vector<int64_t>& dilation, int64_t groups) {
  // training only: under no-grad (validation, evaluation, tracing) the per-shape timing would not pay
  if (Mode() == -2 || !at::GradMode::is_enabled() || b.defined() || groups != 1 || AutocastCpuOn())
    return std::nullopt;
  if (stride.size() != 2 || padding.size() != 2 || dilation.size() != 2 || dilation[0] != 1 || dilation[1] != 1)
    return std::nullopt;
  if (x.dim() != 4 || w.dim() != 4 || !x.device().is_cpu() || !w.device().is_cpu()) return std::nullopt;
  if (x.scalar_type() != at::kFloat || w.scalar_type() != at::kFloat || x.numel() == 0 || w.numel() == 0)
    return std::nullopt;
  // channels-last by its strides too: a 1-channel NCHW input is contiguous in both formats, and
  // libtorch's convolution keeps such a model NCHW
  if (!x.is_contiguous(at::MemoryFormat::ChannelsLast) || x.suggest_memory_format() != at::MemoryFormat::ChannelsLast ||
      x.size(1) != w.size(1))
    return std::nullopt;
  if (!w.is_contiguous() && !w.is_contiguous(at::MemoryFormat::ChannelsLast)) return std::nullopt;
  if (stride[0] < 1 || stride[1] < 1 || padding[0] < 0 || padding[1] < 0) return std::nullopt;
  TrainShape s = ShapeOf(x, w, stride[0], stride[1], padding[0], padding[1]);
  if (s.oh < 1 || s.ow < 1) return std::nullopt;
  return ConvTrainFn::apply(x, w, stride[0], stride[1], padding[0], padding[1])[0];
}

namespace {

// convChoices() -> { [shape key]: { forward, backwardData, backwardWeights } }: the candidates
// chosen so far in this process (a phase not run yet is absent).
Napi::Value ConvChoices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& [key, e] : cache) {
    if (e.chosen == std::array<int, 3>{-1, -1, -1}) continue;
    Napi::Object o = Napi::Object::New(env);
    for (int p = 0; p < 3; p++)
      if (e.chosen[p] >= 0) o.Set(kPhaseName[p], kCandidate[e.chosen[p]].name);
    out.Set(key, o);
  }
  return out;
}

// setConvChoices({ [shape key]: { forward?, backwardData?, backwardWeights? } }): presets the
// candidates of the shapes named (a resumed run takes its first run's); the other shapes keep
// what this process chose.
Napi::Value SetConvChoices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "setConvChoices(choices): choices must be an object").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object in = info[0].As<Napi::Object>();
  std::map<std::string, std::array<int, 3>> next;
  Napi::Array keys = in.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    std::string key = keys.Get(i).As<Napi::String>();
    Napi::Value v = in.Get(key);
    if (!v.IsObject()) {
      Napi::TypeError::New(env, "setConvChoices: the choices for " + key + " must be an object")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::array<int, 3> ks{-1, -1, -1};
    for (int p = 0; p < 3; p++) {
      Napi::Value name = v.As<Napi::Object>().Get(kPhaseName[p]);
      if (name.IsUndefined()) continue;
      std::string n = name.IsString() ? name.As<Napi::String>().Utf8Value() : "";
      for (int k = 0; k < kCandidates; k++)
        if (n == kCandidate[k].name) ks[p] = k;
      if (ks[p] < 0) {
        Napi::TypeError::New(env, "setConvChoices: " + key + "." + kPhaseName[p] +
                                      " must be direct-nhwc, direct-blocked, winograd or libtorch. Received: " + n)
            .ThrowAsJavaScriptException();
        return env.Undefined();
      }
    }
    next[key] = ks;
  }
  std::lock_guard<std::mutex> lock(mu);
  for (auto& [key, ks] : next) {
    preset[key] = ks;
    auto it = cache.find(key);
    if (it != cache.end()) it->second.chosen = {-1, -1, -1};
  }
  return env.Undefined();
}

// setTrainConvMode(mode) -> the previous mode: "auto" (measure per shape and phase), "off"
// (libtorch's convolution), or one candidate wherever it builds; forgets the choices and presets.
Napi::Value SetTrainConvMode(const Napi::CallbackInfo& info) {
  Args a{info, "setTrainConvMode"};
  return Guard("setTrainConvMode", info, [&]() -> Napi::Value {
    int next = ParseMode(a.str(0), "setTrainConvMode: mode");
    std::lock_guard<std::mutex> lock(mu);
    std::string was = ModeName(Mode());
    mode = next;
    preset.clear();
    for (auto& entry : cache) entry.second.chosen = {-1, -1, -1};
    return Napi::String::New(info.Env(), was);
  });
}

}  // namespace

#else

std::optional<at::Tensor> TrainConv2d(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                      const std::vector<int64_t>&, const std::vector<int64_t>&,
                                      const std::vector<int64_t>&, int64_t) {
  return std::nullopt;
}

namespace {
Napi::Value ConvChoices(const Napi::CallbackInfo& info) { return Napi::Object::New(info.Env()); }
Napi::Value SetConvChoices(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }
Napi::Value SetTrainConvMode(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), "off"); }
}  // namespace

#endif

void InitConvTrain(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "convChoices", ConvChoices);
  Export(env, exports, "setConvChoices", SetConvChoices);
  Export(env, exports, "setTrainConvMode", SetTrainConvMode);
}

}  // namespace bn
