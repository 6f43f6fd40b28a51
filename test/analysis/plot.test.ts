// paretoFront against a brute-force check; scatterSvg and scatterPng read back: the PNG decoded
// here (chunks, CRCs, inflate, unfilter) and its pixels compared with the SVG's circles.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as zlib from "node:zlib";
import {
  encodePng,
  formatTick,
  type Objective,
  paretoFront,
  type ScatterPlot,
  scatterPng,
  scatterSvg,
} from "../../src/analysis/plot";
import { ArgumentError } from "../../src/tensor/errors";

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** On the front: every value finite, and no valid point at least as good everywhere and strictly better somewhere. */
function bruteForceFront(points: Record<string, number>[], objectives: Objective[]): number[] {
  const valid = (p: Record<string, number>) => objectives.every((o) => Number.isFinite(p[o.key]));
  const better = (a: number, b: number, o: Objective) => (o.goal === "min" ? a < b : a > b);
  const beats = (q: Record<string, number>, p: Record<string, number>) =>
    objectives.every((o) => !better(p[o.key]!, q[o.key]!, o)) &&
    objectives.some((o) => better(q[o.key]!, p[o.key]!, o));
  return points.flatMap((p, i) => (valid(p) && !points.some((q) => valid(q) && beats(q, p)) ? [i] : []));
}

test("paretoFront matches a brute-force check on 400 random sets (2 and 3 objectives, mixed goals, ties, NaN, missing)", () => {
  const rand = mulberry32(7);
  let frontSizes = 0;
  for (let trial = 0; trial < 400; trial++) {
    const keys = trial % 2 ? ["params", "acc", "latency"] : ["macs", "acc"];
    const objectives: Objective[] = keys.map((key) => ({ key, goal: rand() < 0.5 ? "min" : "max" }));
    const points = Array.from({ length: Math.floor(rand() * 30) }, () => {
      const p: Record<string, number> = {};
      for (const key of keys) {
        const r = rand();
        if (r < 0.04) p[key] = Number.NaN;
        else if (r > 0.97)
          continue; // missing key: undefined
        else p[key] = Math.floor(rand() * 5); // few distinct values: ties and identical points
      }
      return p;
    });
    const front = paretoFront(points, objectives);
    assert.deepEqual(
      front,
      bruteForceFront(points, objectives),
      `trial ${trial}: ${JSON.stringify({ points, objectives })}`,
    );
    frontSizes += front.length;
  }
  assert.ok(frontSizes > 400, "the random sets have non-trivial fronts");
});

test("paretoFront keeps identical points, leaves out NaN and missing values, and respects max goals", () => {
  const points = [
    { params: 1e6, acc: 0.9 },
    { params: 1e6, acc: 0.9 }, // identical to 0: both kept
    { params: 2e6, acc: 0.9 }, // dominated by 0
    { params: 5e5, acc: 0.8 },
    { params: 1e5, acc: Number.NaN },
    { params: 1e4 } as Record<string, number>,
    { params: 3e6, acc: 0.95 },
  ];
  const objectives: Objective[] = [
    { key: "params", goal: "min" },
    { key: "acc", goal: "max" },
  ];
  assert.deepEqual(paretoFront(points, objectives), [0, 1, 3, 6]);
  assert.deepEqual(paretoFront(points, [{ key: "acc", goal: "min" }]), [3]);
  assert.deepEqual(paretoFront([], objectives), []);
});

test("paretoFront rejects an empty objective list, an unknown goal and a non-object point", () => {
  assert.throws(
    () => paretoFront([{ a: 1 }], []),
    (e) => e instanceof ArgumentError && /objectives/.test(e.message),
  );
  const bad = [{ key: "a", goal: "maximize" }] as unknown as Objective[];
  assert.throws(
    () => paretoFront([{ a: 1 }], bad),
    (e) => e instanceof ArgumentError && /goal/.test(e.message),
  );
  const notObject = [null] as unknown as Record<string, number>[];
  assert.throws(() => paretoFront(notObject, [{ key: "a", goal: "min" }]), /points\[0\]/);
});

// ---------------------------------------------------------------- a PNG reader written for this test

