// Run folders written by hand for the dashboard's tests: a config.json like the trainer's and a
// metrics.jsonl of plausible curves, in any state (finished, interrupted, diverged, corrupt).
import * as fs from "node:fs";
import * as path from "node:path";

export interface FakeRun {
  model?: string;
  seed?: number;
  epochs?: number;
  stepsPerEpoch?: number;
  /** Epochs to journal (default all). */
  epochsDone?: number;
  /** Step lines per epoch. */
  logPerEpoch?: number;
  finished?: boolean;
  /** The last journaled loss blows up. */
  diverge?: boolean;
  lr?: number;
  name?: string;
}

export const CLASS_NAMES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

export function fakeConfig(o: FakeRun): Record<string, unknown> {
  const batchSize = 64;
  const steps = o.stepsPerEpoch ?? 100;
  return {
    recipe: {
      name: o.name ?? "fake",
      dataset: "fashion-mnist",
      model: o.model ?? "resnet20",
      modelOptions: {},
      epochs: o.epochs ?? 3,
      batchSize,
      seed: o.seed ?? 0,
      optimizer: { type: "sgd", lr: o.lr ?? 0.1, momentum: 0.9 },
    },
    model: { name: o.model ?? "resnet20", options: { numClasses: 10, inChannels: 1 } },
    parameters: 272_474,
    data: {
      dataset: "fashion-mnist",
      train: steps * batchSize,
      val: 1000,
      numClasses: 10,
      classNames: CLASS_NAMES,
      imageShape: [1, 28, 28],
      mean: [0.286],
      std: [0.353],
    },
    seed: o.seed ?? 0,
  };
}

/** The journal lines of a run as the trainer writes them. */
export function fakeMetrics(o: FakeRun, start = Date.parse("2025-01-01T00:00:00Z")): string[] {
  const epochs = o.epochsDone ?? o.epochs ?? 3;
  const steps = o.stepsPerEpoch ?? 100;
  const every = Math.max(1, Math.floor(steps / (o.logPerEpoch ?? 10)));
  const lines: string[] = [];
  let t = start;
  const wobble = ((o.seed ?? 0) % 7) * 0.01;
  for (let e = 0; e < epochs; e++) {
    for (let s = 1; s <= steps; s++) {
      const step = e * steps + s;
      t += 50;
      if (step % every !== 0) continue;
      const loss = 2.3 * Math.exp(-step / (steps * 1.5)) + 0.2 + wobble;
      lines.push(
        JSON.stringify({
          time: new Date(t).toISOString(),
          type: "step",
          epoch: e,
          step,
          loss,
          lr: o.lr ?? 0.1,
          imagesPerSec: 1000 + e,
        }),
      );
    }
    const valAccuracy = 0.7 + 0.08 * e + wobble;
    lines.push(
      JSON.stringify({
        time: new Date(t).toISOString(),
        type: "epoch",
        epoch: e,
        trainLoss: 0.6 - 0.1 * e,
        trainAccuracy: 0.75 + 0.07 * e,
        valLoss: 0.5 - 0.05 * e,
        valAccuracy,
        lr: o.lr ?? 0.1,
        imagesPerSec: 1000 + e,
        seconds: 5,
      }),
    );
  }
  if (o.diverge) {
    t += 50;
    lines.push(
      JSON.stringify({
        time: new Date(t).toISOString(),
        type: "step",
        epoch: epochs,
        step: epochs * steps + every,
        loss: 1e6,
        lr: 0.1,
        imagesPerSec: 1000,
      }),
    );
  }
  return lines;
}

export function writeFakeRun(dir: string, o: FakeRun = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "config.json"), `${JSON.stringify(fakeConfig(o), null, 2)}\n`);
  fs.writeFileSync(
    path.join(dir, "metrics.jsonl"),
    fakeMetrics(o)
      .map((l) => `${l}\n`)
      .join(""),
  );
  fs.writeFileSync(path.join(dir, "checkpoint.safetensors"), "");
  if (o.finished) fs.writeFileSync(path.join(dir, "model.safetensors"), "");
}

