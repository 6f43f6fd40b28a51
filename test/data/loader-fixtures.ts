// A small data set with distinct, asymmetric pixels and a plain-JS reference of the batch
// assembly (native/augment.cc), one pixel at a time.
import type { ImageDataset } from "../../src/data";
import { PARAMS_PER_SAMPLE } from "../../src/data";

export function toyDataset(n = 37, channels = 3, height = 5, width = 6, numClasses = 4): ImageDataset {
  const size = channels * height * width;
  const images = new Uint8Array(n * size);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < channels; c++)
      for (let y = 0; y < height; y++)
        for (let x = 0; x < width; x++)
          images[i * size + (c * height + y) * width + x] = (i * 31 + c * 17 + y * 7 + x * 3 + x * y) % 256;
  return {
    name: "toy",
    images,
    labels: Int32Array.from({ length: n }, (_, i) => (i * 5) % numClasses),
    n,
    channels,
    height,
    width,
    numClasses,
    classNames: Array.from({ length: numClasses }, (_, k) => `c${k}`),
  };
}

/** What the native assembler must produce for these indices and per-sample parameters. */
export function referenceBatch(
  ds: ImageDataset,
  indices: Int32Array,
  params: Int32Array,
  padding: number,
  reflect: boolean,
  mean: number[],
  std: number[],
): Float32Array {
  const { channels: C, height: H, width: W } = ds;
  const out = new Float32Array(indices.length * C * H * W);
  const source = (p: number, size: number): number => {
    const s = p - padding;
    if (s >= 0 && s < size) return s;
    if (!reflect) return -1;
    return s < 0 ? -s : 2 * (size - 1) - s;
  };
  indices.forEach((idx, i) => {
    const p = params.subarray(i * PARAMS_PER_SAMPLE, (i + 1) * PARAMS_PER_SAMPLE);
    const inBox = (y: number, x: number, at: number) => y >= p[at] && y < p[at + 2] && x >= p[at + 1] && x < p[at + 3];
    for (let c = 0; c < C; c++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const sy = source(y + p[0], H);
          const sx = source((p[2] ? W - 1 - x : x) + p[1], W);
          const v = sy < 0 || sx < 0 ? 0 : ds.images[((idx * C + c) * H + sy) * W + sx];
          let value = Math.fround((Math.fround(v / 255) - Math.fround(mean[c])) / Math.fround(std[c]));
          if (inBox(y, x, 3) || inBox(y, x, 7)) value = 0;
          out[((i * C + c) * H + y) * W + x] = value;
        }
  });
  return out;
}
