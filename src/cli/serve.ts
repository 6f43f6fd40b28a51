// `budgetnet serve --run DIR [--port N] [--host 127.0.0.1]`: exports the run's model to ONNX (BatchNorm
// folded, normalization baked in, so the page feeds [0, 1] pixels) in a temp folder and serves the
// page in examples/web, the model and onnxruntime-web's WebAssembly build over loopback HTTP until
// Ctrl-C. Only a fixed table of files is served, so no request path can reach anything else.
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { saveOnnx } from "../export/onnx";
import { packageRoot } from "../paths";
import { defaultInt8Dir, loadInt8Model } from "../quant/engine";
import type { QuantSpec } from "../quant/spec";
import { loadRunModel, type WeightsChoice } from "../train/run";
import { defineCommand, UsageError } from "./args";

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".wasm": "application/wasm",
  ".onnx": "application/octet-stream",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

/** onnxruntime-web's CPU build: the script and the WebAssembly module (and its loader) it fetches. */
const ORT_FILES = [
  "ort.wasm.min.js",
  "ort.wasm.min.js.map",
  "ort-wasm-simd-threaded.mjs",
  "ort-wasm-simd-threaded.wasm",
];

export interface WebServer {
  url: string;
  close(): Promise<void>;
}

export interface WebServerOptions {
  /** The ONNX file served as /model.onnx. */
  modelFile: string;
  /** A loopback address (default 127.0.0.1). */
  host?: string;
  /** 0 picks a free port (default 0). */
  port?: number;
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(host);
}

function ortDistDir(): string {
  try {
    return path.dirname(require.resolve("onnxruntime-web/ort-wasm-simd-threaded.wasm"));
  } catch {
    throw new Error("onnxruntime-web is not installed; run `npm install` in the budgetnet folder.");
  }
}

/** URL path -> file on disk: the page's files, the model, onnxruntime-web. Nothing else is reachable. */
function routeTable(modelFile: string): Map<string, string> {
  const routes = new Map<string, string>();
  const web = path.join(packageRoot(), "examples", "web");
  if (!fs.existsSync(path.join(web, "index.html")))
    throw new Error(`${web}/index.html was not found; reinstall budgetnet.`);
  for (const entry of fs.readdirSync(web, { withFileTypes: true }))
    if (entry.isFile() && /^[\w-]+(\.[\w-]+)+$/.test(entry.name))
      routes.set(`/${entry.name}`, path.join(web, entry.name));
  routes.set("/", path.join(web, "index.html"));
  const ort = ortDistDir();
  for (const name of ORT_FILES)
    if (fs.existsSync(path.join(ort, name))) routes.set(`/ort/${name}`, path.join(ort, name));
  routes.set("/model.onnx", modelFile);
  return routes;
}

function reply(res: http.ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
    ...extra,
  });
  res.end(text);
}

function handler(routes: Map<string, string>, allowedHosts: Set<string>): http.RequestListener {
  return (req, res) => {
    // A page elsewhere could point a hostname at 127.0.0.1 (DNS rebinding); only our own names pass.
    if (!allowedHosts.has((req.headers.host ?? "").toLowerCase())) return reply(res, 403, "unexpected Host header\n");
    if (req.method !== "GET" && req.method !== "HEAD")
      return reply(res, 405, "only GET and HEAD\n", { Allow: "GET, HEAD" });
    const rawPath = (req.url ?? "/").split("?")[0] as string;
    const file = routes.get(rawPath);
    if (file === undefined) return reply(res, 404, `not found: ${rawPath}\n`);
    let size: number;
    try {
      size = fs.statSync(file).size;
    } catch {
      return reply(res, 404, `not found: ${rawPath}\n`);
    }
    res.writeHead(200, {
      "Content-Type": MIME[path.extname(file)] ?? "application/octet-stream",
      "Content-Length": size,
      "X-Content-Type-Options": "nosniff",
      "Cache-Control": "no-cache",
      // Cross-origin isolation lets onnxruntime-web use its multi-threaded WebAssembly.
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Embedder-Policy": "require-corp",
    });
    if (req.method === "HEAD") return void res.end();
    fs.createReadStream(file)
      .on("error", () => res.destroy())
      .pipe(res);
  };
}

