// The fuzz campaign's randomness: a seeded generator (a case is fully determined by its seed, so
// any finding replays from one number) and the mutations applied to valid files.

/** mulberry32: small, fast, and the same sequence on every machine for a given seed. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** The seed of case `index` in a campaign seeded with `seed` (a 32-bit mix, so neighbours differ). */
export function caseSeed(seed: number, index: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Numbers that break size and offset arithmetic. */
export const EXTREME_NUMBERS = [
  0,
  1,
  -1,
  2,
  255,
  256,
  65535,
  65536,
  0x7fffffff,
  0x80000000,
  0xffffffff,
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 31),
  -(2 ** 53),
  1e308,
  -1e308,
  1.5,
  -0.5,
  1e-300,
];

/** The same as text, plus texts a number parser should refuse. */
export const EXTREME_NUMBER_TEXTS = [
  ...EXTREME_NUMBERS.map(String),
  "-1000",
  "77777777777",
  "99999999999999999999",
  "1e309",
  "-0",
  "NaN",
  "Infinity",
  "0x10",
  "",
  " ",
  "1 2",
];

/** Writes `value` as an unsigned integer of `bytes` bytes at `at` (wrapping, either endianness). */
function writeNumber(buf: Buffer, at: number, bytes: 1 | 2 | 4 | 8, value: number, bigEndian: boolean): void {
  let v = BigInt.asUintN(bytes * 8, BigInt(Math.trunc(Number.isFinite(value) ? value : 0)));
  for (let i = 0; i < bytes; i++) {
    buf[bigEndian ? at + bytes - 1 - i : at + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

/** One byte-level mutation: bit flips, interesting bytes, numbers, truncation, growth, splices, noise. */
export function mutateBytes(
  input: Buffer,
  rng: Rng,
  hotOffsets: readonly number[] = [],
): { bytes: Buffer; how: string } {
  const buf = Buffer.from(input);
  // Half the time aim at a place the format cares about (a header field), else anywhere.
  const at = (): number =>
    hotOffsets.length > 0 && rng.chance(0.5)
      ? Math.min(Math.max(0, buf.length - 1), (rng.pick(hotOffsets) as number) + rng.int(8))
      : rng.int(Math.max(1, buf.length));
  switch (rng.int(8)) {
    case 0: {
      const flips = 1 + rng.int(8);
      for (let i = 0; i < flips && buf.length > 0; i++) buf[at()] ^= 1 << rng.int(8);
      return { bytes: buf, how: `flip ${flips} bits` };
    }
    case 1: {
      const n = 1 + rng.int(4);
      for (let i = 0; i < n && buf.length > 0; i++) buf[at()] = rng.pick([0, 0xff, 0x7f, 0x80, 0x20, 0x2d, 0x30]);
      return { bytes: buf, how: `set ${n} bytes` };
    }
    case 2: {
      const width = rng.pick([1, 2, 4, 8] as const);
      const p = Math.min(at(), Math.max(0, buf.length - width));
      const value = rng.pick(EXTREME_NUMBERS);
      const bigEndian = rng.chance(0.5);
      if (buf.length >= width) writeNumber(buf, p, width, value, bigEndian);
      return { bytes: buf, how: `write ${value} as ${width} bytes ${bigEndian ? "BE" : "LE"} at ${p}` };
    }
    case 3: {
      const n = rng.chance(0.2) ? rng.int(16) : rng.int(buf.length + 1);
      return { bytes: buf.subarray(0, n), how: `truncate to ${n}` };
    }
    case 4: {
      const extra = rng.chance(0.5) ? Buffer.alloc(1 + rng.int(4096)) : rng.bytes(1 + rng.int(4096));
      return { bytes: Buffer.concat([buf, extra]), how: `append ${extra.length}` };
    }
    case 5: {
      const from = at();
      const len = rng.int(Math.min(4096, buf.length - from) + 1);
      const chunk = Buffer.from(buf.subarray(from, from + len));
      const to = rng.int(buf.length + 1);
      const out = rng.chance(0.5)
        ? Buffer.concat([buf.subarray(0, to), chunk, buf.subarray(to)])
        : Buffer.concat([buf.subarray(0, from), buf.subarray(from + len)]);
      return { bytes: out, how: `splice ${len} bytes` };
    }
    case 6: {
      const text = Buffer.from(rng.pick(EXTREME_NUMBER_TEXTS));
      const p = at();
      text.copy(buf, p);
      return { bytes: buf, how: `text ${JSON.stringify(text.toString())} at ${p}` };
    }
    default:
      return { bytes: rng.bytes(rng.int(2048)), how: "random bytes" };
  }
}

/** A JSON value that does not belong: extreme numbers, wrong types, deep nesting, long strings. */
export function oddJsonValue(rng: Rng): unknown {
  switch (rng.int(7)) {
    case 0:
      return rng.pick(EXTREME_NUMBERS);
    case 1:
      return rng.pick(["", "x", "NaN", "-1", "cuda", "../../etc/passwd", "a".repeat(10_000)]);
    case 2:
      return rng.pick([null, true, false]);
    case 3:
      return rng.pick([[], [0], [-1, 2], [2 ** 53, 1], ["a"]]);
    case 4:
      return rng.pick<unknown>([{}, { a: 1 }, JSON.parse('{"__proto__": {"x": 1}}'), { constructor: "x" }]);
    case 5: {
      let v: unknown = 1;
      for (let i = 0; i < 2000; i++) v = [v];
      return v;
    }
    default:
      return rng.pick(EXTREME_NUMBERS) * rng.pick([-1, 1]);
  }
}

/** Every [parent, key] of a JSON tree (parents are objects or arrays), for picking a spot to mutate. */
function slots(v: unknown, out: [Record<string, unknown>, string][]): [Record<string, unknown>, string][] {
  if (v !== null && typeof v === "object") {
    for (const k of Object.keys(v)) {
      out.push([v as Record<string, unknown>, k]);
      slots((v as Record<string, unknown>)[k], out);
    }
  }
  return out;
}

/** One structural mutation of a JSON document: replace, delete or add a field; or a text-level one. */
export function mutateJson(text: string, rng: Rng): { text: string; how: string } {
  if (rng.chance(0.25)) {
    const m = mutateBytes(Buffer.from(text), rng);
    return { text: m.bytes.toString("utf8"), how: `bytes: ${m.how}` };
  }
  const doc = JSON.parse(text) as unknown;
  const all = slots(doc, []);
  if (all.length === 0) return { text: JSON.stringify(oddJsonValue(rng)), how: "replace the document" };
  const [parent, key] = rng.pick(all);
  const action = rng.int(3);
  if (action === 0) delete parent[key];
  else if (action === 1) parent[key] = oddJsonValue(rng);
  else parent[`${key}_extra`] = oddJsonValue(rng);
  const how = `${["delete", "replace", "add beside"][action]} ${key}`;
  return { text: JSON.stringify(doc), how };
}
