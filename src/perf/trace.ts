// Where a step's time goes: the time per native function over one call of fn (through the
// native-call tracer, src/tensor/trace.ts) and libtorch's own operator profile, which also sees
// inside backward().
import { type ProfilerRow, profilerStart, profilerStop } from "../tensor/native_calls";
import { traceNative } from "../tensor/trace";

export interface OpProfileRow {
  name: string;
  calls: number;
  totalMs: number;
}

/** Total time per native function over one call of fn, largest first (a per-op profile). */
export function profileNative(fn: () => void): OpProfileRow[] {
  const rows = new Map<string, OpProfileRow>();
  traceNative(fn, (c) => {
    const r = rows.get(c.name) ?? { name: c.name, calls: 0, totalMs: 0 };
    r.calls++;
    r.totalMs += c.elapsedMs;
    rows.set(c.name, r);
  });
  return [...rows.values()].sort((a, b) => b.totalMs - a.totalMs);
}

export interface OperatorProfileRow {
  /** ATen operator or autograd node name (with input shapes when recorded). */
  name: string;
  calls: number;
  /** Wall time inside the operator, nested operators included (milliseconds). */
  totalMs: number;
  /** Wall time inside the operator minus the operators it called (milliseconds). */
  selfMs: number;
}

/**
 * libtorch's operator profile of one call of fn: every ATen operator and autograd backward
 * node it ran, largest self time first (the table torch.autograd.profiler prints). Unlike
 * profileNative it sees inside backward(). Not reentrant.
 */
export function profileOperators(fn: () => void, opts: { recordShapes?: boolean } = {}): OperatorProfileRow[] {
  profilerStart(opts.recordShapes ?? false);
  let rows: ProfilerRow[];
  try {
    fn();
  } finally {
    rows = profilerStop();
  }
  return rows.map((r) => ({ name: r.name, calls: r.calls, totalMs: r.totalUs / 1000, selfMs: r.selfUs / 1000 }));
}
