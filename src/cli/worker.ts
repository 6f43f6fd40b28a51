// `budgetnet worker --queue redis://HOST:PORT/DB`: takes trials of `budgetnet search --queue`
// studies off the Redis queue, on any machine that has budgetnet and the study's data set, and
// trains them one at a time. Ctrl-C finishes the running trial and stops; a second Ctrl-C stops
// at once (the trial goes back on the queue for another worker when its lock expires).
import * as os from "node:os";
import * as path from "node:path";
import { defineCommand, UsageError } from "./args";

export const workerCommand = defineCommand({
  name: "worker",
  summary: "Train trials of `budgetnet search --queue URL` studies from a Redis queue, one at a time, until Ctrl-C.",
  positionals: [],
  flags: {
    queue: { type: "string", valueName: "URL", description: "the Redis queue: redis://HOST:PORT/DB" },
    dir: {
      type: "string",
      valueName: "DIR",
      description: "where this worker keeps its trials' run folders",
      default: path.join("runs", "worker"),
    },
    threads: {
      type: "integer",
      valueName: "N",
      description: "libtorch threads per trial (default: BUDGETNET_THREADS, else one per core)",
    },
    "lock-seconds": {
      type: "integer",
      valueName: "S",
      description: "a trial whose worker stops renewing its lock this long is taken up by another worker",
      default: 30,
    },
  },
  async run(args) {
    const url = args.flags.queue;
    if (url === undefined)
      throw new UsageError("worker needs --queue redis://HOST:PORT/DB (the URL the search was started with)");
    const threads = args.flags.threads;
    if (threads !== undefined && threads < 1) throw new UsageError(`--threads must be >= 1. Received: ${threads}`);
    if (args.flags["lock-seconds"] < 2)
      throw new UsageError(`--lock-seconds must be >= 2. Received: ${args.flags["lock-seconds"]}`);
    const { runQueueWorker } = await import("../search/queue_executor");
    const handle = await runQueueWorker({ url, dir: args.flags.dir, threads, lockSeconds: args.flags["lock-seconds"] });
    process.stderr.write(
      `budgetnet: worker ${os.hostname()}:${process.pid} taking trials from ${url} into ${args.flags.dir}; Ctrl-C to stop\n`,
    );
    let signals = 0;
    const onSignal = (): void => {
      signals++;
      if (signals === 1) {
        process.stderr.write("budgetnet: finishing the running trial, then stopping (Ctrl-C again to stop now)\n");
        void handle.close();
      } else void handle.close({ force: true });
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    try {
      await handle.finished;
      return 0;
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  },
});
