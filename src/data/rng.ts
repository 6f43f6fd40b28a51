// A counter-based random generator: Philox4x32-10 (Salmon et al., "Parallel random numbers:
// as easy as 1, 2, 3", SC 2011). Every draw is a pure function of (key, counter), so the
// loader's randomness depends only on (seed, epoch, batch) and a resumed run replays it.

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High and low 32 bits of the 64-bit product a*b (both uint32), exact in doubles via 16-bit halves. */
function mulHiLo(a: number, b: number, out: Uint32Array, at: number): void {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const ll = al * bl;
  const lh = al * bh;
  const hl = ah * bl;
  const hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  out[at] = hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16);
  out[at + 1] = Math.imul(a, b);
}

const scratch = new Uint32Array(4);

/** One Philox4x32-10 block: 4 counter words and 2 key words in, 4 random words out. */
export function philox4x32(counter: ArrayLike<number>, key: ArrayLike<number>, out = new Uint32Array(4)): Uint32Array {
  let c0 = counter[0] >>> 0;
  let c1 = counter[1] >>> 0;
  let c2 = counter[2] >>> 0;
  let c3 = counter[3] >>> 0;
  let k0 = key[0] >>> 0;
  let k1 = key[1] >>> 0;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    mulHiLo(M0, c0, scratch, 0);
    mulHiLo(M1, c2, scratch, 2);
    const hi0 = scratch[0];
    const lo0 = scratch[1];
    const hi1 = scratch[2];
    const lo1 = scratch[3];
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}

/** What a stream is for; part of the counter so streams never overlap. */
export const Stream = { shuffle: 1, augment: 2, mix: 3, split: 4 } as const;

/**
 * A stream of random numbers identified by (seed, a, b, purpose). Draw i of a stream is
 * word i % 4 of Philox block floor(i / 4), so the same identity always gives the same sequence.
 */
export class CounterRng {
  private readonly key: [number, number];
  private readonly counter: Uint32Array;
  private readonly block = new Uint32Array(4);
  private used = 4;

  constructor(seed: number, a: number, b: number, purpose: number) {
    if (!Number.isSafeInteger(seed) || seed < 0)
      throw new RangeError(`CounterRng: seed must be a non-negative safe integer. Received: seed=${seed}`);
    this.key = [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0];
    this.counter = new Uint32Array([0, a >>> 0, b >>> 0, purpose >>> 0]);
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    if (this.used === 4) {
      philox4x32(this.counter, this.key, this.block);
      this.counter[0] = this.counter[0] + 1;
      this.used = 0;
    }
    return this.block[this.used++];
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u1 = 1 - this.uniform(); // (0, 1], so the log is finite
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Gamma(shape, 1) by Marsaglia and Tsang (2000), with the u^(1/shape) boost for shape < 1. */
  gamma(shape: number): number {
    if (!(shape > 0)) throw new RangeError(`gamma: shape must be > 0. Received: shape=${shape}`);
    if (shape < 1) return this.gamma(shape + 1) * (1 - this.uniform()) ** (1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const x = this.normal();
      const t = 1 + c * x;
      if (t <= 0) continue;
      const v = t * t * t;
      const u = 1 - this.uniform();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). */
  beta(a: number, b: number): number {
    const x = this.gamma(a);
    const y = this.gamma(b);
    return x / (x + y);
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}
