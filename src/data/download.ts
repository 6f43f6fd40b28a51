// Downloads the official data set files, checked against their published MD5 checksums.
// Bytes go to <file>.part; an interrupted download resumes with an HTTP Range request; the
// finished, verified file is renamed into place, so a final file is always complete.
import { createHash, type Hash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import { ArgumentError } from "../tensor/errors";
import { dataHome } from "./paths";

export type DownloadName = "cifar10" | "cifar100" | "fashion-mnist" | "mnist";

interface Resource {
  baseUrl: string;
  /** file name -> MD5 published by the data set's authors (and used by torchvision). */
  files: Record<string, string>;
}

export const RESOURCES: Record<DownloadName, Resource> = {
  cifar10: {
    baseUrl: "https://www.cs.toronto.edu/~kriz/",
    files: { "cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530" },
  },
  cifar100: {
    baseUrl: "https://www.cs.toronto.edu/~kriz/",
    files: { "cifar-100-binary.tar.gz": "03b5dce01913d631647c71ecec9e9cb8" },
  },
  "fashion-mnist": {
    baseUrl: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    files: {
      "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
      "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
      "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
      "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
  },
  mnist: {
    // LeCun's own site refuses most downloads now; this is the mirror torchvision uses.
    baseUrl: "https://ossci-datasets.s3.amazonaws.com/mnist/",
    files: {
      "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
      "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
      "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
      "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
  },
};

export interface DownloadOptions {
  /** Target folder (default: $BUDGETNET_DATA/<name> or ~/.cache/budgetnet/<name>). */
  root?: string;
  /** Another server holding the same file names (a mirror). */
  baseUrl?: string;
  /** Override expected MD5s, by file name (for mirrors of other versions, and for tests). */
  checksums?: Record<string, string>;
  /** Fail when the server sends nothing for this long (default 60 s). */
  timeoutMs?: number;
  log?: (message: string) => void;
}

async function md5OfFile(file: string, hash: Hash = createHash("md5")): Promise<Hash> {
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash;
}

/** Socket errors that mean the host could not be reached at all, and what each one says. */
const UNREACHABLE: Record<string, string> = {
  ENOTFOUND: "its name could not be resolved",
  EAI_AGAIN: "its name could not be resolved",
  ENETUNREACH: "the network is unreachable",
  EHOSTUNREACH: "there is no route to it",
  ECONNREFUSED: "it refused the connection",
  ETIMEDOUT: "the connection timed out",
  ECONNRESET: "the connection was reset",
};

/** The request's own error (getaddrinfo ENOTFOUND ...) as a sentence that says what happened and what to do. */
function unreachable(url: string, e: NodeJS.ErrnoException): Error {
  const what = e.code === undefined ? undefined : UNREACHABLE[e.code];
  if (what === undefined) return e.code === undefined ? e : new Error(`download of ${url} failed: ${e.message}`);
  const host = new URL(url).host;
  const offline =
    e.code === "ENOTFOUND" || e.code === "EAI_AGAIN" || e.code === "ENETUNREACH" || e.code === "EHOSTUNREACH"
      ? "this machine seems to be offline (or cannot resolve names). Check its network connection and run the download again"
      : "the server may be down, or the address wrong; try again later or from a mirror";
  return new Error(`could not reach ${host} to download ${url}: ${what} (${e.message}); ${offline}.`);
}

function get(
  url: string,
  headers: Record<string, string>,
  timeoutMs: number,
  redirects = 5,
): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith("https:") ? https : http;
    const req = client.get(url, { headers: { "user-agent": "budgetnet", ...headers } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects === 0) return reject(new Error(`too many redirects at ${url}`));
        resolve(get(new URL(res.headers.location, url).toString(), headers, timeoutMs, redirects - 1));
        return;
      }
      resolve(res);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no data from ${url} for ${timeoutMs} ms`)));
    req.on("error", (e: NodeJS.ErrnoException) => reject(unreachable(url, e)));
  });
}

/** Streams the response into `part` (appending from `offset` when the server honoured Range). */
async function receive(res: http.IncomingMessage, part: string, offset: number, hash: Hash): Promise<number> {
  const expected = Number(res.headers["content-length"] ?? Number.NaN);
  const fd = await fs.promises.open(part, offset > 0 ? "a" : "w");
  let received = 0;
  try {
    for await (const chunk of res) {
      hash.update(chunk as Buffer);
      await fd.write(chunk as Buffer);
      received += (chunk as Buffer).length;
    }
  } catch (e) {
    throw new Error(`the connection broke after ${offset + received} bytes (${(e as Error).message})`);
  } finally {
    await fd.close();
  }
  if (Number.isFinite(expected) && received < expected)
    throw new Error(`the connection closed after ${offset + received} of ${offset + expected} bytes`);
  return offset + received;
}

/**
 * Downloads url to dest unless dest already has the expected MD5. Resumes from dest.part;
 * restarts from zero when the server ignores Range or a resumed file fails its checksum.
 */
export async function downloadFile(url: string, dest: string, md5: string, opts: DownloadOptions = {}): Promise<void> {
  const log = opts.log ?? (() => {});
  const timeoutMs = opts.timeoutMs ?? 60_000;
  if (fs.existsSync(dest)) {
    if ((await md5OfFile(dest)).digest("hex") === md5) return;
    log(`${dest} exists but fails its checksum; downloading it again`);
  }
  const part = `${dest}.part`;
  // Attempt 0 may resume from a .part; attempt 1 starts from zero.
  for (let attempt = 0; attempt < 2; attempt++) {
    let offset = fs.existsSync(part) ? fs.statSync(part).size : 0;
    const res = await get(url, offset > 0 ? { range: `bytes=${offset}-` } : {}, timeoutMs);
    const status = res.statusCode ?? 0;
    let hash = createHash("md5");
    if (status === 206 && offset > 0 && String(res.headers["content-range"] ?? "").startsWith(`bytes ${offset}-`)) {
      log(`resuming ${url} at byte ${offset}`);
      hash = await md5OfFile(part, hash);
    } else if (status === 416 && offset > 0) {
      // Nothing left to send: the part may be whole already; the checksum decides.
      res.resume();
      if ((await md5OfFile(part)).digest("hex") === md5) {
        fs.renameSync(part, dest);
        return;
      }
      fs.rmSync(part, { force: true });
      continue;
    } else if (status === 200) {
      if (offset > 0) log(`the server ignored the Range request for ${url}; starting over`);
      offset = 0;
    } else {
      res.resume();
      throw new ArgumentError(`download of ${url} failed: HTTP ${status}. Received: status=${status}`);
    }
    let size: number;
    try {
      size = await receive(res, part, offset, hash);
    } catch (e) {
      throw new ArgumentError(
        `download of ${url} was interrupted: ${(e as Error).message}. The partial file ${part} is kept; run the download again to resume from there.`,
      );
    }
    const got = hash.digest("hex");
    if (got === md5) {
      fs.renameSync(part, dest);
      return;
    }
    fs.rmSync(part, { force: true });
    if (offset > 0 && attempt === 0) {
      log(`${url}: the resumed file failed its checksum; downloading it from the start`);
      continue;
    }
    throw new ArgumentError(
      `download of ${url} failed its checksum: expected md5 ${md5}, got ${got} (${size} bytes). The file was deleted; try again later or from another mirror (baseUrl). Received: md5=${got}`,
    );
  }
  throw new ArgumentError(`download of ${url} could not be completed. Received: url=${url}`);
}

/** Downloads every file of a data set into root; returns their paths. */
export async function downloadDataset(name: DownloadName, opts: DownloadOptions = {}): Promise<string[]> {
  const resource = RESOURCES[name];
  if (resource === undefined)
    throw new ArgumentError(
      `downloadDataset: no download for this data set. Known: ${Object.keys(RESOURCES).join(", ")}. Received: name=${JSON.stringify(name)}`,
    );
  const root = opts.root ?? dataHome(name);
  fs.mkdirSync(root, { recursive: true });
  const base = opts.baseUrl ?? resource.baseUrl;
  const out: string[] = [];
  for (const [file, officialMd5] of Object.entries(resource.files)) {
    const dest = path.join(root, file);
    const url = new URL(file, base.endsWith("/") ? base : `${base}/`).toString();
    opts.log?.(`downloading ${url} -> ${dest}`);
    await downloadFile(url, dest, opts.checksums?.[file] ?? officialMd5, opts);
    out.push(dest);
  }
  return out;
}
