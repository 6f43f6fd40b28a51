// Forward-and-backward parity with PyTorch, batched: every case of a test file goes to one
// Python process (runTorchCases, at load), then each test runs our side and compares
// (checkCase). Inputs are plain data, so both sides start from identical numbers.
import assert from "node:assert/strict";
import { type DType, scope, type Tensor, tensor } from "../../src";
import { havePyTorch, peerSkip, requirePyTorch, runPython } from "../helpers";

export interface Spec {
  data: number[];
  shape: number[];
  dtype: DType;
  grad?: boolean;
}

export interface TorchCase {
  /** Also the test's name: say what it shows. */
  name: string;
  inputs: Record<string, Spec>;
  /** A Python expression over the inputs (torch, F = torch.nn.functional in scope), or statements that set `out`. */
  torch: string;
  ours: (t: Record<string, Tensor>) => Tensor | Tensor[];
  atol?: number;
  rtol?: number;
}

type Encoded = number | string;
interface Output {
  shape: number[];
  dtype: string;
  values: Encoded[];
}
export interface PeerResult {
  error?: string;
  outputs?: Output[];
  grads?: Record<string, Encoded[]>;
}

/** A small seeded generator (mulberry32), so inputs do not depend on libtorch's RNG. */
function generator(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Uniform values on [lo, hi), rounded to float32 so both sides hold the same numbers. */
export function rnd(
  shape: number[],
  seed: number,
  opts: { dtype?: DType; grad?: boolean; lo?: number; hi?: number } = {},
): Spec {
  const next = generator(seed);
  const lo = opts.lo ?? -1;
  const hi = opts.hi ?? 1;
  const data = Array.from({ length: numel(shape) }, () => Math.fround(lo + (hi - lo) * next()));
  return { data, shape, dtype: opts.dtype ?? "float32", grad: opts.grad };
}

/** Integers on [0, high) (int64 by default): class labels, indices. */
export function ints(shape: number[], high: number, seed: number, dtype: DType = "int64"): Spec {
  const next = generator(seed);
  return { data: Array.from({ length: numel(shape) }, () => Math.floor(next() * high)), shape, dtype };
}

export function vals(data: number[], shape: number[], dtype: DType = "float32", grad = false): Spec {
  return { data, shape, dtype, grad };
}

const encode = (v: number): Encoded => (Number.isFinite(v) ? v : String(v));
const decode = (v: Encoded): number =>
  typeof v === "number" ? v : v === "nan" ? Number.NaN : v === "inf" ? Infinity : -Infinity;

/** The weight each output element gets in the scalar that is back-propagated. */
const gradWeight = (i: number) => Math.cos(0.7 * i + 0.3);

const PY = `
import json, math, sys, torch
import torch.nn.functional as F
torch.set_num_threads(1)
def dec(v):
    return float(v) if isinstance(v, str) else v
def enc(v):
    v = float(v)
    return v if math.isfinite(v) else ("nan" if v != v else ("inf" if v > 0 else "-inf"))
def values(t):
    t = t.detach()
    if t.dtype in (torch.bfloat16, torch.float16): t = t.float()
    return [enc(v) for v in t.flatten().tolist()]
out_all = []
for case in json.load(sys.stdin):
    try:
        ns = {"torch": torch, "F": F, "math": math}
        for name, s in case["inputs"].items():
            t = torch.tensor([dec(v) for v in s["data"]], dtype=getattr(torch, s["dtype"])).reshape(s["shape"])
            ns[name] = t.requires_grad_(True) if s.get("grad") else t
        code = case["torch"]
        if "out =" in code: exec(code, ns)
        else: ns["out"] = eval(code, ns)
        outs = ns["out"] if isinstance(ns["out"], (tuple, list)) else [ns["out"]]
        loss = None
        for o in outs:
            if o.requires_grad:
                w = torch.tensor([math.cos(0.7 * i + 0.3) for i in range(o.numel())], dtype=torch.float64)
                term = (o.double() * w.reshape(o.shape)).sum()
                loss = term if loss is None else loss + term
        if loss is not None: loss.backward()
        grads = {n: values(ns[n].grad) for n, s in case["inputs"].items() if s.get("grad") and ns[n].grad is not None}
        out_all.append({"outputs": [{"shape": list(o.shape), "dtype": str(o.dtype).replace("torch.", ""),
                                     "values": values(o)} for o in outs], "grads": grads})
    except Exception as e:
        out_all.append({"error": f"{type(e).__name__}: {e}"})
print(json.dumps(out_all))
`;

/** Runs every case in one Python process. undefined when PyTorch is not installed (see peerSkip). */
export function runTorchCases(cases: TorchCase[]): Map<string, PeerResult> | undefined {
  if (!havePyTorch()) return undefined;
  const names = new Set<string>();
  for (const c of cases) {
    assert.ok(!names.has(c.name), `duplicate case name ${c.name}`);
    names.add(c.name);
  }
  const payload = cases.map((c) => ({
    torch: c.torch,
    inputs: Object.fromEntries(Object.entries(c.inputs).map(([k, s]) => [k, { ...s, data: s.data.map(encode) }])),
  }));
  const results = runPython<PeerResult[]>(PY, payload);
  return new Map(cases.map((c, i) => [c.name, results[i] as PeerResult]));
}

function closeTo(actual: number[], expected: number[], atol: number, rtol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: element count`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (a === e) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e)))
      assert.fail(`${what}[${i}]: ${a} vs PyTorch ${e} (atol ${atol}, rtol ${rtol})`);
  }
}

function numbers(t: Tensor): number[] {
  return t.dtype === "int64" ? Array.from(t.toTypedArray() as BigInt64Array, Number) : t.toArray();
}

/** Runs our side of a case and asserts outputs, dtypes, shapes and input gradients match PyTorch's. */
export function checkCase(c: TorchCase, peer: PeerResult | undefined): void {
  assert.ok(peer !== undefined, `no PyTorch result for ${c.name}`);
  if (peer.error !== undefined) assert.fail(`PyTorch failed on ${c.name}: ${peer.error}`);
  const atol = c.atol ?? 1e-5;
  const rtol = c.rtol ?? 1e-5;
  scope(() => {
    const inputs: Record<string, Tensor> = {};
    for (const [k, s] of Object.entries(c.inputs)) {
      const data = s.dtype === "int64" ? new BigInt64Array(s.data.map((v) => BigInt(v))) : new Float64Array(s.data);
      inputs[k] = tensor(data, s.shape, { dtype: s.dtype, requiresGrad: s.grad === true });
    }
    const result = c.ours(inputs);
    const outs = Array.isArray(result) ? result : [result];
    const expected = peer.outputs ?? [];
    assert.equal(outs.length, expected.length, "number of outputs");
    let loss: Tensor | undefined;
    outs.forEach((o, i) => {
      const e = expected[i] as Output;
      assert.deepEqual(o.shape, e.shape, `output ${i} shape`);
      assert.equal(o.dtype, e.dtype, `output ${i} dtype`);
      closeTo(numbers(o), e.values.map(decode), atol, rtol, `output ${i}`);
      if (o.requiresGrad) {
        const w = tensor(
          Float64Array.from({ length: o.size }, (_, j) => gradWeight(j)),
          o.shape,
        );
        const term = o.to("float64").mul(w).sum();
        loss = loss === undefined ? term : loss.add(term);
      }
    });
    if (loss !== undefined) loss.backward();
    for (const [k, g] of Object.entries(peer.grads ?? {})) {
      const ours = inputs[k]?.grad;
      assert.ok(ours !== undefined, `no gradient for input ${k}`);
      closeTo(ours.toArray(), g.map(decode), atol, rtol, `grad of ${k}`);
    }
    for (const [k, s] of Object.entries(c.inputs))
      if (s.grad && !(k in (peer.grads ?? {})))
        assert.equal(inputs[k]?.grad, undefined, `PyTorch has no grad for ${k}`);
    return undefined;
  });
}

/** Registers one node:test per case, all checked against one batched PyTorch run. */
export function torchCaseTests(
  test: (name: string, opts: { skip: string | false }, fn: () => void) => void,
  cases: TorchCase[],
): void {
  const results = runTorchCases(cases);
  for (const c of cases)
    test(c.name, { skip: peerSkip() }, () => {
      requirePyTorch();
      checkCase(c, results?.get(c.name));
    });
}
