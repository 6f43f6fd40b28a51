// The pixels behind our SVG figures (plot.ts, heatmap.ts): shapes in pixel coordinates, a canvas
// that draws them anti-aliased (strokes, discs, rectangles, a built-in 5x8 bitmap font for
// printable ASCII plus "±" and "−"; other characters show as "?"), and a PNG encoder over
// node:zlib with our own CRC-32. No dependency.
import { deflateSync } from "node:zlib";
import { checkArg } from "../tensor/errors";

export type Shape =
  | { kind: "line"; x1: number; y1: number; x2: number; y2: number; color: string; width: number; dashed?: boolean }
  | { kind: "polyline"; points: [number, number][]; color: string; width: number }
  | { kind: "circle"; cx: number; cy: number; r: number; color: string; tooltip: string }
  | { kind: "rect"; x: number; y: number; w: number; h: number; color: string }
  | TextShape;
export type TextShape = {
  kind: "text";
  x: number;
  y: number;
  text: string;
  color: string;
  scale: number;
  anchor: Anchor;
  vertical?: boolean;
  cls?: string; // an SVG class, so tests and stylesheets can find tick labels
};
export type Anchor = "start" | "middle" | "end";

/** Pixels per character at scale 1 (5 wide + 1 gap); SVG uses a 10px monospace font, 0.6em wide. */
export const CHAR_ADVANCE = 6;
export const CAP_HEIGHT = 7;

/** Width in pixels of a label at a scale. */
export function textWidth(s: string, scale: number): number {
  return s.length === 0 ? 0 : (s.length * CHAR_ADVANCE - 1) * scale;
}

