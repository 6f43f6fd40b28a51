// The `budgetnet` command: dispatches to one file per subcommand. To add one, import its
// CommandSpec and add it to COMMANDS. Global flags, handled here before any command: --version,
// and --require FILE (the user's module, loaded first, so its registerModel calls are seen).
import * as fs from "node:fs";
import * as path from "node:path";
import "../index"; // registers every model family and sets libtorch's thread count
import { DataNotFoundError } from "../data/dataset";
import { packageVersion, USER_MODULES_ENV } from "../paths";
import { ArgumentError, didYouMean } from "../tensor/errors";
import { buildInfo } from "../tensor/tensor";
import { ablateCommand } from "./ablate";
import { type CommandSpec, commandHelp, parseArgs, REQUIRE_HELP, UsageError } from "./args";
import { benchCommand } from "./bench";
import { dashboardCommand } from "./dashboard";
import { dataCommand, dataNotFoundMessage } from "./data";
import { evalCommand } from "./eval";
import { exportCommand } from "./export";
import { modelsCommand } from "./models";
import { plotCommand } from "./plot";
import { predictCommand } from "./predict";
import { quantizeCommand } from "./quantize";
import { searchCommand } from "./search";
import { serveCommand } from "./serve";
import { summaryCommand } from "./summary";
import { trainCommand } from "./train";
import { workerCommand } from "./worker";

export const COMMANDS: readonly CommandSpec[] = [
  modelsCommand,
  summaryCommand,
  trainCommand,
  searchCommand,
  ablateCommand,
  workerCommand,
  evalCommand,
  predictCommand,
  exportCommand,
  quantizeCommand,
  dataCommand,
  serveCommand,
  dashboardCommand,
  plotCommand,
  benchCommand,
];

function overview(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length), 4);
  return [
    "usage: budgetnet COMMAND [arguments] [flags]",
    "",
    "Design, train, evaluate and ship compact image classifiers.",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    `  ${"help".padEnd(w)}  this overview, or \`budgetnet help COMMAND\` for one command`,
    "",
    "global flags:",
    `  --require FILE  ${REQUIRE_HELP}`,
    "  --version, -V   print budgetnet's and libtorch's versions",
  ].join("\n");
}

function findCommand(name: string): CommandSpec {
  const cmd = COMMANDS.find((c) => c.name === name);
  if (cmd === undefined) {
    const names = [...COMMANDS.map((c) => c.name), "help"];
    throw new UsageError(`unknown command "${name}"${didYouMean(name, names)}. Commands: ${names.join(", ")}`);
  }
  return cmd;
}

/** argv without its `--require FILE` / `--require=FILE` pairs (before a `--`), and those files. */
export function takeRequires(argv: readonly string[]): { rest: string[]; modules: string[] } {
  const rest: string[] = [];
  const modules: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === "--require") {
      const file = argv[i + 1];
      if (file === undefined || file.startsWith("-"))
        throw new UsageError("--require needs a value: the module to load (a .js file or a package name).");
      modules.push(file);
      i++;
    } else if (arg.startsWith("--require=")) {
      const file = arg.slice("--require=".length);
      if (file === "")
        throw new UsageError("--require needs a value: the module to load (a .js file or a package name).");
      modules.push(file);
    } else rest.push(arg);
  }
  return { rest, modules };
}

/**
 * Loads a --require module: a file (relative to the working folder) or, failing that, a package
 * resolved from the working folder, as `node --require` does. Its own errors keep their stack
 * under BUDGETNET_DEBUG=1.
 */
function loadUserModule(spec: string): string {
  const file = path.resolve(spec);
  let target: string;
  if (fs.existsSync(file)) target = file;
  else {
    try {
      target = require.resolve(spec, { paths: [process.cwd()] });
    } catch {
      throw new ArgumentError(
        `--require ${spec}: no such file (${file}), nor a package by that name installed here. Give the path of your module, e.g. --require ./my-models.js`,
      );
    }
  }
  try {
    require(target);
    return target;
  } catch (e) {
    const err = e as Error & { code?: string };
    const hint =
      err.code === "ERR_REQUIRE_ESM"
        ? ' (an ES module: use Node >= 20.19, or write the module as CommonJS: require("budgetnet"))'
        : "";
    const wrapped = new Error(`--require ${spec} failed while loading: ${err.message}${hint}`);
    wrapped.stack = `${wrapped.message}\n${err.stack ?? ""}`;
    throw wrapped;
  }
}

function versionText(): string {
  const info = buildInfo();
  return `budgetnet ${packageVersion()} (libtorch ${info.torchVersion}${info.cuda ? ", CUDA" : ""}, Node ${process.version})`;
}

/** Runs the command line (without node and the script) and returns the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  let cmd: CommandSpec | undefined;
  try {
    const { rest, modules } = takeRequires(argv);
    const [name, ...args] = rest;
    if (name === "--version" || name === "-V") {
      process.stdout.write(`${versionText()}\n`);
      return 0;
    }
    const loaded = modules.map(loadUserModule);
    // the processes a command starts (search and ablate trials, a worker's trials) load them too
    if (loaded.length > 0)
      process.env[USER_MODULES_ENV] = [...(process.env[USER_MODULES_ENV] ?? "").split(path.delimiter), ...loaded]
        .filter((f) => f !== "")
        .join(path.delimiter);
    if (name === undefined || name === "help" || name === "--help" || name === "-h") {
      const topic = name === "help" ? args[0] : undefined;
      process.stdout.write(`${topic === undefined ? overview() : commandHelp(findCommand(topic))}\n`);
      return 0;
    }
    if (name.startsWith("-"))
      throw new UsageError(
        `${name} before a command: give the command first (budgetnet COMMAND [flags]); global flags are --require FILE and --version`,
      );
    cmd = findCommand(name);
    const parsed = parseArgs(args, cmd);
    if (parsed.help) {
      process.stdout.write(`${commandHelp(cmd)}\n`);
      return 0;
    }
    return await cmd.run(parsed);
  } catch (err) {
    const where = `budgetnet${cmd ? ` ${cmd.name}` : ""}`;
    if (err instanceof UsageError) {
      process.stderr.write(
        `budgetnet: ${err.message}\n${cmd ? `\n${commandHelp(cmd)}\n` : "run `budgetnet help` for the commands\n"}`,
      );
      return 2;
    }
    if (err instanceof DataNotFoundError) {
      process.stderr.write(`${where}: ${dataNotFoundMessage(err)}\n`);
      return 2;
    }
    if (err instanceof ArgumentError) {
      process.stderr.write(`${where}: ${err.message}\n`);
      return 2;
    }
    const e = err as Error;
    process.stderr.write(`${where}: ${process.env.BUDGETNET_DEBUG ? (e.stack ?? e.message) : e.message}\n`);
    return 1;
  }
}
