// Wrong argument kinds on the public API: each call throws the library's own error naming the
// function and the argument, never a bare V8 TypeError (the cases come from the fuzz campaign).
import assert from "node:assert/strict";
import { test } from "node:test";
import * as bn from "../../src";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

// Calls take `any` on purpose: each row passes what the types forbid.
// biome-ignore lint/suspicious/noExplicitAny: the rows pass wrong types deliberately
type Call = (x: any, x4: any) => unknown;
/** A constructor called with missing arguments. */
type Ctor = new (...args: unknown[]) => unknown;

/** [call as the fuzzer wrote it, call, pattern the message must match (names function and argument)]. */
const rows: [string, Call, RegExp][] = [
  ['sum(x, "a")', (x) => bn.sum(x, "a" as never), /^sum: dims? must .*Received: dims?="a"/],
  ['x.min("a")', (x) => x.min("a"), /^min: dims? must .*Received: dims?="a"/],
  ["x.std(null)", (x) => x.std(null), /^std: dims? must .*Received: dims?=null/],
  ["x.var(0, null)", (x) => x.var(0, null), /^var: opts must be an options object.*Received: opts=null/],
  ["x.sum(0, 5)", (x) => x.sum(0, 5), /^sum: opts must be an options object.*Received: opts=5/],
  [
    "new nn.MaxPool2d(true)",
    () => new bn.nn.MaxPool2d(true as never),
    /^MaxPool2d: options must be .*Received: options=true/,
  ],
  [
    "new nn.MaxPool2d()",
    () => new (bn.nn.MaxPool2d as unknown as Ctor)(),
    /^MaxPool2d: options must be .*Received: options=undefined/,
  ],
  [
    "new nn.AvgPool2d({})",
    () => new bn.nn.AvgPool2d({} as never),
    /^AvgPool2d: kernelSize must .*Received: kernelSize=undefined/,
  ],
  [
    "new nn.AvgPool2d()",
    () => new (bn.nn.AvgPool2d as unknown as Ctor)(),
    /^AvgPool2d: options must be .*Received: options=undefined/,
  ],
  [
    "adaptiveAvgPool2d(x4, {})",
    (_x, x4) => bn.adaptiveAvgPool2d(x4, {} as never),
    /^adaptiveAvgPool2d: outputSize must/,
  ],
  [
    'adaptiveMaxPool2d(x4, "2")',
    (_x, x4) => bn.adaptiveMaxPool2d(x4, "2" as never),
    /^adaptiveMaxPool2d: outputSize must/,
  ],
  ["maxPool2d(x4, 2, null)", (_x, x4) => bn.maxPool2d(x4, 2, null as never), /^maxPool2d: opts must be/],
  [
    "new nn.Sequential(5)",
    () => new bn.nn.Sequential(5 as never),
    /^Sequential: modules must be an array.*Received: modules=5/,
  ],
  [
    "new nn.ModuleList(5)",
    () => new bn.nn.ModuleList(5 as never),
    /^ModuleList: modules must be an array.*Received: modules=5/,
  ],
  ['x.reshape("2")', (x) => x.reshape("2"), /^reshape: shape must be an array.*Received: shape="2"/],
  [
    "reshape(x, undefined)",
    (x) => bn.reshape(x, undefined as never),
    /^reshape: shape must be an array.*Received: shape=undefined/,
  ],
  ["x.view(null)", (x) => x.view(null), /^view: shape must be an array.*Received: shape=null/],
  ["expand(x, 5)", (x) => bn.expand(x, 5 as never), /^expand: shape must be an array.*Received: shape=5/],
  ["x.to(undefined)", (x) => x.to(undefined), /^to: target must be .*Received: target=undefined/],
  ["x.to(null)", (x) => x.to(null), /^to: target must be .*Received: target=null/],
  ["scope(5)", () => bn.scope(5 as never), /^scope: fn must be a function. Received: fn=5/],
  ["noGrad(5)", () => bn.noGrad(5 as never), /^noGrad: fn must be a function. Received: fn=5/],
  [
    "new DataLoader({n: 0})",
    () => new (bn.DataLoader as unknown as Ctor)({ n: 0 }),
    /^DataLoader: ds must be an ImageDataset/,
  ],
  ["countParameters({})", () => bn.countParameters({} as never), /^countParameters: model must be a Module/],
  ["formatSummary({})", () => bn.formatSummary({} as never), /^formatSummary: s must be the ModelSummary/],
  [
    "applyOverrides(cfg, undefined)",
    () => bn.applyOverrides({} as never, undefined as never),
    /^applyOverrides: overrides must/,
  ],
  [
    'new NativeOpError("op", 5, "m")',
    () => new bn.NativeOpError("op", 5 as never, "m"),
    /^NativeOpError: shapes must .*Received: shapes=5/,
  ],
  [
    "new nn.SqueezeExcite()",
    () => new (bn.nn.SqueezeExcite as unknown as Ctor)(),
    /^SqueezeExcite: opts must be .*Received: opts=undefined/,
  ],
  [
    "new nn.StateDictError()",
    () => new (bn.nn.StateDictError as unknown as Ctor)(),
    /^StateDictError: missing must be/,
  ],
  ["batchNorm(x4)", (_x, x4) => bn.batchNorm(x4, undefined as never), /^batchNorm: opts must be/],
  ["layerNorm(x, 5)", (x) => bn.layerNorm(x, 5 as never), /^layerNorm: normalizedShape must be an array/],
  ["x.backward(5)", (x) => x.backward(5), /^backward: gradient must be a Tensor. Received: gradient=5/],
  ["clamp(x, Object.create(null))", (x) => bn.clamp(x, Object.create(null)), /^clamp: .*Received: /],
  ["x.permute([Symbol()])", (x) => x.permute([Symbol("s"), 0]), /^permute: .*Received: /],
];

test("wrong argument kinds throw ArgumentError naming the function and the argument", () => {
  bn.scope(() => {
    const x = bn.zeros([2, 3]);
    const x4 = bn.zeros([1, 1, 4, 4]);
    for (const [label, call, pattern] of rows) {
      assert.throws(
        () => call(x, x4),
        (e: unknown) => {
          assert.ok(
            e instanceof bn.ArgumentError,
            `${label}: expected ArgumentError, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
          );
          assert.match(e.message, pattern, label);
          return true;
        },
        label,
      );
    }
  });
});
