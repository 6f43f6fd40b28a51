// An inference plan: a CNN's forward (convolutions, activations, additions, products, pooling)
// run as oneDNN primitives directly, with activations kept in oneDNN's own blocked layouts
// between operators, weights reordered once, ReLU and residual additions fused into the
// convolution before them (post-ops), buffers reused by liveness, and, in float32, Winograd
// convolutions where they measure faster than direct ones on this machine. libtorch runs the
// same oneDNN (Debian's libdnnl.so.2) but through per-operator calls in plain layouts, one op
// at a time; this is what "fused inference" means here. src/perf/plan.ts builds the node list
// from a traced forward of a BatchNorm-folded model and runs whatever follows (flatten, linear)
// through libtorch.
//
// Built only when oneDNN's headers are present (BUDGETNET_DNNL=1, Debian's libdnnl-dev); the
// addon then exports InferencePlan and buildInfo().dnnl is true.
#include "plan.h"

#if BUDGETNET_DNNL

namespace bn {

class InferencePlan : public Napi::ObjectWrap<InferencePlan> {
 public:
  static Napi::FunctionReference constructor;
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(env, "InferencePlan",
                                   {InstanceMethod("run", &InferencePlan::Run),
                                    InstanceMethod("choices", &InferencePlan::Choices),
                                    InstanceMethod("dispose", &InferencePlan::Dispose)});
    constructor = Napi::Persistent(f);
    constructor.SuppressDestruct();
    exports.Set("InferencePlan", f);
  }

  // new InferencePlan(nodes, outputs, dtype, winograd[, options]); dtype "int8": the nodes marked
  // int8 run in int8 (plan_int8.cc), the others in float32; options.input: the input's quantization
  explicit InferencePlan(const Napi::CallbackInfo& info) : Napi::ObjectWrap<InferencePlan>(info) {
    try {
      Parse(info);
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::exception& e) {
      ThrowOpError(info, "InferencePlan", e.what());
    }
  }

 private:
  std::vector<Node> nodes_;
  std::vector<int> outputs_;
  dt dtype_ = dt::f32;  // of float nodes
  bool int8_ = false;
  QParam inputQ_;
  std::string winograd_ = "auto";
  int numValues_ = 1;
  std::map<std::vector<int64_t>, std::unique_ptr<Program>> programs_;
  Program* last_ = nullptr;
  std::map<std::string, dnnl::algorithm> tuned_;  // convolution shape -> faster algorithm
  bool disposed_ = false;

