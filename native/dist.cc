// Data-parallel training on libtorch's own c10d: a ProcessGroup (rendezvous through c10d's
// TCPStore, collectives through ProcessGroupGloo on CPU) and a Reducer that averages gradients
// the way PyTorch's DistributedDataParallel does: parameters grouped into buckets in reverse
// registration order (about the order backward produces their gradients), each bucket all-reduced
// asynchronously as soon as its last gradient arrives (autograd hooks), buckets launched strictly
// in order so every rank issues the same collectives in the same order, and all waited on before
// the optimizer step. Parameters that get no gradient leave their slot at zero; the bucket is
// launched at finalize(). Built when Gloo's headers are present (Debian: libgloo-dev).
#include "common.h"

#if BUDGETNET_GLOO
#define USE_C10D_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/autograd/custom_function.h>
#endif

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>

namespace bn {

#if BUDGETNET_GLOO

class ProcessGroup : public Napi::ObjectWrap<ProcessGroup> {
 public:
  static Napi::FunctionReference constructor;
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(env, "ProcessGroup",
                                   {InstanceMethod("broadcast", &ProcessGroup::Broadcast),
                                    InstanceMethod("allreduce", &ProcessGroup::Allreduce),
                                    InstanceMethod("barrier", &ProcessGroup::Barrier),
                                    InstanceMethod("syncBatchNorm", &ProcessGroup::SyncBatchNorm),
                                    InstanceMethod("destroy", &ProcessGroup::Destroy)});
    constructor = Napi::Persistent(f);
    constructor.SuppressDestruct();
    exports.Set("ProcessGroup", f);
  }

  // new ProcessGroup(rank, worldSize, masterAddr, masterPort, timeoutMs)
  explicit ProcessGroup(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroup>(info) {
    Args a{info, "ProcessGroup"};
    Guard("ProcessGroup", info, [&]() -> Napi::Value {
      rank_ = (int)a.int64(0);
      world_ = (int)a.int64(1);
      std::string addr = a.str(2);
      int64_t port = a.int64(3);
      timeout_ = std::chrono::milliseconds(a.int64(4));
      if (world_ < 1 || rank_ < 0 || rank_ >= world_)
        throw std::invalid_argument("rank must be in [0, worldSize) and worldSize >= 1");
      if (port < 1 || port > 65535) throw std::invalid_argument("masterPort must be in 1..65535");
      c10d::TCPStoreOptions opts;
      opts.port = (uint16_t)port;
      opts.isServer = rank_ == 0;
      opts.numWorkers = world_;
      opts.waitWorkers = false;
      opts.timeout = timeout_;
      store_ = c10::make_intrusive<c10d::TCPStore>(addr, opts);
      auto o = c10d::ProcessGroupGloo::Options::create();
      o->timeout = timeout_;
      o->threads = 1;
      // the interface that routes to the master: loopback for a local job, the host's for others
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(addr));
      pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, rank_, world_, o);
      return info.Env().Undefined();
    });
  }

  void ForgetSyncGroup();

  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg() {
    if (!pg_) throw std::runtime_error("the process group was destroyed");
    return pg_;
  }
  int world() const { return world_; }
  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  int rank_ = 0;
  int world_ = 1;
  std::chrono::milliseconds timeout_{300000};
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg_;

  // Gloo works on contiguous tensors: a channels-last weight goes through a contiguous copy
  static void Collective(const at::Tensor& t, const std::function<void(at::Tensor&)>& run) {
    at::Tensor c = t.detach().contiguous();
    run(c);
    if (!c.is_same(t)) t.detach().copy_(c);
  }

  // broadcast(tensors, root): in place, every rank ends with root's values
  Napi::Value Broadcast(const Napi::CallbackInfo& info) {
    GUARD("broadcast") {
      std::vector<at::Tensor> ts = a.tensors(0);
      c10d::BroadcastOptions bo;
      bo.rootRank = a.int64(1);
      bo.timeout = timeout_;
      for (auto& t : ts)
        Collective(t, [&](at::Tensor& c) {
          std::vector<at::Tensor> one{c};
          pg()->broadcast(one, bo)->wait(timeout_);
        });
      return info.Env().Undefined();
    }
    END
  }

  // allreduce(tensors, op): in place; op "sum" or "avg"
  Napi::Value Allreduce(const Napi::CallbackInfo& info) {
    GUARD("allreduce") {
      std::vector<at::Tensor> ts = a.tensors(0);
      std::string op = a.missing(1) ? "sum" : a.str(1);
      if (op != "sum" && op != "avg") throw std::invalid_argument("op must be 'sum' or 'avg'");
      for (auto& t : ts)
        Collective(t, [&](at::Tensor& c) {
          std::vector<at::Tensor> one{c};
          pg()->allreduce(one)->wait(timeout_);
          if (op == "avg") c.div_(world_);
        });
      return info.Env().Undefined();
    }
    END
  }

  // syncBatchNorm(x, weight?, bias?, runningMean?, runningVar?, momentum, eps): training-mode
  // batch norm over the whole job's batch (SyncBatchNormFn below); updates the running stats
  Napi::Value SyncBatchNorm(const Napi::CallbackInfo& info);

  Napi::Value Barrier(const Napi::CallbackInfo& info) {
    GUARD("barrier") {
      c10d::BarrierOptions bo;
      bo.timeout = timeout_;
      pg()->barrier(bo)->wait(timeout_);
      return info.Env().Undefined();
    }
    END
  }

  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    ForgetSyncGroup();
    pg_.reset();
    store_.reset();
    return info.Env().Undefined();
  }
};

