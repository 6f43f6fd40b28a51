// Chained methods: t.add(b).relu().sum() — each a one-line call of the op in src/ops.
import { Tensor } from "../tensor/tensor";
import * as math from "./math";
import * as nn from "./nn";
import * as reduce from "./reduce";
import * as shape from "./shape";

type Operand = Tensor | number | boolean;
type Dims = number | number[];

declare module "../tensor/tensor" {
  interface Tensor {
    add(b: Operand, alpha?: number): Tensor;
    sub(b: Operand): Tensor;
    mul(b: Operand): Tensor;
    div(b: Operand): Tensor;
    pow(b: Operand): Tensor;
    maximum(b: Operand): Tensor;
    minimum(b: Operand): Tensor;
    eq(b: Operand): Tensor;
    ne(b: Operand): Tensor;
    lt(b: Operand): Tensor;
    le(b: Operand): Tensor;
    gt(b: Operand): Tensor;
    ge(b: Operand): Tensor;
    neg(): Tensor;
    abs(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    square(): Tensor;
    clamp(min?: number, max?: number): Tensor;
    matmul(b: Tensor): Tensor;
    relu(): Tensor;
    sigmoid(): Tensor;
    tanh(): Tensor;
    softmax(dim?: number): Tensor;
    logSoftmax(dim?: number): Tensor;
    sum(dims?: Dims, opts?: reduce.ReduceOptions): Tensor;
    mean(dims?: Dims, opts?: reduce.ReduceOptions): Tensor;
    max(dims?: Dims, opts?: reduce.ReduceOptions): Tensor;
    min(dims?: Dims, opts?: reduce.ReduceOptions): Tensor;
    argmax(dim?: number, opts?: reduce.ReduceOptions): Tensor;
    var(dims?: Dims, opts?: reduce.VarOptions): Tensor;
    std(dims?: Dims, opts?: reduce.VarOptions): Tensor;
    norm(p?: number, dims?: Dims, opts?: reduce.ReduceOptions): Tensor;
    reshape(shape: readonly number[]): Tensor;
    view(shape: readonly number[]): Tensor;
    permute(dims: readonly number[]): Tensor;
    transpose(d0: number, d1: number): Tensor;
    contiguous(format?: "contiguous" | "channelsLast"): Tensor;
    slice(dim: number, start?: number, end?: number, step?: number): Tensor;
    narrow(dim: number, start: number, length: number): Tensor;
    select(dim: number, index: number): Tensor;
    indexSelect(dim: number, index: Tensor): Tensor;
    flip(dims: number | readonly number[]): Tensor;
    squeeze(dim?: number): Tensor;
    unsqueeze(dim: number): Tensor;
    expand(shape: readonly number[]): Tensor;
    flatten(startDim?: number, endDim?: number): Tensor;
    clone(): Tensor;
    pad(pads: readonly number[], mode?: shape.PadMode, value?: number): Tensor;
    to(target: Parameters<typeof shape.to>[1]): Tensor;
  }
}

const P = Tensor.prototype;
P.add = function (b, alpha) {
  return math.add(this, b, alpha);
};
P.sub = function (b) {
  return math.sub(this, b);
};
P.mul = function (b) {
  return math.mul(this, b);
};
P.div = function (b) {
  return math.div(this, b);
};
P.pow = function (b) {
  return math.pow(this, b);
};
P.maximum = function (b) {
  return math.maximum(this, b);
};
P.minimum = function (b) {
  return math.minimum(this, b);
};
P.eq = function (b) {
  return math.eq(this, b);
};
P.ne = function (b) {
  return math.ne(this, b);
};
P.lt = function (b) {
  return math.lt(this, b);
};
P.le = function (b) {
  return math.le(this, b);
};
P.gt = function (b) {
  return math.gt(this, b);
};
P.ge = function (b) {
  return math.ge(this, b);
};
P.neg = function () {
  return math.neg(this);
};
P.abs = function () {
  return math.abs(this);
};
P.exp = function () {
  return math.exp(this);
};
P.log = function () {
  return math.log(this);
};
P.sqrt = function () {
  return math.sqrt(this);
};
P.square = function () {
  return math.square(this);
};
P.clamp = function (min, max) {
  return math.clamp(this, min, max);
};
P.matmul = function (b) {
  return math.matmul(this, b);
};
P.relu = function () {
  return nn.relu(this);
};
P.sigmoid = function () {
  return nn.sigmoid(this);
};
P.tanh = function () {
  return nn.tanh(this);
};
P.softmax = function (dim) {
  return nn.softmax(this, dim);
};
P.logSoftmax = function (dim) {
  return nn.logSoftmax(this, dim);
};
P.sum = function (dims, opts) {
  return reduce.sum(this, dims, opts);
};
P.mean = function (dims, opts) {
  return reduce.mean(this, dims, opts);
};
P.max = function (dims, opts) {
  return reduce.max(this, dims, opts);
};
P.min = function (dims, opts) {
  return reduce.min(this, dims, opts);
};
P.argmax = function (dim, opts) {
  return reduce.argmax(this, dim, opts);
};
P.var = function (dims, opts) {
  return reduce.variance(this, dims, opts);
};
P.std = function (dims, opts) {
  return reduce.std(this, dims, opts);
};
P.norm = function (p, dims, opts) {
  return reduce.norm(this, p, dims, opts);
};
P.reshape = function (s) {
  return shape.reshape(this, s);
};
P.view = function (s) {
  return shape.view(this, s);
};
P.permute = function (d) {
  return shape.permute(this, d);
};
P.transpose = function (a, b) {
  return shape.transpose(this, a, b);
};
P.contiguous = function (f) {
  return shape.contiguous(this, f);
};
P.slice = function (d, s, e, st) {
  return shape.slice(this, d, s, e, st);
};
P.narrow = function (d, s, l) {
  return shape.narrow(this, d, s, l);
};
P.select = function (d, i) {
  return shape.select(this, d, i);
};
P.indexSelect = function (d, i) {
  return shape.indexSelect(this, d, i);
};
P.flip = function (d) {
  return shape.flip(this, d);
};
P.squeeze = function (d) {
  return shape.squeeze(this, d);
};
P.unsqueeze = function (d) {
  return shape.unsqueeze(this, d);
};
P.expand = function (s) {
  return shape.expand(this, s);
};
P.flatten = function (s, e) {
  return shape.flatten(this, s, e);
};
P.clone = function () {
  return shape.clone(this);
};
P.pad = function (p, m, v) {
  return shape.pad(this, p, m, v);
};
P.to = function (t) {
  return shape.to(this, t);
};
