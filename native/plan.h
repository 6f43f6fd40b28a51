// The shared pieces of the oneDNN inference plan (plan.cc: the InferencePlan class and its float
// nodes; plan_int8.cc: int8 convolutions, quantizing and dequantizing reorders): nodes, values,
// the program of one input shape, the buffer pool and the Builder that compiles a program.
#pragma once

#include "common.h"

#if BUDGETNET_DNNL
#include <oneapi/dnnl/dnnl.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <unordered_map>

namespace bn {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

// Activation name -> oneDNN eltwise algorithm and its alpha, beta (PyTorch's definitions).
struct Act {
  dnnl::algorithm alg;
  float alpha, beta;
};
inline std::vector<Act> Activation(const std::string& name) {
  if (name == "relu") return {{dnnl::algorithm::eltwise_relu, 0.f, 0.f}};
  if (name == "relu6") return {{dnnl::algorithm::eltwise_clip_v2, 0.f, 6.f}};
  if (name == "sigmoid") return {{dnnl::algorithm::eltwise_logistic, 0.f, 0.f}};
  if (name == "silu") return {{dnnl::algorithm::eltwise_swish, 1.f, 0.f}};
  if (name == "hardswish") return {{dnnl::algorithm::eltwise_hardswish, 0.f, 0.f}};
  // relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1): oneDNN 2.6 has no hard-sigmoid of its own
  if (name == "hardsigmoid")
    return {{dnnl::algorithm::eltwise_linear, 1.f / 6.f, 0.5f}, {dnnl::algorithm::eltwise_clip_v2, 0.f, 1.f}};
  throw std::invalid_argument("plan: unknown activation '" + name + "'");
}

inline void AppendPostOps(dnnl::post_ops& po, const std::vector<std::string>& post) {
  for (const std::string& p : post) {
    if (p == "sum") {
      po.append_sum(1.f);
    } else {
      for (const Act& a : Activation(p)) po.append_eltwise(1.f, a.alg, a.alpha, a.beta);
    }
  }
}

inline dnnl::engine& Engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// One in-order CPU stream for every plan (budgetnet runs plans from the Node main thread only).
inline dnnl::stream& Stream() {
  static dnnl::stream s(Engine());
  return s;
}

enum class Kind { Conv, Eltwise, Binary, Pool, BatchNorm };

// The quantization of a value (real = scale * (q - zp)), in u8 or s8; type undef: none (float).
struct QParam {
  dt type = dt::undef;
  float scale = 1.f;
  int32_t zp = 0;
  bool defined() const { return type != dt::undef; }
};

inline bool IsInt8(dt t) { return t == dt::u8 || t == dt::s8; }

// d with another data type (same dims and layout)
inline memory::desc WithType(const memory::desc& d, dt t) {
  dnnl_memory_desc_t raw = d.data;
  raw.data_type = memory::convert_to_c(t);
  return memory::desc(raw);
}


struct Node {
  Kind kind;
  int in = -1, b = -1, out = -1;
  std::string sub;                 // eltwise: relu|relu6|sigmoid|silu|hardswish|hardsigmoid; binary: add|mul; pool: avg_include|avg_exclude|global
  std::vector<std::string> post;   // conv/binary post-ops in order: "relu" or "sum"
  int sum = -1;                    // conv: value added by the sum post-op
  at::Tensor weight, bias;         // conv: float32, contiguous; batchnorm: scale and shift
  at::Tensor mean, var;            // batchnorm: running statistics
  float eps = 1e-5f;
  std::vector<int64_t> stride, padding, dilation, kernel;
  int64_t groups = 1;
  bool int8 = false;            // int8 plans: run this node in int8 (convolutions, average pools)
  QParam q;                     // int8 plans: the quantization of this node's output, where known
  std::vector<float> wscales;   // int8 convolutions: weight scales, per output channel or one
  bool quantizeOutput = false;  // int8 plans, float nodes: store the output quantized by q
};

struct PlanValue {
  memory mem;
  void* buf = nullptr;  // owned by the program's pool; nullptr for the user's input
  size_t size = 0;
  QParam q;  // int8 plans: the value's quantization (whether it is stored in int8 or float)
};

struct Step {
  dnnl::primitive prim;
  std::unordered_map<int, memory> args;
};

// One compiled program for one input shape.
struct Program {
  std::vector<int64_t> inputDims;
  memory input;  // plain float32 NCHW; its handle is set to the caller's tensor on each run
  std::vector<Step> steps;
  // per output: the value, a plain float32 memory whose handle is set to a new tensor on each
  // run, and the reorder between them (made once here, not per run)
  struct Export {
    memory from, to;
    dnnl::reorder reorder;
    std::unordered_map<int, memory> args;  // from, to and, in int8 plans, a zero point
  };
  std::vector<Export> exports;
  std::vector<std::vector<int64_t>> exportDims;
  std::vector<memory> keep;  // reordered weights and biases
  std::vector<void*> buffers;
  std::vector<std::string> choices;  // per convolution: implementation and algorithm
  ~Program() {
    for (void* p : buffers) std::free(p);
  }
};

class Pool {
 public:
  explicit Pool(Program& p) : prog_(p) {}
  void* get(size_t size) {
    size_t best = free_.size();
    for (size_t i = 0; i < free_.size(); ++i)
      if (free_[i].first >= size && (best == free_.size() || free_[i].first < free_[best].first)) best = i;
    if (best != free_.size()) {
      void* p = free_[best].second;
      sizes_[p] = free_[best].first;
      free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(best));
      return p;
    }
    void* p = nullptr;
    if (posix_memalign(&p, 64, std::max<size_t>(size, 64)) != 0) throw std::bad_alloc();
    prog_.buffers.push_back(p);
    sizes_[p] = size;
    return p;
  }
  void put(void* p) {
    if (p != nullptr) free_.push_back({sizes_[p], p});
  }

