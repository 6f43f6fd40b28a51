// Training-mode BatchNorm fused with the ReLU after it (and with a residual addition between the
// two, as a post-activation ResNet block ends): y = relu(bn(x) [+ residual]), for float32
// channels-last [N, H, W, C] activations on the CPU, forward and backward.
//
// Why: on the small CIFAR/Fashion-MNIST nets (16-64 channels) the elementwise passes around the
// convolutions are a third of a training step, and each is bound by memory traffic. libtorch runs
// batch statistics (two passes), normalization, the addition and the ReLU as separate passes, and
// in backward the ReLU's mask, then BN's reduction and BN's input gradient. Here the statistics
// are one pass (sums shifted by each channel's first value, so no cancellation), normalization,
// addition and ReLU one more; backward recomputes the ReLU's mask from x (or reads it from y when a
// residual was added) inside BN's two passes.
//
// Reductions go over fixed blocks of rows, combined in float64 in block order: results do not
// depend on the number of threads. The running statistics follow PyTorch (unbiased variance,
// exponential average with `momentum`).
// the row loops must vectorize (the addon builds at -O2)
#pragma GCC optimize("O3")
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"

namespace bn {

namespace {

constexpr int64_t kRowsPerBlock = 256;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BN_CLONES
#endif

// Per-channel sums of (x - shift) and (x - shift)^2 over rows [r0, r1), in float.
BN_CLONES void ShiftedSums(const float* __restrict x, int64_t r0, int64_t r1, int64_t c,
                           const float* __restrict shift, float* __restrict s, float* __restrict q) {
  for (int64_t j = 0; j < c; j++) s[j] = q[j] = 0.f;
  for (int64_t r = r0; r < r1; r++) {
    const float* __restrict row = x + r * c;
    for (int64_t j = 0; j < c; j++) {
      float v = row[j] - shift[j];
      s[j] += v;
      q[j] += v * v;
    }
  }
}

// y = max(0, x * scale + offset [+ res]) over rows [r0, r1).
BN_CLONES void NormalizeAct(const float* __restrict x, const float* __restrict res, float* __restrict y, int64_t r0,
                            int64_t r1, int64_t c, const float* __restrict scale, const float* __restrict offset) {
  for (int64_t r = r0; r < r1; r++) {
    const float* __restrict xr = x + r * c;
    float* __restrict yr = y + r * c;
    if (res != nullptr) {
      const float* __restrict rr = res + r * c;
      for (int64_t j = 0; j < c; j++) yr[j] = std::max(xr[j] * scale[j] + offset[j] + rr[j], 0.f);
    } else {
      for (int64_t j = 0; j < c; j++) yr[j] = std::max(xr[j] * scale[j] + offset[j], 0.f);
    }
  }
}

// Backward's reduction over rows [r0, r1): g = gy where the ReLU passed (y > 0, or x * scale +
// offset > 0 when y is null), sums of g and of g * (x - mean); with gres set, g is written there
// (the residual's gradient).
BN_CLONES void GradSums(const float* __restrict gy, const float* __restrict x, const float* __restrict y,
                        float* __restrict gres, int64_t r0, int64_t r1, int64_t c, const float* __restrict scale,
                        const float* __restrict offset, const float* __restrict mean, float* __restrict sg,
                        float* __restrict sgx) {
  for (int64_t j = 0; j < c; j++) sg[j] = sgx[j] = 0.f;
  for (int64_t r = r0; r < r1; r++) {
    const float* __restrict gr = gy + r * c;
    const float* __restrict xr = x + r * c;
    if (y != nullptr) {
      const float* __restrict yr = y + r * c;
      float* __restrict rr = gres + r * c;
      for (int64_t j = 0; j < c; j++) {
        float g = yr[j] > 0.f ? gr[j] : 0.f;
        rr[j] = g;
        sg[j] += g;
        sgx[j] += g * (xr[j] - mean[j]);
      }
    } else {
      for (int64_t j = 0; j < c; j++) {
        float g = xr[j] * scale[j] + offset[j] > 0.f ? gr[j] : 0.f;
        sg[j] += g;
        sgx[j] += g * (xr[j] - mean[j]);
      }
    }
  }
}

// dx = g * a + x * b + d over rows [r0, r1), g read from gres (residual case) or recomputed.
BN_CLONES void GradInput(const float* __restrict gy, const float* __restrict x, const float* __restrict gres,
                         float* __restrict dx, int64_t r0, int64_t r1, int64_t c, const float* __restrict scale,
                         const float* __restrict offset, const float* __restrict a, const float* __restrict b,
                         const float* __restrict d) {
  for (int64_t r = r0; r < r1; r++) {
    const float* __restrict xr = x + r * c;
    float* __restrict dr = dx + r * c;
    if (gres != nullptr) {
      const float* __restrict gr = gres + r * c;
      for (int64_t j = 0; j < c; j++) dr[j] = gr[j] * a[j] + xr[j] * b[j] + d[j];
    } else {
      const float* __restrict gr = gy + r * c;
      for (int64_t j = 0; j < c; j++) {
        float g = xr[j] * scale[j] + offset[j] > 0.f ? gr[j] : 0.f;
        dr[j] = g * a[j] + xr[j] * b[j] + d[j];
      }
    }
  }
}

int64_t Blocks(int64_t rows) { return (rows + kRowsPerBlock - 1) / kRowsPerBlock; }

// Runs fn(r0, r1, partialA, partialB) over every block of rows in parallel, each block writing its
// own c floats of two partial sums; returns both sums per channel in float64, added in block order.
template <typename F>
std::pair<std::vector<double>, std::vector<double>> BlockSums(int64_t rows, int64_t c, F fn) {
  const int64_t nb = Blocks(rows);
  std::vector<float> pa(nb * c), pb(nb * c);
  at::parallel_for(0, nb, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++)
      fn(b * kRowsPerBlock, std::min(rows, (b + 1) * kRowsPerBlock), pa.data() + b * c, pb.data() + b * c);
  });
  std::vector<double> sa(c, 0.0), sb(c, 0.0);
  for (int64_t b = 0; b < nb; b++)
    for (int64_t j = 0; j < c; j++) {
      sa[j] += pa[b * c + j];
      sb[j] += pb[b * c + j];
    }
  return {sa, sb};
}

