// The dashboard's JSON API. Every run and study is named by its catalog id; an id that is not
// in the catalog is a 404, whatever it looks like, so no query reaches the file system.
//   /api/runs                                  the runs table and the studies
//   /api/run?id=                               one run: its row, config and files
//   /api/series?id=&metrics=a,b&x=step&points=N   curves, LTTB-downsampled to N points each
//   /api/series?ids=a,b&metrics=&x=&points=    the same for several runs in one request: { runs: [...] }
//   /api/group?ids=a,b&metrics=&x=&points=     a seed group: mean, min and max per step
//   /api/eval?id=&split=test                   confusion matrix, per-class accuracy, misclassified images
//   /api/model?id=                             per-layer summary and blocks
//   /api/onnx?id=                              the model as ONNX for the in-browser classifier
//   /api/study?id=                             a search or ablation study
//   /api/events                                Server-Sent Events (events.ts)
import * as fs from "node:fs";
import type * as http from "node:http";
import * as path from "node:path";
import type { Catalog, RunEntry } from "./catalog";
import type { EventHub } from "./events";
import type { JobRunner } from "./jobs";
import { reply } from "./respond";
import {
  downsample,
  extractSeries,
  groupSeries,
  isMetric,
  METRICS,
  type MetricName,
  X_AXES,
  type XAxis,
} from "./series";

export interface ApiContext {
  catalog: Catalog;
  jobs: JobRunner;
  hub: EventHub;
}

const JSON_TYPE = "application/json; charset=utf-8";
const MAX_POINTS = 20_000;
const MAX_GROUP = 64;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** NaN and infinities as null, so JSON.parse on the page never fails. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v));
}

function runOf(ctx: ApiContext, id: string | null): RunEntry {
  const r = id === null ? undefined : ctx.catalog.runs.get(id);
  if (r === undefined) throw new HttpError(404, `no run with id ${JSON.stringify(id)} in the dashboard's folders`);
  return r;
}

function metricsParam(url: URL): MetricName[] {
  const names = (url.searchParams.get("metrics") ?? "loss").split(",").filter((s) => s !== "");
  for (const m of names)
    if (!isMetric(m)) throw new HttpError(400, `unknown metric ${m}; known: ${Object.keys(METRICS).join(", ")}`);
  return names as MetricName[];
}

function axisParam(url: URL): XAxis {
  const x = url.searchParams.get("x") ?? "step";
  if (!(X_AXES as readonly string[]).includes(x)) throw new HttpError(400, `x must be one of ${X_AXES.join(", ")}`);
  return x as XAxis;
}

function pointsParam(url: URL): number {
  const n = Number(url.searchParams.get("points") ?? 2000);
  if (!Number.isInteger(n) || n < 3 || n > MAX_POINTS)
    throw new HttpError(400, `points must be an integer in [3, ${MAX_POINTS}]`);
  return n;
}