Napi::FunctionReference ProcessGroup::constructor;

// SyncBatchNorm as PyTorch computes it, on CPU too: forward all-reduces each channel's sum,
// sum of squares and count (one collective, in float64) and normalizes with the job's mean and
// variance; backward all-reduces each channel's sum of dy and of dy * (x - mean) and gives the
// input gradient of the whole job's loss. The weight and bias gradients stay local (DDP's reducer
// averages them like any other parameter). The collectives go through the same process group as
// the reducer's buckets, in the same order on every rank (backward runs the same graph on each).
struct SyncBatchNormFn : public torch::autograd::Function<SyncBatchNormFn> {
  struct Group {
    c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
    std::chrono::milliseconds timeout;
  };

  static at::Tensor AllreduceSum(const Group& g, at::Tensor t) {
    std::vector<at::Tensor> one{t};
    g.pg->allreduce(one)->wait(g.timeout);
    return t;
  }

  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, at::Tensor x,
                                                at::Tensor weight, at::Tensor bias, int64_t group, double eps) {
    const Group& g = Groups().at(group);
    const int64_t c = x.size(1);
    const std::vector<int64_t> dims{0, 2, 3};
    // sums accumulated in float64 without a float64 copy of the activation
    at::Tensor xf = x.to(at::kFloat);
    at::Tensor packed = at::cat({at::sum(xf, dims, false, at::kDouble), at::sum(xf * xf, dims, false, at::kDouble),
                                 at::full({1}, (double)(x.numel() / c), xf.options().dtype(at::kDouble))})
                            .contiguous();
    AllreduceSum(g, packed);
    at::Tensor count = packed.narrow(0, 2 * c, 1);
    at::Tensor mean = packed.narrow(0, 0, c) / count;
    at::Tensor var = (packed.narrow(0, c, c) / count - mean * mean).clamp_min(0);
    at::Tensor invstd = (var + eps).rsqrt();
    const double n = count.item<double>();
    at::Tensor meanF = mean.to(at::kFloat), invstdF = invstd.to(at::kFloat);
    at::Tensor scale = weight.defined() ? invstdF * weight : invstdF;
    at::Tensor y = (xf - meanF.view({1, c, 1, 1})) * scale.view({1, c, 1, 1});
    if (bias.defined()) y = y + bias.view({1, c, 1, 1});
    ctx->save_for_backward({x, weight, meanF, invstdF});
    ctx->saved_data["group"] = group;
    ctx->saved_data["count"] = n;
    ctx->saved_data["bias"] = bias.defined();
    at::Tensor unbiased = (n > 1 ? var * (n / (n - 1)) : var).to(at::kFloat);
    ctx->mark_non_differentiable({meanF, unbiased});
    return {y.to(x.scalar_type()), meanF, unbiased};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    at::Tensor x = saved[0].to(at::kFloat), weight = saved[1], mean = saved[2], invstd = saved[3];
    const Group& g = Groups().at(ctx->saved_data["group"].toInt());
    const double n = ctx->saved_data["count"].toDouble();
    const int64_t c = x.size(1);
    const std::vector<int64_t> dims{0, 2, 3};
    at::Tensor dy = grads[0].to(at::kFloat);
    at::Tensor xmu = x - mean.view({1, c, 1, 1});
    at::Tensor sumDy = dy.sum(dims), sumDyXmu = (dy * xmu).sum(dims);
    at::Tensor packed = at::cat({sumDy, sumDyXmu}).to(at::kDouble).contiguous();
    AllreduceSum(g, packed);
    at::Tensor meanDy = (packed.narrow(0, 0, c) / n).to(at::kFloat);
    at::Tensor meanDyXmu = (packed.narrow(0, c, c) / n).to(at::kFloat);
    at::Tensor scale = weight.defined() ? invstd * weight : invstd;
    at::Tensor dx = (dy - meanDy.view({1, c, 1, 1}) -
                     xmu * (invstd * invstd * meanDyXmu).view({1, c, 1, 1})) *
                    scale.view({1, c, 1, 1});
    at::Tensor dw = weight.defined() ? sumDyXmu * invstd : at::Tensor();
    at::Tensor db = ctx->saved_data["bias"].toBool() ? sumDy : at::Tensor();
    return {dx.to(saved[0].scalar_type()), dw, db, at::Tensor(), at::Tensor()};
  }

  static std::unordered_map<int64_t, Group>& Groups() {
    static std::unordered_map<int64_t, Group> groups;
    return groups;
  }
};

