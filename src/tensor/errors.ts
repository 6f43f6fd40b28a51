// Errors raised by budgetnet. Native failures carry the op, the input shapes and libtorch's text.

/** A libtorch op failed. `op` names it, `shapes` lists its tensor inputs' shapes. */
export class NativeOpError extends Error {
  readonly op: string;
  readonly shapes: (number[] | "disposed")[];
  readonly torchMessage: string;

  constructor(op: string, shapes: (number[] | "disposed")[], torchMessage: string) {
    checkArg(typeof op === "string", "NativeOpError", "op must be the op's name as a string", "op", op);
    checkArg(
      Array.isArray(shapes) && shapes.every((s) => Array.isArray(s) || s === "disposed"),
      "NativeOpError",
      'shapes must be an array holding a shape array or "disposed" per input',
      "shapes",
      shapes,
    );
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

/** A short, never-throwing rendering of any value for "Received: name=..." (V8 throws on String(v) for some). */
export function describe(v: unknown, depth = 0): string {
  try {
    if (typeof v === "string") return JSON.stringify(v);
    if (typeof v === "symbol") return v.toString();
    if (typeof v === "bigint") return `${v}n`;
    if (typeof v === "function") return v.name ? `function ${v.name}` : "function";
    if (v === null || typeof v !== "object") return String(v);
    if (depth > 2 && Array.isArray(v)) return "[...]";
    if (Array.isArray(v)) {
      const shown = v.slice(0, 16).map((x) => describe(x, depth + 1));
      return `[${shown.join(", ")}${v.length > 16 ? `, ... (${v.length} items)` : ""}]`;
    }
    if ("shape" in v && Array.isArray((v as { shape: unknown }).shape)) {
      const t = v as { shape: number[]; dtype?: string };
      return `Tensor(shape=[${t.shape.join(", ")}]${t.dtype ? `, dtype=${t.dtype}` : ""})`;
    }
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/** A one-word kind for messages: "undefined", "null", "array", "number", "object", ... */
export function kindOf(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

/** Throws the Keras-form ArgumentError unless cond: "fn: what. Received: name=value". */
export function checkArg(cond: boolean, fn: string, what: string, name: string, received: unknown): void {
  if (!cond) throw new ArgumentError(`${fn}: ${what}. Received: ${name}=${describe(received)}`);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** An options object; undefined gives {} unless required. Anything else is an ArgumentError. */
export function optionsArg<T extends object>(opts: T | undefined, fn: string, name = "opts", example = ""): T {
  if (opts === undefined && !example) return {} as T;
  const hint = example ? ` such as ${example}` : "";
  checkArg(isPlainObject(opts), fn, `${name} must be an options object${hint}`, name, opts);
  return opts as T;
}

/** A function argument (the callback of scope, noGrad, ...). */
export function functionArg(f: unknown, fn: string, name = "fn"): void {
  checkArg(typeof f === "function", fn, `${name} must be a function`, name, f);
}

/** An array argument (or any iterable turned into one); the error says which kind was wanted. */
export function arrayArg<T>(v: unknown, fn: string, name: string, what: string): T[] {
  checkArg(Array.isArray(v), fn, `${name} must be an array of ${what}`, name, v);
  return v as T[];
}

/** Edit distance (insertions, deletions, substitutions, two swapped neighbours), case-insensitive. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  let before: number[] = [];
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const row = [i];
    for (let j = 1; j <= t.length; j++) {
      row[j] = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + (s[i - 1] === t[j - 1] ? 0 : 1),
      );
      // "mixpu" for "mixup": a transposition is one edit (Damerau)
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1])
        row[j] = Math.min(row[j] as number, (before[j - 2] as number) + 1);
    }
    before = prev;
    prev = row;
  }
  return prev[t.length] as number;
}

/**
 * ` (did you mean "resnet20"?)` when one known name is close to `given` (within a third of its
 * length, at least 1 edit; a differing separator or case counts as nothing), else "".
 */
export function didYouMean(given: string, known: readonly string[]): string {
  const norm = (x: string): string => x.toLowerCase().replace(/[-_.]/g, "");
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = norm(k) === norm(given) ? 0 : editDistance(norm(given), norm(k));
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  const limit = Math.max(1, Math.floor(given.length / 3));
  return best !== undefined && bestD <= limit ? ` (did you mean "${best}"?)` : "";
}
