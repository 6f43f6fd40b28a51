import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import {
  type DType,
  loadSafetensors,
  SafetensorsError,
  saveSafetensors,
  scope,
  type Tensor,
  tensor,
  to,
} from "../../src";
import { checkNoLeaks, peerSkip, runPython, tempDir } from "../helpers";

checkNoLeaks();
const dir = tempDir();

/** Writes a file by hand: header JSON (as given, not validated) followed by data bytes. */
function writeRaw(name: string, header: unknown, data: Uint8Array | number, headerLen?: bigint): string {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header), "utf8");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(headerLen ?? BigInt(json.byteLength));
  const body = typeof data === "number" ? new Uint8Array(data) : data;
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.concat([prefix, json, body]));
  return file;
}

function loadAndDispose(file: string): void {
  const { tensors } = loadSafetensors(file);
  for (const t of tensors.values()) t.dispose();
}

function expectError(file: string, pattern: RegExp, key?: string): void {
  assert.throws(
    () => loadAndDispose(file),
    (err: unknown) => {
      assert.ok(err instanceof SafetensorsError, `expected SafetensorsError, got ${String(err)}`);
      assert.match(err.message, pattern);
      assert.ok(err.message.includes(file), "the message names the file");
      if (key !== undefined) {
        assert.equal(err.key, key);
        assert.ok(err.message.includes(`"${key}"`), "the message names the tensor");
      }
      return true;
    },
  );
}

test("round trip of every dtype keeps values, shapes, dtypes and metadata", () => {
  scope(() => {
    const f32 = new Float32Array([1.5, -2.25, 3.0e-8, 1e30, Number.POSITIVE_INFINITY, -0]);
    const cases: Record<string, Tensor> = {
      f32: tensor(f32, [2, 3]),
      f64: tensor(new Float64Array([Math.PI, -1e-300, 7]), [3]),
      // to() rounds into bf16/f16; the file must keep those values bit for bit, incl. f16 subnormals, max, -0
      bf16: to(tensor(new Float32Array([1, -2.5, 3.140625, 1e20, -0, 65280]), [3, 2]), "bfloat16"),
      f16: to(tensor(new Float32Array([1, -2.5, 65504, 2 ** -24, 2 ** -14, -0, 0.1]), [7]), "float16"),
      i64: tensor(new BigInt64Array([-(2n ** 62n), 0n, 2n ** 62n + 1n]), [3, 1]),
      i32: tensor(new Int32Array([-2147483648, 0, 2147483647]), [1, 3]),
      u8: tensor(new Uint8Array([0, 7, 255]), [3]),
      bool: tensor(new Uint8Array([1, 0, 1, 1]), [2, 2], { dtype: "bool" }),
      scalar: tensor(new Float32Array([42]), []),
      empty: tensor(new Float32Array(0), [0, 4]),
    };
    const file = path.join(dir, "roundtrip.safetensors");
    saveSafetensors(file, cases, { format: "pt", note: "ünïcode" });
    const { tensors, metadata } = loadSafetensors(file);
    assert.deepEqual(metadata, { format: "pt", note: "ünïcode" });
    assert.deepEqual([...tensors.keys()].sort(), Object.keys(cases).sort());
    for (const [key, want] of Object.entries(cases)) {
      const got = tensors.get(key) as Tensor;
      assert.equal(got.dtype, want.dtype, key);
      assert.deepEqual(got.shape, want.shape, key);
      if (want.dtype === "int64") assert.deepEqual(got.toTypedArray(), want.toTypedArray(), key);
      else assert.deepEqual(Array.from(got.toFloat32Array()), Array.from(want.toFloat32Array()), key);
    }
    // -0 keeps its sign bit through the float32 -> half conversion
    assert.ok(Object.is((tensors.get("f16") as Tensor).toArray()[5], -0));
    return undefined;
  });
});

