// budgetnet as a package: what `npm pack` ships, and the packed tarball installed into a fresh
// project (require, import, and the CLI through npx). The addon's compile from the shipped
// sources (a minute or more on two cores) runs under BUDGETNET_SLOW=1; otherwise the install skips
// its scripts and takes this checkout's built addon, and the build inputs are checked by name.
import assert from "node:assert/strict";
import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { type TestContext, test } from "node:test";
import { tempDir } from "../helpers";

const ROOT = path.resolve(__dirname, "../../..");
const SLOW = process.env.BUDGETNET_SLOW === "1";
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  name: string;
  version: string;
  main: string;
  types: string;
  bin: Record<string, string>;
  scripts: Record<string, string>;
};

/** The environment without the npm_* variables of an enclosing `npm test` (they would steer these npm calls). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith("npm_")));
}

function npm(args: string[], cwd: string, timeoutMs = 600_000): SpawnSyncReturns<string> {
  return spawnSync("npm", args, { cwd, encoding: "utf8", env: cleanEnv(), timeout: timeoutMs });
}

/** `npm pack` of this checkout into dir: its scripts are skipped (dist/ is taken as built). */
function pack(dir: string): { tarball: string; files: string[] } {
  const r = npm(["pack", "--ignore-scripts", "--json", "--pack-destination", dir], ROOT);
  assert.equal(r.status, 0, r.stderr);
  const packed = (JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[])[0];
  assert.ok(packed !== undefined, r.stdout);
  return { tarball: path.join(dir, packed.filename), files: packed.files.map((f) => f.path) };
}

function filesUnder(dir: string, ext: string): string[] {
  return fs
    .readdirSync(path.join(ROOT, dir))
    .filter((f) => f.endsWith(ext))
    .map((f) => `${dir}/${f}`);
}

test("npm pack ships the library, the CLI, the addon's build inputs, recipes and spaces, and no tests", () => {
  const { files } = pack(tempDir());
  const has = new Set(files);
  const missing = (list: string[]) => list.filter((f) => !has.has(f));
  // what require("budgetnet") and the bin load, and the files the library reads at run time
  assert.deepEqual(
    missing([
      PKG.main,
      PKG.types,
      ...Object.values(PKG.bin).map((b) => path.normalize(b)),
      "dist/src/cli/main.js",
      "dist/src/data/folder-worker.js",
      "dist/src/search/trial_main.js",
      "examples/web/index.html",
      "README.md",
      "package.json",
    ]),
    [],
  );
  assert.deepEqual(missing(filesUnder("recipes", ".json")), []);
  assert.deepEqual(missing(filesUnder("spaces", ".json")), []);
  if (fs.existsSync(path.join(ROOT, "schema"))) assert.deepEqual(missing(filesUnder("schema", ".json")), []);
  assert.deepEqual(missing(filesUnder("docs", ".md")), []);
  // the addon builds at install: binding.gyp, every source and header it compiles, the scripts it and npm run
  const gyp = JSON.parse(fs.readFileSync(path.join(ROOT, "binding.gyp"), "utf8")) as {
    targets: { sources: string[] }[];
  };
  const scripts = [PKG.scripts.install, PKG.scripts.prepare].flatMap((s) => /scripts\/[\w-]+\.js/.exec(s ?? "") ?? []);
  assert.ok(
    scripts.length === 2,
    `install and prepare run scripts/*.js: ${PKG.scripts.install}; ${PKG.scripts.prepare}`,
  );
  assert.deepEqual(
    missing([
      "binding.gyp",
      "scripts/find-libtorch.js",
      ...scripts,
      ...(gyp.targets[0]?.sources ?? []),
      ...filesUnder("native", ".h"),
    ]),
    [],
  );
  // and nothing a user does not need
  const unwanted = files.filter((f) =>
    /^(dist\/test|dist\/bench|test|bench|src|\.ci|build|node_modules|runs)\/|\.map$|^\.git/.test(f),
  );
  assert.deepEqual(unwanted, []);
  assert.ok(files.length < 500, `${files.length} files`);
});

