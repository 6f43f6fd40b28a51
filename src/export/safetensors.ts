// safetensors: the weights format of shared/DESIGN.md (no code runs on load, unlike pickle).
// Layout: an 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}},
// then the data buffer; offsets are relative to the buffer's start.
import * as fs from "node:fs";
import * as os from "node:os";
import { tensor } from "../ops/creation";
import { ArgumentError, describe } from "../tensor/errors";
import { type DType, Tensor } from "../tensor/tensor";
import { writeFileAtomic } from "./atomic";

/** A file that is not a valid safetensors file, or one budgetnet cannot read. */
export class SafetensorsError extends Error {
  readonly file: string;
  readonly key: string | undefined;
  constructor(file: string, what: string, key?: string) {
    super(`${file}: ${what}${key === undefined ? "" : ` (tensor "${key}")`}`);
    this.name = "SafetensorsError";
    this.file = file;
    this.key = key;
  }
}

interface DtypeInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly bytes: number;
}
const BY_FILE_NAME: Record<string, DtypeInfo> = {
  F64: { name: "F64", dtype: "float64", bytes: 8 },
  I64: { name: "I64", dtype: "int64", bytes: 8 },
  F32: { name: "F32", dtype: "float32", bytes: 4 },
  I32: { name: "I32", dtype: "int32", bytes: 4 },
  BF16: { name: "BF16", dtype: "bfloat16", bytes: 2 },
  F16: { name: "F16", dtype: "float16", bytes: 2 },
  U8: { name: "U8", dtype: "uint8", bytes: 1 },
  BOOL: { name: "BOOL", dtype: "bool", bytes: 1 },
};
/** int8 has no libtorch dtype here: I8 tensors are read and written as raw bytes (Int8Tensor). */
const I8: DtypeInfo = { name: "I8", dtype: "uint8", bytes: 1 };

/** An int8 tensor's data (int8 weights, src/quant): stored as safetensors dtype I8. */
export class Int8Tensor {
  constructor(
    readonly data: Int8Array,
    readonly shape: number[],
  ) {
    const n = shape.reduce((a, d) => a * d, 1);
    if (n !== data.length)
      throw new ArgumentError(`Int8Tensor: shape [${shape.join(", ")}] needs ${n} values. Received: ${data.length}`);
  }
}

const BY_DTYPE = new Map<DType, DtypeInfo>(Object.values(BY_FILE_NAME).map((d) => [d.dtype, d]));

/** The reference reader refuses headers above 100 MB; so do we, before allocating anything. */
export const MAX_HEADER_BYTES = 100_000_000;

function requireLittleEndian(): void {
  if (os.endianness() !== "LE")
    throw new Error(
      "safetensors: this machine is big-endian; budgetnet reads and writes safetensors on little-endian hosts only.",
    );
}

// ---------------------------------------------------------------- save

/** float32 bits to IEEE half bits, round to nearest even: exact for values already in float16. */
function float32BitsToHalf(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7c00 | 0x200 | (mant >>> 13);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (rest > mid || (rest === mid && (half & 1) === 1) ? half + 1 : half);
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa correctly rolls into the exponent (up to infinity).
  return sign | (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1) ? half + 1 : half);
}

