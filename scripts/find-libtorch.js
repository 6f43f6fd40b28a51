#!/usr/bin/env node
// Locates libtorch for binding.gyp. Prints one of: includes | libdirs | libs | ldflags.
// Order: $LIBTORCH (libtorch zip layout or a pip torch/ folder), then Debian's libtorch-dev.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const HOW_TO_GET =
  "budgetnet needs libtorch to build its native addon.\n" +
  "  On Debian/Ubuntu:   sudo apt-get install libtorch-dev\n" +
  "  Or any libtorch:    LIBTORCH=/path/to/libtorch npm ci   (the unzipped libtorch archive,\n" +
  "                      or the torch/ folder of a pip-installed PyTorch: it has include/ and lib/)";

function fail(msg) {
  process.stderr.write(`\nbudgetnet: ${msg}\n${HOW_TO_GET}\n\n`);
  process.exit(1);
}

function locate() {
  const env = process.env.LIBTORCH;
  if (env) {
    const root = path.resolve(env);
    const inc = path.join(root, "include");
    const lib = path.join(root, "lib");
    if (!fs.existsSync(path.join(inc, "ATen", "ATen.h"))) fail(`LIBTORCH=${env} has no include/ATen/ATen.h.`);
    if (!fs.readdirSync(lib).some((f) => f.startsWith("libtorch_cpu.")))
      fail(`LIBTORCH=${env} has no lib/libtorch_cpu.so.`);
    const has = (name) => fs.readdirSync(lib).some((f) => f.startsWith(`lib${name}.`));
    const libs = ["torch", "torch_cpu", "c10"];
    if (has("torch_cuda")) libs.push("torch_cuda");
    if (has("c10_cuda")) libs.push("c10_cuda");
    return {
      includes: [inc, path.join(inc, "torch", "csrc", "api", "include")],
      libdir: lib,
      libs,
      rpath: true,
      cuda: has("torch_cuda"),
    };
  }
  const multiarch = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"];
  const libdir = multiarch.find((d) => fs.existsSync(path.join(d, "libtorch_cpu.so")));
  if (!fs.existsSync("/usr/include/ATen/ATen.h") || !libdir)
    fail("no libtorch found (looked for $LIBTORCH, then /usr/include/ATen and libtorch_cpu.so).");
  return {
    includes: ["/usr/include", "/usr/include/torch/csrc/api/include"],
    libdir,
    libs: ["torch", "torch_cpu", "c10"],
    rpath: false,
    cuda: false,
  };
}

const found = locate();
const what = process.argv[2];
if (what === "includes") console.log(found.includes.join(" "));
else if (what === "libs") console.log(found.libs.map((l) => `-l${l}`).join(" "));
else if (what === "ldflags") {
  const flags = [`-L${found.libdir}`, "-Wl,--no-as-needed"];
  if (found.rpath) flags.push(`-Wl,-rpath,${found.libdir}`);
  console.log(flags.join(" "));
} else if (what === "defines") console.log(found.cuda ? "BUDGETNET_CUDA=1" : "BUDGETNET_CUDA=0");
else fail(`find-libtorch: unknown query '${what}'`);
