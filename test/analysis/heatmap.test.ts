// heatmapSvg and heatmapPng read back: the SVG checked for balanced tags, its cell rects and
// escaped text; the PNG decoded here (chunks, inflate) and its pixels compared with the colour
// scale at each cell and along the legend bar.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as zlib from "node:zlib";
import { type Heatmap, heatmapColor, heatmapDomain, heatmapPng, heatmapSvg } from "../../src/analysis/heatmap";
import { ArgumentError } from "../../src/tensor/errors";

const GAINS: Heatmap = {
  title: "Gain over baseline <pp> & more",
  rows: ["+se", "+mixup", "+se+mixup"],
  columns: ["resnet8", "resnet20", "a<&>b"],
  values: [
    [0.4, -0.2, 1.1],
    [0.0, null, -0.8],
    [1.6, 0.3, 0.0],
  ],
  labels: [
    ["", "", "0.4 <&> x"],
    ["", "", "-0.8 ± 0.2"],
    ["", "", ""],
  ],
  colorScale: "diverging",
  valueLabel: "gain (pp)",
};

const ACCURACY: Heatmap = {
  title: "Validation accuracy",
  rows: ["baseline", "+se"],
  columns: ["resnet8", "resnet20"],
  values: [
    [88, 91],
    [89, 92.5],
  ],
  colorScale: "sequential",
  valueLabel: "val. accuracy (%)",
};

interface Image {
  width: number;
  height: number;
  pixels: Uint8Array; // RGBA
}

/** Enough of PNG for our encoder's output: 8-bit RGBA, filter type 0 on every row. */
function decodePng(png: Buffer): Image {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "PNG signature");
  const idat: Buffer[] = [];
  let header: Buffer | undefined;
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    const type = png.subarray(at + 4, at + 8).toString("latin1");
    const data = png.subarray(at + 8, at + 8 + length);
    if (typeof zlib.crc32 === "function") {
      assert.equal(zlib.crc32(png.subarray(at + 4, at + 8 + length)), png.readUInt32BE(at + 8 + length), `${type} CRC`);
    }
    if (type === "IHDR") header = data;
    if (type === "IDAT") idat.push(data);
    at += 12 + length;
  }
  assert.ok(header, "an IHDR chunk");
  const [width, height] = [header.readUInt32BE(0), header.readUInt32BE(4)];
  assert.deepEqual([header[8], header[9]], [8, 6], "8-bit RGBA");
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * 4;
  assert.equal(raw.length, (stride + 1) * height, "inflated IDAT size");
  const pixels = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    assert.equal(raw[y * (stride + 1)], 0, `row ${y}: filter type 0`);
    pixels.set(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)), y * stride);
  }
  return { width, height, pixels };
}

function hexAt(img: Image, x: number, y: number): string {
  const i = (y * img.width + x) * 4;
  return `#${[0, 1, 2].map((c) => img.pixels[i + c]!.toString(16).padStart(2, "0")).join("")}`;
}

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
  fill: string;
}

function rects(svg: string, cls: string): Box[] {
  const re = new RegExp(
    `<rect class="${cls}" x="([^"]+)" y="([^"]+)" width="([^"]+)" height="([^"]+)" fill="([^"]+)"`,
    "g",
  );
  return [...svg.matchAll(re)].map((m) => ({
    x: Number(m[1]),
    y: Number(m[2]),
    w: Number(m[3]),
    h: Number(m[4]),
    fill: m[5]!,
  }));
}

/** Tags balance, attributes are quoted, and text holds no raw < or stray &. */
function assertWellFormedXml(svg: string): void {
  const body = svg.replace(/^<\?xml[^?]*\?>\s*/, "");
  const entity = "&(?:amp|lt|gt|quot|apos);";
  const attr = `\\s+[\\w:-]+="(?:[^"<&]|${entity})*"`;
  const tag = new RegExp(`<(/?)([A-Za-z][\\w-]*)((?:${attr})*)\\s*(/?)>`, "g");
  const stack: string[] = [];
  let last = 0;
  for (const m of body.matchAll(tag)) {
    const text = body.slice(last, m.index);
    assert.ok(new RegExp(`^(?:[^<&]|${entity})*$`).test(text), `bad text before ${m[0]}: ${JSON.stringify(text)}`);
    if (m[1]) assert.equal(stack.pop(), m[2], `closing ${m[0]}`);
    else if (!m[4]) stack.push(m[2]!);
    last = (m.index as number) + m[0].length;
  }
  assert.equal(body.slice(last).trim(), "", "nothing after the root element");
  assert.deepEqual(stack, [], "every element is closed");
  assert.ok(body.startsWith("<svg "), "one root <svg> element");
}