/** The tensor's bytes as the file stores them (row-major, little-endian). */
function tensorBytes(t: Tensor): Uint8Array {
  const dtype = t.dtype;
  if (dtype === "bfloat16" || dtype === "float16") {
    // The addon hands 16-bit floats out as float32, which holds every bf16/f16 value exactly.
    const bits = new Uint32Array(t.toFloat32Array().buffer);
    const out = new Uint16Array(bits.length);
    if (dtype === "bfloat16") for (let i = 0; i < bits.length; i++) out[i] = (bits[i] as number) >>> 16;
    else for (let i = 0; i < bits.length; i++) out[i] = float32BitsToHalf(bits[i] as number);
    return new Uint8Array(out.buffer);
  }
  const data = t.toTypedArray();
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

type Stored = Tensor | Int8Tensor;
const infoOf = (t: Stored): DtypeInfo => (t instanceof Int8Tensor ? I8 : (BY_DTYPE.get(t.dtype) as DtypeInfo));

function entriesOf(record: Map<string, Stored> | Record<string, Stored>): [string, Stored][] {
  const entries = record instanceof Map ? [...record.entries()] : Object.entries(record);
  for (const [key, t] of entries) {
    if (typeof key !== "string" || key.length === 0 || key === "__metadata__")
      throw new ArgumentError(
        `saveSafetensors: keys must be non-empty strings other than "__metadata__". Received: key=${describe(key)}`,
      );
    if (t instanceof Int8Tensor) continue;
    if (!(t instanceof Tensor))
      throw new ArgumentError(`saveSafetensors: every value must be a Tensor. Received: ${key}=${describe(t)}`);
    if (t.isDisposed)
      throw new ArgumentError(
        `saveSafetensors: tensor "${key}" was disposed before saving. Keep it alive until saveSafetensors returns.`,
      );
    if (!BY_DTYPE.has(t.dtype))
      throw new ArgumentError(`saveSafetensors: dtype of "${key}" has no safetensors name. Received: dtype=${t.dtype}`);
  }
  return entries;
}

/**
 * Writes tensors (and optional string metadata) to `file` as safetensors, atomically: a temp
 * file in the same folder, fsync, then rename, so a crash never leaves half a file behind.
 * Tensors are stored widest dtype first, then by name (the reference writer's order, which
 * keeps every tensor's data aligned to its element size).
 */
export function saveSafetensors(
  file: string,
  record: Map<string, Stored> | Record<string, Stored>,
  metadata?: Record<string, string>,
): void {
  requireLittleEndian();
  if (typeof file !== "string" || file.length === 0)
    throw new ArgumentError(`saveSafetensors: file must be a non-empty path. Received: file=${describe(file)}`);
  const entries = entriesOf(record);
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== "string")
        throw new ArgumentError(`saveSafetensors: metadata values must be strings. Received: ${k}=${describe(v)}`);
  }
  entries.sort(([ka, ta], [kb, tb]) => {
    const width = infoOf(tb).bytes - infoOf(ta).bytes;
    return width !== 0 ? width : ka < kb ? -1 : ka > kb ? 1 : 0;
  });

  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) header.__metadata__ = { ...metadata };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [key, t] of entries) {
    const bytes =
      t instanceof Int8Tensor ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.length) : tensorBytes(t);
    const info = infoOf(t);
    header[key] = { dtype: info.name, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  // Spaces pad the header to a multiple of 8 so the data buffer starts 8-byte aligned.
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, "utf8");
  json += " ".repeat((8 - (jsonBytes % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.byteLength));

  writeFileAtomic(file, [prefix, headerBytes, ...chunks]);
}

// ---------------------------------------------------------------- load

interface Entry {
  key: string;
  info: DtypeInfo;
  shape: number[];
  begin: number;
  end: number;
}

function parseEntry(file: string, key: string, raw: unknown): Entry {
  const fail = (what: string): never => {
    throw new SafetensorsError(file, what, key);
  };
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    fail(`header entry must be an object with dtype, shape and data_offsets. Received: ${describe(raw)}`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  const info =
    dtype === "I8"
      ? I8
      : typeof dtype === "string" && Object.hasOwn(BY_FILE_NAME, dtype)
        ? BY_FILE_NAME[dtype]
        : undefined;
  if (info === undefined)
    return fail(
      `unknown or unsupported dtype. Supported: ${Object.keys(BY_FILE_NAME).join(", ")}. Received: dtype=${describe(dtype)}`,
    );
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    fail(`shape must be an array of non-negative integers. Received: shape=${describe(shape)}`);
  const dims = shape as number[];
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  )
    fail(`data_offsets must be two integers 0 <= begin <= end. Received: data_offsets=${describe(offsets)}`);
  const [begin, end] = offsets as [number, number];
  // BigInt so a shape like [1e12, 1e12] is refused by arithmetic, not by an allocation.
  const numel = dims.reduce((a, d) => a * BigInt(d), 1n);
  const bytes = numel * BigInt(info.bytes);
  if (bytes !== BigInt(end - begin))
    fail(
      `shape [${dims.join(", ")}] of ${info.name} needs ${bytes} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  return { key, info, shape: dims, begin, end };
}

function readHeader(
  file: string,
  buf: Buffer,
): { entries: Entry[]; metadata: Record<string, string>; dataStart: number } {
  if (buf.byteLength < 8)
    throw new SafetensorsError(file, `file is ${buf.byteLength} bytes, shorter than the 8-byte header length`);
  const n = buf.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_BYTES))
    throw new SafetensorsError(
      file,
      `header length ${n} is above the ${MAX_HEADER_BYTES}-byte limit; this is not a safetensors file or it is corrupt`,
    );
  if (n + 8n > BigInt(buf.byteLength))
    throw new SafetensorsError(
      file,
      `header length ${n} runs past the end of the ${buf.byteLength}-byte file; the file is truncated or not safetensors`,
    );
  const headerEnd = 8 + Number(n);
  let parsed: unknown;
  try {
    parsed = JSON.parse(buf.toString("utf8", 8, headerEnd));
  } catch (err) {
    throw new SafetensorsError(file, `header is not valid JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw new SafetensorsError(file, "header must be a JSON object mapping tensor names to entries");
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [key, raw] of Object.entries(parsed)) {
    if (key === "__metadata__") {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw))
        throw new SafetensorsError(file, `__metadata__ must be an object of strings. Received: ${describe(raw)}`);
      for (const [mk, mv] of Object.entries(raw)) {
        if (typeof mv !== "string")
          throw new SafetensorsError(file, `__metadata__ values must be strings. Received: ${mk}=${describe(mv)}`);
        metadata[mk] = mv;
      }
      continue;
    }
    entries.push(parseEntry(file, key, raw));
  }
  return { entries, metadata, dataStart: headerEnd };
}

