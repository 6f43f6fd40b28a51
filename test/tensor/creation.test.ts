// Creation and dtypes: data in and out of every dtype, constants, ranges, and random draws
// that equal PyTorch's for the same manualSeed.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as bn from "../../src";
import { checkNoLeaks, peerSkip, runPython } from "../helpers";

checkNoLeaks();

test("every dtype round-trips its data through tensor() and toTypedArray()", () => {
  bn.scope(() => {
    const f64 = new Float64Array([Math.PI, -1e300, 5e-324]);
    assert.deepEqual(bn.tensor(f64).toTypedArray(), f64);
    const f32 = new Float32Array([1.5, -3.25, 1e-40]);
    assert.deepEqual(bn.tensor(f32).toTypedArray(), f32);
    const i32 = new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0]);
    assert.deepEqual(bn.tensor(i32).toTypedArray(), i32);
    const i64 = new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 12345678901234567n]);
    assert.deepEqual(bn.tensor(i64).toTypedArray(), i64);
    const u8 = new Uint8Array([0, 128, 255]);
    const tu8 = bn.tensor(u8);
    assert.equal(tu8.dtype, "uint8");
    assert.deepEqual(tu8.toTypedArray(), u8);
    const tb = bn.tensor(new Uint8Array([1, 0, 1]), [3], { dtype: "bool" });
    assert.equal(tb.dtype, "bool");
    assert.deepEqual(tb.toArray(), [1, 0, 1]);
    assert.equal(bn.tensor(new Uint8Array([1]), [], { dtype: "bool" }).item(), 1);
    return undefined;
  });
});

test("bfloat16 and float16 take raw 16-bit patterns and read back as float32", () => {
  bn.scope(() => {
    // bf16 0x3fc0 = 1.5, 0xc040 = -3; f16 0x3e00 = 1.5, 0x7bff = 65504, 0x0001 = 2^-24
    const bf = bn.tensor(new Uint16Array([0x3fc0, 0xc040, 0x7f80]));
    assert.equal(bf.dtype, "bfloat16");
    assert.deepEqual(bf.toArray(), [1.5, -3, Infinity]);
    const h = bn.tensor(new Uint16Array([0x3e00, 0x7bff, 0x0001]), [3], { dtype: "float16" });
    assert.equal(h.dtype, "float16");
    assert.deepEqual(h.toArray(), [1.5, 65504, 2 ** -24]);
    assert.ok(h.toTypedArray() instanceof Float32Array);
    // float32 -> bf16 rounds to nearest even: 1 + 2^-8 is a tie between 1 and 1 + 2^-7
    assert.deepEqual(bn.to(bn.tensor([1 + 2 ** -8, 1 + 3 * 2 ** -8]), "bfloat16").toArray(), [1, 1 + 2 ** -6]);
    assert.deepEqual(bn.to(bn.tensor([70000]), "float16").toArray(), [Infinity]);
    return undefined;
  });
});

