// The dashboard's HTTP server: the page (examples/dashboard), uPlot, the in-browser classifier
// (examples/web and onnxruntime-web), the JSON API (api.ts) and the event stream (Server-Sent
// Events) that pushes new rows and points as the trainers write them.
//
// Safety: it listens on 127.0.0.1 unless told otherwise; answers only GET and HEAD; refuses a
// Host header that is not one of its own names (DNS rebinding); serves only a fixed table of
// files, built at start; names runs by ids looked up in the catalog, so no part of a URL becomes
// a file path; refuses any path with a dot-dot segment, a backslash or a NUL, encoded or not.
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { packageRoot } from "../paths";
import { type ApiContext, handleApi } from "./api";
import { Catalog } from "./catalog";
import { EventHub } from "./events";
import { JobRunner } from "./jobs";
import { reply, SECURITY_HEADERS } from "./respond";

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".wasm": "application/wasm",
  ".onnx": "application/octet-stream",
};

const ORT_FILES = [
  "ort.wasm.min.js",
  "ort.wasm.min.js.map",
  "ort-wasm-simd-threaded.mjs",
  "ort-wasm-simd-threaded.wasm",
];

export interface DashboardOptions {
  /** Folders to show (default ["runs"]). */
  roots: string[];
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Milliseconds between reads of the journals (default 1000). */
  pollMs?: number;
  /** Milliseconds between scans for new folders (default 3000). */
  rescanMs?: number;
  /**
   * Milliseconds of journal reading before the server answers (default 300): a larger tree is
   * served at once, its rows completed in the background ("reading" until then).
   */
  indexMs?: number;
}

export interface Dashboard {
  url: string;
  catalog: Catalog;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(host);
}

function resolveModuleFile(spec: string): string | undefined {
  try {
    return require.resolve(spec);
  } catch {
    return undefined;
  }
}

/** URL path -> file: the page, uPlot, the classifier page and onnxruntime-web. Nothing else. */
export function staticRoutes(): Map<string, string> {
  const routes = new Map<string, string>();
  const page = path.join(packageRoot(), "examples", "dashboard");
  if (!fs.existsSync(path.join(page, "index.html")))
    throw new Error(`${page}/index.html was not found; reinstall budgetnet.`);
  const addFolder = (dir: string, prefix: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }))
      if (e.isFile() && /^[\w-]+(\.[\w-]+)+$/.test(e.name)) routes.set(`${prefix}${e.name}`, path.join(dir, e.name));
  };
  addFolder(page, "/");
  routes.set("/", path.join(page, "index.html"));
  for (const f of ["uPlot.iife.min.js", "uPlot.min.css"]) {
    const file = resolveModuleFile(`uplot/dist/${f}`);
    if (file !== undefined) routes.set(`/vendor/${f}`, file);
  }
  const web = path.join(packageRoot(), "examples", "web");
  if (fs.existsSync(path.join(web, "index.html"))) {
    addFolder(web, "/infer/");
    routes.set("/infer/", path.join(web, "index.html"));
    const wasm = resolveModuleFile("onnxruntime-web/ort-wasm-simd-threaded.wasm");
    if (wasm !== undefined)
      for (const f of ORT_FILES)
        if (fs.existsSync(path.join(path.dirname(wasm), f)))
          routes.set(`/infer/ort/${f}`, path.join(path.dirname(wasm), f));
  }
  return routes;
}

/** A path that tries to leave the served table: dot-dot segments, backslashes, NULs, encoded or not. */
export function isTraversal(rawPath: string): boolean {
  let decoded = rawPath;
  // decode repeatedly: %252e%252e is %2e%2e once decoded, .. twice
  for (let i = 0; i < 3; i++) {
    try {
      const next = decodeURIComponent(decoded);
      if (next === decoded) break;
      decoded = next;
    } catch {
      return true; // malformed escapes are not ours
    }
  }
  return (
    decoded.includes("\\") || decoded.includes("\0") || decoded.split("/").some((seg) => seg === ".." || seg === ".")
  );
}

function sendFile(req: http.IncomingMessage, res: http.ServerResponse, file: string): void {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    reply(res, 404, "not found\n");
    return;
  }
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    "Content-Type": MIME[path.extname(file)] ?? "application/octet-stream",
    "Content-Length": size,
    "Cache-Control": "no-cache",
  });
  if (req.method === "HEAD") return void res.end();
  fs.createReadStream(file)
    .on("error", () => res.destroy())
    .pipe(res);
}

/** The Host header values this server answers to. */
function allowedHosts(host: string, port: number): Set<string> {
  const names = new Set(["127.0.0.1", "localhost", "[::1]"]);
  names.add(host.includes(":") ? `[${host}]` : host);
  if (!isLoopback(host)) {
    names.add(os.hostname());
    for (const list of Object.values(os.networkInterfaces()))
      for (const a of list ?? []) names.add(a.family === "IPv6" ? `[${a.address}]` : a.address);
  }
  return new Set([...names].map((n) => `${n}:${port}`.toLowerCase()));
}

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be an integer in [0, 65535] (0 picks a free one). Received: --port=${port}`);
  const routes = staticRoutes();
  const catalog = new Catalog(opts.roots.length > 0 ? opts.roots : ["runs"]);
  // journals read before the server answers: as many as fit in indexMs (all of a small tree),
  // the rest afterwards between requests (status "reading" until then)
  catalog.rescan({ defer: true });
  catalog.readPending(opts.indexMs ?? 300);
  catalog.poll();
  const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), "budgetnet-dashboard-"));
  const jobs = new JobRunner(tempDir);
  const hub = new EventHub(catalog, { pollMs: opts.pollMs ?? 1000, rescanMs: opts.rescanMs ?? 3000 });
  const ctx: ApiContext = { catalog, jobs, hub };
  let hosts = new Set<string>();
  const server = http.createServer((req, res) => {
    if (!hosts.has((req.headers.host ?? "").toLowerCase())) return reply(res, 403, "unexpected Host header\n");
    if (req.method !== "GET" && req.method !== "HEAD")
      return reply(res, 405, "the dashboard is read-only: GET and HEAD only\n", undefined, { Allow: "GET, HEAD" });
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const rawPath = q < 0 ? raw : raw.slice(0, q);
    if (isTraversal(rawPath)) return reply(res, 403, "refused: the path leaves the dashboard\n");
    if (rawPath.startsWith("/api/")) {
      const url = new URL(raw, "http://dashboard");
      return void handleApi(ctx, url, req, res).catch((e: Error) => {
        if (!res.headersSent) reply(res, 500, JSON.stringify({ error: e.message }), MIME[".json"]);
        else res.destroy();
      });
    }
    const file = routes.get(rawPath);
    if (file === undefined) return reply(res, 404, `not found: ${rawPath}\n`);
    sendFile(req, res, file);
  });
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
  hosts = allowedHosts(host, actual);
  hub.start();
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${actual}/`,
    catalog,
    close: async () => {
      hub.stop();
      jobs.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      fs.rmSync(tempDir, { recursive: true, force: true });
    },
  };
}