/** Offsets must tile the data buffer exactly: no overlap, no gap, nothing past its end. */
function checkLayout(file: string, entries: Entry[], dataBytes: number): void {
  const byBegin = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let prev: Entry | undefined;
  for (const e of byBegin) {
    if (e.begin < expected)
      throw new SafetensorsError(file, `data_offsets [${e.begin}, ${e.end}] overlap those of "${prev?.key}"`, e.key);
    if (e.begin > expected)
      throw new SafetensorsError(
        file,
        `data_offsets [${e.begin}, ${e.end}] leave a gap of ${e.begin - expected} unused bytes before them`,
        e.key,
      );
    if (e.end > dataBytes)
      throw new SafetensorsError(
        file,
        `data_offsets end at byte ${e.end} but the data buffer has ${dataBytes} bytes; the file is truncated`,
        e.key,
      );
    expected = e.end;
    prev = e;
  }
  if (expected !== dataBytes)
    throw new SafetensorsError(file, `${dataBytes - expected} bytes after the last tensor's data belong to no tensor`);
}

function typedView(
  info: DtypeInfo,
  bytes: Uint8Array,
): Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array {
  // Typed arrays need their byte offset aligned to the element size; copy when it is not.
  const aligned = bytes.byteOffset % info.bytes === 0 ? bytes : bytes.slice();
  const { buffer, byteOffset } = aligned;
  const n = aligned.byteLength / info.bytes;
  switch (info.dtype) {
    case "float64":
      return new Float64Array(buffer, byteOffset, n);
    case "int64":
      return new BigInt64Array(buffer, byteOffset, n);
    case "float32":
      return new Float32Array(buffer, byteOffset, n);
    case "int32":
      return new Int32Array(buffer, byteOffset, n);
    case "bfloat16":
    case "float16":
      return new Uint16Array(buffer, byteOffset, n);
    case "bool":
      // A bool byte other than 0 or 1 is undefined behaviour in libtorch; normalize it.
      return aligned.some((v) => v > 1) ? aligned.map((v) => (v === 0 ? 0 : 1)) : aligned;
    default:
      return aligned;
  }
}

/**
 * Reads a safetensors file, checking its header strictly (every problem is a SafetensorsError
 * naming the file and the tensor). The caller owns the returned tensors and disposes them; when
 * called inside scope() they belong to that scope like any new tensor.
 */
export function loadSafetensors(file: string): {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
  /** I8 tensors (int8 weights), as raw data: libtorch tensors here have no int8 dtype. */
  int8: Map<string, Int8Tensor>;
} {
  requireLittleEndian();
  if (typeof file !== "string" || file.length === 0)
    throw new ArgumentError(`loadSafetensors: file must be a non-empty path. Received: file=${describe(file)}`);
  if (!fs.existsSync(file)) throw new SafetensorsError(file, "no such file");
  const buf = fs.readFileSync(file);
  const { entries, metadata, dataStart } = readHeader(file, buf);
  checkLayout(file, entries, buf.byteLength - dataStart);
  const tensors = new Map<string, Tensor>();
  const int8 = new Map<string, Int8Tensor>();
  try {
    for (const e of entries) {
      const bytes = new Uint8Array(buf.buffer, buf.byteOffset + dataStart + e.begin, e.end - e.begin);
      if (e.info === I8) {
        int8.set(e.key, new Int8Tensor(new Int8Array(bytes.slice().buffer), e.shape));
        continue;
      }
      tensors.set(e.key, tensor(typedView(e.info, bytes), e.shape, { dtype: e.info.dtype }));
    }
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  }
  return { tensors, metadata, int8 };
}
