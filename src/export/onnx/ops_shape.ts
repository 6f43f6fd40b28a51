// Shape and layout ops in ONNX: Reshape, Flatten, Transpose, Slice, Gather, Concat, Squeeze,
// Expand, Pad. The batch dimension stays symbolic: Reshape's 0 copies the input's dimension,
// Flatten keeps axis 0, Expand uses 1 where the input keeps its size, Slice ends run "to the end".
import type { NativeHandle } from "../../tensor/tensor";
import { attr, type GraphBuilder, isHandle, OnnxExportError } from "./graph";

export type Args = unknown[];
export type Mapper = (g: GraphBuilder, a: Args, out: unknown) => void;

export const h = (a: Args, i: number): NativeHandle => a[i] as NativeHandle;
export const n = (a: Args, i: number): number => a[i] as number;
export const ns = (a: Args, i: number): number[] => a[i] as number[];
/** Effectively "to the end" for Slice (ONNX clamps out-of-range ends). */
const FAR = Number.MAX_SAFE_INTEGER;

const norm = (d: number, rank: number): number => (d < 0 ? d + rank : d);

/** Ops that change nothing ONNX sees (layout, copies, eval-mode dropout): the output is the input. */
export function alias(g: GraphBuilder, a: Args, out: unknown): void {
  if (isHandle(out)) g.bind(out, g.input(a[0]));
}

/** Reshape keeping the batch symbolic: a target dim 0 equal to the input's dim 0 becomes 0 (copy). */
function reshape(g: GraphBuilder, x: NativeHandle, target: number[], out: unknown): void {
  const inShape = g.shape(x);
  const shape = [...target];
  if (shape.length > 0 && inShape.length > 0 && shape[0] === inShape[0]) shape[0] = 0;
  g.emit(out, "Reshape", [g.input(x), g.int64(shape)]);
}