/** Text safe inside an element or attribute; characters XML 1.0 forbids become "?". */
export function escapeXml(s: string): string {
  return s
    .replace(/[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, "?")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

// ---------------------------------------------------------------- rasterizer

/** On and off lengths of a dashed line, in pixels. */
export const DASH = [5, 4];

// 5x8 glyphs for ASCII 32..126, 8 rows each (7 above the baseline, 1 descender row); a row is one
// base-32 digit whose 5 bits are its pixels, the highest bit leftmost. Other characters draw as "?".
const FONT_ROWS = [
  "0000000044444040aaa00000aavavaa04fke5u40op248j30cik8lid044800000248884208422248004lel400044v4400",
  "00000c48000v000000000cc001248g00ehjlphe04c4444e0eh1248v0v2421he026aiv220vgu11he068guhhe0v1248880",
  "ehhehhe0ehhf12c00cc0cc000cc0c480248g842000v0v00084212480eh124040eh1dlle0ehhvhhh0uhhuhhu0ehggghe0",
  "sihhhis0vgguggv0vgguggg0ehgnhhf0hhhvhhh0e44444e072222ic0hikokih0ggggggv0hrllhhh0hhpljhh0ehhhhhe0",
  "uhhuggg0ehhhlid0uhhukih0fgge11u0v4444440hhhhhhe0hhhhha40hhhllla0hha4ahh0hha44440v1248gv0e88888e0",
  "0g842100e22222e04ah00000000000v08420000000e1fhf0ggmphhu000egghe011djhhf000ehvge0698s888000fhhf1e",
  "ggmphhh040c444e0206222icggikoki0c44444e000qllll000mphhh000ehhhe000uhhugg00fhhf1100mpggg000fge1u0",
  "88s8896000hhhjd000hhha4000hhlla000ha4ah000hhhf1e00v248v0244844204444444084424480008l2000",
].join("");
const FONT = Uint8Array.from(FONT_ROWS, (c) => Number.parseInt(c, 32));
/** Glyphs beyond ASCII that labels use: "91.2 ± 0.3", and U+2212 minus drawn as "-". */
const EXTRA_GLYPHS: Record<string, Uint8Array> = {
  "±": Uint8Array.from("44v440v0", (c) => Number.parseInt(c, 32)),
  "\u2212": FONT.subarray(("-".charCodeAt(0) - 32) * 8, ("-".charCodeAt(0) - 31) * 8),
};

/** The 8 rows (5 pixel bits each, highest leftmost, 7 above the baseline) of a character's glyph; "?" when it has none. */
export function glyph(ch: string): Uint8Array {
  const extra = EXTRA_GLYPHS[ch];
  if (extra !== undefined) return extra;
  const code = ch.codePointAt(0) as number;
  const ascii = (ch.length === 1 && code >= 32 && code <= 126 ? code : 63) - 32;
  return FONT.subarray(ascii * 8, ascii * 8 + 8);
}

function parseColor(hex: string): [number, number, number] {
  const h = hex.length === 4 ? hex.replace(/[0-9a-f]/gi, (c) => c + c) : hex;
  return [1, 3, 5].map((i) => Number.parseInt(h.slice(i, i + 2), 16)) as [number, number, number];
}

export class Canvas {
  readonly rgba: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.rgba = new Uint8Array(width * height * 4).fill(255);
  }

  draw(s: Shape): void {
    if (s.kind === "line") {
      const segs = s.dashed ? dashSegments(s.x1, s.y1, s.x2, s.y2) : [[s.x1, s.y1, s.x2, s.y2]];
      this.stroke(segs, s.width, parseColor(s.color));
    } else if (s.kind === "polyline") {
      const segs = s.points.slice(1).map(([x, y], i) => [...s.points[i]!, x, y]);
      this.stroke(segs, s.width, parseColor(s.color));
    } else if (s.kind === "circle") {
      const { cx, cy, r } = s;
      const disc = (x: number, y: number) => r + 0.5 - Math.hypot(x - cx, y - cy);
      this.cover(cx - r - 1, cy - r - 1, cx + r + 1, cy + r + 1, parseColor(s.color), disc);
    } else if (s.kind === "rect") {
      const [x0, y0] = [Math.round(s.x), Math.round(s.y)];
      this.cover(x0, y0, Math.round(s.x + s.w) - 1, Math.round(s.y + s.h) - 1, parseColor(s.color), () => 1);
    } else {
      this.text(s);
    }
  }

  /** Blends color into every pixel of the box by coverage(pixel centre), clamped to [0, 1]. */
  private cover(
    x0: number,
    y0: number,
    x1: number,
    y1: number,
    rgb: number[],
    coverage: (x: number, y: number) => number,
  ): void {
    for (let y = Math.max(0, Math.floor(y0)); y <= Math.min(this.height - 1, Math.ceil(y1)); y++) {
      for (let x = Math.max(0, Math.floor(x0)); x <= Math.min(this.width - 1, Math.ceil(x1)); x++) {
        this.blend(x, y, rgb, coverage(x + 0.5, y + 0.5));
      }
    }
  }

  private blend(x: number, y: number, rgb: number[], alpha: number): void {
    const a = Math.min(1, alpha);
    if (!(a > 0)) return;
    const i = (y * this.width + x) * 4;
    for (let c = 0; c < 3; c++) this.rgba[i + c] = Math.round(rgb[c]! * a + this.rgba[i + c]! * (1 - a));
  }

  /** Round-capped segments of one stroke: coverage is the max over segments, so joints are not blended twice. */
  private stroke(segs: number[][], width: number, rgb: number[]): void {
    const half = width / 2;
    // the box around a segment (or all of them), in pixels, clipped to the canvas
    const box = (xs: number[], ys: number[]) => [
      Math.max(0, Math.floor(Math.min(...xs) - half - 1)),
      Math.max(0, Math.floor(Math.min(...ys) - half - 1)),
      Math.min(this.width, Math.ceil(Math.max(...xs) + half + 1)),
      Math.min(this.height, Math.ceil(Math.max(...ys) + half + 1)),
    ];
    let [bx0, by0, bx1, by1] = [this.width, this.height, 0, 0];
    for (const [x1, y1, x2, y2] of segs as [number, number, number, number][]) {
      const [sx0, sy0, sx1, sy1] = box([x1, x2], [y1, y2]) as [number, number, number, number];
      [bx0, by0, bx1, by1] = [Math.min(bx0, sx0), Math.min(by0, sy0), Math.max(bx1, sx1), Math.max(by1, sy1)];
    }
    const bw = bx1 - bx0;
    if (bw <= 0 || by1 <= by0) return;
    const mask = new Float32Array(bw * (by1 - by0));
    for (const [x1, y1, x2, y2] of segs as [number, number, number, number][]) {
      const [sx0, sy0, sx1, sy1] = box([x1, x2], [y1, y2]) as [number, number, number, number];
      for (let y = sy0; y < sy1; y++) {
        for (let x = sx0; x < sx1; x++) {
          const cov = half + 0.5 - segmentDistance(x + 0.5, y + 0.5, x1, y1, x2, y2);
          const m = (y - by0) * bw + (x - bx0);
          if (cov > (mask[m] as number)) mask[m] = cov;
        }
      }
    }
    for (let m = 0; m < mask.length; m++) this.blend(bx0 + (m % bw), by0 + Math.floor(m / bw), rgb, mask[m] as number);
  }

  /** Bitmap text; x, y is the baseline point named by the anchor; vertical text reads bottom to top. */
  private text(s: TextShape): void {
    const rgb = parseColor(s.color);
    const k = s.scale;
    const shift = s.anchor === "start" ? 0 : s.anchor === "middle" ? textWidth(s.text, k) / 2 : textWidth(s.text, k);
    const [ox, oy] = [Math.round(s.x), Math.round(s.y)];
    [...s.text].forEach((ch, n) => {
      const rows = glyph(ch);
      for (let row = 0; row < 8; row++) {
        const bits = rows[row] as number;
        for (let col = 0; col < 5; col++) {
          if (!(bits & (16 >> col))) continue;
          // (dx, dy): the pixel block relative to the baseline origin, before any rotation
          const dx = Math.round(n * CHAR_ADVANCE * k + col * k - shift);
          const dy = (row - CAP_HEIGHT) * k;
          for (let i = 0; i < k; i++) {
            for (let j = 0; j < k; j++) {
              const [x, y] = s.vertical ? [ox + dy + j, oy - dx - i - 1] : [ox + dx + i, oy + dy + j];
              if (x >= 0 && y >= 0 && x < this.width && y < this.height) this.blend(x, y, rgb, 1);
            }
          }
        }
      }
    });
  }
}

function segmentDistance(px: number, py: number, x1: number, y1: number, x2: number, y2: number): number {
  const [dx, dy] = [x2 - x1, y2 - y1];
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - x1) * dx + (py - y1) * dy) / len2));
  return Math.hypot(px - (x1 + t * dx), py - (y1 + t * dy));
}

