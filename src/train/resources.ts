// What an epoch cost the process, beside its wall time: CPU seconds (all threads), V8 garbage
// collection, and the memory left behind (resident set, live tensors, the caching allocator's
// reserve). Written into each epoch's journal line, so a run that slows down across epochs says
// whether it collected more garbage or grew (a leak: RSS, live tensors, the allocator's reserve),
// or waited (CPU seconds well below threads x wall: I/O, a lock). CPU seconds do not tell a slower
// machine from more work: libtorch's worker threads spin while they wait, so they track the wall.
import { PerformanceObserver } from "node:perf_hooks";
import { liveTensors, memoryStats } from "../tensor/tensor";

export interface EpochResources {
  /** User + system CPU seconds of the whole process (every thread) during the epoch's steps. */
  cpuSeconds: number;
  /** Time V8 spent in garbage collection during the epoch's steps. */
  gcSeconds: number;
  /** Resident set size at the epoch's end, MB. */
  rssMb: number;
  /** Native tensors alive at the epoch's end (a leak grows this). */
  liveTensors: number;
  /** Bytes the caching allocator holds from the system at the epoch's end, MB (0 without it). */
  allocatorReservedMb: number;
}

const MB = 1024 * 1024;

/** Measures one stretch of work (an epoch's steps): start when it begins, take() when it ends. */
export class ResourceMeter {
  private gcMs = 0;
  private cpuStart = process.cpuUsage();
  private readonly observer: PerformanceObserver;

  constructor() {
    this.observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.gcMs += e.duration;
    });
    this.observer.observe({ entryTypes: ["gc"] });
  }

  start(): void {
    this.gcMs = 0;
    this.cpuStart = process.cpuUsage();
  }

  take(): EpochResources {
    const cpu = process.cpuUsage(this.cpuStart);
    const mem = memoryStats();
    return {
      cpuSeconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(3)),
      gcSeconds: Number((this.gcMs / 1000).toFixed(3)),
      rssMb: Number((mem.rssBytes / MB).toFixed(1)),
      liveTensors: liveTensors(),
      allocatorReservedMb: Number((mem.reservedBytes / MB).toFixed(1)),
    };
  }

  stop(): void {
    this.observer.disconnect();
  }
}
