import assert from "node:assert/strict";
import { test } from "node:test";
import { CounterRng, philox4x32 } from "../../src/data";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

const hex = (a: Uint32Array) => Array.from(a, (x) => x.toString(16).padStart(8, "0")).join(" ");

test("Philox4x32-10 matches Random123's known-answer vectors", () => {
  assert.equal(hex(philox4x32([0, 0, 0, 0], [0, 0])), "6627e8d5 e169c58d bc57ac4c 9b00dbd8");
  const ones = 0xffffffff;
  assert.equal(hex(philox4x32([ones, ones, ones, ones], [ones, ones])), "408f276d 41c83b0e a20bc7c6 6d5451fd");
  assert.equal(
    hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])),
    "d16cfe09 94fdcceb 5001e420 24126ea1",
  );
});

test("a stream is a pure function of (seed, a, b, purpose) and streams differ", () => {
  const draw = (seed: number, a: number, b: number, p: number) => {
    const r = new CounterRng(seed, a, b, p);
    return Array.from({ length: 9 }, () => r.nextUint32());
  };
  assert.deepEqual(draw(7, 1, 2, 3), draw(7, 1, 2, 3));
  for (const other of [draw(8, 1, 2, 3), draw(7, 2, 2, 3), draw(7, 1, 3, 3), draw(7, 1, 2, 4)])
    assert.notDeepEqual(other, draw(7, 1, 2, 3));
  // Seeds above 2^32 use the key's high word.
  assert.notDeepEqual(draw(2 ** 32 + 7, 1, 2, 3), draw(7, 1, 2, 3));
});

test("uniform, normal, gamma and beta have the right moments", () => {
  const r = new CounterRng(42, 0, 0, 9);
  const n = 40000;
  const moments = (f: () => number) => {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const v = f();
      s += v;
      s2 += v * v;
    }
    const m = s / n;
    return { mean: m, variance: s2 / n - m * m };
  };
  const u = moments(() => r.uniform());
  assert.ok(Math.abs(u.mean - 0.5) < 0.01 && Math.abs(u.variance - 1 / 12) < 0.005, JSON.stringify(u));
  const z = moments(() => r.normal());
  assert.ok(Math.abs(z.mean) < 0.03 && Math.abs(z.variance - 1) < 0.05, JSON.stringify(z));
  for (const shape of [0.2, 1, 4.5]) {
    const g = moments(() => r.gamma(shape)); // mean = variance = shape
    assert.ok(Math.abs(g.mean - shape) < 0.05 * Math.max(1, shape), `gamma(${shape}) ${JSON.stringify(g)}`);
    assert.ok(Math.abs(g.variance - shape) < 0.1 * Math.max(1, shape), `gamma(${shape}) ${JSON.stringify(g)}`);
  }
  for (const [a, b] of [
    [0.2, 0.2],
    [1, 1],
    [2, 5],
  ]) {
    const x = moments(() => r.beta(a, b));
    const mean = a / (a + b);
    const variance = (a * b) / ((a + b) ** 2 * (a + b + 1));
    assert.ok(Math.abs(x.mean - mean) < 0.01, `beta(${a},${b}) ${JSON.stringify(x)}`);
    assert.ok(Math.abs(x.variance - variance) < 0.01, `beta(${a},${b}) ${JSON.stringify(x)}`);
  }
  assert.throws(() => r.gamma(0), /shape must be > 0/);
});

test("permutation is a uniform shuffle of 0..n-1", () => {
  const r = new CounterRng(1, 0, 0, 1);
  const p = r.permutation(1000);
  assert.deepEqual(
    Array.from(p).sort((a, b) => a - b),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  // Each of 3 items lands first about a third of the time.
  const first = [0, 0, 0];
  for (let i = 0; i < 3000; i++) first[r.permutation(3)[0]]++;
  for (const c of first) assert.ok(Math.abs(c - 1000) < 100, JSON.stringify(first));
});