test("nested arrays infer the shape; ragged ones are refused", () => {
  bn.scope(() => {
    const t = bn.tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(t.shape, [2, 3]);
    assert.equal(t.dtype, "float32");
    assert.deepEqual(t.toArray(), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(bn.tensor([[1], [2]], undefined, { dtype: "int64" }).toTypedArray(), new BigInt64Array([1n, 2n]));
    assert.deepEqual(bn.tensor([true, false], undefined, { dtype: "bool" }).toArray(), [1, 0]);
    assert.deepEqual(bn.tensor(5).shape, []);
    assert.throws(() => bn.tensor([[1, 2], [3]]), /ragged/);
    assert.throws(() => bn.tensor([[1, 2], 3] as unknown as number[][]), /ragged/);
    assert.throws(
      () => bn.tensor(new Float32Array(5), [2, 3]),
      (e: unknown) =>
        e instanceof bn.NativeOpError && e.op === "tensor" && /holds 6 elements but the data has 5/.test(e.message),
    );
    return undefined;
  });
});

test("zeros, ones, full, empty, arange take dtypes; arange infers int64 or float32", () => {
  bn.scope(() => {
    assert.deepEqual(bn.zeros([2, 2], { dtype: "int32" }).toTypedArray(), new Int32Array(4));
    assert.deepEqual(bn.ones([3], { dtype: "float64" }).toTypedArray(), new Float64Array([1, 1, 1]));
    assert.deepEqual(bn.full([2], 2.5).toArray(), [2.5, 2.5]);
    assert.deepEqual(bn.full([2], 3, { dtype: "bfloat16" }).toArray(), [3, 3]);
    assert.deepEqual(bn.empty([0, 3]).shape, [0, 3]);
    assert.equal(bn.arange(5).dtype, "int64");
    assert.deepEqual(bn.arange(5).toArray(), [0, 1, 2, 3, 4]);
    assert.deepEqual(bn.arange(1, 2, 0.25).toArray(), [1, 1.25, 1.5, 1.75]);
    assert.equal(bn.arange(1, 2, 0.25).dtype, "float32");
    assert.deepEqual(bn.arange(5, 0, -2).toArray(), [5, 3, 1]);
    assert.throws(() => bn.arange(0, 5, 0), /step must be a non-zero finite number/);
    assert.deepEqual(bn.zerosLike(bn.ones([2], { dtype: "int32" })).toTypedArray(), new Int32Array(2));
    assert.equal(bn.ones([2], { requiresGrad: true }).requiresGrad, true);
    return undefined;
  });
});

test("randint and randperm check their arguments", () => {
  assert.throws(() => bn.randint(5, 5, [2]), /high > low.*Received: \[low, high\]=\[5, 5\]/);
  assert.throws(() => bn.randint(0, 1.5, [2]), /integers/);
  assert.throws(() => bn.randperm(-1), /n must be a non-negative integer/);
});

const DRAWS = `
import json, sys, torch
out = {}
torch.manual_seed(1234)
out["rand"] = torch.rand(3, 4).flatten().tolist()
out["randn"] = torch.randn(5).tolist()
out["randint"] = torch.randint(-3, 9, (6,)).tolist()
out["randperm"] = torch.randperm(10).tolist()
out["randn64"] = torch.randn(3, dtype=torch.float64).tolist()
w = torch.empty(4, 3)
torch.nn.init.uniform_(w, -2, 2)
out["uniform"] = w.flatten().tolist()
torch.nn.init.normal_(w, 1, 3)
out["normal"] = w.flatten().tolist()
torch.manual_seed(7)
out["dropout"] = torch.nn.functional.dropout(torch.ones(20), 0.3, True).tolist()
out["bernoulli"] = torch.bernoulli(torch.full((12,), 0.4)).tolist()
print(json.dumps(out))
`;

test("random draws equal PyTorch's for the same manualSeed", { skip: peerSkip() }, () => {
  const want = runPython<Record<string, number[]>>(DRAWS);
  bn.scope(() => {
    bn.manualSeed(1234);
    const got: Record<string, number[]> = {
      rand: bn.rand([3, 4]).toArray(),
      randn: bn.randn([5]).toArray(),
      randint: bn.randint(-3, 9, [6]).toArray(),
      randperm: bn.randperm(10).toArray(),
      randn64: bn.randn([3], { dtype: "float64" }).toArray(),
    };
    const w = bn.empty([4, 3]);
    bn.uniformInPlace(w, -2, 2);
    got.uniform = w.toArray();
    bn.normalInPlace(w, 1, 3);
    got.normal = w.toArray();
    bn.manualSeed(7);
    got.dropout = bn.dropout(bn.ones([20]), 0.3, true).toArray();
    got.bernoulli = new bn.Tensor(bn.native.bernoulli(bn.full([12], 0.4).handle)).toArray();
    for (const [k, v] of Object.entries(want)) {
      const g = got[k] as number[];
      assert.equal(g.length, v.length, k);
      // float32 values travel through JSON as doubles: compare at float32 precision
      for (const [i, e] of v.entries())
        assert.ok(Math.abs((g[i] as number) - e) <= 1e-6 * Math.max(1, Math.abs(e)), `${k}[${i}]: ${g[i]} vs ${e}`);
    }
    return undefined;
  });
});