export const SHAPE_MAPPERS: Record<string, Mapper> = {
  reshape: (g, a, out) => reshape(g, h(a, 0), ns(a, 1), out),
  view: (g, a, out) => reshape(g, h(a, 0), ns(a, 1), out),
  flatten: (g, a, out) => {
    const shape = g.shape(h(a, 0));
    const r = shape.length;
    const start = norm(n(a, 1), r);
    const end = norm(n(a, 2), r);
    if (start === 1 && end === r - 1) return g.emit(out, "Flatten", [g.input(a[0])], [attr.int("axis", 1)]);
    const target = [...Array.from({ length: start }, () => 0), -1, ...shape.slice(end + 1)];
    g.emit(out, "Reshape", [g.input(a[0]), g.int64(target)]);
  },
  permute: (g, a, out) => {
    const r = g.shape(h(a, 0)).length;
    g.emit(
      out,
      "Transpose",
      [g.input(a[0])],
      [
        attr.ints(
          "perm",
          ns(a, 1).map((d) => norm(d, r)),
        ),
      ],
    );
  },
  transpose: (g, a, out) => {
    const r = g.shape(h(a, 0)).length;
    const perm = Array.from({ length: r }, (_, i) => i);
    const d0 = norm(n(a, 1), r);
    const d1 = norm(n(a, 2), r);
    [perm[d0], perm[d1]] = [d1, d0];
    g.emit(out, "Transpose", [g.input(a[0])], [attr.ints("perm", perm)]);
  },
  slice: (g, a, out) => {
    const size = g.shape(h(a, 0))[n(a, 1)] as number;
    const end = n(a, 3) >= size ? FAR : n(a, 3);
    g.emit(out, "Slice", [g.input(a[0]), g.int64([n(a, 2)]), g.int64([end]), g.int64([n(a, 1)]), g.int64([n(a, 4)])]);
  },
  narrow: (g, a, out) =>
    g.emit(out, "Slice", [
      g.input(a[0]),
      g.int64([n(a, 2)]),
      g.int64([n(a, 2) + n(a, 3)]),
      g.int64([n(a, 1)]),
      g.int64([1]),
    ]),
  select: (g, a, out) => {
    const size = g.shape(h(a, 0))[n(a, 1)] as number;
    g.emit(out, "Gather", [g.input(a[0]), g.int64([norm(n(a, 2), size)], [])], [attr.int("axis", n(a, 1))]);
  },
  indexSelect: (g, a, out) => g.emit(out, "Gather", [g.input(a[0]), g.input(a[2])], [attr.int("axis", n(a, 1))]),
  gather: (g, a, out) => g.emit(out, "GatherElements", [g.input(a[0]), g.input(a[2])], [attr.int("axis", n(a, 1))]),
  cat: (g, a, out) => {
    const xs = a[0] as NativeHandle[];
    const r = g.shape(xs[0] as NativeHandle).length;
    g.emit(
      out,
      "Concat",
      xs.map((x) => g.input(x)),
      [attr.int("axis", norm(n(a, 1), r))],
    );
  },
  stack: (g, a, out) => {
    const xs = a[0] as NativeHandle[];
    const dim = norm(n(a, 1), g.shape(xs[0] as NativeHandle).length + 1);
    const axes = g.int64([dim]);
    const parts = xs.map((x) => g.node("Unsqueeze", [g.input(x), axes])[0] as string);
    g.emit(out, "Concat", parts, [attr.int("axis", dim)]);
  },
  squeeze: (g, a, out) => {
    const shape = g.shape(h(a, 0));
    const axes = a[1] === undefined ? shape.flatMap((d, i) => (d === 1 ? [i] : [])) : [norm(n(a, 1), shape.length)];
    if (axes.every((i) => shape[i] !== 1)) return alias(g, a, out);
    g.emit(out, "Squeeze", [g.input(a[0]), g.int64(axes.filter((i) => shape[i] === 1))]);
  },
  unsqueeze: (g, a, out) => {
    const r = g.shape(h(a, 0)).length;
    g.emit(out, "Unsqueeze", [g.input(a[0]), g.int64([norm(n(a, 1), r + 1)])]);
  },
  expand: (g, a, out) => {
    const inShape = g.shape(h(a, 0));
    const target = ns(a, 1);
    const lead = target.length - inShape.length;
    // 1 where the input keeps its own size, so a batch dimension stays whatever it is at run time
    const shape = target.map((d, i) => (i >= lead && (d === -1 || d === inShape[i - lead]) ? 1 : d));
    g.emit(out, "Expand", [g.input(a[0]), g.int64(shape)]);
  },
  flip: (g, a, out) => {
    const dims = ns(a, 1);
    g.emit(out, "Slice", [
      g.input(a[0]),
      g.int64(dims.map(() => -1)),
      g.int64(dims.map(() => -FAR)),
      g.int64(dims),
      g.int64(dims.map(() => -1)),
    ]);
  },
  pad: (g, a, out) => {
    const r = g.shape(h(a, 0)).length;
    const torchPads = ns(a, 1);
    const begins = new Array<number>(r).fill(0);
    const ends = new Array<number>(r).fill(0);
    // PyTorch lists (begin, end) pairs from the last dimension backwards
    for (let i = 0; i < torchPads.length / 2; i++) {
      begins[r - 1 - i] = torchPads[2 * i] as number;
      ends[r - 1 - i] = torchPads[2 * i + 1] as number;
    }
    const modes: Record<string, string> = { constant: "constant", reflect: "reflect", replicate: "edge" };
    const mode = modes[a[2] as string];
    if (mode === undefined)
      throw new OnnxExportError(`pad mode "${String(a[2])}" has no opset-17 form (in module "${g.where()}")`);
    const inputs = [g.input(a[0]), g.int64([...begins, ...ends])];
    if (mode === "constant") inputs.push(g.scalar(n(a, 3), g.dtype(h(a, 0))));
    g.emit(out, "Pad", inputs, [attr.string("mode", mode)]);
  },
};
