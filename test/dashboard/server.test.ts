// The dashboard's server without a browser: the journal reader (half-written and rewritten
// journals), run status, studies, the event stream, and its safety (traversal, Host header,
// methods, links out of the folders, nothing written into them).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { RunSummaryReader, SeriesReader } from "../../src/dashboard/metrics_reader";
import { groupSeries, lttbIndices } from "../../src/dashboard/series";
import { type Dashboard, isTraversal, startDashboard } from "../../src/dashboard/server";
import { lockRunFolder } from "../../src/train/run_lock";
import { tempDir } from "../helpers";
import { fakeMetrics, snapshot, writeFakeAblation, writeFakeRun, writeFakeSearch } from "./fixtures";

let root = "";
let outside = "";
let dash: Dashboard;
let port = 0;

/** A raw GET (the path is sent exactly as given, no normalization), with an optional Host header. */
function get(
  rawPath: string,
  opts: { host?: string; method?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: rawPath,
        method: opts.method ?? "GET",
        headers: { host: opts.host ?? `127.0.0.1:${port}` },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

async function getJson<T>(p: string): Promise<T> {
  const r = await get(p);
  assert.equal(r.status, 200, `${p}: ${r.body}`);
  return JSON.parse(r.body) as T;
}

interface Row {
  id: string;
  status: string;
  why: string | null;
  problems: string[];
  bestValAccuracy: number | null;
  kind: string;
}

before(async () => {
  const base = tempDir("budgetnet-dashboard-");
  root = path.join(base, "runs");
  outside = path.join(base, "secret");
  writeFakeRun(path.join(root, "finished"), { finished: true, seed: 1 });
  writeFakeRun(path.join(root, "seed2"), { finished: true, seed: 2 });
  writeFakeRun(path.join(root, "stopped"), { epochsDone: 1 });
  writeFakeRun(path.join(root, "group", "blown"), { epochsDone: 1, diverge: true });
  writeFakeRun(path.join(root, "nan"), { epochsDone: 1 });
  fs.appendFileSync(
    path.join(root, "nan", "metrics.jsonl"),
    '{"time":"2025-01-01T01:00:00Z","type":"step","epoch":1,"step":150,"loss":null,"lr":0.1,"imagesPerSec":900}\n',
  );
  fs.mkdirSync(path.join(root, "corrupt"));
  fs.writeFileSync(path.join(root, "corrupt", "config.json"), '{"model": {"name": "resnet20", "opt');
  fs.writeFileSync(path.join(root, "corrupt", "metrics.jsonl"), "garbage line\n");
  writeFakeRun(path.join(root, "half"), { epochsDone: 1 });
  fs.appendFileSync(path.join(root, "half", "metrics.jsonl"), '{"time":"2025-01-01T01:00:00Z","type":"ep');
  fs.mkdirSync(path.join(root, "starting"));
  fs.writeFileSync(path.join(root, "starting", "run.lock"), "");
  writeFakeSearch(path.join(root, "search1"), [
    { params: 1e5, macs: 1e7, acc: 0.8 },
    { params: 3e5, macs: 4e7, acc: 0.9 },
    { params: 2e5, macs: 2e7, acc: null },
  ]);
  writeFakeAblation(path.join(root, "ablate-done"), true);
  writeFakeAblation(path.join(root, "ablate-new"), false);
  writeFakeRun(path.join(outside, "private-run"), { finished: true });
  fs.writeFileSync(path.join(outside, "password.txt"), "hunter2\n");
  fs.symlinkSync(outside, path.join(root, "link-out"));
  fs.symlinkSync(path.join(root, "finished"), path.join(root, "link-in"));
  dash = await startDashboard({ roots: [root], pollMs: 100, rescanMs: 200 });
  port = Number(new URL(dash.url).port);
});

after(async () => {
  await dash?.close();
});

test("the journal reader keeps a half-written last line pending and reads it once it is finished", () => {
  const dir = path.join(tempDir("budgetnet-reader-"), "run");
  fs.mkdirSync(dir);
  const file = path.join(dir, "metrics.jsonl");
  const lines = fakeMetrics({ epochs: 1, stepsPerEpoch: 20, logPerEpoch: 4 });
  fs.writeFileSync(file, `${lines.slice(0, 2).join("\n")}\n${(lines[2] as string).slice(0, 30)}`);
  const summary = new RunSummaryReader(file);
  const series = new SeriesReader(file);
  summary.update();
  series.update();
  assert.equal(series.columns.step.step.length, 2);
  assert.equal(summary.summary.badLines, 0, "a half line is not damage");
  assert.equal(summary.summary.pendingBytes, 30);
  fs.appendFileSync(file, `${(lines[2] as string).slice(30)}\n${lines.slice(3).join("\n")}\n`);
  assert.deepEqual(series.update(), { reset: false, steps: 2, epochs: 1 });
  summary.update();
  assert.equal(summary.summary.pendingBytes, 0);
  assert.equal(summary.summary.epochsDone, 1);
  assert.deepEqual(series.columns.step.step, [5, 10, 15, 20]);
});

test("a journal rewritten shorter (a resume trims it) is read again from the start", () => {
  const dir = tempDir("budgetnet-reader-");
  const file = path.join(dir, "metrics.jsonl");
  const lines = fakeMetrics({ epochs: 2, stepsPerEpoch: 10, logPerEpoch: 2 });
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
  const series = new SeriesReader(file);
  series.update();
  assert.equal(series.columns.epoch.epoch.length, 2);
  fs.writeFileSync(`${file}.tmp`, `${lines.slice(0, 3).join("\n")}\n`);
  fs.renameSync(`${file}.tmp`, file);
  assert.equal(series.update().reset, true);
  assert.equal(series.columns.epoch.epoch.length, 1);
  assert.equal(series.generation, 1);
});

test("LTTB keeps the first and last points and at most the asked number; seed groups give mean, min and max", () => {
  const x = Array.from({ length: 10_000 }, (_, i) => i);
  const y = x.map((i) => Math.sin(i / 300) + (i === 5000 ? 10 : 0));
  const idx = lttbIndices(x, y, 500);
  assert.equal(idx.length, 500);
  assert.equal(idx[0], 0);
  assert.equal(idx[499], 9999);
  assert.ok(idx.includes(5000), "the spike survives downsampling");
  const a = new SeriesReader(path.join(root, "finished", "metrics.jsonl"));
  const b = new SeriesReader(path.join(root, "seed2", "metrics.jsonl"));
  a.update();
  b.update();
  const g = groupSeries(
    [
      { c: a.columns, stepsPerEpoch: 100 },
      { c: b.columns, stepsPerEpoch: 100 },
    ],
    "val.accuracy",
    "epoch",
    100,
  );
  assert.deepEqual(g.x, [1, 2, 3]);
  for (let i = 0; i < 3; i++) {
    const [va, vb] = [a.columns.epoch.valAccuracy[i] as number, b.columns.epoch.valAccuracy[i] as number];
    assert.ok(Math.abs((g.mean[i] as number) - (va + vb) / 2) < 1e-12);
    assert.equal(g.lo[i], Math.min(va, vb));
    assert.equal(g.hi[i], Math.max(va, vb));
  }
});

test("the runs table shows each folder's status, corrupt and half-written ones as such", async () => {
  const { runs } = await getJson<{ runs: Row[] }>("/api/runs");
  const by = new Map(runs.map((r) => [r.id, r]));
  assert.equal(by.get("finished")?.status, "finished");
  assert.equal(by.get("stopped")?.status, "interrupted");
  assert.equal(by.get("group/blown")?.status, "diverged");
  assert.equal(by.get("nan")?.status, "diverged");
  assert.equal(by.get("corrupt")?.status, "corrupt");
  assert.match(by.get("corrupt")?.problems.join(" ") ?? "", /config\.json/);
  assert.equal(by.get("half")?.status, "interrupted");
  assert.match(by.get("half")?.problems.join(" ") ?? "", /half-written line/);
  assert.equal(by.get("starting")?.status, "empty");
  assert.equal(by.get("finished")?.bestValAccuracy, 0.71 + 0.16);
  // trials and cells are runs too
  assert.equal(runs.filter((r) => r.kind === "trial").length, 3);
  assert.equal(runs.filter((r) => r.kind === "cell").length, 16);
  assert.equal(by.get("search1/trials/t0002-r0")?.status, "diverged", "a trial that failed with NaN loss diverged");
});

test("a run whose trainer holds run.lock is running", async () => {
  const lock = lockRunFolder(path.join(root, "stopped"));
  try {
    await waitFor(
      async () =>
        (await getJson<{ runs: Row[] }>("/api/runs")).runs.find((r) => r.id === "stopped")?.status === "running",
    );
  } finally {
    lock.release();
  }
  await waitFor(
    async () =>
      (await getJson<{ runs: Row[] }>("/api/runs")).runs.find((r) => r.id === "stopped")?.status === "interrupted",
  );
});

test("traversal attempts get 403 or 404, plain, encoded, double-encoded and through run ids", async () => {
  const attempts = [
    "/../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%252e%252e/etc/passwd",
    "/infer/..%2f..%2fpackage.json",
    "/vendor/..\\..\\package.json",
    "/vendor/%5c..%5cpackage.json",
    "/%00/etc/passwd",
    "/api/run?id=../secret/private-run",
    "/api/series?id=%2e%2e%2fsecret%2fprivate-run&metrics=loss",
    "/api/eval?id=/etc",
    "/link-out/password.txt",
    "/package.json",
  ];
  for (const a of attempts) {
    const r = await get(a);
    assert.ok(r.status === 403 || r.status === 404, `${a} answered ${r.status}`);
    assert.doesNotMatch(r.body, /hunter2|"name": "budgetnet"/);
  }
  assert.equal(isTraversal("/a/%2E%2E/b"), true);
  assert.equal(isTraversal("/vendor/uPlot.min.css"), false);
});

test("links that lead outside the given folders are skipped; links inside are followed once", async () => {
  const body = await getJson<{ runs: Row[]; refused: number }>("/api/runs");
  assert.equal(body.refused, 1);
  assert.ok(!body.runs.some((r) => r.id.includes("private-run") || r.id.startsWith("link-out")));
  assert.equal(body.runs.filter((r) => r.id === "finished" || r.id === "link-in").length, 1);
});

test("a foreign Host header, and any method but GET and HEAD, are refused", async () => {
  assert.equal((await get("/api/runs", { host: "attacker.example:80" })).status, 403);
  assert.equal((await get("/", { host: `evil.example:${port}` })).status, 403);
  assert.equal((await get("/api/runs", { method: "POST" })).status, 405);
  assert.equal((await get("/api/runs", { method: "DELETE" })).status, 405);
  assert.equal((await get("/", { host: `localhost:${port}` })).status, 200);
  const page = await new Promise<http.IncomingMessage>((resolve) =>
    http.get({ host: "127.0.0.1", port, path: "/" }, (res) => {
      res.resume();
      resolve(res);
    }),
  );
  assert.match(String(page.headers["content-security-policy"]), /default-src 'self'/);
  assert.equal(page.headers["access-control-allow-origin"], undefined, "no other origin may read the API");
});

test("the search and ablation studies are found; an ablation without report.json says how to make one", async () => {
  const { studies } = await getJson<{ studies: { id: string; kind: string; runs: number }[] }>("/api/runs");
  assert.deepEqual(studies.map((s) => [s.id, s.kind, s.runs]).sort(), [
    ["ablate-done", "ablation", 8],
    ["ablate-new", "ablation", 8],
    ["search1", "search", 3],
  ]);
  const search = await getJson<{ trials: { id: number; run: string; valAccuracy: number | null; params: number }[] }>(
    "/api/study?id=search1",
  );
  assert.deepEqual(
    search.trials.map((t) => [t.id, t.run, t.valAccuracy, t.params]),
    [
      [0, "search1/trials/t0000-r0", 0.8, 1e5],
      [1, "search1/trials/t0001-r0", 0.9, 3e5],
      [2, "search1/trials/t0002-r0", null, 2e5],
    ],
  );
  const fresh = await getJson<{ report: unknown; reportMissing: string }>("/api/study?id=ablate-new");
  assert.equal(fresh.report, null);
  assert.match(fresh.reportMissing, /^no report yet — run budgetnet ablate report .*ablate-new$/);
  const done = await getJson<{ report: { cells: unknown[] } }>("/api/study?id=ablate-done");
  assert.equal(done.report.cells.length, 8);
});

test("the event stream pushes a growing journal's new rows and points", async () => {
  const dir = path.join(root, "live");
  const lines = fakeMetrics({ epochs: 2, stepsPerEpoch: 20, logPerEpoch: 4 });
  writeFakeRun(dir, { epochs: 2, stepsPerEpoch: 20 });
  fs.writeFileSync(path.join(dir, "metrics.jsonl"), `${lines.slice(0, 2).join("\n")}\n`);
  const events: { event: string; data: Record<string, unknown> }[] = [];
  const stream = await new Promise<http.IncomingMessage>((resolve) =>
    http.get({ host: "127.0.0.1", port, path: "/api/events" }, resolve),
  );
  let buf = "";
  stream.setEncoding("utf8").on("data", (d: string) => {
    buf += d;
    let end = buf.indexOf("\n\n");
    while (end >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) });
      end = buf.indexOf("\n\n");
    }
  });
  try {
    await waitFor(async () => (await get("/api/run?id=live")).status === 200);
    const first = await getJson<{ rows: { steps: number } }>("/api/series?id=live&metrics=loss&x=step");
    assert.equal(first.rows.steps, 2);
    fs.appendFileSync(path.join(dir, "metrics.jsonl"), `${lines.slice(2, 6).join("\n")}\n`);
    await waitFor(async () => events.some((e) => e.event === "points" && e.data.id === "live"));
    const points = events.find((e) => e.event === "points" && e.data.id === "live")?.data as {
      step: { from: number; rows: number[][] };
      epoch: { from: number; rows: number[][] };
    };
    assert.equal(points.step.from, 2);
    assert.deepEqual(
      points.step.rows.map((r) => r[0]),
      [15, 20, 25],
    );
    assert.equal(points.epoch.rows.length, 1);
    // the new run's row comes from the indexer's thread: its event may follow the points
    await waitFor(async () => events.some((e) => e.event === "runs" && JSON.stringify(e.data).includes('"id":"live"')));
  } finally {
    stream.destroy();
  }
});