/** Bit by bit, no table: independent of the encoder's table-driven CRC. */
function crc32Bitwise(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

interface Image {
  width: number;
  height: number;
  channels: number;
  pixels: Uint8Array;
  chunkTypes: string[];
}

function decodePng(png: Buffer): Image {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "PNG signature");
  const chunkTypes: string[] = [];
  const idat: Buffer[] = [];
  let header: Buffer | undefined;
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    const typeAndData = png.subarray(at + 4, at + 8 + length);
    const type = typeAndData.subarray(0, 4).toString("latin1");
    const crc = png.readUInt32BE(at + 8 + length);
    assert.equal(crc32Bitwise(typeAndData), crc, `${type} CRC`);
    if (typeof zlib.crc32 === "function") assert.equal(zlib.crc32(typeAndData), crc, `${type} CRC (zlib)`);
    chunkTypes.push(type);
    if (type === "IHDR") header = typeAndData.subarray(4);
    if (type === "IDAT") idat.push(typeAndData.subarray(4));
    at += 12 + length;
  }
  assert.equal(chunkTypes[0], "IHDR");
  assert.equal(chunkTypes.at(-1), "IEND");
  assert.ok(header);
  const [width, height] = [header.readUInt32BE(0), header.readUInt32BE(4)];
  assert.equal(header[8], 8, "bit depth 8");
  const channels = { 2: 3, 6: 4 }[header[9] as 2 | 6];
  assert.ok(channels, `colour type ${header[9]} is RGB or RGBA`);
  assert.equal(header[12], 0, "not interlaced");
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  assert.equal(raw.length, (stride + 1) * height, "inflated IDAT size");
  const pixels = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? pixels[y * stride + i - channels]! : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + i]! : 0;
      const c = y > 0 && i >= channels ? pixels[(y - 1) * stride + i - channels]! : 0;
      const p = a + b - c;
      const paeth =
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c)
          ? a
          : Math.abs(p - b) <= Math.abs(p - c)
            ? b
            : c;
      const predictor = [0, a, b, (a + b) >> 1, paeth][filter as number];
      assert.ok(predictor !== undefined, `row ${y}: filter type ${filter}`);
      pixels[y * stride + i] = (raw[y * (stride + 1) + 1 + i]! + predictor) & 0xff;
    }
  }
  return { width, height, channels, pixels, chunkTypes };
}

function hexAt(img: Image, x: number, y: number): string {
  const i = (y * img.width + x) * img.channels;
  return `#${[0, 1, 2].map((c) => img.pixels[i + c]!.toString(16).padStart(2, "0")).join("")}`;
}

