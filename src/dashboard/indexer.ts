// Reading the journals the catalog has not read yet (a large tree at start, or many new runs at
// once) without holding up requests: a worker thread (index_worker.ts) skims them, newest first,
// and the catalog adopts each reader where the worker stopped; the changed rows go to the pages
// about ten times a second. Where no worker can start, the same is done on this thread in
// slices of 10 ms.
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import type { Catalog } from "./catalog";
import type { MetricsSummary, TailState } from "./metrics_reader";

const BATCH = 32;
const FLUSH_MS = 100;

interface Snapshot {
  summary: MetricsSummary;
  tail: TailState;
}

export class Indexer {
  private worker: Worker | null = null;
  private failed = false;
  private busy = false;
  private timer: NodeJS.Timeout | null = null;
  private fresh: string[] = [];
  private lastFlush = 0;
  private closed = false;

  constructor(
    private readonly catalog: Catalog,
    private readonly onRows: (ids: string[]) => void,
  ) {}

  /** Starts reading whatever is pending (no-op while a batch is being read). */
  kick(): void {
    if (this.busy || this.closed || this.catalog.pendingCount === 0) return;
    const worker = this.ensureWorker();
    if (worker === null) {
      this.sliceOnThisThread();
      return;
    }
    const batch = this.catalog.nextPending(BATCH);
    if (batch.length === 0) return;
    this.busy = true;
    const byFile = new Map(batch.map((r) => [path.join(r.dir, "metrics.jsonl"), r.id]));
    const onMessage = (msg: { file?: string; snapshot?: Snapshot; done?: boolean }) => {
      if (msg.done === true) {
        worker.off("message", onMessage);
        this.busy = false;
        this.flush(true);
        this.kick();
        return;
      }
      const id = msg.file === undefined ? undefined : byFile.get(msg.file);
      if (id !== undefined && msg.snapshot !== undefined && this.catalog.adoptSummary(id, msg.snapshot))
        this.fresh.push(id);
      this.flush(false);
    };
    worker.on("message", onMessage);
    worker.postMessage({ files: [...byFile.keys()] });
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    void this.worker?.terminate();
    this.worker = null;
  }

  private flush(force: boolean): void {
    const now = performance.now();
    if (this.fresh.length === 0 || (!force && now - this.lastFlush < FLUSH_MS)) return;
    this.lastFlush = now;
    const ids = this.fresh;
    this.fresh = [];
    this.onRows(ids);
  }

  private ensureWorker(): Worker | null {
    if (this.worker !== null || this.failed) return this.worker;
    try {
      const w = new Worker(path.join(__dirname, "index_worker.js"));
      w.unref();
      w.on("error", () => {
        // the slices on this thread take over; pending runs stay pending
        this.failed = true;
        this.worker = null;
        this.busy = false;
        this.kick();
      });
      this.worker = w;
    } catch {
      this.failed = true;
    }
    return this.worker;
  }

  private sliceOnThisThread(): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.closed) return;
      const ids = this.catalog.readPending(10);
      if (ids.length > 0) this.onRows(ids);
      this.kick();
    }, 5);
  }
}
