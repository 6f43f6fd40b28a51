// Preloaded by bench/faults.ts (`node -r dist/bench/fault_inject.js bin/budgetnet.js ...`): a write
// wrapper around fs.writeSync, the one call every file budgetnet writes goes through.
//   BUDGETNET_FAULT_ENOSPC_AFTER=N  accept N bytes in all, then fail each write with ENOSPC (the
//                                   last accepted write may be short, as on a disk that fills)
//   BUDGETNET_FAULT_COUNT_FILE=F    write the total bytes written to F at exit (to size the offsets)
import * as fs from "node:fs";

type WriteSync = (fd: number, buf: unknown, ...rest: unknown[]) => number;
const module_ = require("node:fs") as { writeSync: WriteSync };
const real = module_.writeSync;
const limit = Number(process.env.BUDGETNET_FAULT_ENOSPC_AFTER ?? Number.POSITIVE_INFINITY);
const countFile = process.env.BUDGETNET_FAULT_COUNT_FILE;
let written = 0;

module_.writeSync = (fd: number, buf: unknown, ...rest: unknown[]): number => {
  // Only file writes count: stdout/stderr (fd 1, 2) go on, so the error can still be read.
  if (fd <= 2) return real(fd, buf, ...rest);
  const bytes = typeof buf === "string" ? Buffer.from(buf) : (buf as Uint8Array);
  const off = typeof rest[0] === "number" ? rest[0] : 0;
  const len = typeof rest[1] === "number" ? rest[1] : bytes.length - off;
  const room = limit - written;
  if (room <= 0) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
  const n = real(fd, bytes, off, Math.min(len, room));
  written += n;
  return n;
};

if (countFile !== undefined)
  process.on("exit", () => {
    fs.writeFileSync(countFile, String(written));
  });
