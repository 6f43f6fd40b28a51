// Errors: native failures arrive as NativeOpError with the op and the input shapes; wrong
// argument kinds get clear errors; garbage (wrong types, disposed tensors, huge or negative
// shapes, NaN) never takes the process down.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import * as bn from "../../src";
import { buildInfo, memoryStats } from "../../src/tensor/tensor";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

function nativeError(op: string, shapes?: (number[] | "disposed")[]) {
  return (e: unknown) => {
    assert.ok(e instanceof bn.NativeOpError, `expected NativeOpError, got ${String(e)}`);
    assert.equal(e.op, op);
    if (shapes !== undefined) assert.deepEqual(e.shapes, shapes);
    assert.ok(e.torchMessage.length > 0);
    assert.ok(!e.message.includes("Exception raised from"), "libtorch's C++ backtrace is cut");
    return true;
  };
}

test("a native failure is a NativeOpError naming the op and every input's shape", () => {
  bn.scope(() => {
    const a = bn.zeros([2, 3]);
    const b = bn.zeros([4, 5]);
    assert.throws(
      () => bn.matmul(a, b),
      nativeError("matmul", [
        [2, 3],
        [4, 5],
      ]),
    );
    assert.throws(
      () => bn.add(a, b),
      nativeError("add", [
        [2, 3],
        [4, 5],
      ]),
    );
    assert.throws(
      () => bn.cat([a, b], 0),
      nativeError("cat", [
        [2, 3],
        [4, 5],
      ]),
    );
    assert.throws(() => a.view([7]), nativeError("view", [[2, 3]]));
    assert.throws(() => bn.select(a, 0, 5), nativeError("select"));
    assert.throws(() => bn.zeros([2]).item(), nativeError("item"));
    assert.throws(
      () => bn.gather(a, 1, bn.full([2, 1], 9, { dtype: "int64" })),
      nativeError("gather", [
        [2, 3],
        [2, 1],
      ]),
    );
    assert.throws(() => bn.where(a, 1, 2), nativeError("where"));
    // (an addon built against a CUDA libtorch makes it: docs/gpu.md)
    if (!buildInfo().cuda) assert.throws(() => bn.zeros([2], { device: "cuda:0" }), /this libtorch has no CUDA|CUDA/);
    return undefined;
  });
});

test("backward errors are NativeOpErrors with a reason", () => {
  bn.scope(() => {
    const w = bn.ones([2]).requireGrad();
    const loss = w.mul(w).sum();
    loss.backward();
    assert.throws(() => loss.backward(), nativeError("backward"));
    assert.throws(() => w.mul(2).backward(), /without a gradient needs a scalar/);
    assert.throws(() => bn.ones([1]).backward(), /does not require grad/);
    assert.throws(() => bn.tensor(new BigInt64Array([1n])).requireGrad(), nativeError("requiresGrad"));
    return undefined;
  });
});