void ProcessGroup::ForgetSyncGroup() { SyncBatchNormFn::Groups().erase((int64_t)reinterpret_cast<intptr_t>(this)); }

Napi::Value ProcessGroup::SyncBatchNorm(const Napi::CallbackInfo& info) {
  GUARD("syncBatchNorm") {
    at::Tensor x = a.tensor(0);
    at::Tensor weight = a.optTensor(1), bias = a.optTensor(2);
    at::Tensor runningMean = a.optTensor(3), runningVar = a.optTensor(4);
    double momentum = a.num(5), eps = a.num(6);
    if (x.dim() != 4) throw std::invalid_argument("input must be 4-d [N, C, H, W]");
    const int64_t c = x.size(1);
    for (const at::Tensor* t : {&weight, &bias, &runningMean, &runningVar})
      if (t->defined() && (t->dim() != 1 || t->size(0) != c))
        throw std::invalid_argument("weight, bias and running statistics must be 1-d of the input's channel count");
    // one entry per group, kept while the group lives (the autograd graph holds only its key)
    int64_t key = (int64_t)reinterpret_cast<intptr_t>(this);
    SyncBatchNormFn::Groups()[key] = {pg(), timeout_};
    auto out = SyncBatchNormFn::apply(x, weight, bias, key, eps);
    UpdateRunningStats(runningMean, runningVar, out[1], out[2], momentum);
    return W(out[0]);
  }
  END
}

struct Bucket {
  std::vector<size_t> params;  // indices into Reducer::params_
  std::vector<int64_t> offsets;
  at::Tensor flat;
  size_t pending = 0;
  bool launched = false;
  c10::intrusive_ptr<c10d::Work> work;
};