template <typename F>
void ForRows(int64_t rows, F fn) {
  at::parallel_for(0, Blocks(rows), 1, [&](int64_t b0, int64_t b1) {
    fn(b0 * kRowsPerBlock, std::min(rows, b1 * kRowsPerBlock));
  });
}

at::Tensor F32(const std::vector<float>& v) {
  return torch::from_blob(const_cast<float*>(v.data()), {(int64_t)v.size()}, at::kFloat).clone();
}

struct BatchNormReluFn : public torch::autograd::Function<BatchNormReluFn> {
  // -> {y, batch mean, unbiased batch variance}; the last two are not differentiable.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, at::Tensor x,
                                                at::Tensor weight, at::Tensor bias, at::Tensor residual,
                                                double eps) {
    const int64_t c = x.size(1), rows = x.numel() / c;
    const float* xp = x.data_ptr<float>();
    std::vector<float> shift(xp, xp + c);
    auto [s, q] = BlockSums(rows, c, [&](int64_t r0, int64_t r1, float* ps, float* pq) {
      ShiftedSums(xp, r0, r1, c, shift.data(), ps, pq);
    });
    const float* w = weight.data_ptr<float>();
    const float* bb = bias.data_ptr<float>();
    std::vector<float> mean(c), invstd(c), scale(c), offset(c), unbiased(c);
    for (int64_t j = 0; j < c; j++) {
      const double m = s[j] / rows;
      const double var = std::max(q[j] / rows - m * m, 0.0);
      const double mu = shift[j] + m;
      const double is = 1.0 / std::sqrt(var + eps);
      mean[j] = (float)mu;
      invstd[j] = (float)is;
      unbiased[j] = (float)(rows > 1 ? var * rows / (rows - 1) : var);
      scale[j] = (float)(is * w[j]);
      offset[j] = (float)(bb[j] - mu * is * w[j]);
    }
    at::Tensor y = at::empty_like(x, at::MemoryFormat::ChannelsLast);
    // an empty residual stands for none (autograd's apply() takes no undefined tensors)
    const bool hasResidual = residual.numel() > 0;
    const float* rp = hasResidual ? residual.data_ptr<float>() : nullptr;
    float* yp = y.data_ptr<float>();
    ForRows(rows, [&](int64_t r0, int64_t r1) { NormalizeAct(xp, rp, yp, r0, r1, c, scale.data(), offset.data()); });
    at::Tensor meanT = F32(mean), invstdT = F32(invstd), varT = F32(unbiased);
    if (hasResidual)
      ctx->save_for_backward({x, weight, bias, meanT, invstdT, y});
    else
      ctx->save_for_backward({x, weight, bias, meanT, invstdT});
    ctx->saved_data["residual"] = hasResidual;
    ctx->mark_non_differentiable({meanT, varT});
    return {y, meanT, varT};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    at::Tensor x = saved[0], weight = saved[1], bias = saved[2], meanT = saved[3], invstdT = saved[4];
    const bool hasResidual = ctx->saved_data["residual"].toBool();
    at::Tensor y = hasResidual ? saved[5] : at::Tensor();
    at::Tensor gy = grads[0].to(at::kFloat).contiguous(at::MemoryFormat::ChannelsLast);
    const int64_t c = x.size(1), rows = x.numel() / c;
    const float *xp = x.data_ptr<float>(), *gp = gy.data_ptr<float>();
    const float *w = weight.data_ptr<float>(), *bb = bias.data_ptr<float>();
    const float *mean = meanT.data_ptr<float>(), *invstd = invstdT.data_ptr<float>();
    std::vector<float> scale(c), offset(c);
    for (int64_t j = 0; j < c; j++) {
      scale[j] = (float)((double)invstd[j] * w[j]);
      offset[j] = (float)(bb[j] - (double)mean[j] * invstd[j] * w[j]);
    }
    at::Tensor gres = hasResidual ? at::empty_like(x, at::MemoryFormat::ChannelsLast) : at::Tensor();
    float* grp = hasResidual ? gres.data_ptr<float>() : nullptr;
    const float* yp = hasResidual ? y.data_ptr<float>() : nullptr;
    auto [sg, sgx] = BlockSums(rows, c, [&](int64_t r0, int64_t r1, float* a, float* b) {
      GradSums(gp, xp, yp, grp, r0, r1, c, scale.data(), offset.data(), mean, a, b);
    });
    // dx = (g - mean(g) - (x - mean) * invstd^2 * mean(g * (x - mean))) * invstd * w
    std::vector<float> a(c), b(c), d(c), dw(c), db(c);
    for (int64_t j = 0; j < c; j++) {
      const double is = invstd[j], k = is * w[j];
      const double bj = -k * is * is * sgx[j] / rows;
      a[j] = (float)k;
      b[j] = (float)bj;
      d[j] = (float)(-k * sg[j] / rows - bj * mean[j]);
      dw[j] = (float)(sgx[j] * is);
      db[j] = (float)sg[j];
    }
    at::Tensor dx = at::empty_like(x, at::MemoryFormat::ChannelsLast);
    float* dxp = dx.data_ptr<float>();
    ForRows(rows, [&](int64_t r0, int64_t r1) {
      GradInput(gp, xp, grp, dxp, r0, r1, c, scale.data(), offset.data(), a.data(), b.data(), d.data());
    });
    return {dx, F32(dw), F32(db), gres, at::Tensor()};
  }
};