function circles(svg: string): { cx: number; cy: number; fill: string }[] {
  return [...svg.matchAll(/<circle cx="([^"]+)" cy="([^"]+)" r="[^"]+" fill="([^"]+)"/g)].map((m) => ({
    cx: Number(m[1]),
    cy: Number(m[2]),
    fill: m[3]!,
  }));
}

function tickLabels(svg: string, axis: "x" | "y"): string[] {
  return [...svg.matchAll(new RegExp(`<text class="${axis}-tick"[^>]*>([^<]*)</text>`, "g"))].map((m) => m[1]!);
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

// ---------------------------------------------------------------- PNG and SVG

test("encodePng round-trips an RGBA image; every chunk's CRC matches an independent CRC-32", () => {
  const rand = mulberry32(3);
  const rgba = Uint8Array.from({ length: 7 * 5 * 4 }, () => Math.floor(rand() * 256));
  const img = decodePng(encodePng(7, 5, rgba));
  assert.deepEqual([img.width, img.height, img.channels], [7, 5, 4]);
  assert.deepEqual(img.chunkTypes, ["IHDR", "IDAT", "IEND"]);
  assert.deepEqual(img.pixels, rgba);
  assert.equal(crc32Bitwise(Buffer.from("123456789")), 0xcbf43926, "the test's CRC gives the standard check value");
  assert.throws(
    () => encodePng(7, 5, rgba.subarray(1)),
    (e) => e instanceof ArgumentError && /rgba.length/.test(e.message),
  );
  assert.throws(
    () => encodePng(0, 5, new Uint8Array(0)),
    (e) => e instanceof ArgumentError && /width/.test(e.message),
  );
});

const TWO_SERIES: ScatterPlot = {
  title: "Accuracy vs <params> & MACs",
  xLabel: "parameters",
  yLabel: "validation accuracy",
  yFormat: "percent",
  width: 480,
  height: 320,
  series: [
    {
      name: "trials",
      points: [
        { x: 100e3, y: 0.8 },
        { x: 400e3, y: 0.84, label: "a <&> b" },
        { x: 900e3, y: 0.86 },
      ],
    },
    {
      name: "front",
      color: "#d62728",
      line: true,
      points: [
        { x: 200e3, y: 0.88 },
        { x: 700e3, y: 0.91 },
      ],
    },
  ],
  markers: [{ x: 270e3, y: 0.83, label: "resnet20 (paper)" }],
  vLines: [{ x: 500e3, label: "budget 500k" }],
};

test("scatterSvg is well-formed, has one circle per point in its series' colour, and escapes <&>", () => {
  const svg = scatterSvg(TWO_SERIES);
  assertWellFormedXml(svg);
  assert.match(
    svg,
    /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="480" height="320"/,
  );
  const drawn = circles(svg);
  assert.equal(drawn.length, 5, "one circle per point; markers and legend are not circles");
  assert.equal(drawn.filter((c) => c.fill === "#d62728").length, 2);
  const defaultColor = drawn[0]!.fill;
  assert.match(defaultColor, /^#[0-9a-f]{6}$/);
  assert.notEqual(defaultColor, "#d62728");
  assert.equal(drawn.filter((c) => c.fill === defaultColor).length, 3);
  assert.ok(svg.includes(`fill="${defaultColor}"/>`), "the legend swatch has the series colour");
  assert.ok(svg.includes(">a &lt;&amp;&gt; b</text>"), "the point label is escaped");
  assert.ok(svg.includes("Accuracy vs &lt;params&gt; &amp; MACs"), "the title is escaped");
  assert.ok(!svg.includes("<&>") && !svg.includes("<params>"));
  assert.ok(svg.includes(">resnet20 (paper)</text>") && svg.includes(">budget 500k</text>"));
  assert.ok(svg.includes("stroke-dasharray"), "the budget line is dashed");
  assert.equal((svg.match(/<polyline/g) ?? []).length, 2, "the frame and the front's step line");
  // higher accuracy is drawn higher, more parameters further right
  const [a, b] = [drawn[3]!, drawn[4]!];
  assert.ok(b.cx > a.cx && b.cy < a.cy);
});

test("scatterPng decodes, and each point's pixel has its series colour while the corners stay background", () => {
  const img = decodePng(scatterPng(TWO_SERIES));
  assert.deepEqual([img.width, img.height], [480, 320]);
  const drawn = circles(scatterSvg(TWO_SERIES));
  for (const c of drawn)
    assert.equal(hexAt(img, Math.floor(c.cx), Math.floor(c.cy)), c.fill, `point at ${c.cx},${c.cy}`);
  assert.equal(hexAt(img, 0, 0), "#ffffff");
  assert.equal(hexAt(img, img.width - 1, img.height - 1), "#ffffff");
  assert.equal(img.pixels[3], 255, "opaque");
  // the front's step line leaves its first point horizontally, so a pixel halfway to the next is red
  const [p, q] = drawn.filter((c) => c.fill === "#d62728");
  const at = ((Math.floor(p!.cy) * img.width + Math.floor((p!.cx + q!.cx) / 2)) * img.channels) as number;
  const [r, g, b] = img.pixels.subarray(at, at + 3);
  assert.ok(r! > 180 && g! < 110 && b! < 110, `a pixel on the 1.5px step line is mostly #d62728: ${[r, g, b]}`);
});

test("a log x axis puts its ticks on powers of ten; a narrower one on 1, 2, 5 times them", () => {
  const si = (label: string) => Number.parseFloat(label) * ({ k: 1e3, M: 1e6, G: 1e9 }[label.slice(-1)] ?? 1);
  const plot = (xs: number[]): ScatterPlot => ({
    title: "t",
    xLabel: "params",
    yLabel: "acc",
    xLog: true,
    series: [{ name: "s", points: xs.map((x, i) => ({ x, y: i })) }],
  });
  const wide = tickLabels(scatterSvg(plot([3e3, 5e4, 4e7])), "x");
  assert.deepEqual(wide, ["10k", "100k", "1M", "10M"]);
  for (const label of wide) assert.equal(Math.log10(si(label)) % 1, 0, label);
  const narrow = tickLabels(scatterSvg(plot([1.5e6, 8e6])), "x");
  assert.deepEqual(narrow, ["2M", "5M"], "under three decades: 1, 2 and 5 times powers of ten");
  // within a decade and missing 1, 2, 5 multiples: linear ticks, as on a linear axis
  const linear = tickLabels(scatterSvg(plot([2.2e6, 7e6])), "x").map(si);
  assert.ok(
    linear.length >= 2 && linear.every((v, i) => i === 0 || v - linear[i - 1]! === linear[1]! - linear[0]!),
    `${linear}`,
  );
  // the circles are placed on the log scale: 1e4 -> 1e5 -> 1e6 are equally spaced
  const xs = circles(scatterSvg(plot([1e4, 1e5, 1e6]))).map((c) => c.cx);
  assert.ok(Math.abs(xs[1]! - xs[0]! - (xs[2]! - xs[1]!)) < 0.02, `${xs}`);
});

test("linear ticks step by 1, 2 or 5 times a power of ten, formatted as 92.5%, 350k, 1.2M", () => {
  const svg = scatterSvg({ ...TWO_SERIES, height: 600 });
  const ys = tickLabels(svg, "y");
  assert.ok(ys.length >= 3 && ys.every((l) => l.endsWith("%")), `${ys}`);
  const values = ys.map((l) => Number.parseFloat(l)).sort((a, b) => a - b);
  const step = values[1]! - values[0]!;
  for (let i = 1; i < values.length; i++) assert.ok(Math.abs(values[i]! - values[i - 1]! - step) < 1e-9, `${values}`);
  const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
  assert.ok(
    [1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-9),
    `step ${step}`,
  );
  assert.equal(formatTick(0.925, 0.005, "percent"), "92.5%");
  assert.equal(formatTick(350e3, 50e3, "number"), "350k");
  assert.equal(formatTick(1.2e6, 0.2e6, "number"), "1.2M");
  assert.equal(formatTick(1e6, 0.5e6, "number"), "1M");
  assert.equal(formatTick(-2500, 500, "number"), "-2.5k");
  assert.equal(formatTick(0, 0.05, "number"), "0");
  assert.equal(formatTick(3e9, 1e9, "number"), "3G");
});

test("a single point, and points that share one x, still draw with a padded range", () => {
  const single: ScatterPlot = {
    title: "one",
    xLabel: "x",
    yLabel: "y",
    series: [{ name: "s", points: [{ x: 5, y: 0.9 }] }],
  };
  const svg = scatterSvg(single);
  const [c] = circles(svg);
  assert.ok(c && tickLabels(svg, "x").length >= 2 && tickLabels(svg, "y").length >= 2);
  assert.equal(hexAt(decodePng(scatterPng(single)), Math.floor(c.cx), Math.floor(c.cy)), c.fill);
  const column = { ...single, xLog: true, series: [{ name: "s", points: [1, 2, 3].map((y) => ({ x: 1e6, y })) }] };
  const cs = circles(scatterSvg(column));
  assert.equal(cs.length, 3);
  assert.ok(cs.every((p) => p.cx === cs[0]!.cx) && new Set(cs.map((p) => p.cy)).size === 3);
  assert.ok(decodePng(scatterPng(column)).width > 0);
});

test("bad plots are ArgumentErrors naming what was wrong", () => {
  const base: ScatterPlot = { title: "t", xLabel: "x", yLabel: "y", series: [{ name: "s", points: [{ x: 1, y: 2 }] }] };
  const cases: [string, unknown, RegExp][] = [
    ["no series", { ...base, series: [] }, /series must be a non-empty array/],
    ["an empty series", { ...base, series: [{ name: "s", points: [] }] }, /series\[0\]\.points/],
    [
      "NaN y",
      { ...base, series: [{ name: "s", points: [{ x: 1, y: Number.NaN }] }] },
      /points\[0\]\.y must be a finite/,
    ],
    ["infinite x", { ...base, series: [{ name: "s", points: [{ x: Infinity, y: 1 }] }] }, /points\[0\]\.x/],
    [
      "x = 0 on a log axis",
      { ...base, xLog: true, series: [{ name: "s", points: [{ x: 0, y: 1 }] }] },
      /positive on a log/,
    ],
    ["a negative budget on a log axis", { ...base, xLog: true, vLines: [{ x: -1, label: "b" }] }, /vLines\[0\]\.x/],
    ["zero width", { ...base, width: 0 }, /width must be/],
    ["fractional height", { ...base, height: 200.5 }, /height must be/],
    ["a named colour", { ...base, series: [{ name: "s", color: "red", points: [{ x: 1, y: 1 }] }] }, /color/],
    ["a non-object", null, /plot must be an object/],
    ["an unknown format", { ...base, yFormat: "percentage" }, /yFormat/],
    ["legend too tall for the height", { ...base, height: 100, width: 100 }, /plot area/],
  ];
  for (const [what, plot, message] of cases) {
    for (const draw of [scatterSvg, scatterPng]) {
      assert.throws(
        () => draw(plot as ScatterPlot),
        (e) => e instanceof ArgumentError && message.test(e.message),
        `${draw.name}: ${what}`,
      );
    }
  }
});
