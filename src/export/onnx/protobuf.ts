// The protobuf wire format, as much as onnx.proto needs: varints (wire type 0), 32-bit floats
// (wire type 5), 64-bit values (wire type 1, read only) and length-delimited bytes, strings and
// nested messages (wire type 2). Messages are built as lists of chunks, so a 20 MB initializer
// is copied once, into the final buffer.

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

const utf8 = new TextEncoder();

function varintBytes(value: number | bigint): Uint8Array {
  // int64 fields: negative values are their two's complement, ten bytes long
  let v = typeof value === "bigint" ? BigInt.asUintN(64, value) : value;
  if (typeof v === "number" && (v < 0 || !Number.isSafeInteger(v))) v = BigInt.asUintN(64, BigInt(v));
  const out: number[] = [];
  if (typeof v === "number") {
    while (v >= 0x80) {
      out.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    out.push(v);
  } else {
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
  }
  return Uint8Array.from(out);
}

/** One protobuf message under construction. */
export class ProtoMessage {
  private readonly parts: Uint8Array[] = [];
  private length = 0;

  get size(): number {
    return this.length;
  }

  private push(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.length += bytes.length;
  }

  private tag(field: number, wireType: number): void {
    this.push(varintBytes(field * 8 + wireType));
  }

  /** int32, int64 and enum fields. */
  varint(field: number, value: number | bigint): this {
    this.tag(field, VARINT);
    this.push(varintBytes(value));
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, LENGTH_DELIMITED);
    this.push(varintBytes(value.length));
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  message(field: number, sub: ProtoMessage): this {
    this.tag(field, LENGTH_DELIMITED);
    this.push(varintBytes(sub.size));
    for (const p of sub.parts) this.push(p);
    return this;
  }

  /** The encoded message as one buffer. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** A field as read back: its number, wire type, and either a number or the raw bytes. */
export interface ProtoField {
  field: number;
  wireType: number;
  /** Varint fields (as a signed 64-bit value when it fits a JS number exactly, else bigint). */
  int?: number | bigint;
  /** Fixed32 / fixed64 fields, as their little-endian bytes. */
  fixed?: Uint8Array;
  /** Length-delimited fields. */
  bytes?: Uint8Array;
}

export class ProtoDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtoDecodeError";
  }
}

/** Splits one message into its fields; malformed bytes throw ProtoDecodeError. */
export function decodeFields(buf: Uint8Array): ProtoField[] {
  const fields: ProtoField[] = [];
  let at = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (at >= buf.length) throw new ProtoDecodeError(`a varint runs past the end at byte ${at}`);
      const b = buf[at++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
    }
    throw new ProtoDecodeError(`a varint is longer than 10 bytes at byte ${at}`);
  };
  const take = (n: number, what: string): Uint8Array => {
    if (n < 0 || at + n > buf.length)
      throw new ProtoDecodeError(`${what} of ${n} bytes runs past the end (byte ${at} of ${buf.length})`);
    const out = buf.subarray(at, at + n);
    at += n;
    return out;
  };
  while (at < buf.length) {
    const key = readVarint();
    const field = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (field === 0) throw new ProtoDecodeError(`field number 0 at byte ${at}`);
    if (wireType === VARINT) {
      const signed = BigInt.asIntN(64, readVarint());
      const asNumber = Number(signed);
      fields.push({ field, wireType, int: Number.isSafeInteger(asNumber) ? asNumber : signed });
    } else if (wireType === FIXED64) fields.push({ field, wireType, fixed: take(8, "a fixed64 field") });
    else if (wireType === FIXED32) fields.push({ field, wireType, fixed: take(4, "a fixed32 field") });
    else if (wireType === LENGTH_DELIMITED) {
      const n = Number(readVarint());
      fields.push({ field, wireType, bytes: take(n, `field ${field}`) });
    } else throw new ProtoDecodeError(`unsupported wire type ${wireType} (field ${field}) at byte ${at}`);
  }
  return fields;
}

/** Values of a repeated int64 field, packed or not. */
export function repeatedInts(fields: ProtoField[], field: number): number[] {
  const out: number[] = [];
  for (const f of fields) {
    if (f.field !== field) continue;
    if (f.int !== undefined) out.push(Number(f.int));
    else if (f.bytes !== undefined) {
      // packed: a run of varints inside one length-delimited field
      let at = 0;
      while (at < f.bytes.length) {
        let v = 0n;
        let shift = 0n;
        let b: number;
        do {
          if (at >= f.bytes.length) throw new ProtoDecodeError(`a packed varint in field ${field} runs past its end`);
          b = f.bytes[at++] as number;
          v |= BigInt(b & 0x7f) << shift;
          shift += 7n;
        } while (b & 0x80);
        out.push(Number(BigInt.asIntN(64, v)));
      }
    }
  }
  return out;
}

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** A string (or bytes as UTF-8) field's last value, or undefined. */
export function stringField(fields: ProtoField[], field: number): string | undefined {
  let last: string | undefined;
  for (const f of fields) {
    if (f.field !== field) continue;
    if (f.bytes === undefined) throw new ProtoDecodeError(`field ${field} should be a string`);
    try {
      last = utf8Decoder.decode(f.bytes);
    } catch {
      throw new ProtoDecodeError(`field ${field} is not valid UTF-8`);
    }
  }
  return last;
}

/** An integer field's last value, or undefined. */
export function intField(fields: ProtoField[], field: number): number | undefined {
  let last: number | undefined;
  for (const f of fields) {
    if (f.field !== field) continue;
    if (f.int === undefined) throw new ProtoDecodeError(`field ${field} should be an integer`);
    last = Number(f.int);
  }
  return last;
}

/** Every value of a message-typed field, each decoded into its own fields. */
export function messages(fields: ProtoField[], field: number): ProtoField[][] {
  return fields
    .filter((f) => f.field === field)
    .map((f) => {
      if (f.bytes === undefined) throw new ProtoDecodeError(`field ${field} should be a message`);
      return decodeFields(f.bytes);
    });
}
