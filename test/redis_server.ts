// A throwaway redis-server for tests: Debian's binary on 127.0.0.1, a port the OS picked, no
// persistence, in a temp folder; stop() ends it and waits for it.
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

export const REDIS_SERVER = process.env.BUDGETNET_REDIS_SERVER ?? "/usr/bin/redis-server";

/** Like the PyTorch peer (test/helpers.ts): under BUDGETNET_REQUIRE_PEERS=1 a missing redis-server fails. */
const REQUIRE_PEERS = process.env.BUDGETNET_REQUIRE_PEERS === "1";

export function haveRedisServer(): boolean {
  return fs.existsSync(REDIS_SERVER);
}

/** The `skip` option of a test that needs redis-server: false when it is here (or required), else why. */
export function redisSkip(): string | false {
  if (haveRedisServer() || REQUIRE_PEERS) return false;
  return `${REDIS_SERVER} is missing: install redis-server (apt-get install -y redis-server; BUDGETNET_REQUIRE_PEERS=1 makes this a failure)`;
}

export interface RedisServer {
  /** redis://127.0.0.1:PORT/0 */
  url: string;
  port: number;
  /** Ends the server (SIGTERM, SIGKILL after 5 s) and waits for it to exit. */
  stop(): Promise<void>;
}

/** A TCP port nothing listens on right now, as the OS hands them out. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** One PING over a raw socket: true when the server answers +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let answer = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("*1\r\n$4\r\nPING\r\n"));
    socket.on("data", (d) => {
      answer += d.toString();
      if (answer.includes("\r\n")) done(answer.startsWith("+PONG"));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

async function startOnce(port: number): Promise<RedisServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "budgetnet-redis-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir];
  const child = spawn(REDIS_SERVER, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (d) => {
    output += d.toString();
  });
  child.stderr?.on("data", (d) => {
    output += d.toString();
  });
  const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
  const killAtExit = () => child.kill("SIGKILL");
  process.on("exit", killAtExit);
  const stop = async () => {
    process.off("exit", killAtExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited(child);
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(
        `redis-server on port ${port} exited (${child.exitCode ?? child.signalCode}) before answering PING:\n${output}`,
      );
    }
    const failed = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(() => r(undefined), 50))]);
    if (failed) {
      await stop();
      throw new Error(
        `cannot run ${REDIS_SERVER}: ${failed.message}; install redis-server (apt-get install -y redis-server)`,
      );
    }
    if (await ping(port)) return { url: `redis://127.0.0.1:${port}/0`, port, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server on port ${port} did not answer PING within 10 s:\n${output}`);
    }
  }
}

/**
 * Starts redis-server on a free port and waits until it answers PING. Throws, saying what to
 * install, when redis-server is missing. A port taken between the OS's answer and redis-server's
 * bind is retried on another.
 */
export async function startRedisServer(): Promise<RedisServer> {
  if (!haveRedisServer())
    throw new Error(
      `${REDIS_SERVER} is missing: install redis-server (apt-get install -y redis-server), or set BUDGETNET_REDIS_SERVER`,
    );
  let lastError: unknown;
  for (let tries = 0; tries < 3; tries++) {
    try {
      return await startOnce(await freePort());
    } catch (err) {
      lastError = err;
      if (!/Address already in use/.test(String(err))) throw err;
    }
  }
  throw lastError;
}
