// How each native op is written in ONNX opset 17. A mapper gets the op's arguments as the addon
// received them and the handle(s) it returned, emits nodes, and binds the output handle to the
// last node's output. Shape and layout ops live in ops_shape.ts.
import { ones, zeros } from "../../ops/creation";
import type { NativeHandle } from "../../tensor/tensor";
import { attr, type GraphBuilder, isHandle, ONNX_DTYPE, OnnxExportError } from "./graph";
import { alias, h, type Mapper, n, ns, SHAPE_MAPPERS } from "./ops_shape";

const unary =
  (op: string, attributes = [] as ReturnType<typeof attr.int>[]): Mapper =>
  (g, a, out) =>
    g.emit(out, op, [g.input(a[0])], attributes);

const binary =
  (op: string): Mapper =>
  (g, a, out) => {
    const like = isHandle(a[0]) ? a[0] : h(a, 1);
    g.emit(out, op, [g.input(a[0], like), g.input(a[1], like)]);
  };

function noTraining(g: GraphBuilder, op: string, training: boolean, what: string): void {
  if (training)
    throw new OnnxExportError(
      `${op} ran in training mode (${what}) in module "${g.where()}". Export runs the model in eval mode; a module that ignores eval() cannot be exported.`,
    );
}

function pads2d(p: number[]): number[] {
  return [p[0] as number, p[1] as number, p[0] as number, p[1] as number];
}

function adaptivePool(op: "Average" | "Max"): Mapper {
  return (g, a, out) => {
    const [, , H, W] = g.shape(h(a, 0)) as number[];
    const [oh, ow] = ns(a, 1) as [number, number];
    if (oh === 1 && ow === 1) return g.emit(out, `Global${op}Pool`, [g.input(a[0])]);
    if ((H as number) % oh !== 0 || (W as number) % ow !== 0)
      throw new OnnxExportError(
        `adaptive${op === "Average" ? "Avg" : "Max"}Pool2d from ${H}x${W} to ${oh}x${ow} has no fixed-window ONNX form (the input size must be a multiple of the output size) in module "${g.where()}".`,
      );
    const k = [(H as number) / oh, (W as number) / ow];
    g.emit(out, `${op}Pool`, [g.input(a[0])], [attr.ints("kernel_shape", k), attr.ints("strides", k)]);
  };
}

function reduceWithAxesAttribute(op: string): Mapper {
  return (g, a, out) => {
    const dims = a[1] as number[] | undefined;
    const attrs = [attr.int("keepdims", a[2] ? 1 : 0)];
    if (dims !== undefined && dims.length > 0) attrs.push(attr.ints("axes", dims));
    g.emit(out, op, [g.input(a[0])], attrs);
  };
}