test("heatmapSvg is well-formed: one rect per cell, one legend bar, and <&> escaped everywhere", () => {
  const svg = heatmapSvg(GAINS);
  assertWellFormedXml(svg);
  assert.equal((svg.match(/<rect /g) ?? []).length, 1 + 3 * 3 + 1, "background, 3x3 cells, legend bar");
  assert.equal(rects(svg, "cell").length, 9);
  assert.equal(rects(svg, "legend").length, 1);
  assert.ok(svg.includes(">0.4 &lt;&amp;&gt; x</text>"), "a cell label is escaped");
  assert.ok(svg.includes(">a&lt;&amp;&gt;b</text>"), "a column label is escaped");
  assert.ok(svg.includes("<title>Gain over baseline &lt;pp&gt; &amp; more</title>"), "the title is escaped");
  assert.ok(!svg.includes("<&>") && !svg.includes("<pp>"));
  assert.ok(svg.includes(">gain (pp)</text>"), "the legend caption");
  assert.ok(svg.includes("<title>+mixup / resnet20: n/a</title>"), "a tooltip per cell");
  const missing = rects(svg, "cell")[4]!;
  assert.match(missing.fill, /^url\(#na-[0-9a-f]{8}\)$/, "the null cell is hatched");
  assert.ok(svg.includes(`<pattern id="${missing.fill.slice(5, -1)}"`));
  assert.match(rects(svg, "legend")[0]!.fill, /^url\(#legend-[0-9a-f]{8}\)$/);
  // ids follow the content, so two heatmaps on one page do not share a gradient
  const ids = (s: string) => [...s.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]);
  assert.notDeepEqual(ids(heatmapSvg(ACCURACY)), ids(svg).slice(0, 1));
  assert.deepEqual(heatmapSvg(GAINS), svg, "deterministic");
});

test("cells are laid out row by row, filled with the scale's colour, text in a contrasting ink", () => {
  const svg = heatmapSvg(ACCURACY);
  const cells = rects(svg, "cell");
  const domain = heatmapDomain(ACCURACY);
  assert.deepEqual(domain, [88, 92.5], "sequential: the values' range");
  assert.deepEqual(
    cells.map((c) => c.fill),
    ACCURACY.values.flat().map((v) => heatmapColor(v!, "sequential", domain)),
  );
  assert.ok(cells[1]!.x > cells[0]!.x && cells[1]!.y === cells[0]!.y && cells[2]!.y > cells[0]!.y);
  assert.equal(cells[0]!.fill, "#440154", "the lowest value is viridis' dark end");
  assert.equal(cells[3]!.fill, "#fde725", "the highest its yellow end");
  const labels = [...svg.matchAll(/<text class="cell-label"[^>]* fill="([^"]+)"[^>]*>([^<]*)<\/text>/g)];
  assert.deepEqual(
    labels.map((m) => m[2]),
    ["88.0", "91.0", "89.0", "92.5"],
    "default text: one decimal",
  );
  assert.equal(labels[0]![1], "#ffffff", "white on dark purple");
  assert.equal(labels[3]![1], "#222222", "dark ink on yellow");
  const tick = [...svg.matchAll(/<text class="legend-tick"[^>]*>([^<]*)<\/text>/g)].map((m) => Number(m[1]));
  assert.ok(tick.length >= 3 && tick.every((t) => t >= 88 && t <= 92.5), `legend ticks ${tick}`);
});

test("heatmapPng decodes to the SVG's size; each cell's pixels have the scale's colour for its value", () => {
  for (const h of [GAINS, ACCURACY]) {
    const svg = heatmapSvg(h);
    const img = decodePng(heatmapPng(h));
    const size = svg.match(/<svg [^>]*width="(\d+)" height="(\d+)"/)!;
    assert.deepEqual([img.width, img.height], [Number(size[1]), Number(size[2])]);
    const domain = heatmapDomain(h);
    rects(svg, "cell").forEach((c, k) => {
      const v = h.values[Math.floor(k / h.columns.length)]![k % h.columns.length]!;
      if (v === null) return;
      const want = heatmapColor(v, h.colorScale, domain);
      const text = h.labels?.[Math.floor(k / h.columns.length)]?.[k % h.columns.length] ?? "label";
      // the centre where the cell has no text, else a pixel near its corner
      const [x, y] = text === "" ? [c.x + c.w / 2, c.y + c.h / 2].map(Math.floor) : [c.x + 2, c.y + 2];
      assert.equal(hexAt(img, x!, y!), want, `${h.title}: cell ${k} (value ${v}) at ${x},${y}`);
    });
    assert.equal(hexAt(img, 0, 0), "#ffffff");
    assert.equal(img.pixels[3], 255, "opaque");
  }
});

test("the diverging scale is white-ish at 0, blue below and red above, symmetric about 0", () => {
  const domain = heatmapDomain(GAINS);
  assert.deepEqual(domain, [-1.6, 1.6], "±max |value|");
  const white = heatmapColor(0, "diverging", domain);
  const rgb = (hex: string) => [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
  assert.ok(
    rgb(white).every((c) => c >= 240),
    `0 is near white: ${white}`,
  );
  const [r1, , b1] = rgb(heatmapColor(-1, "diverging", domain));
  const [r2, , b2] = rgb(heatmapColor(1, "diverging", domain));
  assert.ok(b1! > r1! + 60 && r2! > b2! + 60, "blue for losses, red for gains");
  assert.equal(heatmapColor(-5, "diverging", domain), heatmapColor(-1.6, "diverging", domain), "clamped");
  assert.equal(heatmapColor(0, "diverging", [-1, 3]), heatmapColor(0, "diverging", [-3, 3]), "0 stays the centre");
  // in the PNG: the zero cell (row 2, column 0, no text) and the missing cell's grey hatching
  const svg = heatmapSvg(GAINS);
  const img = decodePng(heatmapPng(GAINS));
  const cells = rects(svg, "cell");
  const zero = cells[3]!;
  assert.equal(hexAt(img, Math.floor(zero.x + zero.w / 2), Math.floor(zero.y + zero.h / 2)), white);
  const missing = cells[4]!;
  const seen = new Set<string>();
  for (let x = missing.x; x < missing.x + missing.w; x++) seen.add(hexAt(img, x, missing.y + 1));
  assert.ok(seen.has("#e0e0e0") && seen.has("#b0b0b0"), `grey and stripes: ${[...seen]}`);
  // default text of a gain is signed
  const unlabelled = heatmapSvg({ ...GAINS, labels: undefined });
  assert.ok(
    unlabelled.includes(">+0.4</text>") && unlabelled.includes(">-0.2</text>") && unlabelled.includes(">n/a</text>"),
  );
});

test("the legend bar runs through the scale from the domain's low end to its high end", () => {
  for (const h of [GAINS, ACCURACY]) {
    const svg = heatmapSvg(h);
    const bar = rects(svg, "legend")[0]!;
    const img = decodePng(heatmapPng(h));
    const domain = heatmapDomain(h);
    const y = Math.floor(bar.y + bar.h / 2);
    const near = (a: string, b: string) => rgbDistance(a, b) <= 12;
    // pixel 1 and w-2: the frame covers the outermost columns
    assert.ok(near(hexAt(img, bar.x + 1, y), heatmapColor(domain[0], h.colorScale, domain)), "low end");
    assert.ok(near(hexAt(img, bar.x + bar.w - 2, y), heatmapColor(domain[1], h.colorScale, domain)), "high end");
    const mid = heatmapColor((domain[0] + domain[1]) / 2, h.colorScale, domain);
    assert.ok(near(hexAt(img, Math.floor(bar.x + bar.w / 2), y), mid), "middle");
  }
  const ticks = [...heatmapSvg(GAINS).matchAll(/<text class="legend-tick"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  assert.ok(ticks.includes("0") && ticks.includes("-1") && ticks.includes("1"), `${ticks}`);
});

function rgbDistance(a: string, b: string): number {
  const rgb = (hex: string) => [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
  const [p, q] = [rgb(a), rgb(b)];
  return Math.max(...p.map((c, i) => Math.abs(c - q[i]!)));
}

test("the PNG draws ± in cell text rather than the ? of unknown characters", () => {
  const withLabel = (label: string): Heatmap => ({
    ...ACCURACY,
    labels: [
      [label, ""],
      ["", ""],
    ],
  });
  const plusMinus = heatmapPng(withLabel("91 ± 1"));
  assert.notDeepEqual(decodePng(plusMinus).pixels, decodePng(heatmapPng(withLabel("91 ? 1"))).pixels);
  assert.notDeepEqual(decodePng(plusMinus).pixels, decodePng(heatmapPng(withLabel("91   1"))).pixels);
});

test("a single value, all-null values and a given domain still draw", () => {
  const one: Heatmap = { ...ACCURACY, rows: ["a"], columns: ["b"], values: [[90]] };
  const [lo, hi] = heatmapDomain(one);
  assert.ok(lo < 90 && 90 < hi && Math.abs(lo + hi - 180) < 1e-9, "a range around the one value");
  assert.ok(decodePng(heatmapPng(one)).width >= 100);
  const none: Heatmap = { ...GAINS, values: GAINS.values.map((r) => r.map(() => null)) };
  assert.deepEqual(heatmapDomain(none), [-1, 1]);
  assertWellFormedXml(heatmapSvg(none));
  assert.deepEqual(heatmapDomain({ ...ACCURACY, domain: [80, 100] }), [80, 100]);
  assert.deepEqual(heatmapDomain({ ...GAINS, domain: [-0.5, 2] }), [-2, 2], "diverging: symmetric about 0");
});

test("bad heatmaps are ArgumentErrors naming the row, cell or option", () => {
  const cases: [string, unknown, RegExp][] = [
    [
      "a ragged row",
      { ...ACCURACY, values: [[88, 91], [89]] },
      /values\[1\] \(row "\+se"\) must be 2 numbers, null for a missing cell, one per column \(resnet8, resnet20\)/,
    ],
    ["too few rows", { ...ACCURACY, values: [[88, 91]] }, /values must be one array per row \(2 rows x 2 columns\)/],
    [
      "NaN instead of null",
      {
        ...ACCURACY,
        values: [
          [88, Number.NaN],
          [89, 92],
        ],
      },
      /values\[0\]\[1\] \(row "baseline", column "resnet20"\)/,
    ],
    ["ragged labels", { ...ACCURACY, labels: [["a", "b"], ["c"]] }, /labels\[1\] \(row "\+se"\) must be 2 strings/],
    ["an unknown scale", { ...ACCURACY, colorScale: "rainbow" }, /colorScale must be "sequential" or "diverging"/],
    ["no columns", { ...ACCURACY, columns: [] }, /columns must be a non-empty array/],
    ["a reversed domain", { ...ACCURACY, domain: [1, 0] }, /domain must be \[low, high\]/],
    ["negative decimals", { ...ACCURACY, decimals: -1 }, /decimals must be a whole number/],
    ["not an object", null, /must be an object/],
    ["too wide", { ...ACCURACY, columns: ["x".repeat(1400), "y"] }, /over the 8192 limit/],
  ];
  for (const [what, h, message] of cases) {
    for (const draw of [heatmapSvg, heatmapPng, heatmapDomain]) {
      if (what === "too wide" && draw === heatmapDomain) continue;
      assert.throws(
        () => draw(h as Heatmap),
        (e) => e instanceof ArgumentError && message.test(e.message),
        `${draw.name}: ${what}`,
      );
    }
  }
  assert.throws(() => heatmapColor(0, "sequential", [1, 1]), /domain must be/);
});
