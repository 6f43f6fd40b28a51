// `npm run bench -- NAME [args]`: runs one benchmark from bench/. Each module exports
// main(args) and is loaded only when asked for, so one benchmark's imports do not slow another.
// Their flags are read by bench/args.ts; a bad one ends the run with its message and status 2.
import { UsageError } from "./args";

const BENCHMARKS: Record<string, { module: string; description: string }> = {
  cpu: {
    module: "./cpu",
    description: "budgetnet at its best vs PyTorch eager fp32 and PyTorch bf16+channels-last, five CIFAR nets",
  },
  engine: {
    module: "./engine",
    description: "CIFAR ResNet-20 training and inference images/s against PyTorch, tuned and untuned allocator",
  },
  pipeline: {
    module: "./pipeline",
    description: "demo training step with the augmenting DataLoader against the same step on a pre-made batch",
  },
  "fashion-mnist": {
    module: "./fashion_mnist",
    description:
      "the README demo (fashion-mnist-quick: train + test accuracy) against the same recipe in PyTorch eager",
  },
  e2e: {
    module: "./e2e",
    description:
      "the demo workload end to end through the CLI (train + test eval, per-epoch seconds) against the PyTorch peer at its best",
  },
  speedrun: {
    module: "./speedrun",
    description:
      "the Fashion-MNIST speedrun (fashion-mnist-speedrun: 93% test on 2 cores, train + eval) per seed, against the same recipe in PyTorch",
  },
  int8: {
    module: "./int8",
    description:
      "int8: float32 vs post-training vs QAT test accuracy, file size, the int8 plan against the bf16 plan and onnxruntime",
  },
  search: {
    module: "./search",
    description:
      "budgeted architecture search: analytic budget check rate; evolution+ASHA vs random at equal compute under resnet20's budget; best retrained and tested",
  },
  ddp: {
    module: "./ddp",
    description:
      "data-parallel scaling: 1 rank x 2 threads, 1 x 1, 2 x 1 (c10d Gloo) against PyTorch DDP over gloo, ResNet-20 on Fashion-MNIST",
  },
  onnx: { module: "./onnx", description: "inference latency and throughput: budgetnet against onnxruntime-node" },
  fuzz: {
    module: "./fuzz",
    description: "random and mutated inputs to the file readers and every public op: crashes, hangs, non-Error throws",
  },
  faults: {
    module: "./faults",
    description: "kill -9 at random moments, a disk that fills at random offsets, two trainers, SIGTERM: nothing lost",
  },
  dashboard: {
    module: "./dashboard",
    description:
      "the dashboard over 1,000 runs x 10,000 steps in Chromium: runs table (< 1 s) and a 10-run overlay (< 0.5 s)",
  },
  soak: {
    module: "./soak",
    description:
      "memory over a long run: 10,000 ResNet-20 training steps and 1,000 compile/dispose cycles (RSS, live tensors)",
  },
};

interface BenchModule {
  main(args: string[]): Promise<void>;
}

function listKnown(): string {
  const width = Math.max(...Object.keys(BENCHMARKS).map((name) => name.length));
  return Object.entries(BENCHMARKS)
    .map(([name, b]) => `  ${name.padEnd(width)} ${b.description}`)
    .join("\n");
}

async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h") {
    console.log(`usage: npm run bench -- NAME [args]   (NAME --help lists its flags)\nbenchmarks:\n${listKnown()}`);
    return name === undefined ? 1 : 0;
  }
  const entry = BENCHMARKS[name];
  if (entry === undefined) {
    console.error(`unknown benchmark. Received: name=${name}\nknown benchmarks:\n${listKnown()}`);
    return 1;
  }
  const mod = require(entry.module) as BenchModule;
  try {
    await mod.main(rest);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    // a flag the benchmark does not know or a value it cannot take: the message says which
    console.error(`${name} benchmark: ${err.message}\nits flags: npm run bench -- ${name} --help`);
    return 2;
  }
  return 0;
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exitCode = 1;
  },
);