/** A search study folder as `budgetnet search` leaves it: study.json, the journal, trials/ run folders. */
export function writeFakeSearch(dir: string, trials: { params: number; macs: number; acc: number | null }[]): void {
  fs.mkdirSync(path.join(dir, "trials"), { recursive: true });
  const study = {
    version: 1,
    name: path.basename(dir),
    created: "2025-01-01T00:00:00.000Z",
    space: { name: "resnext", model: "resnet20" },
    spaceOrigin: "spaces/resnext.json",
    recipe: fakeConfig({}).recipe,
    strategy: "evolution",
    objectives: ["accuracy", "params"],
    budgets: { maxParams: 1e6 },
    rungs: [1],
  };
  fs.writeFileSync(path.join(dir, "study.json"), JSON.stringify(study, null, 2));
  const events: Record<string, unknown>[] = [{ event: "session", session: 1, elapsed: 0 }];
  trials.forEach((t, id) => {
    events.push({
      event: "trial",
      trial: id,
      point: { width: 16 + id },
      key: `k${id}`,
      rung: 0,
      resource: 1,
      cost: { params: t.params, macs: t.macs, method: "analytic" },
      rejected: {},
    });
    const run = path.join(dir, "trials", `t${String(id).padStart(4, "0")}-r0`);
    writeFakeRun(run, { seed: id, finished: t.acc !== null, epochsDone: 1, epochs: 1 });
    if (t.acc !== null)
      events.push({
        event: "result",
        trial: id,
        valAccuracy: t.acc,
        finalValAccuracy: t.acc,
        epochs: 1,
        steps: 100,
        seconds: 5,
        worker: "test",
      });
    else events.push({ event: "failure", trial: id, error: "the loss became NaN at epoch 1, step 3" });
  });
  fs.writeFileSync(
    path.join(dir, "journal.jsonl"),
    events.map((e) => `${JSON.stringify({ time: "2025-01-01T00:00:00Z", elapsed: 1, ...e })}\n`).join(""),
  );
}

/** An ablation study folder: ablate.json, cells/ run folders and, when given, report.json. */
export function writeFakeAblation(dir: string, withReport: boolean): void {
  fs.mkdirSync(path.join(dir, "cells"), { recursive: true });
  fs.writeFileSync(
    path.join(dir, "ablate.json"),
    JSON.stringify({ name: path.basename(dir), models: ["resnet20", "resnet32"], techniques: ["se", "mixup"] }),
  );
  const models = ["resnet20", "resnet32"];
  const rows = ["baseline", "+se", "+mixup", "+se+mixup"];
  for (const m of models)
    for (const [k, r] of rows.entries())
      writeFakeRun(path.join(dir, "cells", `${m}-${k}-s0`), { model: m, finished: true, name: `${m}${r}` });
  if (!withReport) return;
  const iv = (mean: number) => ({ mean, lo: mean - 0.004, hi: mean + 0.004, values: [mean - 0.002, mean + 0.002] });
  const report = {
    study: path.basename(dir),
    models,
    rows,
    metric: "valAccuracy",
    cells: models.flatMap((m, i) =>
      rows.map((r, k) => ({
        model: m,
        row: r,
        techniques: r === "baseline" ? [] : r.slice(1).split("+"),
        seeds: 2,
        val: iv(0.9 + 0.01 * i + 0.003 * k),
        test: null,
        seconds: 10,
        params: 272474,
        macs: 41e6,
      })),
    ),
    gains: models.flatMap((m, i) =>
      rows.slice(1).map((r, k) => ({
        model: m,
        row: r,
        val: { mean: 0.003 * (k + 1) - 0.002 * i, lo: -0.001, hi: 0.008 },
        test: null,
      })),
    ),
    correlation: {
      pearson: { r: 0.8, lo: 0.1, hi: 0.99 },
      spearman: { r: 0.5, lo: -0.5, hi: 1 },
      note: "3 techniques",
    },
  };
  fs.writeFileSync(path.join(dir, "report.json"), JSON.stringify(report, null, 2));
}

/** Every file under dir with its size and modification time, to show nothing was written. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const st = fs.statSync(p);
        out.set(p, `${st.size}:${st.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out;
}
