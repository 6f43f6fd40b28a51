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

// oneDNN's own headers (Debian's libdnnl-dev, the library libtorch-dev links) enable the fused
// inference plan (native/plan.cc); without them the addon builds without it.
// A libtorch from $LIBTORCH (pip, the zip) carries its own oneDNN linked in statically; linking
// the system's as well could mix two versions, so it is used there only on request (BUDGETNET_DNNL=1).
function locateDnnl(found) {
  if (process.env.BUDGETNET_DNNL === "0") return false;
  if (found.rpath && process.env.BUDGETNET_DNNL !== "1") return false;
  const header = found.includes
    .map((d) => path.join(d, "oneapi", "dnnl", "dnnl.hpp"))
    .concat("/usr/include/oneapi/dnnl/dnnl.hpp");
  const lib = [found.libdir, "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"].some((d) =>
    fs.existsSync(path.join(d, "libdnnl.so")),
  );
  return header.some((h) => fs.existsSync(h)) && lib;
}

// Gloo's headers (Debian's libgloo-dev; pip and zip libtorch ship them in include/) enable
// data-parallel training over c10d's ProcessGroupGloo (native/dist.cc); libtorch holds the code.
function locateGloo(found) {
  if (process.env.BUDGETNET_GLOO === "0") return false;
  const dirs = found.includes.concat("/usr/include");
  const c10d = dirs.some((d) =>
    fs.existsSync(path.join(d, "torch", "csrc", "distributed", "c10d", "ProcessGroupGloo.hpp")),
  );
  return c10d && dirs.some((d) => fs.existsSync(path.join(d, "gloo", "rendezvous", "store.h")));
}

const found = locate();
found.dnnl = locateDnnl(found);
found.gloo = locateGloo(found);
if (found.dnnl) found.libs.push("dnnl");
const what = process.argv[2];
if (what === "includes") console.log(found.includes.join(" "));
else if (what === "libs") console.log(found.libs.map((l) => `-l${l}`).join(" "));
else if (what === "ldflags") {
  const flags = [`-L${found.libdir}`, "-Wl,--no-as-needed"];
  if (found.rpath) flags.push(`-Wl,-rpath,${found.libdir}`);
  console.log(flags.join(" "));
} else if (what === "defines")
  console.log(
    `BUDGETNET_CUDA=${found.cuda ? 1 : 0} BUDGETNET_DNNL=${found.dnnl ? 1 : 0} BUDGETNET_GLOO=${found.gloo ? 1 : 0}`,
  );
else fail(`find-libtorch: unknown query '${what}'`);