function dashSegments(x1: number, y1: number, x2: number, y2: number): number[][] {
  const len = Math.hypot(x2 - x1, y2 - y1);
  const segs: number[][] = [];
  for (let a = 0; a < len; a += (DASH[0] as number) + (DASH[1] as number)) {
    const b = Math.min(len, a + (DASH[0] as number));
    const [ta, tb] = len === 0 ? [0, 0] : [a / len, b / len];
    segs.push([x1 + (x2 - x1) * ta, y1 + (y2 - y1) * ta, x1 + (x2 - x1) * tb, y1 + (y2 - y1) * tb]);
  }
  return segs.length ? segs : [[x1, y1, x2, y2]];
}

// ---------------------------------------------------------------- PNG

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (ISO-HDLC, as PNG and zlib use it). */
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** An 8-bit RGBA PNG of width x height pixels given row by row (4 bytes a pixel). */
export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  const need = (ok: boolean, name: string, received: unknown, what: string) =>
    checkArg(ok, "encodePng", what, name, received);
  need(
    Number.isInteger(width) && width > 0 && width < 2 ** 31,
    "width",
    width,
    "width must be a positive whole number",
  );
  need(
    Number.isInteger(height) && height > 0 && height < 2 ** 31,
    "height",
    height,
    "height must be a positive whole number",
  );
  need(rgba instanceof Uint8Array, "rgba", rgba, "rgba must be a Uint8Array of 4 bytes per pixel");
  need(
    rgba.length === width * height * 4,
    "rgba.length",
    rgba.length,
    `rgba must hold width*height*4 = ${width * height * 4} bytes`,
  );
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 6, 0, 0, 0], 8); // bit depth 8, colour type 6 (RGBA), deflate, adaptive filters, no interlace
  const stride = width * 4;
  const raw = Buffer.alloc((stride + 1) * height); // each row: filter type 0 (none), then its bytes
  for (let y = 0; y < height; y++) raw.set(rgba.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const chunks = [chunk("IHDR", header), chunk("IDAT", deflateSync(raw)), chunk("IEND", new Uint8Array(0))];
  return Buffer.concat([signature, ...chunks]);
}
