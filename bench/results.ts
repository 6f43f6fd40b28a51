// Every benchmark writes its record the same way: pretty JSON, atomically (temp file + rename,
// via src/export/atomic.ts), creating bench/results/ if needed, and says where it went.
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../src/export/atomic";

export function writeResult(file: string, record: unknown): void {
  const target = path.resolve(file);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  writeFileAtomic(target, [`${JSON.stringify(record, null, 2)}\n`]);
  console.log(`results: ${path.relative(process.cwd(), target)}`);
}