 private:
  Program& prog_;
  std::vector<std::pair<size_t, void*>> free_;
  std::unordered_map<void*, size_t> sizes_;
};

// The state of one compilation: the program being built, the pool its buffers come from, the
// value each node has produced so far and, per value, the last node that reads it.
// A convolution's dimensions: input, output, weights (grouped: [groups, oc / groups, ic / groups,
// kh, kw]), and its bias (an empty desc without one).
struct ConvShape {
  memory::dims src, dst, weights;
  memory::desc bias;
};
using ConvPd = dnnl::convolution_forward::primitive_desc;

inline ConvShape ConvShapes(const Node& n, const memory::dims& sd) {
  auto w = n.weight.sizes();
  int64_t oc = w[0], kh = w[2], kw = w[3];
  if (sd.size() != 4 || sd[1] != w[1] * n.groups)
    throw std::invalid_argument("plan conv: input channels do not match the weight");
  auto outDim = [&](int64_t in, int64_t k, int j) {
    return (in + 2 * n.padding[j] - n.dilation[j] * (k - 1) - 1) / n.stride[j] + 1;
  };
  ConvShape s;
  s.src = sd;
  s.dst = {sd[0], oc, outDim(sd[2], kh, 0), outDim(sd[3], kw, 1)};
  s.weights = n.groups == 1 ? memory::dims{oc, w[1], kh, kw} : memory::dims{n.groups, oc / n.groups, w[1], kh, kw};
  if (n.bias.defined()) s.bias = memory::desc({oc}, dt::f32, tag::a);
  return s;
}

// A reorder from -> to that quantizes (float -> int8) or dequantizes (int8 -> float) by q where the
// data types differ, else only changes the layout; args gets its arguments (plan_int8.cc).
dnnl::reorder QuantReorder(const memory& from, const memory& to, const QParam& q,
                           std::unordered_map<int, memory>& args);

class Builder {
 public:
  Builder(Program& program, std::vector<int> lastReaders)
      : prog(program), vals(lastReaders.size()), lastUse(std::move(lastReaders)), pool_(program) {}

  Program& prog;
  std::vector<PlanValue> vals;
  const std::vector<int> lastUse;

  void AddStep(dnnl::primitive prim, std::unordered_map<int, memory> args) {
    prog.steps.push_back({std::move(prim), std::move(args)});
  }

  PlanValue Alloc(const memory::desc& d) {
    PlanValue v;
    v.size = d.get_size();
    v.buf = pool_.get(v.size);
    v.mem = memory(d, Engine(), v.buf);
    return v;
  }

