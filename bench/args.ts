// The benchmarks' flags, `npm run bench -- NAME [flags]`: read by the command line's own parser
// (src/cli/args.ts: `--flag value`, `--flag=value`, switches, integers and numbers checked,
// unknown flags listed), with lower bounds and a typed result on top. -h/--help prints them.
import { type FlagSpec, type FlagValues, parseArgs, UsageError } from "../src/cli/args";

export { UsageError };

export interface BenchFlag extends FlagSpec {
  /** Integers and numbers: the smallest value allowed. */
  min?: number;
}

/** Switches are false when absent; other flags are undefined when absent unless they have a default. */
export type BenchOptions<Flags extends Record<string, BenchFlag>> = FlagValues<Flags>;

/** `usage: npm run bench -- NAME [flags]` and one line per flag. */
export function benchHelp(name: string, flags: Record<string, BenchFlag>): string {
  const lines = [`usage: npm run bench -- ${name} [flags]`, "", "flags:"];
  for (const [flag, s] of Object.entries(flags)) {
    const left = s.type === "boolean" ? `--${flag}` : `--${flag} ${s.valueName ?? s.type.toUpperCase()}`;
    const def = s.default === undefined ? "" : ` (default ${String(s.default)})`;
    lines.push(`  ${left.padEnd(18)}${s.description}${def}`);
  }
  lines.push(`  ${"--help".padEnd(18)}this help`);
  return lines.join("\n");
}

/**
 * The flags of benchmark `name`, or undefined after printing its help (-h/--help). Bad input throws
 * UsageError saying which flag and what it takes; bench/run.ts prints it without a stack.
 */
export function parseBenchArgs<Flags extends Record<string, BenchFlag>>(
  name: string,
  flags: Flags,
  argv: readonly string[],
): BenchOptions<Flags> | undefined {
  const parsed = parseArgs(argv, { name: `bench ${name}`, flags, positionals: [] });
  if (parsed.help) {
    console.log(benchHelp(name, flags));
    return undefined;
  }
  const values: Record<string, unknown> = parsed.flags;
  for (const [flag, spec] of Object.entries(flags)) {
    const v = values[flag];
    if (spec.min !== undefined && typeof v === "number" && v < spec.min)
      throw new UsageError(`--${flag} must be at least ${spec.min}. Received: --${flag}=${v}`);
  }
  return parsed.flags;
}
