// The live part: every pollMs the catalog reads what the trainers appended, and every page that
// listens on /api/events (Server-Sent Events) gets the changed table rows and, for each run whose
// curves some page opened, the new journal rows themselves (a few bytes a step, not a re-fetch).
// Every rescanMs the folders are walked again for new runs and studies. Journals not read yet (a
// large tree at start, or many new runs at once) are read by the indexer (indexer.ts), their
// rows pushed as they are ready.
import type * as http from "node:http";
import type { Catalog, RunEntry } from "./catalog";
import { Indexer } from "./indexer";
import { pointRows } from "./series";

interface Sent {
  generation: number;
  steps: number;
  epochs: number;
}

export class EventHub {
  private readonly clients = new Set<http.ServerResponse>();
  private readonly sent = new Map<string, Sent>();
  private timers: NodeJS.Timeout[] = [];
  private polling = false;
  private readonly indexer: Indexer;

  constructor(
    private readonly catalog: Catalog,
    private readonly opts: { pollMs: number; rescanMs: number },
  ) {
    this.indexer = new Indexer(catalog, (ids) =>
      this.send("runs", { rows: ids.map((id) => this.catalog.runs.get(id)?.row).filter((r) => r !== undefined) }),
    );
  }

  start(): void {
    this.timers.push(setInterval(() => this.poll(), this.opts.pollMs));
    this.timers.push(setInterval(() => this.rescan(), this.opts.rescanMs));
    this.timers.push(setInterval(() => this.broadcastRaw(": keep-alive\n\n"), 15_000));
    for (const t of this.timers) t.unref();
    this.indexer.kick();
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.indexer.close();
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  /** Opens an event stream on the response. */
  attach(req: http.IncomingMessage, res: http.ServerResponse, headers: Record<string, string>): void {
    res.writeHead(200, {
      ...headers,
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      Connection: "keep-alive",
    });
    res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ pollMs: this.opts.pollMs })}\n\n`);
    this.clients.add(res);
    req.on("close", () => this.clients.delete(res));
  }

  get listeners(): number {
    return this.clients.size;
  }

  /** The journal rows of a run already pushed, so a page that fetched a series knows where the stream continues. */
  markSent(r: RunEntry): Sent {
    const s = r.series;
    const sent = {
      generation: s?.generation ?? 0,
      steps: s?.columns.step.step.length ?? 0,
      epochs: s?.columns.epoch.epoch.length ?? 0,
    };
    const prev = this.sent.get(r.id);
    if (prev === undefined || prev.generation !== sent.generation) this.sent.set(r.id, sent);
    return this.sent.get(r.id) as Sent;
  }

  private send(event: string, data: unknown): void {
    this.broadcastRaw(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private broadcastRaw(text: string): void {
    for (const c of this.clients) c.write(text);
  }

  rescan(): void {
    if (this.catalog.rescan({ defer: true })) {
      this.catalog.poll();
      this.send("catalog", { runs: this.catalog.runs.size, studies: this.catalog.studies.size });
      this.indexer.kick();
    }
  }

  poll(): void {
    if (this.polling) return;
    this.polling = true;
    try {
      const changed = this.catalog.poll();
      if (changed.runs.length > 0)
        this.send("runs", {
          rows: changed.runs.map((id) => this.catalog.runs.get(id)?.row).filter((r) => r !== undefined),
        });
      if (changed.studies.length > 0) this.send("studies", { ids: changed.studies });
      for (const r of this.catalog.runs.values()) if (r.series !== null) this.pushPoints(r);
    } finally {
      this.polling = false;
    }
  }

  private pushPoints(r: RunEntry): void {
    const s = r.series;
    if (s === null) return;
    s.update();
    const was = this.sent.get(r.id) ?? { generation: -1, steps: 0, epochs: 0 };
    const c = s.columns;
    if (was.generation !== s.generation) {
      // the journal was rewritten (a resume trimmed it): pages fetch the run's curves again
      this.sent.set(r.id, { generation: s.generation, steps: c.step.step.length, epochs: c.epoch.epoch.length });
      if (was.generation !== -1) this.send("reset", { id: r.id, generation: s.generation });
      return;
    }
    if (c.step.step.length === was.steps && c.epoch.epoch.length === was.epochs) return;
    const rows = pointRows(c, r.config?.stepsPerEpoch ?? null, was.steps, was.epochs);
    this.sent.set(r.id, { generation: s.generation, steps: c.step.step.length, epochs: c.epoch.epoch.length });
    this.send("points", { id: r.id, generation: s.generation, ...rows });
  }
}
