// Summary statistics of timing samples, shared by `budgetnet bench` and the benchmarks in bench/
// (which import them through bench/stats.ts; src/ never imports bench/). Each gives NaN for an
// empty list, so a phase that took no samples reads as NaN in a report instead of stopping it.

/** The middle sample, or the mean of the two middle ones for an even count. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  return xs.reduce((sum, x) => sum + x, 0) / xs.length;
}

/** Largest over smallest sample: 1 when the samples agree; above ~1.25 the machine was busy. */
export function spread(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  return Math.max(...xs) / Math.min(...xs);
}