// The fused kernel's preconditions; anything else takes the unfused ops.
bool Fusable(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& r) {
  if (AutocastCpuOn()) return false;
  if (x.dim() != 4 || !x.device().is_cpu() || x.scalar_type() != at::kFloat) return false;
  if (!x.is_contiguous(at::MemoryFormat::ChannelsLast) || x.numel() == 0) return false;
  const int64_t c = x.size(1);
  if (x.numel() / c < 2) return false;  // libtorch's own error ("more than 1 value per channel")
  for (const at::Tensor* p : {&w, &b})
    if (!p->defined() || p->dim() != 1 || p->size(0) != c || p->scalar_type() != at::kFloat || !p->is_contiguous() ||
        !p->device().is_cpu())
      return false;
  if (r.defined() && (r.sizes() != x.sizes() || r.scalar_type() != at::kFloat || !r.device().is_cpu() ||
                      !r.is_contiguous(at::MemoryFormat::ChannelsLast)))
    return false;
  return true;
}

}  // namespace

// batchNormReluTrain(x, weight, bias, runningMean?, runningVar?, momentum, eps, residual?):
// relu(batchNorm(x) [+ residual]) with batch statistics, or null where the fused kernel does not
// apply (not float32 channels-last on the CPU, autocast on, no affine weight and bias, a residual
// of another shape or layout): the caller then runs the unfused ops.
OP(BatchNormReluTrain) {
  GUARD("batchNormReluTrain") {
    at::Tensor x = a.tensor(0), weight = a.optTensor(1), bias = a.optTensor(2);
    at::Tensor runningMean = a.optTensor(3), runningVar = a.optTensor(4), residual = a.optTensor(7);
    const double momentum = a.num(5), eps = a.num(6);
    if (!Fusable(x, weight, bias, residual)) return info.Env().Null();
    auto out = BatchNormReluFn::apply(x, weight, bias, residual.defined() ? residual : at::empty({0}, x.options()), eps);
    UpdateRunningStats(runningMean, runningVar, out[1], out[2], momentum);
    return W(out[0]);
  }
  END
}

void UpdateRunningStats(at::Tensor& runningMean, at::Tensor& runningVar, const at::Tensor& mean,
                        const at::Tensor& var, double momentum) {
  if (!runningMean.defined() || !runningVar.defined()) return;
  at::NoGradGuard ng;
  runningMean.mul_(1 - momentum).add_(mean, momentum);
  runningVar.mul_(1 - momentum).add_(var, momentum);
}

void InitFusedBn(Napi::Env env, Napi::Object exports) { Export(env, exports, "batchNormReluTrain", BatchNormReluTrain); }

}  // namespace bn