test("nothing is written into the folders the dashboard shows", async () => {
  const before = snapshot(root);
  await getJson("/api/runs");
  await getJson("/api/series?id=finished&metrics=loss,val.accuracy&x=time");
  await getJson("/api/group?ids=finished,seed2&metrics=val.accuracy&x=epoch");
  await getJson("/api/study?id=search1");
  await new Promise((r) => setTimeout(r, 300)); // a few polls and scans
  const afterwards = snapshot(root);
  assert.deepEqual([...afterwards.entries()].sort(), [...before.entries()].sort());
});

test("a tree indexed after the server starts (status reading, then the indexer's rows) ends as one read at start", async () => {
  const tree = tempDir("budgetnet-dash-index-");
  try {
    for (let i = 0; i < 6; i++)
      writeFakeRun(path.join(tree, `r${i}`), { epochs: 3, stepsPerEpoch: 40, seed: i, finished: i % 2 === 0 });
    const rows = async (d: Dashboard) => {
      const body = (await (await fetch(`${d.url}api/runs`)).json()) as { runs: Row[] };
      return body.runs.sort((a, b) => a.id.localeCompare(b.id));
    };
    const eager = await startDashboard({ roots: [tree], indexMs: 60_000 });
    const lazy = await startDashboard({ roots: [tree], indexMs: 0 });
    // checked before this test yields: the indexer's results arrive as messages, later
    const states = [...lazy.catalog.runs.values()].map((r) => r.row.status);
    try {
      assert.deepEqual(
        states,
        Array(6).fill("reading"),
        "with indexMs 0 every journal is read after the server answers",
      );
      const expected = await rows(eager);
      assert.equal(expected.length, 6);
      assert.ok(expected.every((r) => r.status !== "reading"));
      const until = Date.now() + 10_000;
      let got = await rows(lazy);
      assert.equal(got.length, 6, "every run has a row at once");
      while (got.some((r) => r.status === "reading") && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 50));
        got = await rows(lazy);
      }
      assert.deepEqual(got, expected);
      // the adopted readers continue where the indexer stopped: an appended epoch counts once
      const more = fakeMetrics({ epochs: 4, stepsPerEpoch: 40, seed: 1 }, Date.parse("2025-01-01T00:00:00Z")).slice(
        fakeMetrics({ epochs: 3, stepsPerEpoch: 40, seed: 1 }).length,
      );
      fs.appendFileSync(path.join(tree, "r1", "metrics.jsonl"), `${more.join("\n")}\n`);
      lazy.catalog.poll();
      assert.equal(lazy.catalog.runs.get("r1")?.row.epochsDone, 4);
    } finally {
      await eager.close();
      await lazy.close();
    }
  } finally {
    fs.rmSync(tree, { recursive: true, force: true });
  }
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("timed out waiting for the dashboard");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `budgetnet dashboard ARGS` until it prints its address; then SIGTERM; its output and exit status. */
async function cliRun(args: string[]): Promise<{ out: string; err: string; status: number | null }> {
  const bin = path.join(__dirname, "..", "..", "..", "bin", "budgetnet.js");
  const child = spawn(process.execPath, [bin, "dashboard", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let [out, err, asked] = ["", "", false];
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
    if (!asked && out.includes("press Ctrl-C")) asked = child.kill("SIGTERM");
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  const status = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  return { out, err, status };
}

test("budgetnet dashboard binds 127.0.0.1 by default and warns when asked for another address", async () => {
  const plain = await cliRun([root, "--port", "0"]);
  assert.equal(plain.status, 0, plain.err);
  assert.match(plain.out, /^dashboard at http:\/\/127\.0\.0\.1:\d+\//);
  assert.match(plain.out, /runs? folder\(s\), 1 search and 2 ablation/);
  assert.match(plain.out, /skipped 1 link\(s\) leading outside these folders/);
  assert.match(plain.out, /stopped\n$/);
  assert.equal(plain.err, "");
  const open = await cliRun([root, "--port", "0", "--host", "0.0.0.0"]);
  assert.equal(open.status, 0, `exit status ${open.status}: ${open.err}`);
  assert.match(open.err, /warning: listening on 0\.0\.0\.0, not loopback: anyone who can reach this machine/);
});