// Activations without an opset-17 op (SiLU, Mish, GELU) are composed from ones that exist.
export const MAPPERS: Record<string, Mapper> = {
  // ---- layout: no computation in ONNX
  contiguous: alias,
  clone: alias,
  detach: alias,
  to: (g, a, out) => {
    const from = g.dtype(h(a, 0));
    const target = a[1] as string | undefined;
    if (target === undefined || target === from) return alias(g, a, out);
    const code = ONNX_DTYPE[target as keyof typeof ONNX_DTYPE];
    if (code === undefined) throw new OnnxExportError(`to(${target}) has no ONNX type (in "${g.where()}")`);
    g.emit(out, "Cast", [g.input(a[0])], [attr.int("to", code)]);
  },
  dropout: (g, a, out) => {
    noTraining(g, "dropout", Boolean(a[2]) && n(a, 1) > 0, "random masks");
    alias(g, a, out);
  },
  featureDropout: (g, a, out) => {
    noTraining(g, "dropout2d", Boolean(a[2]) && n(a, 1) > 0, "random masks");
    alias(g, a, out);
  },
  // ---- activations and elementwise
  relu: unary("Relu"),
  // In place: the handle now stands for the Relu's output.
  relu_: (g, a) => g.bind(h(a, 0), g.node("Relu", [g.input(a[0])])[0] as string),
  sigmoid: unary("Sigmoid"),
  tanh: unary("Tanh"),
  hardswish: unary("HardSwish"),
  // PyTorch: relu6(x + 3) / 6, i.e. alpha 1/6 and beta 1/2 (ONNX's defaults are 0.2 and 0.5)
  hardsigmoid: unary("HardSigmoid", [attr.float("alpha", 1 / 6), attr.float("beta", 0.5)]),
  softplus: unary("Softplus"),
  neg: unary("Neg"),
  abs: unary("Abs"),
  exp: unary("Exp"),
  log: unary("Log"),
  sqrt: unary("Sqrt"),
  reciprocal: unary("Reciprocal"),
  sign: unary("Sign"),
  floor: unary("Floor"),
  ceil: unary("Ceil"),
  round: unary("Round"),
  sin: unary("Sin"),
  cos: unary("Cos"),
  isnan: unary("IsNaN"),
  logicalNot: unary("Not"),
  relu6: (g, a, out) => {
    const dtype = g.dtype(h(a, 0));
    g.emit(out, "Clip", [g.input(a[0]), g.scalar(0, dtype), g.scalar(6, dtype)]);
  },
  clamp: (g, a, out) => {
    const dtype = g.dtype(h(a, 0));
    const bound = (v: unknown) => (typeof v === "number" ? g.scalar(v, dtype) : "");
    g.emit(out, "Clip", [g.input(a[0]), bound(a[1]), bound(a[2])]);
  },
  silu: (g, a, out) => {
    const x = g.input(a[0]);
    g.emit(out, "Mul", [x, g.node("Sigmoid", [x])[0] as string]);
  },
  // opset 17 has no Mish: x * tanh(softplus(x))
  mish: (g, a, out) => {
    const x = g.input(a[0]);
    const t = g.node("Tanh", g.node("Softplus", [x]))[0] as string;
    g.emit(out, "Mul", [x, t]);
  },
  // opset 17 has no Gelu: x/2 * (1 + erf(x/sqrt 2)), or the tanh approximation
  gelu: (g, a, out) => {
    const x = g.input(a[0]);
    const dtype = g.dtype(h(a, 0));
    const c = (v: number) => g.scalar(v, dtype);
    let inner: string;
    if (a[1] === "tanh") {
      const cube = g.node("Mul", [g.node("Mul", [x, x])[0] as string, x])[0] as string;
      const poly = g.node("Add", [x, g.node("Mul", [cube, c(0.044715)])[0] as string])[0] as string;
      inner = g.node("Tanh", g.node("Mul", [poly, c(Math.sqrt(2 / Math.PI))]))[0] as string;
    } else inner = g.node("Erf", g.node("Div", [x, c(Math.SQRT2)]))[0] as string;
    const half = g.node("Mul", [x, c(0.5)])[0] as string;
    g.emit(out, "Mul", [half, g.node("Add", [inner, c(1)])[0] as string]);
  },
  leakyRelu: (g, a, out) => g.emit(out, "LeakyRelu", [g.input(a[0])], [attr.float("alpha", n(a, 1))]),
  elu: (g, a, out) => g.emit(out, "Elu", [g.input(a[0])], [attr.float("alpha", n(a, 1))]),
  rsqrt: (g, a, out) => g.emit(out, "Reciprocal", g.node("Sqrt", [g.input(a[0])])),
  square: (g, a, out) => {
    const x = g.input(a[0]);
    g.emit(out, "Mul", [x, x]);
  },
  add: binary("Add"),
  sub: binary("Sub"),
  mul: binary("Mul"),
  div: binary("Div"),
  pow: binary("Pow"),
  maximum: binary("Max"),
  minimum: binary("Min"),
  eq: binary("Equal"),
  lt: binary("Less"),
  le: binary("LessOrEqual"),
  gt: binary("Greater"),
  ge: binary("GreaterOrEqual"),
  logicalAnd: binary("And"),
  logicalOr: binary("Or"),
  ne: (g, a, out) => {
    const like = isHandle(a[0]) ? a[0] : h(a, 1);
    g.emit(out, "Not", g.node("Equal", [g.input(a[0], like), g.input(a[1], like)]));
  },
  addAlpha: (g, a, out) => {
    const x = g.input(a[0]);
    const y = g.input(a[1], h(a, 0));
    const alpha = n(a, 2);
    const scaled = alpha === 1 ? y : (g.node("Mul", [y, g.scalar(alpha, g.dtype(h(a, 0)))])[0] as string);
    g.emit(out, "Add", [x, scaled]);
  },
  where: (g, a, out) => {
    const like = isHandle(a[1]) ? a[1] : h(a, 2);
    g.emit(out, "Where", [g.input(a[0]), g.input(a[1], like), g.input(a[2], like)]);
  },
  matmul: binary("MatMul"),
  linear: (g, a, out) => {
    const x = g.input(a[0]);
    const w = g.input(a[1]);
    const b = a[2] === undefined ? undefined : g.input(a[2]);
    if (g.shape(h(a, 0)).length === 2)
      return g.emit(out, "Gemm", b === undefined ? [x, w] : [x, w, b], [attr.int("transB", 1)]);
    const y = g.node("MatMul", [x, g.node("Transpose", [w])[0] as string])[0] as string;
    if (b === undefined) g.bind(out as NativeHandle, y);
    else g.emit(out, "Add", [y, b]);
  },
  // ---- reductions
  sum: (g, a, out) => {
    const dims = a[1] as number[] | undefined;
    const inputs = [g.input(a[0])];
    if (dims !== undefined && dims.length > 0) inputs.push(g.int64(dims));
    g.emit(out, "ReduceSum", inputs, [attr.int("keepdims", a[2] ? 1 : 0)]);
  },
  mean: reduceWithAxesAttribute("ReduceMean"),
  amax: reduceWithAxesAttribute("ReduceMax"),
  amin: reduceWithAxesAttribute("ReduceMin"),
  logsumexp: reduceWithAxesAttribute("ReduceLogSumExp"),
  argmax: (g, a, out) => {
    if (a[1] === undefined) {
      const flat = g.node("Reshape", [g.input(a[0]), g.int64([-1])]);
      return g.emit(out, "ArgMax", flat, [attr.int("axis", 0), attr.int("keepdims", 0)]);
    }
    g.emit(out, "ArgMax", [g.input(a[0])], [attr.int("axis", n(a, 1)), attr.int("keepdims", a[2] ? 1 : 0)]);
  },
  // ---- neural-network layers
  conv2d: (g, a, out) => {
    const ws = g.shape(h(a, 1));
    const inputs = [g.input(a[0]), g.input(a[1])];
    if (a[2] !== undefined) inputs.push(g.input(a[2]));
    g.emit(out, "Conv", inputs, [
      attr.ints("kernel_shape", ws.slice(2)),
      attr.ints("strides", ns(a, 3)),
      attr.ints("pads", pads2d(ns(a, 4))),
      attr.ints("dilations", ns(a, 5)),
      attr.int("group", n(a, 6)),
    ]);
  },
  convTranspose2d: (g, a, out) => {
    const ws = g.shape(h(a, 1));
    const inputs = [g.input(a[0]), g.input(a[1])];
    if (a[2] !== undefined) inputs.push(g.input(a[2]));
    g.emit(out, "ConvTranspose", inputs, [
      attr.ints("kernel_shape", ws.slice(2)),
      attr.ints("strides", ns(a, 3)),
      attr.ints("pads", pads2d(ns(a, 4))),
      attr.ints("output_padding", ns(a, 5)),
      attr.int("group", n(a, 6)),
      attr.ints("dilations", ns(a, 7)),
    ]);
  },
  batchNorm: (g, a, out) => {
    noTraining(g, "batchNorm", Boolean(a[5]), "batch statistics");
    if (a[3] === undefined || a[4] === undefined)
      throw new OnnxExportError(`batchNorm without running statistics in module "${g.where()}" cannot be exported.`);
    const x = h(a, 0);
    const c = g.shape(x)[1] as number;
    const dtype = g.dtype(x);
    const scale = a[1] === undefined ? g.adopt("bn_scale", ones([c], { dtype })) : g.input(a[1]);
    const bias = a[2] === undefined ? g.adopt("bn_bias", zeros([c], { dtype })) : g.input(a[2]);
    g.emit(
      out,
      "BatchNormalization",
      [g.input(x), scale, bias, g.input(a[3]), g.input(a[4])],
      [attr.float("epsilon", n(a, 7))],
    );
  },
  layerNorm: (g, a, out) => {
    const shape = ns(a, 1);
    const dtype = g.dtype(h(a, 0));
    const scale = a[2] === undefined ? g.adopt("ln_scale", ones(shape, { dtype })) : g.input(a[2]);
    const inputs = [g.input(a[0]), scale];
    if (a[3] !== undefined) inputs.push(g.input(a[3]));
    g.emit(out, "LayerNormalization", inputs, [attr.int("axis", -shape.length), attr.float("epsilon", n(a, 4))]);
  },
  maxPool2d: (g, a, out) => {
    const k = ns(a, 1);
    g.emit(
      out,
      "MaxPool",
      [g.input(a[0])],
      [
        attr.ints("kernel_shape", k),
        attr.ints("strides", ns(a, 2).length > 0 ? ns(a, 2) : k),
        attr.ints("pads", pads2d(ns(a, 3))),
        attr.ints("dilations", ns(a, 4)),
        attr.int("ceil_mode", a[5] ? 1 : 0),
      ],
    );
  },
  avgPool2d: (g, a, out) => {
    const k = ns(a, 1);
    g.emit(
      out,
      "AveragePool",
      [g.input(a[0])],
      [
        attr.ints("kernel_shape", k),
        attr.ints("strides", ns(a, 2).length > 0 ? ns(a, 2) : k),
        attr.ints("pads", pads2d(ns(a, 3))),
        attr.int("ceil_mode", a[4] ? 1 : 0),
        attr.int("count_include_pad", a[5] ? 1 : 0),
      ],
    );
  },
  adaptiveAvgPool2d: adaptivePool("Average"),
  adaptiveMaxPool2d: adaptivePool("Max"),
  softmax: (g, a, out) => g.emit(out, "Softmax", [g.input(a[0])], [attr.int("axis", n(a, 1))]),
  logSoftmax: (g, a, out) => g.emit(out, "LogSoftmax", [g.input(a[0])], [attr.int("axis", n(a, 1))]),
  ...SHAPE_MAPPERS,
};
