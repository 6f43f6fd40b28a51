// The index worker: reads run journals for the runs table (RunSummaryReader's skim) on a thread
// of its own, so that a server starting on a thousand 10,000-step runs answers requests at once
// while the journals are read (catalog.ts adopts each reader where it stopped).
//   in:  { files: string[] }        journals to read, in order
//   out: { file, snapshot } each, then { done: true } after a batch
import { parentPort } from "node:worker_threads";
import { RunSummaryReader } from "./metrics_reader";

parentPort?.on("message", (msg: { files: string[] }) => {
  for (const file of msg.files) {
    const reader = new RunSummaryReader(file);
    reader.update();
    parentPort?.postMessage({ file, snapshot: reader.snapshot() });
  }
  parentPort?.postMessage({ done: true });
});
