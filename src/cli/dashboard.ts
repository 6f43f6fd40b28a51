// `budgetnet dashboard [DIR...] [--port N] [--host 127.0.0.1]`: the page over the run folders,
// search studies and ablation studies under DIR (default ./runs), live while runs train, until
// Ctrl-C. Read-only: nothing is written into the folders it shows.
import * as fs from "node:fs";
import * as os from "node:os";
import { isLoopback, startDashboard } from "../dashboard/server";
import { defineCommand, UsageError } from "./args";

export const dashboardCommand = defineCommand({
  name: "dashboard",
  summary:
    "Browse runs, learning curves, evaluations, models, search and ablation studies in the browser (live, read-only).",
  positionals: [
    {
      name: "DIR...",
      description: "folders holding run folders and studies (default ./runs)",
      optional: true,
      variadic: true,
    },
  ],
  flags: {
    port: { type: "integer", valueName: "N", description: "port to listen on (0 picks a free one)", default: 8050 },
    host: {
      type: "string",
      valueName: "ADDR",
      description: "address to listen on; anything but loopback lets other machines read your runs",
      default: "127.0.0.1",
    },
    "poll-ms": {
      type: "integer",
      valueName: "MS",
      description: "milliseconds between reads of the training journals",
      default: 1000,
    },
  },
  async run(args) {
    const roots = args.positionals.length > 0 ? args.positionals : ["runs"];
    const host = args.flags.host;
    const pollMs = args.flags["poll-ms"];
    if (!(pollMs >= 100 && pollMs <= 60_000))
      throw new UsageError(`--poll-ms must be in [100, 60000]. Received: --poll-ms=${pollMs}`);
    for (const r of roots)
      if (!fs.existsSync(r))
        process.stderr.write(`budgetnet dashboard: ${r} does not exist (yet); its runs will appear once it does.\n`);
    const dashboard = await startDashboard({ roots, host, port: args.flags.port, pollMs });
    if (!isLoopback(host))
      process.stderr.write(
        `budgetnet dashboard: warning: listening on ${host}, not loopback: anyone who can reach this machine on port ${new URL(dashboard.url).port} can read these runs (there is no login). Use --host 127.0.0.1 and an SSH tunnel to keep them private.\n`,
      );
    // listening before the address is printed: a Ctrl-C right after it still stops cleanly
    const stopped = new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        resolve();
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    const c = dashboard.catalog;
    const studies = [...c.studies.values()];
    const url = isLoopback(host) ? dashboard.url : dashboard.url.replace(/\/\/[^/]+:/, `//${os.hostname()}:`);
    process.stdout.write(
      `dashboard at ${url}\n` +
        `  ${c.runs.size} run folder(s), ${studies.filter((s) => s.kind === "search").length} search and ${studies.filter((s) => s.kind === "ablation").length} ablation stud(ies) under ${c.roots.join(", ")}\n` +
        (c.refused.length > 0
          ? `  skipped ${c.refused.length} link(s) leading outside these folders: ${c.refused.slice(0, 3).join(", ")}${c.refused.length > 3 ? ", ..." : ""}\n`
          : "") +
        "press Ctrl-C to stop\n",
    );
    await stopped;
    await dashboard.close();
    process.stdout.write("stopped\n");
    return 0;
  },
});