class Reducer : public Napi::ObjectWrap<Reducer> {
 public:
  static Napi::FunctionReference constructor;
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(env, "Reducer",
                                   {InstanceMethod("finalize", &Reducer::Finalize),
                                    InstanceMethod("buckets", &Reducer::Buckets),
                                    InstanceMethod("stats", &Reducer::Stats),
                                    InstanceMethod("dispose", &Reducer::Dispose)});
    constructor = Napi::Persistent(f);
    constructor.SuppressDestruct();
    exports.Set("Reducer", f);
  }

  // new Reducer(processGroup, params, bucketCapBytes)
  explicit Reducer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Reducer>(info) {
    Args a{info, "Reducer"};
    Guard("Reducer", info, [&]() -> Napi::Value {
      if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(ProcessGroup::constructor.Value()))
        throw std::invalid_argument("Reducer(processGroup, params, bucketCapBytes): the first argument must be a ProcessGroup");
      group_ = Napi::ObjectWrap<ProcessGroup>::Unwrap(info[0].As<Napi::Object>());
      groupRef_ = Napi::Persistent(info[0].As<Napi::Object>());
      params_ = a.tensors(1);
      int64_t cap = a.int64(2);
      if (cap < 1) throw std::invalid_argument("bucketCapBytes must be >= 1");
      state_ = std::make_shared<State>();
      state_->world = group_->world();
      state_->pg = group_->pg();
      state_->timeout = group_->timeout();
      state_->used.assign(params_.size(), false);
      state_->bucketOf.assign(params_.size(), 0);
      // reverse registration order: the last layers' gradients come first in backward
      Bucket cur;
      int64_t bytes = 0, numel = 0;
      auto close = [&]() {
        if (cur.params.empty()) return;
        cur.flat = at::zeros({numel}, at::kFloat);
        state_->buckets.push_back(std::move(cur));
        cur = Bucket();
        bytes = numel = 0;
      };
      for (size_t k = params_.size(); k-- > 0;) {
        const at::Tensor& p = params_[k];
        if (!p.requires_grad() || !p.is_leaf()) throw std::invalid_argument("every parameter must be a leaf that requires grad");
        if (p.scalar_type() != at::kFloat) throw std::invalid_argument("parameters must be float32 (master weights)");
        if (!cur.params.empty() && bytes + p.numel() * 4 > cap) close();
        state_->bucketOf[k] = state_->buckets.size();
        cur.params.push_back(k);
        cur.offsets.push_back(numel);
        numel += p.numel();
        bytes += p.numel() * 4;
      }
      close();
      for (auto& b : state_->buckets) b.pending = b.params.size();
      std::weak_ptr<State> weak = state_;
      for (size_t k = 0; k < params_.size(); ++k) {
        hooks_.push_back(params_[k].register_hook([weak, k](const at::Tensor& grad) {
          if (auto s = weak.lock()) s->OnGrad(k, grad);
        }));
      }
      return info.Env().Undefined();
    });
  }

 private:
  struct State {
    int world = 1;
    c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
    std::chrono::milliseconds timeout{300000};
    std::vector<Bucket> buckets;
    std::vector<size_t> bucketOf;
    std::vector<bool> used;
    size_t nextLaunch = 0;
    std::string error;
    int64_t bytesReduced = 0;
    int64_t launchedDuringBackward = 0;
    bool inFinalize = false;

    void OnGrad(size_t k, const at::Tensor& grad) {
      Bucket& b = buckets[bucketOf[k]];
      size_t slot = 0;
      while (b.params[slot] != k) ++slot;
      at::Tensor view = b.flat.narrow(0, b.offsets[slot], grad.numel());
      if (b.launched) {
        // a parameter used twice whose bucket already left: the sum would miss this part
        error = "a parameter received a second gradient after its bucket was all-reduced (a parameter used twice in one forward)";
        return;
      }
      if (used[k]) {
        view.add_(grad.detach().reshape({-1}).to(at::kFloat));
        return;
      }
      view.copy_(grad.detach().reshape({-1}));
      used[k] = true;
      if (--b.pending == 0) LaunchReady(false);
    }

    void Launch(Bucket& b, bool fromFinalize) {
      std::vector<at::Tensor> one{b.flat};
      b.work = pg->allreduce(one);
      b.launched = true;
      bytesReduced += b.flat.numel() * 4;
      if (!fromFinalize) launchedDuringBackward++;
    }

    // buckets leave in order, each once it is complete (every rank issues the same sequence)
    void LaunchReady(bool fromFinalize) {
      while (nextLaunch < buckets.size() && (buckets[nextLaunch].pending == 0 || fromFinalize)) {
        Launch(buckets[nextLaunch], fromFinalize);
        nextLaunch++;
      }
    }
  };

  ProcessGroup* group_ = nullptr;
  Napi::ObjectReference groupRef_;
  std::vector<at::Tensor> params_;
  std::shared_ptr<State> state_;
  std::vector<unsigned> hooks_;

  // finalize(): launches what is left, waits for every bucket, writes the averaged gradients
  // into the parameters' .grad and resets for the next step. Returns the number of buckets.
  Napi::Value Finalize(const Napi::CallbackInfo& info) {
    GUARD("ddp.finalize") {
      if (!state_) throw std::runtime_error("the reducer was disposed");
      State& s = *state_;
      std::string err = s.error;
      s.LaunchReady(true);
      for (auto& b : s.buckets) {
        if (b.work) b.work->wait(s.timeout);
      }
      for (auto& b : s.buckets) {
        b.flat.div_(s.world);
        for (size_t j = 0; j < b.params.size(); ++j) {
          at::Tensor& p = params_[b.params[j]];
          at::Tensor avg = b.flat.narrow(0, b.offsets[j], p.numel()).view(p.sizes());
          if (p.grad().defined())
            p.mutable_grad().copy_(avg);
          else if (s.used[b.params[j]] || avg.abs().max().item<float>() != 0.0f)
            p.mutable_grad() = avg.clone();
        }
        b.flat.zero_();
        b.pending = b.params.size();
        b.launched = false;
        b.work.reset();
      }
      std::fill(s.used.begin(), s.used.end(), false);
      s.nextLaunch = 0;
      s.error.clear();
      if (!err.empty()) throw std::runtime_error(err);
      return Napi::Number::New(info.Env(), (double)s.buckets.size());
    }
    END
  }

  // buckets(): parameter indices per bucket, in launch order
  Napi::Value Buckets(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    if (!state_) return out;
    for (size_t i = 0; i < state_->buckets.size(); ++i) {
      Napi::Array ps = Napi::Array::New(env);
      for (size_t j = 0; j < state_->buckets[i].params.size(); ++j)
        ps.Set((uint32_t)j, Napi::Number::New(env, (double)state_->buckets[i].params[j]));
      out.Set((uint32_t)i, ps);
    }
    return out;
  }

  // stats(): bytes all-reduced and buckets launched while backward still ran, since creation
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("bytesReduced", Napi::Number::New(env, state_ ? (double)state_->bytesReduced : 0));
    o.Set("launchedDuringBackward", Napi::Number::New(env, state_ ? (double)state_->launchedDuringBackward : 0));
    return o;
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    for (size_t k = 0; k < hooks_.size() && k < params_.size(); ++k) {
      try {
        params_[k].remove_hook(hooks_[k]);
      } catch (...) {
      }
    }
    hooks_.clear();
    state_.reset();
    params_.clear();
    groupRef_.Reset();
    return info.Env().Undefined();
  }
};

Napi::FunctionReference Reducer::constructor;

void InitDist(Napi::Env env, Napi::Object exports) {
  ProcessGroup::Init(env, exports);
  Reducer::Init(env, exports);
}

bool HaveDist() { return true; }

#else

void InitDist(Napi::Env, Napi::Object) {}
bool HaveDist() { return false; }

#endif

}  // namespace bn
