// The plan's nodes from a traced forward (src/perf/plan.ts): each traced call the plan can run
// becomes a node (conv, batchnorm, eltwise, binary, pool) over dense value ids, up to the first
// call it cannot run (the tail, replayed through libtorch); activations and residual additions
// are then fused into the convolution before them as oneDNN post-ops, and the ids renumbered.
import type { InferencePlanNode as PlanNode } from "../tensor/native_calls";
import type { NativeHandle } from "../tensor/tensor";
import { INFO_FUNCTIONS, isNativeHandle as isHandle, type NativeCall } from "../tensor/trace";

/** Activations the plan runs (oneDNN eltwise, or a post-op of the convolution before them). */
export const ACTIVATIONS: ReadonlySet<string> = new Set([
  "relu",
  "relu6",
  "sigmoid",
  "silu",
  "hardswish",
  "hardsigmoid",
]);

/** Turns the traced calls into plan nodes up to the first call the plan cannot run. */
export function buildNodes(
  calls: NativeCall[],
  input: NativeHandle,
): { nodes: PlanNode[]; valueIds: Map<NativeHandle, number>; tail: NativeCall[]; callOf: Map<number, number> } {
  const valueIds = new Map<NativeHandle, number>([[input, 0]]);
  const nodes: PlanNode[] = [];
  const callOf = new Map<number, number>();
  const v = (h: unknown): number | undefined => (isHandle(h) ? valueIds.get(h) : undefined);
  let i = 0;
  for (; i < calls.length; i++) {
    const c = calls[i] as NativeCall;
    if (INFO_FUNCTIONS.has(c.name)) continue;
    const x = v(c.args[0]);
    const made = x === undefined ? undefined : nodeFor(c, x, v);
    if (made === undefined) break;
    const out = nodes.length + 1;
    nodes.push({ ...made.node, out } as PlanNode);
    valueIds.set(made.result, out);
    callOf.set(out, i);
  }
  return { nodes, valueIds, tail: calls.slice(i).filter((c) => !INFO_FUNCTIONS.has(c.name)), callOf };
}

/**
 * The plan node for one traced call whose first input is plan value x, or undefined when the plan
 * cannot run it. `v` gives the plan value of a handle (undefined for weights and constants).
 */
function nodeFor(
  c: NativeCall,
  x: number,
  v: (h: unknown) => number | undefined,
): { node: Omit<PlanNode, "out">; result: NativeHandle } | undefined {
  const a = c.args;
  const result = c.result as NativeHandle;
  const constant = (t: unknown) => t == null || v(t) === undefined;
  if (c.name === "conv2d" && isHandle(a[1]) && constant(a[1]) && constant(a[2])) {
    const node: Omit<PlanNode, "out"> = {
      op: "conv",
      in: x,
      weight: a[1],
      bias: isHandle(a[2]) ? a[2] : null,
      stride: a[3] as number[],
      padding: a[4] as number[],
      dilation: a[5] as number[],
      groups: a[6] as number,
      post: [],
    };
    return { node, result };
  }
  if (
    c.name === "batchNorm" &&
    a[5] === false &&
    isHandle(a[3]) &&
    isHandle(a[4]) &&
    [a[1], a[2], a[3], a[4]].every(constant)
  ) {
    // a BatchNorm the fold could not take (its input is not a convolution's), in inference form
    const node: Omit<PlanNode, "out"> = {
      op: "batchnorm",
      in: x,
      weight: isHandle(a[1]) ? a[1] : undefined,
      bias: isHandle(a[2]) ? a[2] : null,
      mean: a[3],
      var: a[4],
      eps: a[7] as number,
      post: [],
    };
    return { node, result };
  }
  if (ACTIVATIONS.has(c.name) && a.length === 1) return { node: { op: "eltwise", in: x, sub: c.name }, result };
  if (c.name === "relu_" && a.length === 1)
    return { node: { op: "eltwise", in: x, sub: "relu" }, result: a[0] as NativeHandle };
  if ((c.name === "add" || c.name === "mul") && a.length === 2 && v(a[1]) !== undefined) {
    const [sa, sb] = [c.argShapes?.[0], c.argShapes?.[1]];
    if (sa === undefined || sb === undefined) return undefined;
    const numel = (s: number[]) => s.reduce((p, d) => p * d, 1);
    // oneDNN broadcasts the second operand only: the full-size one goes first
    const [p, q] = numel(sa) >= numel(sb) ? [x, v(a[1]) as number] : [v(a[1]) as number, x];
    return { node: { op: "binary", in: p, b: q, sub: c.name, post: [] }, result };
  }
  if (c.name === "avgPool2d" && a[4] === false) {
    const kernel = a[1] as number[];
    const stride = (a[2] as number[]).length === 0 ? kernel : (a[2] as number[]);
    const sub = a[5] === false ? "avg_exclude" : "avg_include";
    return { node: { op: "pool", in: x, sub, kernel, stride, padding: a[3] as number[] }, result };
  }
  if (c.name === "adaptiveAvgPool2d" && (a[1] as number[]).every((d) => d === 1))
    return { node: { op: "pool", in: x, sub: "global" }, result };
  return undefined;
}

