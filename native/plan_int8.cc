// The int8 nodes of the inference plan (plan.h, plan.cc): quantizing and dequantizing reorders,
// and int8 convolutions — u8 or s8 activations, s8 weights per output channel, int32 bias, the
// output requantized by per-channel output scales, ReLU (and ReLU6) and the residual addition
// fused as post-ops. oneDNN picks the implementation from the CPU (VNNI's brgconv / jit
// avx512_core_vnni where the CPU has it). Scales follow PyTorch's affine convention,
// real = scale * (q - zeroPoint); oneDNN 2.x applies output scales before post-ops, so ReLU,
// ReLU6 and the sum run in units of the output's scale, and other activations in real units
// followed by one more post-op that divides by the output's scale.
#include "plan.h"

#if BUDGETNET_DNNL

#include <cmath>

namespace bn {

// an s32 memory of one value, for a runtime zero point
static memory ZeroPoint(int32_t zp) {
  memory m({{1}, dt::s32, tag::x}, Engine());
  *static_cast<int32_t*>(m.get_data_handle()) = zp;
  return m;
}

dnnl::reorder QuantReorder(const memory& from, const memory& to, const QParam& q,
                           std::unordered_map<int, memory>& args) {
  args = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  dt src = from.get_desc().data_type(), dst = to.get_desc().data_type();
  bool quantize = !IsInt8(src) && IsInt8(dst), dequantize = IsInt8(src) && !IsInt8(dst);
  if (!quantize && !dequantize) {
    if (src != dst && (IsInt8(src) || IsInt8(dst)))
      throw std::invalid_argument("plan: a value stored as one int8 type is read as the other");
    return dnnl::reorder(from, to);
  }
  if (!q.defined()) throw std::invalid_argument("plan: a value without a quantization crosses between float and int8");
  dnnl::primitive_attr attr;
  // dequantize: scale * (q - zp); quantize: round(x / scale) + zp (oneDNN multiplies by 1 / scale)
  attr.set_output_scales(0, {dequantize ? q.scale : 1.f / q.scale});
  if (q.zp != 0) {
    int arg = dequantize ? DNNL_ARG_FROM : DNNL_ARG_TO;
    attr.set_zero_points(arg, 0, {DNNL_RUNTIME_S32_VAL});
    args[DNNL_ARG_ATTR_ZERO_POINTS | arg] = ZeroPoint(q.zp);
  }
  return dnnl::reorder(dnnl::reorder::primitive_desc(from, to, attr));
}

QParam ParseQParam(const Napi::Value& v) {
  QParam q;
  if (!v.IsObject()) return q;
  Napi::Object o = v.As<Napi::Object>();
  std::string type = o.Get("dtype").As<Napi::String>();
  if (type == "uint8")
    q.type = dt::u8;
  else if (type == "int8")
    q.type = dt::s8;
  else
    throw std::invalid_argument("quantization dtype must be 'uint8' or 'int8'. Received: " + type);
  q.scale = o.Get("scale").As<Napi::Number>().FloatValue();
  q.zp = o.Get("zeroPoint").As<Napi::Number>().Int32Value();
  if (!(q.scale > 0) || !std::isfinite(q.scale))
    throw std::invalid_argument("quantization scale must be a positive finite number. Received: " +
                                std::to_string(q.scale));
  int lo = q.type == dt::u8 ? 0 : -128, hi = q.type == dt::u8 ? 255 : 127;
  if (q.zp < lo || q.zp > hi) throw std::invalid_argument("quantization zero point out of its type's range");
  return q;
}

// Post-ops that commute with a positive scale (ReLU, ReLU6 with its bound scaled, the sum): with
// only these the output scales requantize straight to the output's scale.
static bool Homogeneous(const std::vector<std::string>& post) {
  for (const std::string& p : post)
    if (p != "sum" && p != "relu" && p != "relu6") return false;
  return true;
}

// the weight scales, one per output channel (a single scale repeated)
static std::vector<float> ChannelScales(const Node& n, int64_t oc) {
  std::vector<float> ws = n.wscales;
  if (ws.size() == 1) ws.assign(static_cast<size_t>(oc), ws[0]);
  if (static_cast<int64_t>(ws.size()) != oc)
    throw std::invalid_argument("int8 conv: " + std::to_string(n.wscales.size()) + " weight scales for " +
                                std::to_string(oc) + " output channels");
  for (float s : ws)
    if (!(s > 0) || !std::isfinite(s)) throw std::invalid_argument("int8 conv: weight scales must be positive");
  return ws;
}

// The post-ops of an int8 convolution. Homogeneous: the output scales leave values in units of the
// output's scale, so ReLU stays, ReLU6's bound and the sum's scale are divided by it. Otherwise
// the values are in real units: the activations run as in float, then one more post-op divides by
// the output's scale (a final hard-sigmoid takes the division into its own linear and clip: the
// chain linear, clip, linear came out wrong from oneDNN 2.6.3's int8 brgconv here, every value off,
// while each of sigmoid, SiLU, hardswish followed by linear matched the reference exactly).
static dnnl::post_ops Int8PostOps(const Builder& b, const Node& n, bool homogeneous) {
  float unit = homogeneous ? n.q.scale : 1.f;
  dnnl::post_ops po;
  bool scaled = homogeneous;
  for (size_t j = 0; j < n.post.size(); ++j) {
    const std::string& p = n.post[j];
    bool last = j + 1 == n.post.size();
    if (p == "sum") {
      const QParam& qs = b.vals[n.sum].q;
      if (!qs.defined()) throw std::invalid_argument("int8 conv: the residual has no quantization");
      po.append_sum(qs.scale / unit, qs.zp, qs.type);
    } else if (p == "relu6") {
      po.append_eltwise(1.f, dnnl::algorithm::eltwise_clip_v2, 0.f, 6.f / unit);
    } else if (p == "hardsigmoid" && last && !homogeneous) {
      // clip(x / 6 + 1/2, 0, 1) / s = clip(x / (6 s) + 1 / (2 s), 0, 1 / s)
      float s = n.q.scale;
      po.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, 1.f / (6.f * s), 0.5f / s);
      po.append_eltwise(1.f, dnnl::algorithm::eltwise_clip_v2, 0.f, 1.f / s);
      scaled = true;
    } else {
      for (const Act& a : Activation(p)) po.append_eltwise(1.f, a.alg, a.alpha, a.beta);
    }
  }
  if (!scaled) po.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, 1.f / n.q.scale, 0.f);
  return po;
}

