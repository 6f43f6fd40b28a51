// Errors raised by budgetnet. Native failures carry the op, the input shapes and libtorch's text.

/** A libtorch op failed. `op` names it, `shapes` lists its tensor inputs' shapes. */
export class NativeOpError extends Error {
  readonly op: string;
  readonly shapes: (number[] | "disposed")[];
  readonly torchMessage: string;

  constructor(op: string, shapes: (number[] | "disposed")[], torchMessage: string) {
    const shown = shapes.map((s) => (Array.isArray(s) ? `[${s.join(", ")}]` : s)).join(", ");
    super(`${op} failed on inputs ${shown || "(none)"}: ${torchMessage}`);
    this.name = "NativeOpError";
    this.op = op;
    this.shapes = shapes;
    this.torchMessage = torchMessage;
  }
}

/** An argument to a budgetnet function was out of range or of the wrong kind. */
export class ArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ArgumentError";
  }
}

export function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(describe).join(", ")}]`;
  if (v !== null && typeof v === "object" && "shape" in v) {
    const t = v as { shape: number[]; dtype?: string };
    return `Tensor(shape=[${t.shape.join(", ")}]${t.dtype ? `, dtype=${t.dtype}` : ""})`;
  }
  return String(v);
}
