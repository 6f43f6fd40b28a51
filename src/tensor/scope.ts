// Deterministic memory: every tensor made inside scope(fn) is freed when fn returns, except
// what fn returns and what keep() marked. V8's finalizer is only the fallback (shared/DESIGN.md).
import { ArgumentError, functionArg } from "./errors";

/** What scope bookkeeping needs from a tensor (the Tensor class implements it). */
export interface Scoped {
  kept: boolean;
  dispose(): void;
  readonly isDisposed: boolean;
}

const stack: Scoped[][] = [];
let isTensor: (v: unknown) => v is Scoped = (_v): _v is Scoped => false;

/** Called by the Tensor module once, so scope.ts need not import it (no cycle). */
export function registerTensorCheck(check: (v: unknown) => v is Scoped): void {
  isTensor = check;
}

/** Records a new tensor in the innermost open scope. */
export function track(t: Scoped): void {
  const top = stack[stack.length - 1];
  if (top !== undefined) top.push(t);
}

function collect(value: unknown, out: Set<Scoped>, depth: number): void {
  if (depth > 8 || value === null || typeof value !== "object") return;
  if (isTensor(value)) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
    return;
  }
  if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

/**
 * Runs fn and frees every tensor created inside it, except the tensors it returns (directly,
 * or inside arrays, Maps and plain objects) and tensors marked with keep(). Returned tensors
 * belong to the enclosing scope afterwards. fn must be synchronous.
 */
export function scope<T>(fn: () => T): T {
  functionArg(fn, "scope");
  const created: Scoped[] = [];
  stack.push(created);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    stack.pop();
    for (const t of created) if (!t.kept) t.dispose();
    throw err;
  }
  stack.pop();
  if (result instanceof Promise) {
    for (const t of created) if (!t.kept) t.dispose();
    throw new ArgumentError(
      "scope(fn): fn returned a Promise. Scopes are synchronous; await outside the scope and open one scope per synchronous step.",
    );
  }
  const returned = new Set<Scoped>();
  collect(result, returned, 0);
  const parent = stack[stack.length - 1];
  for (const t of created) {
    if (t.kept) continue;
    if (returned.has(t)) parent?.push(t);
    else t.dispose();
  }
  return result;
}

/** Marks t so no scope frees it; the caller owns it and calls dispose() when done. */
export function keep<T extends Scoped>(t: T): T {
  t.kept = true;
  return t;
}
