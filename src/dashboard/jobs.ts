// Tensor work for the page (evaluation, model summary, ONNX export) runs in child processes
// (worker_main.ts), one at a time so a dashboard never takes more than one core's worth of
// libtorch threads from a trainer beside it. Results are cached in memory by the run and the
// stamp of the weights they came from, so a run that trains on gets evaluated again.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export type JobKind = "eval" | "model" | "onnx";

interface CacheEntry {
  stamp: string;
  result: Promise<unknown>;
}

function stampOf(dir: string, files: string[]): string {
  return files
    .map((f) => {
      try {
        const st = fs.statSync(path.join(dir, f));
        return `${f}:${st.size}:${st.mtimeMs}`;
      } catch {
        return `${f}:-`;
      }
    })
    .join("|");
}

/** Which files a job's answer depends on. */
const DEPENDS: Record<JobKind, string[]> = {
  eval: ["config.json", "best.safetensors", "model.safetensors"],
  model: ["config.json"],
  onnx: ["config.json", "best.safetensors", "model.safetensors"],
};

export class JobRunner {
  private readonly cache = new Map<string, CacheEntry>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly children = new Set<ReturnType<typeof spawn>>();
  private closed = false;

  constructor(
    /** The dashboard's own temporary folder (ONNX files go there, never into a run folder). */
    readonly tempDir: string,
    /** libtorch threads per job. */
    private readonly threads = 1,
  ) {}

  /** The job's result for the run (cached while the files it read are unchanged). */
  run(kind: JobKind, runId: string, runDir: string, arg = ""): Promise<unknown> {
    const key = `${kind}|${runId}|${arg}`;
    const stamp = stampOf(runDir, DEPENDS[kind]);
    const hit = this.cache.get(key);
    if (hit !== undefined && hit.stamp === stamp) return hit.result;
    const extra =
      kind === "onnx" ? path.join(this.tempDir, `model-${this.cache.size}-${Date.now()}.onnx`) : arg || undefined;
    const result = this.enqueue(() => this.spawnJob(kind, runDir, extra));
    this.cache.set(key, { stamp, result });
    // a failure is not kept: the next request tries again (the run may have written its weights)
    result.catch(() => {
      if (this.cache.get(key)?.result === result) this.cache.delete(key);
    });
    return result;
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private spawnJob(kind: JobKind, runDir: string, extra: string | undefined): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error("the dashboard is closing"));
    const script = path.join(__dirname, "worker_main.js");
    const args = [script, kind, runDir, ...(extra === undefined ? [] : [extra])];
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, args, {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, BUDGETNET_THREADS: String(this.threads) },
      });
      this.children.add(child);
      let out = "";
      let err = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        out += d;
      });
      child.stderr.setEncoding("utf8").on("data", (d: string) => {
        err += d;
      });
      child.on("error", reject);
      child.on("close", (code) => {
        this.children.delete(child);
        let parsed: unknown;
        try {
          parsed = JSON.parse(out.trim().split("\n").pop() ?? "");
        } catch {
          return reject(
            new Error(`the ${kind} job ended with status ${code}: ${err.trim().slice(-500) || "no output"}`),
          );
        }
        const error = (parsed as { error?: unknown }).error;
        if (typeof error === "string") return reject(new Error(error));
        resolve(parsed);
      });
    });
  }

  close(): void {
    this.closed = true;
    for (const c of this.children) c.kill("SIGKILL");
  }
}