  static std::vector<int64_t> Ints(const Napi::Object& o, const char* key) {
    std::vector<int64_t> out;
    Napi::Value v = o.Get(key);
    if (!v.IsArray()) return out;
    Napi::Array arr = v.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) out.push_back(arr.Get(i).As<Napi::Number>().Int64Value());
    return out;
  }
  static int Id(const Napi::Object& o, const char* key) {
    Napi::Value v = o.Get(key);
    return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : -1;
  }

  static at::Tensor FloatTensor(const Napi::Value& v) {
    return Napi::ObjectWrap<TensorHandle>::Unwrap(v.As<Napi::Object>())->tensor.to(at::kFloat).contiguous();
  }

  void Parse(const Napi::CallbackInfo& info) {
    if (info.Length() < 4 || !info[0].IsArray() || !info[1].IsArray() || !info[2].IsString() || !info[3].IsString())
      throw std::invalid_argument("InferencePlan(nodes, outputs, dtype, winograd): wrong arguments");
    ParseSettings(info[2].As<Napi::String>(), info[3].As<Napi::String>());
    if (info.Length() > 4 && info[4].IsObject()) inputQ_ = ParseQParam(info[4].As<Napi::Object>().Get("input"));
    Napi::Array arr = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Node n = ParseNode(arr.Get(i).As<Napi::Object>());
      if (n.in < 0 || n.in >= numValues_ || n.out != numValues_)
        throw std::invalid_argument("plan node " + std::to_string(i) + " reads an undefined value or writes out of order");
      numValues_++;
      nodes_.push_back(std::move(n));
    }
    Napi::Array outs = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < outs.Length(); ++i) {
      int v = outs.Get(i).As<Napi::Number>().Int32Value();
      if (v < 0 || v >= numValues_) throw std::invalid_argument("plan output names an undefined value");
      outputs_.push_back(v);
    }
  }

  void ParseSettings(const std::string& dtype, const std::string& winograd) {
    if (dtype == "float32")
      dtype_ = dt::f32;
    else if (dtype == "bfloat16")
      dtype_ = dt::bf16;
    else if (dtype == "int8")
      int8_ = true;
    else
      throw std::invalid_argument("dtype must be 'float32', 'bfloat16' or 'int8'. Received: " + dtype);
    winograd_ = winograd;
    if (winograd_ != "auto" && winograd_ != "never" && winograd_ != "always")
      throw std::invalid_argument("winograd must be 'auto', 'never' or 'always'. Received: " + winograd_);
  }

  static Node ParseNode(const Napi::Object& o) {
    Node n;
    std::string op = o.Get("op").As<Napi::String>();
    n.in = Id(o, "in");
    n.b = Id(o, "b");
    n.out = Id(o, "out");
    n.sum = Id(o, "sum");
    if (o.Get("sub").IsString()) n.sub = o.Get("sub").As<Napi::String>();
    n.int8 = o.Get("int8").IsBoolean() && o.Get("int8").As<Napi::Boolean>().Value();
    n.quantizeOutput = o.Get("quantizeOutput").IsBoolean() && o.Get("quantizeOutput").As<Napi::Boolean>().Value();
    n.q = ParseQParam(o.Get("quant"));
    if (o.Get("wscales").IsArray()) {
      Napi::Array w = o.Get("wscales").As<Napi::Array>();
      for (uint32_t j = 0; j < w.Length(); ++j) n.wscales.push_back(w.Get(j).As<Napi::Number>().FloatValue());
    }
    if (o.Get("post").IsArray()) {
      Napi::Array p = o.Get("post").As<Napi::Array>();
      for (uint32_t j = 0; j < p.Length(); ++j) n.post.push_back(p.Get(j).As<Napi::String>());
    }
    if (op == "conv") {
      ParseConv(o, n);
    } else if (op == "batchnorm") {
      ParseBatchNorm(o, n);
    } else if (op == "eltwise") {
      n.kind = Kind::Eltwise;
    } else if (op == "binary") {
      n.kind = Kind::Binary;
    } else if (op == "pool") {
      n.kind = Kind::Pool;
      n.kernel = Ints(o, "kernel");
      n.stride = Ints(o, "stride");
      n.padding = Ints(o, "padding");
    } else {
      throw std::invalid_argument("unknown plan op '" + op + "'");
    }
    return n;
  }

  static void ParseConv(const Napi::Object& o, Node& n) {
    n.kind = Kind::Conv;
    if (!TensorHandle::Is(o.Get("weight"))) throw std::invalid_argument("conv node without a weight tensor");
    n.weight = FloatTensor(o.Get("weight"));
    if (TensorHandle::Is(o.Get("bias"))) n.bias = FloatTensor(o.Get("bias"));
    n.stride = Ints(o, "stride");
    n.padding = Ints(o, "padding");
    n.dilation = Ints(o, "dilation");
    n.groups = o.Get("groups").As<Napi::Number>().Int64Value();
    if (n.weight.dim() != 4 || n.stride.size() != 2 || n.padding.size() != 2 || n.dilation.size() != 2)
      throw std::invalid_argument("conv node: 4-D weight and 2 strides, paddings and dilations expected");
  }

  static void ParseBatchNorm(const Napi::Object& o, Node& n) {
    n.kind = Kind::BatchNorm;
    auto get = [&](const char* key) {
      if (!TensorHandle::Is(o.Get(key))) throw std::invalid_argument(std::string("batchnorm node without ") + key);
      return FloatTensor(o.Get(key));
    };
    n.mean = get("mean");
    n.var = get("var");
    n.weight = TensorHandle::Is(o.Get("weight")) ? get("weight") : at::ones_like(n.mean);
    n.bias = TensorHandle::Is(o.Get("bias")) ? get("bias") : at::zeros_like(n.mean);
    n.eps = o.Get("eps").As<Napi::Number>().FloatValue();
  }

  static std::string Desc(const memory::desc& d) {
    std::string out = "[";
    auto dims = d.dims();
    for (size_t i = 0; i < dims.size(); ++i) out += (i ? "," : "") + std::to_string(dims[i]);
    out += "]";
    auto dt_ = d.data_type();
    out += dt_ == dt::f32    ? " f32"
           : dt_ == dt::bf16 ? " bf16"
           : dt_ == dt::u8   ? " u8"
           : dt_ == dt::s8   ? " s8"
                             : " ?";
    // the layout: the innermost block (16c = blocked by 16 channels) or the stride order
    const auto& bd = d.data.format_desc.blocking;
    if (bd.inner_nblks > 0)
      out += " blocked" + std::to_string(bd.inner_blks[0]);
    else if (dims.size() == 4)
      out += bd.strides[1] == 1 ? " nhwc" : " nchw";
    return out;
  }

  static double TimeMs(const dnnl::primitive& p, const std::unordered_map<int, memory>& args, int reps) {
    dnnl::stream& s = Stream();
    p.execute(s, args);
    s.wait();
    double best = 1e30;
    for (int i = 0; i < reps; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      p.execute(s, args);
      s.wait();
      best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  }

  // per value: the index of the last node that reads it; the plan's outputs outlive every node
  std::vector<int> LastUses() const {
    std::vector<int> lastUse(numValues_, -1);
    for (size_t i = 0; i < nodes_.size(); ++i) {
      const Node& n = nodes_[i];
      for (int v : {n.in, n.b, n.sum})
        if (v >= 0) lastUse[v] = static_cast<int>(i);
    }
    for (int v : outputs_) lastUse[v] = static_cast<int>(nodes_.size()) + 1;
    return lastUse;
  }

  // The program for one input shape: one Compile<Kind> per node (convolutions pick direct or
  // Winograd in ChooseConv), buffers from the Builder's pool, then the exports.
  std::unique_ptr<Program> Compile(const std::vector<int64_t>& dims) {
    auto prog = std::make_unique<Program>();
    prog->inputDims = dims;
    Builder b(*prog, LastUses());
    prog->input = memory({dims, dt::f32, tag::nchw}, Engine(), DNNL_MEMORY_NONE);
    b.vals[0].mem = prog->input;
    b.vals[0].q = inputQ_;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      const Node& n = nodes_[i];
      switch (n.kind) {
        case Kind::Conv:
          b.vals[n.out] = CompileConv(b, n, i);
          break;
        case Kind::Eltwise:
          b.vals[n.out] = CompileEltwise(b, n, i);
          break;
        case Kind::Binary:
          b.vals[n.out] = CompileBinary(b, n, i);
          break;
        case Kind::BatchNorm:
          b.vals[n.out] = CompileBatchNorm(b, n, i);
          break;
        case Kind::Pool:
          b.vals[n.out] = CompilePool(b, n);
          break;
      }
      if (n.int8 && !int8_) throw std::invalid_argument("an int8 node in a float plan");
      b.vals[n.out].q = n.q;
      if (n.quantizeOutput) b.Quantize(n.out);
      b.EndNode(n, i);
    }
    AddExports(b);
    return prog;
  }

  // per output value: a plain float32 memory whose handle run() points at a new tensor, and the
  // reorder into it, made once here
  void AddExports(Builder& b) const {
    for (int v : outputs_) {
      memory::dims d = b.vals[v].mem.get_desc().dims();
      memory user({d, dt::f32, d.size() == 4 ? tag::nchw : d.size() == 2 ? tag::ab : tag::a}, Engine(),
                  DNNL_MEMORY_NONE);
      std::unordered_map<int, memory> args;
      dnnl::reorder r = QuantReorder(b.vals[v].mem, user, b.vals[v].q, args);
      b.prog.exports.push_back({b.vals[v].mem, user, r, std::move(args)});
      b.prog.exportDims.push_back(std::vector<int64_t>(d.begin(), d.end()));
    }
  }

  // The convolution with its post-ops, by algorithm alg. float32: activations stay in 16-channel
  // blocks (Winograd's layout) wherever the channels allow, so direct and Winograd convolutions
  // pass them on without reorders; bfloat16: oneDNN's choice (nhwc).
  ConvPd ConvPrimitive(const Node& n, const ConvShape& s, dnnl::algorithm alg) const {
    dnnl::post_ops po;
    AppendPostOps(po, n.post);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    auto act = [&](const memory::dims& d) {
      return memory::desc(d, dtype_, dtype_ == dt::f32 && d[1] % 16 == 0 ? tag::nChw16c : tag::any);
    };
    memory::desc anyIn = act(s.src), anyW(s.weights, dtype_, tag::any), anyOut = act(s.dst);
    memory::dims stride = {n.stride[0], n.stride[1]}, pad = {n.padding[0], n.padding[1]};
    memory::dims dil = {n.dilation[0] - 1, n.dilation[1] - 1};
    auto prop = dnnl::prop_kind::forward_inference;
    auto d = n.bias.defined()
                 ? dnnl::convolution_forward::desc(prop, alg, anyIn, anyW, s.bias, anyOut, stride, dil, pad, pad)
                 : dnnl::convolution_forward::desc(prop, alg, anyIn, anyW, anyOut, stride, dil, pad, pad);
    return ConvPd(d, attr, Engine());
  }

  // oneDNN's Winograd covers float32 3x3 convolutions with stride 1, no dilation and no groups
  bool WinogradShape(const Node& n) const {
    return dtype_ == dt::f32 && n.weight.size(2) == 3 && n.weight.size(3) == 3 && n.stride[0] == 1 &&
           n.stride[1] == 1 && n.dilation[0] == 1 && n.dilation[1] == 1 && n.groups == 1;
  }

  // Direct, or Winograd where the winograd setting allows it, oneDNN implements it for this shape
  // and ("auto") it measured faster. Returns the primitive and the algorithm's name.
  std::pair<ConvPd, std::string> ChooseConv(const Node& n, const ConvShape& s) {
    ConvPd direct = ConvPrimitive(n, s, dnnl::algorithm::convolution_direct);
    if (winograd_ == "never" || !WinogradShape(n)) return {direct, "direct"};
    ConvPd wino;
    try {
      wino = ConvPrimitive(n, s, dnnl::algorithm::convolution_winograd);
    } catch (const dnnl::error&) {
      return {direct, "direct"};  // no Winograd implementation for this shape on this machine
    }
    if (winograd_ == "always" || WinogradFaster(n, s, wino, direct)) return {wino, "winograd"};
    return {direct, "direct"};
  }

  // The Winograd tuner: times both algorithms once per convolution shape (input dims, output
  // channels, number of post-ops) and keeps the answer for every later program of this plan.
  bool WinogradFaster(const Node& n, const ConvShape& s, const ConvPd& wino, const ConvPd& direct) {
    const memory::dims& sd = s.src;
    std::string key = std::to_string(sd[0]) + "x" + std::to_string(sd[1]) + "x" + std::to_string(sd[2]) + "x" +
                      std::to_string(sd[3]) + "->" + std::to_string(s.dst[1]) + ":" + std::to_string(n.post.size());
    auto it = tuned_.find(key);
    if (it == tuned_.end()) {
      bool bias = n.bias.defined();
      double tw = TrialMs(wino, bias), td = TrialMs(direct, bias);
      it = tuned_.emplace(key, tw < td ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct)
               .first;
    }
    return it->second == dnnl::algorithm::convolution_winograd;
  }

  // the best of three runs of convolution p on zeroed scratch buffers (contents do not matter for speed)
  static double TrialMs(const ConvPd& p, bool bias) {
    std::vector<void*> bufs;
    auto scratch = [&](const memory::desc& d) {
      void* q = nullptr;
      if (posix_memalign(&q, 64, std::max<size_t>(d.get_size(), 64)) != 0) throw std::bad_alloc();
      std::memset(q, 0, d.get_size());
      bufs.push_back(q);
      return memory(d, Engine(), q);
    };
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, scratch(p.src_desc())},
                                            {DNNL_ARG_WEIGHTS, scratch(p.weights_desc())},
                                            {DNNL_ARG_DST, scratch(p.dst_desc())}};
    if (bias) args[DNNL_ARG_BIAS] = scratch(p.bias_desc());
    double ms = TimeMs(dnnl::convolution_forward(p), args, 3);
    for (void* q : bufs) std::free(q);
    return ms;
  }

  // a convolution with its post-ops (ReLU, a residual sum); weights reordered into its layout once
  PlanValue CompileConv(Builder& b, const Node& n, size_t i) {
    if (n.int8) {
      std::string choice;
      PlanValue out = CompileConvInt8(b, n, i, choice);
      b.prog.choices.push_back(choice);
      return out;
    }
    ConvShape s = ConvShapes(n, b.vals[n.in].mem.get_desc().dims());
    auto [pd, algName] = ChooseConv(n, s);
    b.prog.choices.push_back(algName + " " + pd.impl_info_str());
    // weights: plain OIHW float32 -> the primitive's layout and type, once
    memory wMem = b.Prepare({s.weights, dt::f32, n.groups == 1 ? tag::oihw : tag::goihw}, n.weight, pd.weights_desc());
    memory bMem = n.bias.defined() ? b.Prepare(s.bias, n.bias, pd.bias_desc()) : memory();
    memory srcMem = b.As(n.in, pd.src_desc());
    PlanValue out = n.sum >= 0 ? b.SumTarget(n.sum, i, pd.dst_desc()) : b.Alloc(pd.dst_desc());
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, srcMem}, {DNNL_ARG_WEIGHTS, wMem}, {DNNL_ARG_DST, out.mem}};
    if (n.bias.defined()) args[DNNL_ARG_BIAS] = bMem;
    b.AddStep(dnnl::convolution_forward(pd), std::move(args));
    return out;
  }

  // one primitive per elementary function (hard-sigmoid is two), the later ones in place
  PlanValue CompileEltwise(Builder& b, const Node& n, size_t i) {
    memory from = b.Float(n.in);
    memory::desc src = from.get_desc();
    PlanValue out;
    bool first = true;
    for (const Act& act : Activation(n.sub)) {
      dnnl::eltwise_forward::primitive_desc pd(
          dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, act.alg, src, act.alpha, act.beta), Engine());
      if (first) out = b.ReuseOrAlloc(n.in, i, pd.dst_desc());
      b.AddStep(dnnl::eltwise_forward(pd), {{DNNL_ARG_SRC, from}, {DNNL_ARG_DST, out.mem}});
      from = out.mem;
      first = false;
    }
    return out;
  }

  // add or mul of two values, the second of the same shape (reordered to the first's layout) or
  // broadcast (an SE gate [N, C, 1, 1]), with post-ops
  PlanValue CompileBinary(Builder& b, const Node& n, size_t i) {
    dnnl::algorithm alg;
    if (n.sub == "add")
      alg = dnnl::algorithm::binary_add;
    else if (n.sub == "mul")
      alg = dnnl::algorithm::binary_mul;
    else
      throw std::invalid_argument("plan binary: unknown kind '" + n.sub + "'");
    memory aMem = b.Float(n.in);
    memory::desc src = aMem.get_desc();
    memory::desc bd = b.vals[n.b].mem.get_desc();
    memory bMem = bd.dims() == src.dims() ? b.As(n.b, src) : b.Float(n.b);
    dnnl::post_ops po;
    AppendPostOps(po, n.post);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    dnnl::binary::primitive_desc pd(dnnl::binary::desc(alg, src, bMem.get_desc(), src), attr, Engine());
    PlanValue out = b.ReuseOrAlloc(n.in, i, pd.dst_desc());
    b.AddStep(dnnl::binary(pd), {{DNNL_ARG_SRC_0, aMem}, {DNNL_ARG_SRC_1, bMem}, {DNNL_ARG_DST, out.mem}});
    return out;
  }

  // a BatchNorm that follows no convolution (so it was not folded), a following ReLU fused
  PlanValue CompileBatchNorm(Builder& b, const Node& n, size_t i) {
    memory from = b.Float(n.in);
    memory::desc src = from.get_desc();
    memory::dims sd = src.dims();
    if (sd.size() != 4 || sd[1] != n.mean.numel())
      throw std::invalid_argument("plan batchnorm: input channels do not match the statistics");
    bool relu = n.post.size() == 1 && n.post[0] == "relu";
    auto flags = dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale |
                 dnnl::normalization_flags::use_shift;
    if (relu) flags = flags | dnnl::normalization_flags::fuse_norm_relu;
    dnnl::batch_normalization_forward::primitive_desc pd(
        dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_inference, src, n.eps, flags), Engine());
    auto param = [&](const at::Tensor& t) {
      memory::desc d({t.numel()}, dt::f32, tag::a);
      return b.Prepare(d, t, d);
    };
    PlanValue out = b.ReuseOrAlloc(n.in, i, pd.dst_desc());
    b.AddStep(dnnl::batch_normalization_forward(pd), {{DNNL_ARG_SRC, from},
                                                      {DNNL_ARG_MEAN, param(n.mean)},
                                                      {DNNL_ARG_VARIANCE, param(n.var)},
                                                      {DNNL_ARG_SCALE, param(n.weight)},
                                                      {DNNL_ARG_SHIFT, param(n.bias)},
                                                      {DNNL_ARG_DST, out.mem}});
    return out;
  }

  // average pooling, padding counted or not, or global (the kernel is the whole image). int8: on
  // the input's int8 values, the output keeping the input's quantization (as PyTorch's quantized
  // avg_pool2d does); otherwise in float.
  PlanValue CompilePool(Builder& b, const Node& n) {
    const QParam& qin = b.vals[n.in].q;
    if (n.int8 && (!qin.defined() || !n.q.defined() || n.q.type != qin.type || n.q.scale != qin.scale || n.q.zp != qin.zp))
      throw std::invalid_argument("int8 pool: its output must keep its input's quantization");
    memory from = n.int8 ? b.As(n.in, WithType(b.vals[n.in].mem.get_desc(), qin.type)) : b.Float(n.in);
    memory::desc src = from.get_desc();
    memory::dims sd = src.dims();
    std::vector<int64_t> k = n.kernel, st = n.stride, pad = n.padding;
    if (n.sub == "global") {
      k = {sd[2], sd[3]};
      st = {1, 1};
      pad = {0, 0};
    }
    memory::dims od = {sd[0], sd[1], (sd[2] + 2 * pad[0] - k[0]) / st[0] + 1, (sd[3] + 2 * pad[1] - k[1]) / st[1] + 1};
    auto alg = n.sub == "avg_exclude" ? dnnl::algorithm::pooling_avg_exclude_padding
                                      : dnnl::algorithm::pooling_avg_include_padding;
    dnnl::pooling_forward::primitive_desc pd(
        dnnl::pooling_forward::desc(dnnl::prop_kind::forward_inference, alg, src, memory::desc(od, n.int8 || int8_ ? src.data_type() : dtype_, tag::any),
                                    {st[0], st[1]}, {k[0], k[1]}, {pad[0], pad[1]}, {pad[0], pad[1]}),
        Engine());
    PlanValue out = b.Alloc(pd.dst_desc());
    b.AddStep(dnnl::pooling_forward(pd), {{DNNL_ARG_SRC, from}, {DNNL_ARG_DST, out.mem}});
    return out;
  }

  // run(x) -> [TensorHandle] (float32, contiguous, one per output value)
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Args a{info, "InferencePlan.run"};
    return Guard("InferencePlan.run", info, [&]() -> Napi::Value {
      if (disposed_) throw std::invalid_argument("this plan was disposed");
      at::Tensor x = a.tensor(0);
      if (x.dim() != 4 || !x.is_floating_point() || !x.device().is_cpu())
        throw std::invalid_argument("the plan takes a 4-D floating-point CPU tensor [N, C, H, W]");
      at::Tensor x32 = x.to(at::kFloat).contiguous();
      Program& p = ProgramFor(std::vector<int64_t>(x32.sizes().begin(), x32.sizes().end()));
      p.input.set_data_handle(x32.data_ptr());
      // run(x, true): per-step wall times instead of outputs, for finding where a plan spends its time
      if (!a.missing(1) && a.boolean(1)) return StepTimes(info.Env(), p);
      dnnl::stream& s = Stream();
      for (auto& st : p.steps) st.prim.execute(s, st.args);
      Napi::Array out = Napi::Array::New(info.Env(), p.exports.size());
      for (size_t i = 0; i < p.exports.size(); ++i) {
        at::Tensor t = at::empty(p.exportDims[i], at::kFloat);
        Program::Export& e = p.exports[i];
        e.to.set_data_handle(t.data_ptr());
        e.reorder.execute(s, e.args);
        out.Set(static_cast<uint32_t>(i), W(t));
      }
      s.wait();
      return out;
    });
  }

  // the program compiled for this input shape (at most 8 are kept; a ninth starts the cache over)
  Program& ProgramFor(const std::vector<int64_t>& dims) {
    auto it = programs_.find(dims);
    if (it == programs_.end()) {
      if (programs_.size() >= 8) {
        programs_.clear();
        last_ = nullptr;
      }
      it = programs_.emplace(dims, Compile(dims)).first;
    }
    last_ = it->second.get();
    return *last_;
  }

  // runs every step of p, waiting after each: [{step: "convolution [dims] f32 blocked16 -> ...", ms}]
  static Napi::Value StepTimes(Napi::Env env, Program& p) {
    dnnl::stream& s = Stream();
    std::vector<double> ms;
    for (auto& st : p.steps) {
      auto t0 = std::chrono::steady_clock::now();
      st.prim.execute(s, st.args);
      s.wait();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    Napi::Array rows = Napi::Array::New(env, ms.size());
    for (size_t i = 0; i < ms.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("step", StepName(p.steps[i]));
      o.Set("ms", ms[i]);
      rows.Set(static_cast<uint32_t>(i), o);
    }
    return rows;
  }

  // the primitive's kind with its source and destination: "reorder [3,3,32,32] f32 nchw -> [...] f32 blocked16"
  static std::string StepName(const Step& st) {
    const char* kinds[] = {"undef", "reorder", "shuffle", "concat", "sum", "convolution", "deconvolution",
                           "eltwise", "softmax", "pooling", "lrn", "batch_normalization", "layer_normalization",
                           "inner_product", "rnn", "gemm", "binary", "logsoftmax", "matmul", "resampling",
                           "pooling_v2", "reduction", "prelu", "softmax_v2", "layer_normalization_v2"};
    int k = static_cast<int>(st.prim.get_kind());
    std::string name = k >= 0 && k < 25 ? kinds[k] : "other";
    // a reorder's DNNL_ARG_FROM and DNNL_ARG_TO are DNNL_ARG_SRC and DNNL_ARG_DST by other names
    std::string src = st.args.count(DNNL_ARG_SRC) ? " " + Desc(st.args.at(DNNL_ARG_SRC).get_desc()) : "";
    std::string dst = st.args.count(DNNL_ARG_DST) ? " -> " + Desc(st.args.at(DNNL_ARG_DST).get_desc()) : "";
    return name + src + dst;
  }

  // dispose(): frees the programs (buffers, reordered weights) and the weight copies now instead of
  // whenever V8 finalizes this object (it does not see their size, so it may wait for a long time:
  // ~3.6 MB a ResNet-20 plan piled up over compile/dispose cycles). run() after it throws.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    programs_.clear();
    last_ = nullptr;
    nodes_.clear();
    nodes_.shrink_to_fit();
    tuned_.clear();
    disposed_ = true;
    return info.Env().Undefined();
  }

  // choices() -> the algorithm and oneDNN implementation of each convolution in the newest program
  Napi::Value Choices(const Napi::CallbackInfo& info) {
    Napi::Array out = Napi::Array::New(info.Env());
    if (last_ == nullptr) return out;
    const auto& c = last_->choices;
    for (size_t i = 0; i < c.size(); ++i) out.Set(static_cast<uint32_t>(i), c[i]);
    return out;
  }
};

Napi::FunctionReference InferencePlan::constructor;

void InitPlan(Napi::Env env, Napi::Object exports) { InferencePlan::Init(env, exports); }
bool HavePlan() { return true; }

}  // namespace bn

#else

namespace bn {
void InitPlan(Napi::Env, Napi::Object) {}
bool HavePlan() { return false; }
}  // namespace bn

#endif