test("wrong argument kinds are ArgumentErrors that name the function and the argument", () => {
  bn.scope(() => {
    const x = bn.zeros([1, 2, 4, 4]);
    const garbage: unknown[] = [undefined, null, 3, "x", {}, [1, 2], { shape: [1, 2, 4, 4] }];
    for (const g of garbage) {
      const G = g as bn.Tensor;
      // a number is a valid operand of add (a scalar), everything else is not
      if (typeof g !== "number") assert.throws(() => bn.add(G, x), /add: a must be a Tensor/);
      assert.throws(() => bn.conv2d(G, x), /conv2d: x must be a Tensor/);
      assert.throws(() => bn.conv2d(x, G), /conv2d: weight must be a Tensor/);
      assert.throws(() => bn.sum(G, 0), /sum: x must be a Tensor/);
      assert.throws(() => bn.batchNorm(G, { training: true }), /batchNorm: x must be a Tensor/);
      assert.throws(() => bn.maxPool2d(G, 2), /maxPool2d: x must be a Tensor/);
      assert.throws(() => bn.crossEntropy(G, x), /crossEntropy: logits must be a Tensor/);
      assert.throws(() => bn.crossEntropy(x, G), /crossEntropy: target must be a Tensor/);
      assert.throws(() => bn.permute(G, [0]), /permute: x must be a Tensor/);
      assert.throws(() => bn.flatten(G), /flatten: x must be a Tensor/);
      assert.throws(() => bn.topk(G, 1), /topk: x must be a Tensor/);
      assert.throws(() => bn.zerosLike(G), /zerosLike: t must be a Tensor/);
    }
    assert.throws(
      () => bn.tensor({} as number[]),
      /tensor: data must be a Float32Array.*Received: data=\[object Object\]/,
    );
    assert.throws(() => bn.tensor(new Int8Array(2) as unknown as Uint8Array), /Received: data="Int8Array"/);
    assert.throws(() => bn.tensor([1, "a"] as unknown as number[]), /numbers at the leaves. Received: a leaf "a"/);
    assert.throws(
      () => bn.zeros("abc" as unknown as number[]),
      /zeros: shape must be an array of non-negative integers/,
    );
    assert.throws(() => bn.zeros([2, -1]), /Received: shape=\[2, -1\]/);
    assert.throws(() => bn.ones([1.5]), /Received: shape=\[1.5\]/);
    assert.throws(() => bn.full([2], [1] as unknown as number), /full: value must be a number/);
    assert.throws(() => bn.flip(x, "0" as unknown as number), /flip: dims must be a dim or an array of dims/);
    assert.throws(() => bn.clamp(x), /give min, max or both/);
    assert.throws(() => bn.clamp(x, 2, 1), /min must not exceed max/);
    assert.throws(() => x.setGrad(bn.zeros([3])), /setGrad: the gradient must have the tensor's shape \[1, 2, 4, 4\]/);
    return undefined;
  });
});

test("a disposed tensor gives a clear error in every kind of call", () => {
  const t = bn.ones([2, 2]);
  t.dispose();
  t.dispose(); // twice is harmless
  assert.equal(t.toString(), "Tensor(disposed)");
  for (const f of [
    () => t.shape,
    () => t.toArray(),
    () => t.item(),
    () => t.add(1),
    () => bn.matmul(t, t),
    () => bn.sum(t, 0),
    () => bn.conv2d(t, t),
    () => t.backward(),
  ])
    assert.throws(f, /disposed/);
  // the raw handle too: the addon refuses it instead of touching freed memory
  assert.throws(() => bn.native.add(t.handle, 1), /already disposed/);
});

test("huge shapes are refused with an error, never an allocation or a crash", () => {
  const huge = /overflow/;
  assert.throws(() => bn.zeros([1e12, 1e12]), huge);
  assert.throws(() => bn.randn([2 ** 62, 4]), huge);
  assert.throws(() => bn.randint(0, 5, [1e10, 1e10]), huge);
  bn.scope(() => {
    assert.throws(() => bn.zeros([1, 1]).expand([1e12, 1e12]), huge);
    assert.throws(() => bn.pad(bn.zeros([1, 1, 2, 2]), [1e9, 1e9, 1e9, 1e9]), huge);
    assert.throws(() => bn.zeros([4]).reshape([1e12, 1e12]), nativeError("reshape", [[4]]));
    return undefined;
  });
  assert.throws(() => bn.zeros([1e30]), /shape must be an array of non-negative integers|integers/);
  // larger than the machine but no overflow: refused by the allocator whatever the kernel's
  // overcommit policy (with vm.overcommit_memory=1 the allocation would succeed and the first write kill the process)
  if (memoryStats().caching) {
    const floats = Math.ceil((2 * os.totalmem()) / 4);
    assert.throws(() => bn.empty([floats]), /larger than this machine's memory/);
  }
});

test("NaN and infinity flow through ops without errors, as in PyTorch", () => {
  bn.scope(() => {
    const v = bn.tensor([Number.NaN, Infinity, -Infinity, 1]);
    assert.ok(Number.isNaN(v.sum().item()));
    assert.deepEqual(bn.isnan(v.mul(0)).toArray(), [1, 1, 1, 0]);
    assert.ok(Number.isNaN(bn.crossEntropy(bn.tensor([[Number.NaN, 0]]), bn.tensor(new BigInt64Array([0n]))).item()));
    assert.throws(() => bn.arange(0, Number.NaN), nativeError("arange"));
    assert.throws(() => bn.dropout(v, Number.NaN, true), /p must be in \[0, 1\)/);
    assert.throws(() => bn.topk(v, Number.NaN), /k must be an integer/);
    return undefined;
  });
});

// Each line runs in a fresh process: a crash (abort, segfault) there shows as a bad exit
// status here instead of taking the test runner down.
const NASTY = `
const bn = require(${JSON.stringify(path.join(__dirname, "..", "..", "src"))});
const calls = [
  () => bn.native.zeros("abc"),
  () => bn.native.zeros([-5]),
  () => bn.native.zeros([1e30]),
  () => bn.native.add(),
  () => bn.native.conv2d({}, [], 3),
  () => bn.native.conv2d(bn.zeros([1, 4, 4, 4]).handle, bn.zeros([4, 4, 1, 1]).handle, undefined, [0, 0], [0, 0], [1, 1], 1),
  () => bn.native.maxPool2d(bn.zeros([1, 1, 4, 4]).handle, [2, 2], [0, 0], [0, 0], [1, 1], false),
  () => bn.native.avgPool2d(bn.zeros([1, 1, 4, 4]).handle, [0, 0], [1, 1], [0, 0], false, true),
  () => bn.native.slice(bn.zeros([4]).handle, 0, 0, 4, 0),
  () => bn.native.transpose(bn.zeros([2]).handle, 9e18, 0),
  () => bn.native.fromBuffer(new Float32Array(4), [1e12, 0], "float32"),
  () => bn.native.fromBuffer(new Float32Array(4), [-2, -2], "float32"),
  () => bn.native.fromBuffer(new Float32Array(4), [4], "complex64"),
  () => bn.native.shape(new bn.native.TensorHandle()),
  () => bn.native.add(new bn.native.TensorHandle(), 1),
  () => bn.native.indexSelect(bn.zeros([3]).handle, 0, bn.tensor(new BigInt64Array([2n ** 62n])).handle),
  () => bn.native.gather(bn.zeros([3]).handle, 0, bn.tensor(new BigInt64Array([-(2n ** 62n)])).handle),
  () => bn.native.crossEntropy(bn.zeros([2, 3]).handle, bn.tensor(new BigInt64Array([5n, -7n])).handle, undefined, "mean", -100, 0),
  () => bn.native.oneHot(bn.tensor(new BigInt64Array([1n])).handle, 1e12),
  () => bn.native.adaptiveAvgPool2d(bn.zeros([1, 1, 4, 4]).handle, [1e9, 1e9]),
  () => bn.native.bernoulli(bn.full([2], 5).handle),
  () => bn.native.uniform_(bn.zeros([2]).handle, 5, 1),
  () => bn.native.manualSeed(-1),
  () => bn.native.backward(bn.zeros([2]).handle, undefined, false),
  () => bn.zeros([1e6, 1e6]),
  () => bn.arange(0, 1e18),
  () => bn.setNumThreads(3e9),
  () => bn.setNumThreads(1e5),
];
let failed = 0;
for (const f of calls) {
  try { f(); } catch (e) { if (e instanceof Error && e.message.length > 0) failed++; }
}
console.log(JSON.stringify({ calls: calls.length, failed, live: bn.liveTensors() }));
`;

test("garbage straight into the addon raises errors in a child process that then exits normally", () => {
  const r = spawnSync(process.execPath, ["-e", NASTY], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, BUDGETNET_THREADS: "1" },
  });
  assert.equal(r.signal, null, `the child was killed by ${r.signal}: ${r.stderr}`);
  assert.equal(r.status, 0, `the child exited with ${r.status}: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split("\n").pop() as string);
  assert.equal(out.failed, out.calls, "every garbage call was refused with an error");
});
