// Neural-network ops: convolution, normalization, pooling, dropout, softmax and losses.
#include "common.h"

namespace bn {


// conv2d(x, w, b?, stride[2], padding[2], dilation[2], groups)
OP(Conv2d) {
  GUARD("conv2d") {
    at::Tensor x = a.tensor(0), w = a.tensor(1), b = a.optTensor(2);
    std::vector<int64_t> stride = a.ints(3), padding = a.ints(4), dilation = a.ints(5);
    const int64_t groups = a.int64(6);
    if (auto y = TrainConv2d(x, w, b, stride, padding, dilation, groups)) return W(*y);
    return W(at::conv2d(x, w, b, stride, padding, dilation, groups));
  }
  END
}
// convTranspose2d(x, w, b?, stride[2], padding[2], outputPadding[2], groups, dilation[2])
OP(ConvTranspose2d) {
  GUARD("convTranspose2d") {
    return W(at::conv_transpose2d(a.tensor(0), a.tensor(1), a.optTensor(2), a.ints(3), a.ints(4), a.ints(5),
                                  a.int64(6), a.ints(7)));
  }
  END
}
// batchNorm(x, weight?, bias?, runningMean?, runningVar?, training, momentum, eps)
OP(BatchNorm) {
  GUARD("batchNorm") {
    return W(at::batch_norm(a.tensor(0), a.optTensor(1), a.optTensor(2), a.optTensor(3), a.optTensor(4),
                            a.boolean(5), a.num(6), a.num(7), true));
  }
  END
}
// layerNorm(x, normalizedShape, weight?, bias?, eps)
OP(LayerNorm) {
  GUARD("layerNorm") {
    return W(at::layer_norm(a.tensor(0), a.ints(1), a.optTensor(2), a.optTensor(3), a.num(4), true));
  }
  END
}
// maxPool2d(x, kernel[2], stride[2], padding[2], dilation[2], ceilMode)
OP(MaxPool2d) {
  GUARD("maxPool2d") {
    return W(at::max_pool2d(a.tensor(0), a.ints(1), a.ints(2), a.ints(3), a.ints(4), a.boolean(5)));
  }
  END
}
// avgPool2d(x, kernel[2], stride[2], padding[2], ceilMode, countIncludePad)
OP(AvgPool2d) {
  GUARD("avgPool2d") {
    return W(at::avg_pool2d(a.tensor(0), a.ints(1), a.ints(2), a.ints(3), a.boolean(4), a.boolean(5),
                            c10::nullopt));
  }
  END
}
OP(AdaptiveAvgPool2d) {
  GUARD("adaptiveAvgPool2d") { return W(at::adaptive_avg_pool2d(a.tensor(0), a.ints(1))); }
  END
}
OP(AdaptiveMaxPool2d) {
  GUARD("adaptiveMaxPool2d") { return W(std::get<0>(at::adaptive_max_pool2d(a.tensor(0), a.ints(1)))); }
  END
}
// dropout(x, p, training); featureDropout zeroes whole channels (Dropout2d).
OP(Dropout) { GUARD("dropout") { return W(at::dropout(a.tensor(0), a.num(1), a.boolean(2))); } END }
OP(FeatureDropout) {
  GUARD("dropout2d") { return W(at::feature_dropout(a.tensor(0), a.num(1), a.boolean(2))); }
  END
}
OP(Softmax) { GUARD("softmax") { return W(at::softmax(a.tensor(0), a.int64(1))); } END }
OP(LogSoftmax) { GUARD("logSoftmax") { return W(at::log_softmax(a.tensor(0), a.int64(1))); } END }

static int64_t Reduction(const Args& a, size_t i) {
  std::string r = a.missing(i) ? "mean" : a.str(i);
  if (r == "none") return at::Reduction::None;
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  throw std::invalid_argument("reduction must be 'mean', 'sum' or 'none'. Received: '" + r + "'");
}

// crossEntropy(logits, target, weight?, reduction, ignoreIndex, labelSmoothing). target holds
// class indices (int64, shape [N]) or class probabilities (float, shape [N, C]).
OP(CrossEntropy) {
  GUARD("crossEntropy") {
    return W(at::cross_entropy_loss(a.tensor(0), a.tensor(1), a.optTensor(2), Reduction(a, 3), a.int64(4),
                                    a.num(5)));
  }
  END
}
OP(NllLoss) {
  GUARD("nllLoss") {
    return W(at::nll_loss(a.tensor(0), a.tensor(1), a.optTensor(2), Reduction(a, 3), a.int64(4)));
  }
  END
}
OP(MseLoss) { GUARD("mseLoss") { return W(at::mse_loss(a.tensor(0), a.tensor(1), Reduction(a, 2))); } END }

// Fake quantization (quantize, clamp to [qmin, qmax], dequantize) with the straight-through
// estimator's gradient (1 inside the clamp range, 0 outside), for int8 simulation and QAT.
// fakeQuantizePerTensor(x, scale, zeroPoint, qmin, qmax)
OP(FakeQuantizePerTensor) {
  GUARD("fakeQuantizePerTensor") {
    return W(at::fake_quantize_per_tensor_affine(a.tensor(0), a.num(1), a.int64(2), a.int64(3), a.int64(4)));
  }
  END
}
// fakeQuantizePerChannel(x, scales[C], axis, qmin, qmax): symmetric (zero points 0), as weights are.
OP(FakeQuantizePerChannel) {
  GUARD("fakeQuantizePerChannel") {
    at::Tensor scale = a.tensor(1).to(at::kFloat).contiguous();
    at::Tensor zeroPoint = at::zeros({scale.numel()}, at::TensorOptions().dtype(at::kInt));
    return W(at::fake_quantize_per_channel_affine(a.tensor(0), scale, zeroPoint, a.int64(2), a.int64(3),
                                                  a.int64(4)));
  }
  END
}

void InitNN(Napi::Env env, Napi::Object exports) {
  struct {
    const char* name;
    NativeFn fn;
  } table[] = {
      {"conv2d", Conv2d}, {"convTranspose2d", ConvTranspose2d}, {"batchNorm", BatchNorm},
      {"layerNorm", LayerNorm}, {"maxPool2d", MaxPool2d}, {"avgPool2d", AvgPool2d},
      {"adaptiveAvgPool2d", AdaptiveAvgPool2d}, {"adaptiveMaxPool2d", AdaptiveMaxPool2d},
      {"dropout", Dropout}, {"featureDropout", FeatureDropout}, {"softmax", Softmax},
      {"logSoftmax", LogSoftmax}, {"crossEntropy", CrossEntropy}, {"nllLoss", NllLoss},
      {"mseLoss", MseLoss}, {"fakeQuantizePerTensor", FakeQuantizePerTensor},
      {"fakeQuantizePerChannel", FakeQuantizePerChannel},
  };
  for (auto& e : table) Export(env, exports, e.name, e.fn);
}

}  // namespace bn
