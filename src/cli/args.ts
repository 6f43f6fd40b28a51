// The command line's one argument parser: `--flag value`, `--flag=value`, boolean `--flag`
// (or `--flag=true|false`), `--` ends the flags, `-h`/`--help` asks for the command's help. A
// "list" flag may repeat (`--run a --run b`) and collects its values in order.
// Unknown flags are errors that suggest the closest known one and list them all.
import { didYouMean } from "../tensor/errors";

export type FlagType = "string" | "integer" | "number" | "boolean" | "list";
export type FlagValue = string | number | boolean | string[];

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
  /** Takes every remaining argument (must be the last positional). */
  variadic?: boolean;
}

type ValueOfType<T extends FlagType> = T extends "boolean"
  ? boolean
  : T extends "string"
    ? string
    : T extends "list"
      ? string[]
      : number;

/**
 * The parsed value of each declared flag, typed from its spec (declared `as const`, or through
 * defineCommand): switches are false when absent; other flags are undefined when absent unless
 * they have a default.
 */
export type FlagValues<Flags extends Record<string, FlagSpec>> = {
  [K in keyof Flags]: Flags[K]["type"] extends "boolean"
    ? boolean
    : Flags[K]["type"] extends "list"
      ? string[]
      : Flags[K] extends { default: FlagValue }
        ? ValueOfType<Flags[K]["type"]>
        : ValueOfType<Flags[K]["type"]> | undefined;
};

export interface CommandSpec<F extends Record<string, FlagSpec> = Record<string, FlagSpec>> {
  name: string;
  summary: string;
  flags: F;
  positionals: PositionalSpec[];
  /**
   * Unknown `--key value` pairs are collected into ParsedArgs.extra instead of failing (train's
   * recipe overrides); a function takes only the names it accepts (the rest stay unknown flags).
   */
  passthrough?: boolean | ((name: string) => boolean);
  /** Returns the process's exit status. */
  run(args: ParsedArgs<F>): number | Promise<number>;
}

export interface ParsedArgs<F extends Record<string, FlagSpec> = Record<string, FlagSpec>> {
  flags: FlagValues<F>;
  positionals: string[];
  /** Unknown flags of a passthrough command, by name without the dashes. */
  extra: Record<string, string>;
  help: boolean;
}

/**
 * A command whose run() sees its flags typed from their specs (`args.flags.out` is
 * `string | undefined`, a switch is a boolean); it still fits a `CommandSpec[]` table.
 */
export function defineCommand<const F extends Record<string, FlagSpec>>(spec: CommandSpec<F>): CommandSpec<F> {
  return spec;
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
    case "list":
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

export function parseArgs<F extends Record<string, FlagSpec>>(
  argv: readonly string[],
  cmd: Pick<CommandSpec<F>, "name" | "flags" | "positionals" | "passthrough">,
): ParsedArgs<F> {
  const flags: Record<string, FlagValue | undefined> = {};
  // an absent switch is false, so FlagValues can type it boolean
  for (const [name, spec] of Object.entries(cmd.flags))
    flags[name] = spec.type === "list" ? [] : (spec.default ?? (spec.type === "boolean" ? false : undefined));
  const set = (name: string, spec: FlagSpec, raw: string): void => {
    if (spec.type === "list") (flags[name] as string[]).push(raw);
    else flags[name] = convert(name, spec, raw);
  };
  const positionals: string[] = [];
  const extra: Record<string, string> = {};
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
    const passes = typeof cmd.passthrough === "function" ? cmd.passthrough(name) : cmd.passthrough === true;
    if (spec === undefined && passes && arg.startsWith("--") && name !== "") {
      const value = eq !== -1 ? arg.slice(eq + 1) : argv[i + 1];
      if (value === undefined) throw new UsageError(`--${name} needs a value.`);
      extra[name] = value;
      if (eq === -1) i++;
      continue;
    }
    if (spec === undefined) {
      const given = arg.slice(0, eq === -1 ? undefined : eq);
      const known = [...Object.keys(cmd.flags).map((f) => `--${f}`), "--help"];
      throw new UsageError(
        `unknown flag ${given} for \`${cmd.name}\`${didYouMean(given, known)}. Known flags: ${known.join(", ")}`,
      );
    }
    if (eq !== -1) set(name, spec, arg.slice(eq + 1));
    else if (spec.type === "boolean") flags[name] = true;
    else {
      const value = argv[i + 1];
      if (value === undefined) throw new UsageError(`--${name} needs a value (${spec.valueName ?? spec.type}).`);
      set(name, spec, value);
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
  const variadic = cmd.positionals[cmd.positionals.length - 1]?.variadic === true;
  if (!variadic && positionals.length > cmd.positionals.length)
    throw new UsageError(
      `\`${cmd.name}\` takes at most ${cmd.positionals.length} argument${cmd.positionals.length === 1 ? "" : "s"}. Received: ${positionals.join(" ")}`,
    );
  // every declared flag was set above from its spec and converted by its type
  return { flags: flags as FlagValues<F>, positionals, extra, help };
}

/** The one flag every command takes (src/cli/main.ts loads the modules before the command runs). */
export const REQUIRE_HELP =
  "load a module first (a .js file or package that registers models with registerModel); may repeat";

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
    const def = s.type === "list" ? " (may repeat)" : s.default === undefined ? "" : ` (default ${String(s.default)})`;
    return `  ${left.padEnd(24)}${s.description}${def}`;
  });
  lines.push(...entries, `  ${"--help".padEnd(24)}this help`);
  lines.push(`  ${"--require FILE".padEnd(24)}${REQUIRE_HELP}`);
  return lines.join("\n");
}
