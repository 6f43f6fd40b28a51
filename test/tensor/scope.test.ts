import assert from "node:assert/strict";
import { test } from "node:test";
import { keep, liveTensors, noGrad, ones, randn, scope, type Tensor, tensor, zeros } from "../../src";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

test("scope frees every tensor created inside except the returned ones", () => {
  const before = liveTensors();
  const out = scope(() => {
    const a = ones([4, 4]);
    const b = a.add(1).mul(2);
    return { b, list: [b.sum()] };
  });
  assert.equal(liveTensors(), before + 2);
  assert.deepEqual(out.b.toArray().slice(0, 2), [4, 4]);
  out.b.dispose();
  out.list[0]?.dispose();
  assert.equal(liveTensors(), before);
});

test("keep() survives its scope and dispose() frees it", () => {
  const before = liveTensors();
  let kept: Tensor | undefined;
  const k = scope(() => {
    kept = keep(zeros([3]));
    ones([3]);
    return undefined;
  });
  assert.equal(k, undefined);
  assert.equal(liveTensors(), before + 1);
  assert.deepEqual(kept?.toArray(), [0, 0, 0]);
  kept?.dispose();
  assert.equal(liveTensors(), before);
});

test("a throwing scope frees its tensors and rethrows", () => {
  const before = liveTensors();
  assert.throws(() =>
    scope(() => {
      ones([2]);
      throw new Error("boom");
    }),
  );
  assert.equal(liveTensors(), before);
});

test("nested scopes hand returned tensors to the parent", () => {
  const before = liveTensors();
  scope(() => {
    const inner = scope(() => ones([2]).mul(3));
    assert.equal(inner.toArray()[0], 3);
    return undefined;
  });
  assert.equal(liveTensors(), before);
});

test("disposing the handles used in forward does not break backward", () => {
  const w = tensor([1, 2, 3]).requireGrad();
  const loss = scope(() => w.mul(w).sum());
  // every intermediate of the forward pass was freed by the scope
  loss.backward();
  scope(() => assert.deepEqual(w.grad?.toArray(), [2, 4, 6])); // the grad handle is freed by this scope
  loss.dispose();
  w.dispose();
});

test("noGrad records no history", () => {
  scope(() => {
    const w = randn([3]).requireGrad();
    const y = noGrad(() => w.mul(2));
    assert.equal(y.requiresGrad, false);
    assert.equal(w.mul(2).requiresGrad, true);
    return undefined;
  });
});

test("a disposed tensor gives a clear error on use", () => {
  const t = ones([2]);
  t.dispose();
  assert.throws(() => t.add(1), /disposed/);
});

test("scope rejects an async function", () => {
  assert.throws(() => scope(async () => 1), /synchronous/);
});
