// The command line's one argument parser: `--flag value`, `--flag=value`, boolean `--flag`
// (or `--flag=true|false`), `--` ends the flags, `-h`/`--help` asks for the command's help.
// Unknown flags are errors that list the known ones.

export type FlagType = "string" | "integer" | "number" | "boolean";
export type FlagValue = string | number | boolean;

export interface FlagSpec {
  type: FlagType;
  description: string;
  /** Shown in the help as `--flag NAME`. */
  valueName?: string;
  default?: FlagValue;
}

export interface PositionalSpec {
  name: string;
  description: string;
  optional?: boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  flags: Record<string, FlagSpec>;
  positionals: PositionalSpec[];
  /** Returns the process's exit status. */
  run(args: ParsedArgs): number | Promise<number>;
}

export interface ParsedArgs {
  flags: Record<string, FlagValue | undefined>;
  positionals: string[];
  help: boolean;
}

/** Bad command-line input: printed with the command's usage, exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

function convert(name: string, spec: FlagSpec, raw: string): FlagValue {
  switch (spec.type) {
    case "string":
      return raw;
    case "boolean":
      if (raw === "true") return true;
      if (raw === "false") return false;
      throw new UsageError(
        `--${name} is a switch: give it alone, or as --${name}=true|false. Received: --${name}=${raw}`,
      );
    case "integer":
    case "number": {
      const v = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(v) || (spec.type === "integer" && !Number.isInteger(v)))
        throw new UsageError(
          `--${name} must be ${spec.type === "integer" ? "an integer" : "a number"}. Received: --${name}=${raw}`,
        );
      return v;
    }
  }
}

export function parseArgs(
  argv: readonly string[],
  cmd: Pick<CommandSpec, "name" | "flags" | "positionals">,
): ParsedArgs {
  const flags: Record<string, FlagValue | undefined> = {};
  for (const [name, spec] of Object.entries(cmd.flags)) flags[name] = spec.default;
  const positionals: string[] = [];
  let help = false;
  let onlyPositionals = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (onlyPositionals || !arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    if (arg === "--") {
      onlyPositionals = true;
      continue;
    }
    if (arg === "-h" || arg === "--help") {
      help = true;
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const spec = arg.startsWith("--") ? cmd.flags[name] : undefined;
    if (spec === undefined) {
      const known = Object.keys(cmd.flags).map((f) => `--${f}`);
      throw new UsageError(
        `unknown flag ${arg.slice(0, eq === -1 ? undefined : eq)} for \`${cmd.name}\`. Known flags: ${[...known, "--help"].join(", ")}`,
      );
    }
    if (eq !== -1) flags[name] = convert(name, spec, arg.slice(eq + 1));
    else if (spec.type === "boolean") flags[name] = true;
    else {
      const value = argv[i + 1];
      if (value === undefined) throw new UsageError(`--${name} needs a value (${spec.valueName ?? spec.type}).`);
      flags[name] = convert(name, spec, value);
      i++;
    }
  }
  const required = cmd.positionals.filter((p) => !p.optional).length;
  if (!help && positionals.length < required)
    throw new UsageError(
      `\`${cmd.name}\` needs ${cmd.positionals
        .filter((p) => !p.optional)
        .map((p) => p.name)
        .join(" ")}. Received: ${positionals.length} argument${positionals.length === 1 ? "" : "s"}`,
    );
  if (positionals.length > cmd.positionals.length)
    throw new UsageError(
      `\`${cmd.name}\` takes at most ${cmd.positionals.length} argument${cmd.positionals.length === 1 ? "" : "s"}. Received: ${positionals.join(" ")}`,
    );
  return { flags, positionals, help };
}

/** `budgetnet NAME ARGS [flags]` and one line per flag. */
export function commandHelp(cmd: Omit<CommandSpec, "run">): string {
  const args = cmd.positionals.map((p) => (p.optional ? `[${p.name}]` : p.name)).join(" ");
  const lines = [`usage: budgetnet ${cmd.name}${args ? ` ${args}` : ""} [flags]`, "", cmd.summary];
  if (cmd.positionals.length > 0) {
    lines.push("", "arguments:");
    for (const p of cmd.positionals) lines.push(`  ${p.name.padEnd(24)}${p.description}`);
  }
  lines.push("", "flags:");
  const entries = Object.entries(cmd.flags).map(([name, s]) => {
    const left = s.type === "boolean" ? `--${name}` : `--${name} ${s.valueName ?? s.type.toUpperCase()}`;
    const def = s.default === undefined ? "" : ` (default ${String(s.default)})`;
    return `  ${left.padEnd(24)}${s.description}${def}`;
  });
  lines.push(...entries, `  ${"--help".padEnd(24)}this help`);
  return lines.join("\n");
}