function listFiles(dir: string): { name: string; size: number; modified: string }[] {
  const out: { name: string; size: number; modified: string }[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!e.isFile()) continue;
    try {
      const st = fs.statSync(path.join(dir, e.name));
      out.push({ name: e.name, size: st.size, modified: st.mtime.toISOString() });
    } catch {
      // removed meanwhile
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

function seriesOf(ctx: ApiContext, r: RunEntry, metrics: MetricName[], axis: XAxis, points: number): unknown {
  const reader = ctx.catalog.series(r);
  const sent = ctx.hub.markSent(r);
  const spe = r.config?.stepsPerEpoch ?? null;
  const out: Record<string, unknown> = {};
  for (const m of metrics) out[m] = downsample(extractSeries(reader.columns, m, axis, spe), points);
  return {
    id: r.id,
    axis,
    generation: reader.generation,
    // rows up to these counts are in the curves; pushed rows continue from them
    rows: { steps: sent.steps, epochs: sent.epochs },
    series: out,
  };
}

function series(ctx: ApiContext, url: URL): unknown {
  const metrics = metricsParam(url);
  const axis = axisParam(url);
  const points = pointsParam(url);
  const many = url.searchParams.get("ids");
  if (many === null) return seriesOf(ctx, runOf(ctx, url.searchParams.get("id")), metrics, axis, points);
  // an overlay in one request: one round trip instead of one per run (a browser opens at most six)
  const ids = many.split(",").filter((s) => s !== "");
  if (ids.length === 0 || ids.length > MAX_GROUP) throw new HttpError(400, `ids must name 1 to ${MAX_GROUP} runs`);
  const runs = ids.map((id) => runOf(ctx, id));
  return { runs: runs.map((r) => seriesOf(ctx, r, metrics, axis, points)) };
}

function group(ctx: ApiContext, url: URL): unknown {
  const ids = (url.searchParams.get("ids") ?? "").split(",").filter((s) => s !== "");
  if (ids.length === 0 || ids.length > MAX_GROUP) throw new HttpError(400, `ids must name 1 to ${MAX_GROUP} runs`);
  const runs = ids.map((id) => runOf(ctx, id));
  const metrics = metricsParam(url);
  const axis = axisParam(url);
  const points = pointsParam(url);
  const members = runs.map((r) => ({
    c: ctx.catalog.series(r).columns,
    stepsPerEpoch: r.config?.stepsPerEpoch ?? null,
  }));
  const out: Record<string, unknown> = {};
  for (const m of metrics) out[m] = groupSeries(members, m, axis, points);
  return { ids, axis, series: out };
}

function study(ctx: ApiContext, url: URL): unknown {
  const id = url.searchParams.get("id");
  const s = id === null ? undefined : ctx.catalog.studies.get(id);
  if (s === undefined) throw new HttpError(404, `no study with id ${JSON.stringify(id)} in the dashboard's folders`);
  const view = s.view;
  if (view.kind === "search")
    return {
      id: s.id,
      ...view,
      trials: view.trials.map(({ dir, ...t }) => ({ ...t, run: ctx.catalog.runIdOfDir(dir) ?? null })),
    };
  return { id: s.id, ...view, runs: s.runs };
}

async function job(ctx: ApiContext, url: URL, kind: "eval" | "model"): Promise<unknown> {
  const r = runOf(ctx, url.searchParams.get("id"));
  const split = url.searchParams.get("split") ?? "test";
  if (kind === "eval" && split !== "test" && split !== "val") throw new HttpError(400, "split must be test or val");
  try {
    const result = await ctx.jobs.run(kind, r.id, r.dir, kind === "eval" ? split : "");
    if (kind === "eval" && split === "test") {
      const acc = (result as { accuracy?: unknown }).accuracy;
      if (typeof acc === "number") ctx.catalog.setEvaluatedTest(r.id, acc);
    }
    return result;
  } catch (e) {
    throw new HttpError(422, (e as Error).message);
  }
}

async function onnx(ctx: ApiContext, url: URL, res: http.ServerResponse): Promise<void> {
  const r = runOf(ctx, url.searchParams.get("id"));
  let file: string;
  try {
    file = ((await ctx.jobs.run("onnx", r.id, r.dir)) as { file: string }).file;
  } catch (e) {
    throw new HttpError(422, (e as Error).message);
  }
  const bytes = fs.readFileSync(file);
  res.writeHead(200, {
    "Content-Type": "application/octet-stream",
    "Content-Length": bytes.length,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "same-origin",
  });
  res.end(res.req.method === "HEAD" ? undefined : bytes);
}

export async function handleApi(
  ctx: ApiContext,
  url: URL,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  try {
    let body: unknown;
    switch (url.pathname) {
      case "/api/runs":
        body = {
          roots: ctx.catalog.roots,
          refused: ctx.catalog.refused.length,
          runs: [...ctx.catalog.runs.values()].map((r) => r.row),
          studies: [...ctx.catalog.studies.values()].map((s) => ({
            id: s.id,
            kind: s.kind,
            name: s.view.name,
            runs: s.runs.length,
            problems: s.view.problems,
          })),
        };
        break;
      case "/api/run": {
        const r = runOf(ctx, url.searchParams.get("id"));
        body = { row: r.row, config: r.config, files: listFiles(r.dir) };
        break;
      }
      case "/api/series":
        body = series(ctx, url);
        break;
      case "/api/group":
        body = group(ctx, url);
        break;
      case "/api/study":
        body = study(ctx, url);
        break;
      case "/api/eval":
        body = await job(ctx, url, "eval");
        break;
      case "/api/model":
        body = await job(ctx, url, "model");
        break;
      case "/api/onnx":
        return await onnx(ctx, url, res);
      case "/api/events":
        return ctx.hub.attach(req, res, { "X-Content-Type-Options": "nosniff" });
      default:
        throw new HttpError(404, `no API ${url.pathname}`);
    }
    reply(res, 200, toJson(body), JSON_TYPE);
  } catch (e) {
    if (!(e instanceof HttpError)) throw e;
    reply(res, e.status, toJson({ error: e.message }), JSON_TYPE);
  }
}