  // a step copying value v into `to`, (de)quantized by v's quantization where the types differ
  void AddReorder(int v, const memory& to) {
    std::unordered_map<int, memory> args;
    dnnl::reorder r = QuantReorder(vals[v].mem, to, vals[v].q, args);
    AddStep(r, std::move(args));
  }

  // value v in layout (and type) d: itself, or a reordered copy made by a step (back to the pool
  // after the node)
  memory As(int v, const memory::desc& d) {
    if (vals[v].mem.get_desc() == d) return vals[v].mem;
    PlanValue t = Alloc(d);
    temps_.push_back(t.buf);
    AddReorder(v, t.mem);
    return t.mem;
  }

  // value v, a float node's output, stored quantized by its q from here on (its float buffer freed)
  void Quantize(int v) {
    memory::desc d = vals[v].mem.get_desc();
    if (!vals[v].q.defined() || IsInt8(d.data_type())) return;
    PlanValue t = Alloc(WithType(d, vals[v].q.type));
    AddReorder(v, t.mem);
    pool_.put(vals[v].buf);
    t.q = vals[v].q;
    vals[v] = t;
  }

  // value v for a float node: itself, or, when it is stored in int8, dequantized in its layout
  memory Float(int v) {
    memory::desc d = vals[v].mem.get_desc();
    return IsInt8(d.data_type()) ? As(v, WithType(d, dt::f32)) : vals[v].mem;
  }

  // a float32 tensor (plain layout `user`) copied once into the program's own memory in layout `want`
  memory Prepare(const memory::desc& user, const at::Tensor& t, const memory::desc& want) {
    memory from(user, Engine(), t.data_ptr());
    memory to(want, Engine());
    dnnl::reorder(from, to).execute(Stream(), from, to);
    Stream().wait();
    prog.keep.push_back(to);
    return to;
  }

  // the output buffer of node i: the input's own buffer when i is its last reader (in place), else a new one
  PlanValue ReuseOrAlloc(int v, size_t i, const memory::desc& d) {
    if (v >= 0 && vals[v].buf != nullptr && lastUse[v] == static_cast<int>(i) && vals[v].mem.get_desc() == d) {
      PlanValue out = vals[v];
      vals[v].buf = nullptr;  // ownership moves to the output
      return out;
    }
    return Alloc(d);
  }

  // the output (layout d) of node i whose sum post-op adds into it: the summand v's own buffer when
  // i reads it last, else a copy of v made by a step. int8: the buffer holds v as `sum` (d's
  // layout, v's own int8 type, which the sum post-op reads it as) and is then written as d.
  PlanValue SumTarget(int v, size_t i, const memory::desc& d, const memory::desc& sum) {
    PlanValue out = ReuseOrAlloc(v, i, sum);
    if (out.mem.get_data_handle() != vals[v].mem.get_data_handle()) AddReorder(v, out.mem);
    if (!(sum == d)) out.mem = memory(d, Engine(), out.buf);
    return out;
  }
  PlanValue SumTarget(int v, size_t i, const memory::desc& d) { return SumTarget(v, i, d, d); }

  // after node i: its reordered copies, and the values it was the last to read, go back to the pool
  void EndNode(const Node& n, size_t i) {
    for (void* t : temps_) pool_.put(t);
    temps_.clear();
    for (int v : {n.in, n.b, n.sum})
      if (v >= 0 && lastUse[v] == static_cast<int>(i) && vals[v].buf != nullptr) {
        pool_.put(vals[v].buf);
        vals[v].buf = nullptr;
      }
  }

 private:
  Pool pool_;
  std::vector<void*> temps_;
};

// An int8 convolution of node i (plan_int8.cc): s8 weights, int32 bias, requantized output,
// ReLU and the residual sum fused; `choice` gets its oneDNN implementation.
PlanValue CompileConvInt8(Builder& b, const Node& n, size_t i, std::string& choice);

// The quantization {scale, zeroPoint, dtype: "uint8" | "int8"} in a JavaScript object.
QParam ParseQParam(const Napi::Value& v);

}  // namespace bn

#endif