test("`npx budgetnet` in the project folder keeps the builds `npm ci` made (the install scripts skip under npm exec)", () => {
  // npx installs the project folder itself (a link) into its cache to find its bin, and npm runs the
  // folder's install and prepare scripts then, with npm_command=exec. With no node-gyp or tsc on the
  // PATH, a script that tried to build would fail: so exit 0 and silence mean it kept the builds.
  assert.equal(PKG.scripts.install, "node scripts/build-if-needed.js addon");
  assert.equal(PKG.scripts.prepare, "node scripts/build-if-needed.js dist");
  const script = path.join(ROOT, "scripts", "build-if-needed.js");
  const run = (target: string, env: Record<string, string>) =>
    spawnSync(process.execPath, [script, target], {
      encoding: "utf8",
      env: { ...cleanEnv(), PATH: tempDir(), ...env },
    });
  for (const target of ["addon", "dist"]) {
    const kept = run(target, { npm_command: "exec" });
    assert.deepEqual([kept.status, kept.stdout, kept.stderr], [0, "", ""], target);
    // npm ci, npm install, or a forced rebuild: the build runs (and here fails, as nothing is on the PATH)
    const builds: Record<string, string>[] = [
      { npm_command: "ci" },
      { npm_command: "install" },
      { npm_command: "exec", BUDGETNET_REBUILD: "1" },
    ];
    for (const env of builds) {
      const built = run(target, env);
      assert.equal(built.status, 1, `${target} ${JSON.stringify(env)}`);
      assert.match(
        built.stderr,
        /^budgetnet: could not run (node-gyp rebuild|tsc -p tsconfig\.json): spawnSync \S+ ENOENT/,
      );
    }
  }
  const bad = run("everything", {});
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /usage: node scripts\/build-if-needed\.js addon\|dist\. Received: everything/);
});

/** Installs the tarball into a fresh project; false (the test skipped) when npm cannot fetch the dependencies. */
function installFresh(t: TestContext, project: string, tarball: string): boolean {
  fs.writeFileSync(
    path.join(project, "package.json"),
    `${JSON.stringify({ name: "fresh-project", version: "1.0.0", private: true })}\n`,
  );
  const args = ["install", "--no-audit", "--no-fund", "--prefer-offline", "--foreground-scripts", tarball];
  if (!SLOW) args.push("--ignore-scripts");
  const r = npm(args, project);
  if (r.status !== 0 && /ENOTCACHED|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH/.test(r.stderr)) {
    t.skip(`npm could not fetch budgetnet's dependencies (no registry, nothing cached): ${r.stderr.slice(-300)}`);
    return false;
  }
  assert.equal(r.status, 0, `npm install of the tarball failed:\n${r.stdout}\n${r.stderr}`);
  const installed = path.join(project, "node_modules", PKG.name);
  const addon = path.join(installed, "build", "Release", "budgetnet.node");
  if (SLOW) assert.ok(fs.existsSync(addon), "the install script built the addon from the shipped sources");
  else {
    assert.ok(!fs.existsSync(addon), "no addon ships in the tarball");
    fs.mkdirSync(path.dirname(addon), { recursive: true });
    fs.copyFileSync(path.join(ROOT, "build", "Release", "budgetnet.node"), addon);
  }
  return true;
}

test(
  `the packed tarball installs into a fresh project${SLOW ? " (building the addon)" : ""}: require, import and npx budgetnet work`,
  { timeout: SLOW ? 900_000 : 300_000 },
  (t) => {
    const dir = tempDir();
    const { tarball } = pack(dir);
    const project = path.join(dir, "project");
    fs.mkdirSync(project);
    if (!installFresh(t, project, tarball)) return;
    const env = { ...cleanEnv(), BUDGETNET_THREADS: "1" };
    const node = (args: string[]) => spawnSync(process.execPath, args, { cwd: project, encoding: "utf8", env });

    const cjs = node([
      "-e",
      "const b = require('budgetnet'); const m = b.createModel('resnet20'); " +
        "console.log(JSON.stringify({ params: m.numParameters(), custom: ['autocast', 'toChannelsLast', 'foldBatchNorm', 'inferenceMode', 'registerModel'].map((k) => typeof b[k]) }));",
    ]);
    assert.equal(cjs.status, 0, cjs.stderr);
    assert.deepEqual(JSON.parse(cjs.stdout), { params: 272_474, custom: Array(5).fill("function") });
    fs.writeFileSync(
      path.join(project, "esm.mjs"),
      'import { createModel, listRecipes } from "budgetnet";\nconsole.log(createModel("resnet20").numParameters(), listRecipes().includes("fashion-mnist-quick"));\n',
    );
    const esm = node([path.join(project, "esm.mjs")]);
    assert.equal(esm.status, 0, esm.stderr);
    assert.equal(esm.stdout, "272474 true\n");

    const npx = (args: string[]) =>
      spawnSync("npx", ["--no", "--", "budgetnet", ...args], { cwd: project, encoding: "utf8", env, timeout: 120_000 });
    const models = npx(["models", "--json"]);
    assert.equal(models.status, 0, models.stderr);
    const names = (JSON.parse(models.stdout) as { name: string }[]).map((m) => m.name);
    assert.ok(names.includes("resnet20") && names.includes("efficient_resnet"), names.join(", "));
    const version = npx(["--version"]);
    assert.equal(version.status, 0, version.stderr);
    assert.match(version.stdout, new RegExp(`^budgetnet ${PKG.version.replace(/\./g, "\\.")} \\(libtorch \\d`));
    // the recipes folder is found from the installed copy (train's help lists them)
    const help = npx(["train", "--help"]);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /fashion-mnist-quick/);
  },
);
