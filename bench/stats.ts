// Statistics for the benchmarks: median, mean and spread live in src/analysis/stats.ts (the CLI's
// `budgetnet bench` uses them too); what only the benchmark reports need is here.
export { mean, median, spread } from "../src/analysis/stats";

/** a / b rounded to three decimals, as the reports print ratios. */
export function ratio(a: number, b: number): number {
  return Math.round((a / b) * 1000) / 1000;
}