/** Serves the page, `modelFile` as /model.onnx and onnxruntime-web on a loopback address. */
export async function startWebServer(opts: WebServerOptions): Promise<WebServer> {
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? 0;
  if (!isLoopback(host))
    throw new UsageError(
      `serve listens on loopback only (the page is for this machine). Received: --host=${host}. Use 127.0.0.1, ::1 or localhost.`,
    );
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--port must be an integer in [0, 65535] (0 picks a free one). Received: --port=${port}`);
  if (!fs.existsSync(opts.modelFile)) throw new Error(`the model file ${opts.modelFile} does not exist.`);
  const routes = routeTable(opts.modelFile);
  const allowedHosts = new Set<string>();
  const server = http.createServer(handler(routes, allowedHosts));
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        e.code === "EADDRINUSE"
          ? new Error(`port ${port} on ${host} is in use; pick another with --port N (0 picks a free one).`)
          : e,
      ),
    );
    server.listen(port, host, resolve);
  });
  const actual = (server.address() as AddressInfo).port;
  const shown = host.includes(":") ? `[${host}]` : host;
  for (const name of [shown, "localhost", "127.0.0.1", "[::1]"]) allowedHosts.add(`${name}:${actual}`.toLowerCase());
  return {
    url: `http://${shown}:${actual}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Writes the run's model as ONNX for the page: BatchNorm folded, (x - mean) / std in the graph. */
export function exportForWeb(
  runDir: string,
  weights: WeightsChoice,
  file: string,
  int8Dir?: string,
): { name: string; parameters: number } {
  const loaded = loadRunModel(runDir, weights);
  const config = loaded.config;
  let model = loaded.model;
  let int8: QuantSpec | undefined;
  if (int8Dir !== undefined) {
    // the int8 quantization as QDQ: onnxruntime-web runs its int8 kernels in the browser
    loaded.model.dispose();
    ({ model, spec: int8 } = loadInt8Model(int8Dir));
  }
  try {
    const data = config.data;
    saveOnnx(file, model, {
      inputShape: data.imageShape,
      foldBn: int8 === undefined,
      int8,
      withNormalization: { mean: data.mean, std: data.std },
      classNames: data.classNames,
      metadata: {
        mean: JSON.stringify(data.mean),
        std: JSON.stringify(data.std),
        parameters: String(model.numParameters()),
        weights,
        ...(int8 !== undefined ? { quantization: `int8 ${int8.method}, ${int8.observer} observer` } : {}),
      },
    });
    return { name: config.model.name, parameters: model.numParameters() };
  } finally {
    model.dispose();
  }
}

export const serveCommand = defineCommand({
  name: "serve",
  summary: "Serve a web page that classifies images in the browser with the run's model (onnxruntime-web).",
  positionals: [],
  flags: {
    run: { type: "string", valueName: "DIR", description: "the run folder `budgetnet train` wrote (required)" },
    port: { type: "integer", valueName: "N", description: "port to listen on (0 picks a free one)", default: 8000 },
    host: { type: "string", valueName: "ADDR", description: "loopback address to listen on", default: "127.0.0.1" },
    weights: {
      type: "string",
      valueName: "WHICH",
      description: "best (by validation accuracy) or final",
      default: "best",
    },
    int8: {
      type: "boolean",
      description: "serve the int8 quantization `budgetnet quantize` wrote (RUN/int8, or --int8-dir) as QDQ ONNX",
    },
    "int8-dir": { type: "string", valueName: "DIR", description: "with --int8: the quantization's folder" },
  },
  async run(args) {
    const runDir = args.flags.run;
    if (runDir === undefined) throw new UsageError("--run DIR is required: the folder `budgetnet train` wrote.");
    const weights = args.flags.weights;
    if (weights !== "best" && weights !== "final")
      throw new UsageError(`--weights must be best or final. Received: --weights=${weights}`);
    const host = args.flags.host;
    if (!isLoopback(host))
      throw new UsageError(
        `serve listens on loopback only. Received: --host=${host}. Use 127.0.0.1, ::1 or localhost.`,
      );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "budgetnet-serve-"));
    try {
      const modelFile = path.join(dir, "model.onnx");
      if (args.flags["int8-dir"] !== undefined && args.flags.int8 !== true)
        throw new UsageError("--int8-dir applies only with --int8.");
      const int8Dir = args.flags.int8 === true ? (args.flags["int8-dir"] ?? defaultInt8Dir(runDir)) : undefined;
      const { name, parameters } = exportForWeb(runDir, weights, modelFile, int8Dir);
      const server = await startWebServer({ modelFile, host, port: args.flags.port });
      process.stdout.write(
        `serving ${name} (${parameters.toLocaleString("en-US")} parameters, ${fs.statSync(modelFile).size} bytes as ${int8Dir !== undefined ? "int8 QDQ " : ""}ONNX) at ${server.url}\n` +
          "press Ctrl-C to stop\n",
      );
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          resolve();
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
      await server.close();
      process.stdout.write("stopped\n");
      return 0;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
});
