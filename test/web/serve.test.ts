// `budgetnet serve`'s HTTP side: the fixed file table with the right MIME types, no path outside it
// (traversal in every spelling), loopback only, Host and method checks, and the command itself
// run as a process: it exports the run's model, serves it, and stops cleanly on Ctrl-C (SIGINT).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { createModel } from "../../src";
import { parseArgs, UsageError } from "../../src/cli/args";
import { isLoopback, serveCommand, startWebServer, type WebServer } from "../../src/cli/serve";
import { readOnnx } from "../../src/export/onnx";
import { saveSafetensors } from "../../src/export/safetensors";
import { checkNoLeaks, tempDir } from "../helpers";

checkNoLeaks();

const ROOT = path.join(__dirname, "..", "..", "..");
const MODEL_BYTES = Buffer.from("stand-in model bytes: the server does not read them");
let server: WebServer;
let port = 0;

interface Reply {
  status: number;
  type: string;
  length: number;
  body: Buffer;
}

/** One request with the path sent exactly as given (fetch would normalize "..", this does not). */
function request(rawPath: string, opts: { method?: string; host?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers = { Host: opts.host ?? `127.0.0.1:${port}` };
    const req = http.request(
      { host: "127.0.0.1", port, path: rawPath, method: opts.method ?? "GET", headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers["content-type"] ?? ""),
            length: Number(res.headers["content-length"]),
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

before(async () => {
  const modelFile = path.join(tempDir(), "model.onnx");
  fs.writeFileSync(modelFile, MODEL_BYTES);
  server = await startWebServer({ modelFile, port: 0 });
  port = Number(new URL(server.url).port);
});

after(() => server.close());

test("serves the page, the model and onnxruntime-web with the right MIME types", async () => {
  const cases: [string, string, string][] = [
    ["/", "text/html; charset=utf-8", path.join(ROOT, "examples/web/index.html")],
    ["/app.mjs", "text/javascript; charset=utf-8", path.join(ROOT, "examples/web/app.mjs")],
    ["/style.css", "text/css; charset=utf-8", path.join(ROOT, "examples/web/style.css")],
    ["/ort/ort.wasm.min.js", "text/javascript; charset=utf-8", require.resolve("onnxruntime-web/wasm")],
    [
      "/ort/ort-wasm-simd-threaded.wasm",
      "application/wasm",
      require.resolve("onnxruntime-web/ort-wasm-simd-threaded.wasm"),
    ],
  ];
  for (const [url, type, file] of cases) {
    const r = await request(url);
    assert.equal(r.status, 200, url);
    assert.equal(r.type, type, url);
    assert.ok(r.body.equals(fs.readFileSync(file)), `${url} serves ${file}`);
    assert.equal(r.length, r.body.length);
  }
  const wasm = await request("/ort/ort-wasm-simd-threaded.wasm");
  assert.deepEqual([...wasm.body.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d], "a WebAssembly module starts with \\0asm");
  const model = await request("/model.onnx?v=1");
  assert.equal(model.type, "application/octet-stream");
  assert.ok(model.body.equals(MODEL_BYTES));
  const head = await request("/model.onnx", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.length, MODEL_BYTES.length);
  assert.equal(head.body.length, 0);
});

test("no request path reaches a file outside the table (directory traversal)", async () => {
  const secrets = [fs.readFileSync(path.join(ROOT, "package.json")).subarray(0, 40), Buffer.from("root:")];
  const attempts = [
    "/../package.json",
    "/../../../../../../etc/passwd",
    "/ort/../../package.json",
    "/ort/..%2f..%2fpackage.json",
    "/ort/%2e%2e/%2e%2e/package.json",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/..%5c..%5cpackage.json",
    "/ort/..\\..\\package.json",
    "//etc/passwd",
    "/model.onnx/../../package.json",
    "/examples/web/index.html",
    "/ort/ort.all.js",
    "/ort/",
    "/index.html%00.png",
    "/.git/config",
  ];
  for (const p of attempts) {
    const r = await request(p);
    assert.equal(r.status, 404, `${p} gave ${r.status}`);
    for (const s of secrets) assert.ok(!r.body.includes(s), `${p} leaked file contents`);
  }
});

test("refuses other methods, foreign Host headers and non-loopback addresses", async () => {
  const post = await request("/", { method: "POST" });
  assert.equal(post.status, 405);
  const rebound = await request("/", { host: `attacker.example:${port}` });
  assert.equal(rebound.status, 403);
  assert.equal((await request("/", { host: `localhost:${port}` })).status, 200);

  for (const host of ["0.0.0.0", "192.168.1.10", "::", "example.com"]) {
    assert.equal(isLoopback(host), false, host);
    await assert.rejects(startWebServer({ modelFile: __filename, host }), UsageError);
    await assert.rejects(
      Promise.resolve().then(() => serveCommand.run(parseArgs(["--run", ".", "--host", host], serveCommand))),
      /loopback only/,
    );
  }
  for (const host of ["127.0.0.1", "127.1.2.3", "::1", "localhost"]) assert.equal(isLoopback(host), true, host);
  await assert.rejects(startWebServer({ modelFile: __filename, port: 70000 }), /--port must be an integer/);
  await assert.rejects(startWebServer({ modelFile: __filename, port }), /is in use/);
});

test("budgetnet serve exports the run's model, serves it, and stops on Ctrl-C", async () => {
  const run = tempDir();
  const options = { numClasses: 10, inChannels: 1 };
  const model = createModel("resnet20", options);
  const classNames = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
  const config = {
    model: { name: "resnet20", options },
    data: { classNames, mean: [0.25], std: [0.5], imageShape: [1, 28, 28], numClasses: 10 },
  };
  fs.writeFileSync(path.join(run, "config.json"), JSON.stringify(config));
  saveSafetensors(path.join(run, "model.safetensors"), model.stateDict());
  const parameters = model.numParameters();
  model.dispose();

  const tmp = tempDir(); // the command's temp folder goes here, so its removal can be checked
  const child = spawn(process.execPath, [path.join(ROOT, "bin/budgetnet.js"), "serve", "--run", run, "--port", "0"], {
    env: { ...process.env, TMPDIR: tmp, BUDGETNET_THREADS: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr.on("data", (c: Buffer) => {
    err += c;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start in 60 s: ${out}${err}`)), 60_000);
    child.stdout.on("data", (c: Buffer) => {
      out += c;
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    });
    child.on("exit", () => reject(new Error(`serve exited early: ${out}${err}`)));
  });
  try {
    assert.match(out, new RegExp(`serving resnet20 \\(${parameters.toLocaleString("en-US")} parameters`));
    assert.equal(fs.readdirSync(tmp).length, 1, "the exported model lives in one temp folder");
    const res = await fetch(new URL("model.onnx", url));
    assert.equal(res.status, 200);
    const onnx = readOnnx(new Uint8Array(await res.arrayBuffer()), "model.onnx");
    assert.deepEqual(JSON.parse(onnx.metadata.class_names as string), classNames);
    assert.match(onnx.metadata.normalization as string, /^baked in/);
    assert.equal(onnx.metadata.parameters, String(parameters));
    assert.ok(!onnx.nodes.some((n) => n.opType === "BatchNormalization"), "BatchNorm is folded");
    assert.equal((await fetch(url)).headers.get("content-type"), "text/html; charset=utf-8");
  } finally {
    child.kill("SIGINT");
  }
  assert.equal(await exited, 0, err);
  assert.match(out, /stopped/);
  assert.deepEqual(fs.readdirSync(tmp), [], "the temp folder is removed");
});
