// `budgetnet quantize`'s flags: bad values are usage errors that name the flag, before any work.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseArgs, UsageError } from "../../src/cli/args";
import { quantizeCommand } from "../../src/cli/quantize";

const run = (argv: string[]) => quantizeCommand.run(parseArgs(argv, quantizeCommand));

test("quantize refuses bad flags with a usage error naming the flag", () => {
  const cases: [string[], RegExp][] = [
    [[], /--run DIR is required/],
    [["--run", "r", "--observer", "kl"], /--observer must be one of minmax, percentile, mse/],
    [["--run", "r", "--per-channel", "--per-tensor"], /not both/],
    [["--run", "r", "--percentile", "0"], /--percentile must be in \(0, 100\]/],
    [["--run", "r", "--calibration", "0"], /--calibration must be at least 1/],
    [["--run", "r", "--steps", "5"], /--steps applies only with --qat/],
    [["--run", "r", "--qat", "--lr", "2"], /--lr must be in \(0, 1\)/],
    [["--run", "r", "--weights", "last"], /--weights must be best or final/],
  ];
  for (const [argv, message] of cases)
    assert.throws(
      () => run(argv),
      (e: unknown) => e instanceof UsageError && message.test((e as Error).message),
      argv.join(" "),
    );
});
