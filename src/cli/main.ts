// The `budgetnet` command: dispatches to one file per subcommand. To add one, import its
// CommandSpec and add it to COMMANDS.
import "../index"; // registers every model family and sets libtorch's thread count
import { ArgumentError } from "../tensor/errors";
import { type CommandSpec, commandHelp, parseArgs, UsageError } from "./args";
import { benchCommand } from "./bench";
import { dataCommand } from "./data";
import { evalCommand } from "./eval";
import { exportCommand } from "./export";
import { modelsCommand } from "./models";
import { predictCommand } from "./predict";
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
  workerCommand,
  evalCommand,
  predictCommand,
  exportCommand,
  dataCommand,
  serveCommand,
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
  ].join("\n");
}

function findCommand(name: string): CommandSpec {
  const cmd = COMMANDS.find((c) => c.name === name);
  if (cmd === undefined)
    throw new UsageError(`unknown command "${name}". Commands: ${[...COMMANDS.map((c) => c.name), "help"].join(", ")}`);
  return cmd;
}

/** Runs the command line (without node and the script) and returns the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  let cmd: CommandSpec | undefined;
  try {
    if (name === undefined || name === "help" || name === "--help" || name === "-h") {
      const topic = name === "help" ? rest[0] : undefined;
      process.stdout.write(`${topic === undefined ? overview() : commandHelp(findCommand(topic))}\n`);
      return 0;
    }
    cmd = findCommand(name);
    const args = parseArgs(rest, cmd);
    if (args.help) {
      process.stdout.write(`${commandHelp(cmd)}\n`);
      return 0;
    }
    return await cmd.run(args);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(
        `budgetnet: ${err.message}\n${cmd ? `\n${commandHelp(cmd)}\n` : "run `budgetnet help` for the commands\n"}`,
      );
      return 2;
    }
    if (err instanceof ArgumentError) {
      process.stderr.write(`budgetnet ${cmd?.name ?? ""}: ${err.message}\n`);
      return 2;
    }
    const e = err as Error;
    process.stderr.write(
      `budgetnet ${cmd?.name ?? ""}: ${process.env.BUDGETNET_DEBUG ? (e.stack ?? e.message) : e.message}\n`,
    );
    return 1;
  }
}