test("a Map works too and the file is written atomically (no temp file left behind)", () => {
  scope(() => {
    const sub = path.join(dir, "atomic");
    fs.mkdirSync(sub);
    const file = path.join(sub, "w.safetensors");
    saveSafetensors(file, new Map([["b", tensor([1, 2])]]));
    saveSafetensors(file, new Map([["a", tensor([3])]]));
    assert.deepEqual(fs.readdirSync(sub), ["w.safetensors"]);
    const { tensors, metadata } = loadSafetensors(file);
    assert.deepEqual([...tensors.keys()], ["a"]);
    assert.deepEqual(metadata, {});
    return undefined;
  });
});

test("the data buffer is 8-byte aligned and tensors are laid out widest dtype first, then by name", () => {
  scope(() => {
    const file = path.join(dir, "order.safetensors");
    saveSafetensors(file, { z8: tensor(new Uint8Array([1])), a32: tensor([1]), m64: tensor(new Float64Array([1])) });
    const buf = fs.readFileSync(file);
    const n = Number(buf.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const header = JSON.parse(buf.toString("utf8", 8, 8 + n));
    assert.deepEqual(header.m64.data_offsets, [0, 8]);
    assert.deepEqual(header.a32.data_offsets, [8, 12]);
    assert.deepEqual(header.z8.data_offsets, [12, 13]);
    return undefined;
  });
});

const PY_WRITER = `
import json, struct, sys, torch
file = json.load(sys.stdin)
torch.manual_seed(0)
ts = {
  "w.f32": torch.randn(3, 4),
  "w.f64": torch.randn(5, dtype=torch.float64),
  "w.bf16": torch.randn(2, 3).to(torch.bfloat16),
  "w.f16": torch.randn(4).to(torch.float16),
  "n.i64": torch.tensor([-(2**40), 3, 2**53 + 2]),
  "n.i32": torch.tensor([[-7, 8]], dtype=torch.int32),
  "n.u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
  "n.bool": torch.tensor([True, False, True]),
  "n.scalar": torch.tensor(2.5),
}
names = {torch.float32: "F32", torch.float64: "F64", torch.bfloat16: "BF16", torch.float16: "F16",
         torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}
def raw(t):
    t = t.contiguous()
    if t.dtype in (torch.bfloat16, torch.float16): t = t.view(torch.int16)
    return t.numpy().tobytes()
header, data = {"__metadata__": {"format": "pt"}}, b""
for k in sorted(ts, key=lambda k: (-ts[k].element_size(), k)):
    b = raw(ts[k])
    header[k] = {"dtype": names[ts[k].dtype], "shape": list(ts[k].shape), "data_offsets": [len(data), len(data) + len(b)]}
    data += b
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(file, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + data)
print(json.dumps({k: {"dtype": names[t.dtype], "shape": list(t.shape),
                      "values": [int(v) if not t.is_floating_point() else float(v) for v in t.flatten().tolist()]}
                  for k, t in ts.items()}))
`;

const PY_READER = `
import json, struct, sys, torch
file = json.load(sys.stdin)
dt = {"F32": torch.float32, "F64": torch.float64, "BF16": torch.bfloat16, "F16": torch.float16,
      "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool}
raw = open(file, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
meta = header.pop("__metadata__", {})
out = {}
for k, e in header.items():
    b, end = e["data_offsets"]
    chunk = bytearray(raw[8 + n + b: 8 + n + end])
    d = dt[e["dtype"]]
    if d in (torch.bfloat16, torch.float16):
        t = torch.frombuffer(chunk, dtype=torch.int16).view(d) if chunk else torch.empty(0, dtype=d)
    else:
        t = torch.frombuffer(chunk, dtype=d) if chunk else torch.empty(0, dtype=d)
    t = t.reshape(e["shape"])
    out[k] = {"dtype": e["dtype"], "shape": list(t.shape), "values": [float(v) for v in t.flatten().tolist()]}
print(json.dumps({"meta": meta, "tensors": out}))
`;

const DTYPE_OF: Record<string, DType> = {
  F32: "float32",
  F64: "float64",
  BF16: "bfloat16",
  F16: "float16",
  I64: "int64",
  I32: "int32",
  U8: "uint8",
  BOOL: "bool",
};

type PyTensors = Record<string, { dtype: string; shape: number[]; values: number[] }>;

test(
  "a file written by hand in Python (struct + json + torch bytes) reads back identically",
  { skip: peerSkip() },
  () => {
    const file = path.join(dir, "from-python.safetensors");
    const want = runPython<PyTensors>(PY_WRITER, file);
    scope(() => {
      const { tensors, metadata } = loadSafetensors(file);
      assert.deepEqual(metadata, { format: "pt" });
      assert.deepEqual([...tensors.keys()].sort(), Object.keys(want).sort());
      for (const [key, w] of Object.entries(want)) {
        const got = tensors.get(key) as Tensor;
        assert.equal(got.dtype, DTYPE_OF[w.dtype], key);
        assert.deepEqual(got.shape, w.shape, key);
        if (w.dtype === "I64") {
          // 2**53 + 2 is exact in float64, so Number comparison is exact here
          assert.deepEqual(Array.from(got.toTypedArray() as BigInt64Array, Number), w.values, key);
        } else {
          assert.deepEqual(got.toArray().map(Number), w.values, key);
        }
      }
      return undefined;
    });
  },
);

test("a file we write is read by a hand-written Python reader with identical values", { skip: peerSkip() }, () => {
  const file = path.join(dir, "to-python.safetensors");
  const mine = scope(() => {
    const record: Record<string, Tensor> = {
      "layer.weight": tensor([
        [0.25, -1.5],
        [3, 4e-3],
      ]),
      half: to(tensor([1, -0.333251953125, 1000]), "float16"),
      brain: to(tensor([1, -0.333984375, 1e10]), "bfloat16"),
      idx: tensor(new BigInt64Array([5n, -9n])),
      mask: tensor(new Uint8Array([0, 1]), [2], { dtype: "bool" }),
    };
    saveSafetensors(file, record, { epoch: "3" });
    return Object.fromEntries(Object.entries(record).map(([k, t]) => [k, t.toArray()]));
  });
  const got = runPython<{ meta: Record<string, string>; tensors: PyTensors }>(PY_READER, file);
  assert.deepEqual(got.meta, { epoch: "3" });
  for (const [k, values] of Object.entries(mine)) assert.deepEqual(got.tensors[k]?.values, values, k);
  assert.deepEqual(got.tensors["layer.weight"]?.shape, [2, 2]);
});

test("corrupt headers give a SafetensorsError naming the file and the problem", () => {
  const f32 = (shape: number[], offsets: number[]) => ({ dtype: "F32", shape, data_offsets: offsets });
  expectError(shortFile(), /shorter than the 8-byte header/);
  expectError(writeRaw("huge-header.safetensors", "{}", 0, 200_000_000n), /above the 100000000-byte limit/);
  expectError(writeRaw("past-end.safetensors", "{}", 0, 4096n), /runs past the end/);
  expectError(writeRaw("bad-json.safetensors", "{not json", 0), /not valid JSON/);
  expectError(writeRaw("array.safetensors", "[1,2]", 0), /must be a JSON object/);
  expectError(
    writeRaw("dtype.safetensors", { w: { dtype: "F8_E4M3", shape: [1], data_offsets: [0, 1] } }, 1),
    /unknown or unsupported dtype/,
    "w",
  );
  expectError(
    writeRaw("size.safetensors", { w: f32([2, 3], [0, 20]) }, 20),
    /needs 24 bytes but data_offsets \[0, 20\] span 20/,
    "w",
  );
  expectError(writeRaw("neg-dim.safetensors", { w: f32([-1, 4], [0, 16]) }, 16), /non-negative integers/, "w");
  expectError(writeRaw("frac-dim.safetensors", { w: f32([1.5], [0, 6]) }, 6), /non-negative integers/, "w");
  expectError(
    writeRaw("huge-shape.safetensors", { w: f32([1e12, 1e12], [0, 16]) }, 16),
    /needs 4000000000000000000000000 bytes/,
    "w",
  );
  expectError(writeRaw("offsets.safetensors", { w: f32([1], [8, 4]) }, 8), /begin <= end/, "w");
  expectError(writeRaw("oob.safetensors", { w: f32([4], [0, 16]) }, 8), /truncated/, "w");
  expectError(
    writeRaw("overlap.safetensors", { a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, 12),
    /overlap those of "a"/,
    "b",
  );
  expectError(writeRaw("gap.safetensors", { a: f32([1], [0, 4]), b: f32([1], [8, 12]) }, 12), /gap of 4/, "b");
  expectError(writeRaw("trailing.safetensors", { a: f32([1], [0, 4]) }, 12), /8 bytes after the last tensor/);
  expectError(writeRaw("meta.safetensors", { __metadata__: { n: 3 } }, 0), /__metadata__ values must be strings/);
  expectError(path.join(dir, "missing.safetensors"), /no such file/);
});

function shortFile(): string {
  const file = path.join(dir, "tiny.safetensors");
  fs.writeFileSync(file, Buffer.from([1, 2, 3]));
  return file;
}

test("a truncated copy of a valid file is refused", () => {
  const file = path.join(dir, "whole.safetensors");
  scope(() => saveSafetensors(file, { w: tensor(new Float32Array(64), [8, 8]) }));
  const full = fs.readFileSync(file);
  for (const keep of [full.byteLength - 1, full.byteLength - 100, 40, 7]) {
    const cut = path.join(dir, `cut-${keep}.safetensors`);
    fs.writeFileSync(cut, full.subarray(0, keep));
    assert.throws(() => loadAndDispose(cut), SafetensorsError);
  }
});

test("bool bytes other than 0 and 1 read as true", () => {
  const file = writeRaw(
    "bool.safetensors",
    { m: { dtype: "BOOL", shape: [3], data_offsets: [0, 3] } },
    new Uint8Array([0, 2, 255]),
  );
  scope(() => {
    const m = loadSafetensors(file).tensors.get("m") as Tensor;
    assert.deepEqual(m.toArray(), [0, 1, 1]);
    return undefined;
  });
});

test("saving rejects bad keys, values and metadata with clear errors", () => {
  scope(() => {
    const file = path.join(dir, "bad.safetensors");
    const t = tensor([1]);
    assert.throws(() => saveSafetensors(file, { __metadata__: t }), /keys must be non-empty strings/);
    assert.throws(
      () => saveSafetensors(file, { w: [1, 2] as unknown as Tensor }),
      /every value must be a Tensor. Received: w=/,
    );
    assert.throws(
      () => saveSafetensors(file, { w: t }, { n: 3 as unknown as string }),
      /metadata values must be strings/,
    );
    const gone = tensor([2]);
    gone.dispose();
    assert.throws(() => saveSafetensors(file, { gone }), /"gone" was disposed/);
    assert.equal(fs.existsSync(file), false);
    return undefined;
  });
});

test("every one of the 65,536 bf16 and f16 bit patterns is saved bit for bit (NaNs stay NaN)", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  for (const dtype of ["bfloat16", "float16"] as const) {
    const file = path.join(dir, `all-${dtype}.safetensors`);
    scope(() => saveSafetensors(file, { x: tensor(all, [65536], { dtype }) }));
    const buf = fs.readFileSync(file);
    const n = Number(buf.readBigUInt64LE(0));
    const bits = new Uint16Array(buf.buffer.slice(buf.byteOffset + 8 + n, buf.byteOffset + buf.byteLength));
    const expBits = dtype === "bfloat16" ? 0x7f80 : 0x7c00;
    const isNaNBits = (b: number) => (b & expBits) === expBits && (b & (expBits ^ 0x7fff)) !== 0;
    for (let i = 0; i < 65536; i++) {
      const b = bits[i] as number;
      if (isNaNBits(i)) assert.ok(isNaNBits(b), `${dtype} NaN ${i.toString(16)} became ${b.toString(16)}`);
      else if (b !== i) assert.fail(`${dtype} bits ${i.toString(16)} saved as ${b.toString(16)}`);
    }
  }
});