PlanValue CompileConvInt8(Builder& b, const Node& n, size_t i, std::string& choice) {
  const QParam qin = b.vals[n.in].q;
  if (!qin.defined() || !n.q.defined())
    throw std::invalid_argument("int8 conv node without the quantization of its input or its output");
  ConvShape s = ConvShapes(n, b.vals[n.in].mem.get_desc().dims());
  int64_t oc = n.weight.size(0);
  std::vector<float> ws = ChannelScales(n, oc);
  bool homogeneous = Homogeneous(n.post);
  float unit = homogeneous ? n.q.scale : 1.f;
  std::vector<float> oscale(ws.size());
  for (size_t k = 0; k < ws.size(); ++k) oscale[k] = qin.scale * ws[k] / unit;
  dnnl::primitive_attr attr;
  attr.set_output_scales(1 << 1, oscale);
  attr.set_post_ops(Int8PostOps(b, n, homogeneous));
  if (qin.zp != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
  if (n.q.zp != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
  memory::desc src(s.src, qin.type, tag::any), w(s.weights, dt::s8, tag::any), dst(s.dst, n.q.type, tag::any);
  memory::desc bias({oc}, dt::s32, tag::a);
  memory::dims stride = {n.stride[0], n.stride[1]}, pad = {n.padding[0], n.padding[1]};
  memory::dims dil = {n.dilation[0] - 1, n.dilation[1] - 1};
  auto prop = dnnl::prop_kind::forward_inference;
  auto alg = dnnl::algorithm::convolution_direct;
  bool hasBias = n.bias.defined();
  auto d = hasBias ? dnnl::convolution_forward::desc(prop, alg, src, w, bias, dst, stride, dil, pad, pad)
                   : dnnl::convolution_forward::desc(prop, alg, src, w, dst, stride, dil, pad, pad);
  ConvPd pd(d, attr, Engine());
  choice = std::string("int8 ") + pd.impl_info_str();
  // weights: q = clamp(round(w / s), -127, 127), rounding half to even (PyTorch's), then the
  // primitive's layout (with the compensation oneDNN keeps for s8 sources)
  at::Tensor scales = at::tensor(ws, at::kFloat);
  at::Tensor qw = at::clamp(at::round(n.weight / scales.view({-1, 1, 1, 1})), -127, 127).to(at::kChar).contiguous();
  memory wMem = b.Prepare({s.weights, dt::s8, n.groups == 1 ? tag::oihw : tag::goihw}, qw, pd.weights_desc());
  std::unordered_map<int, memory> args = {{DNNL_ARG_WEIGHTS, wMem}};
  if (hasBias) {
    // bias in the accumulator's units, s_in * s_w[oc]
    at::Tensor qb = at::clamp(at::round(n.bias / (scales * qin.scale)), -2147483520.0, 2147483520.0).to(at::kInt);
    args[DNNL_ARG_BIAS] = b.Prepare(bias, qb.contiguous(), pd.bias_desc());
  }
  args[DNNL_ARG_SRC] = b.As(n.in, pd.src_desc());
  memory::desc outDesc = pd.dst_desc();
  PlanValue out = n.sum >= 0 ? b.SumTarget(n.sum, i, outDesc, WithType(outDesc, b.vals[n.sum].q.type))
                             : b.Alloc(outDesc);
  args[DNNL_ARG_DST] = out.mem;
  if (qin.zp != 0) args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC] = ZeroPoint(qin.zp);
  if (n.q.zp != 0) args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST] = ZeroPoint(n.q.zp);
  b.AddStep(dnnl::convolution_forward(pd), std::move(args));
  return out;
}

}  // namespace bn

#endif