/** Activations and residual additions into the convolution (or addition) before them (oneDNN post-ops). */
export function fuse(nodes: PlanNode[], outputs: Set<number>): { nodes: PlanNode[]; renames: Map<number, number> } {
  let list = nodes;
  const renames = new Map<number, number>();
  for (;;) {
    const uses = new Map<number, number>();
    for (const n of list) for (const u of [n.in, n.b, n.sum]) if (u !== undefined) uses.set(u, (uses.get(u) ?? 0) + 1);
    const producer = new Map(list.map((n) => [n.out, n]));
    const single = (id: number) => uses.get(id) === 1 && !outputs.has(id);
    let alias: [number, number] | undefined;
    let drop: PlanNode | undefined;
    for (const n of list) {
      const p = producer.get(n.in);
      const bnRelu = p?.op === "batchnorm" && n.sub === "relu" && (p.post ?? []).length === 0;
      if (n.op === "eltwise" && p && (p.op === "conv" || p.op === "binary" || bnRelu) && single(n.in)) {
        p.post = [...(p.post ?? []), n.sub as string];
        [alias, drop] = [[n.out, p.out], n];
        break;
      }
      if (n.op === "binary" && n.sub === "add" && n.b !== undefined) {
        // the addend that is a convolution output read only here takes the other one as its sum post-op
        for (const [mine, other] of [
          [n.in, n.b],
          [n.b, n.in],
        ] as const) {
          const c = producer.get(mine);
          if (c?.op === "conv" && c.sum === undefined && (c.post ?? []).length === 0 && single(mine) && other < c.out) {
            c.sum = other;
            c.post = ["sum"];
            [alias, drop] = [[n.out, c.out], n];
            break;
          }
        }
        if (drop) break;
      }
    }
    if (!alias || !drop) return { nodes: list, renames };
    const [from, to] = alias;
    const rename = (id: number | undefined) => (id === from ? to : id);
    list = list
      .filter((n) => n !== drop)
      .map((n) => ({ ...n, in: rename(n.in) as number, b: rename(n.b), sum: rename(n.sum) }));
    if (outputs.has(from)) {
      outputs.delete(from);
      outputs.add(to);
    }
    renames.set(from, to);
  }
}

/** Value ids renumbered in node order (the native plan takes them dense and in order). */
export function renumber(nodes: PlanNode[]): { nodes: PlanNode[]; map: Map<number, number> } {
  const map = new Map<number, number>([[0, 0]]);
  const out = nodes.map((n, i) => {
    map.set(n.out, i + 1);
    const r = (id: number | undefined) => (id === undefined ? undefined : map.get(id));
    return { ...n, in: r(n.in) as number, b: r(n.b), sum: r(n.sum), out: i + 1 };
  });
  return { nodes: out, map };
}
