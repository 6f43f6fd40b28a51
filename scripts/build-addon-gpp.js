#!/usr/bin/env node
// Builds the native addon with g++ directly, without node-gyp: for a machine with Node and a
// libtorch but no node-gyp or network (a GPU box with a pip PyTorch: LIBTORCH=<its torch/ folder>).
// The sources, flags and libtorch come from binding.gyp and scripts/find-libtorch.js, as for
// `npm ci`; the objects compile in parallel (one job per core) into build/Release/obj-gpp/, and
// build/Release/budgetnet.node is linked from them.
//
// A libtorch newer than the addon was written against may lack an API one optional part uses.
// Such a part is rebuilt without it and the build goes on: the profiler (profiler.cc, with
// BUDGETNET_NO_PROFILER=1) and data-parallel training over Gloo (dist.cc, BUDGETNET_GLOO=0); their
// functions then say they are missing. A file that still fails, or needs C++20 (tried after
// C++17), is reported with its first errors.
//
// usage: [LIBTORCH=/path/to/torch] node scripts/build-addon-gpp.js [--jobs N] [--nodedir DIR]
//   --nodedir: a folder with include/node/node_api.h (default: the running Node's own)
"use strict";
const { execFileSync, spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const root = path.resolve(__dirname, "..");

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

function findLibtorch(what) {
  return execFileSync(process.execPath, [path.join(__dirname, "find-libtorch.js"), what], { encoding: "utf8" })
    .trim()
    .split(/\s+/)
    .filter(Boolean);
}

function nodeIncludeDir() {
  const given = arg("--nodedir", process.env.BUDGETNET_NODEDIR);
  const candidates = given
    ? [path.join(given, "include", "node"), given]
    : [path.join(path.dirname(process.execPath), "..", "include", "node"), "/usr/include/node"];
  const found = candidates.find((d) => fs.existsSync(path.join(d, "node_api.h")));
  if (!found)
    throw new Error(
      `no node_api.h under ${candidates.join(" or ")}: pass --nodedir DIR (a Node release's folder, with include/node/)`,
    );
  return found;
}

function napiIncludeDir() {
  try {
    return require("node-addon-api").include_dir.replace(/^"|"$/g, "");
  } catch {
    const d = path.join(root, "node_modules", "node-addon-api");
    if (fs.existsSync(path.join(d, "napi.h"))) return d;
    throw new Error("node-addon-api is missing: run npm ci (or copy node_modules/node-addon-api here)");
  }
}

function run(cmd, args) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: root });
    let out = "";
    p.stdout.on("data", (d) => {
      out += d;
    });
    p.stderr.on("data", (d) => {
      out += d;
    });
    p.on("close", (code) => resolve({ code, out }));
  });
}

// Per-file fallbacks, tried in order after the plain build of that file fails.
const FALLBACKS = {
  "native/profiler.cc": [["-DBUDGETNET_NO_PROFILER=1"]],
  "native/dist.cc": [["-UBUDGETNET_GLOO", "-DBUDGETNET_GLOO=0"]],
};

async function main() {
  const gyp = JSON.parse(fs.readFileSync(path.join(root, "binding.gyp"), "utf8")).targets[0];
  const defines = ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", ...findLibtorch("defines")];
  if (process.env.TORCH_CXX11_ABI !== undefined) defines.push(`_GLIBCXX_USE_CXX11_ABI=${process.env.TORCH_CXX11_ABI}`);
  const includes = [napiIncludeDir(), nodeIncludeDir(), ...findLibtorch("includes")];
  const cflags = gyp.cflags_cc.filter((f) => !f.startsWith("-std="));
  const base = [...cflags, "-fPIC", ...defines.map((d) => `-D${d}`), ...includes.map((d) => `-I${d}`)];
  const objDir = path.join(root, "build", "Release", "obj-gpp");
  fs.mkdirSync(objDir, { recursive: true });
  const jobs = Number(arg("--jobs", String(os.cpus().length)));
  const cxx = process.env.CXX || "g++";
  console.log(`build-addon-gpp: ${gyp.sources.length} files, ${jobs} jobs, ${cxx}; ${defines.join(" ")}`);

  const results = new Map();
  async function compile(src) {
    const obj = path.join(objDir, `${path.basename(src, ".cc")}.o`);
    const variants = [[], ...(FALLBACKS[src] ?? [])];
    const t0 = Date.now();
    let last = "";
    for (const std of ["-std=c++17", "-std=c++20"])
      for (const extra of variants) {
        const r = await run(cxx, [std, ...base, ...extra, "-c", src, "-o", obj]);
        if (r.code === 0) {
          const note = [std !== "-std=c++17" ? std : "", ...extra].filter(Boolean).join(" ");
          results.set(src, { ok: true, note, s: (Date.now() - t0) / 1000 });
          return;
        }
        last = r.out;
      }
    results.set(src, { ok: false, out: last, s: (Date.now() - t0) / 1000 });
  }
  const queue = [...gyp.sources];
  await Promise.all(
    Array.from({ length: Math.max(1, jobs) }, async () => {
      while (queue.length > 0) await compile(queue.shift());
    }),
  );
  let failed = 0;
  for (const src of gyp.sources) {
    const r = results.get(src);
    if (r.ok) console.log(`  ok   ${src} (${r.s.toFixed(0)} s)${r.note ? `  [with ${r.note}]` : ""}`);
    else {
      failed++;
      const errors = r.out
        .split("\n")
        .filter((l) => /error|required from/.test(l))
        .slice(0, 25);
      console.log(`  FAIL ${src} (${r.s.toFixed(0)} s)\n${errors.map((l) => `       ${l}`).join("\n")}`);
    }
  }
  if (failed > 0) {
    console.log(`build-addon-gpp: ${failed} file(s) failed; nothing linked`);
    process.exit(1);
  }
  const out = path.join(root, "build", "Release", "budgetnet.node");
  const objs = gyp.sources.map((s) => path.join(objDir, `${path.basename(s, ".cc")}.o`));
  const link = await run(cxx, [
    "-shared",
    "-o",
    `${out}.tmp`,
    ...objs,
    ...gyp.ldflags.filter((f) => !f.startsWith("<!")),
    ...findLibtorch("ldflags"),
    ...findLibtorch("libs"),
  ]);
  if (link.code !== 0) {
    console.log(`build-addon-gpp: link failed\n${link.out.split("\n").slice(0, 30).join("\n")}`);
    process.exit(1);
  }
  fs.renameSync(`${out}.tmp`, out);
  console.log(`build-addon-gpp: wrote ${path.relative(root, out)}`);
}

main().catch((e) => {
  console.error(`build-addon-gpp: ${e.message}`);
  process.exit(1);
});
