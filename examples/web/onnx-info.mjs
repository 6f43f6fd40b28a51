// Reads what the page needs from an ONNX file's bytes: the metadata_props that budgetnet's exporter
// writes (class names, input shape, mean/std, normalization) and the number of weights stored in
// the graph's initializers. onnxruntime-web does not expose metadata_props, so this walks the
// protobuf wire format itself (ModelProto field 14 = metadata_props, field 7 = graph;
// GraphProto field 5 = initializer; TensorProto field 1 = dims).

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

class ProtoReader {
  constructor(bytes, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
  }

  varint() {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error("the protobuf data ends inside a number");
      const b = this.bytes[this.pos++];
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    throw new Error("a protobuf number is longer than 10 bytes");
  }

  /** Calls visit(field, wire, reader) for each field; reader is a sub-reader for length-delimited ones. */
  forEachField(visit) {
    while (this.pos < this.end) {
      const key = this.varint();
      const field = Math.floor(key / 8);
      const wire = key % 8;
      if (wire === WIRE_VARINT) visit(field, wire, this.varint());
      else if (wire === WIRE_BYTES) {
        const length = this.varint();
        const start = this.pos;
        if (start + length > this.end) throw new Error("a protobuf field runs past the end of the data");
        this.pos += length;
        visit(field, wire, new ProtoReader(this.bytes, start, start + length));
      } else if (wire === WIRE_FIXED64) this.skip(8);
      else if (wire === WIRE_FIXED32) this.skip(4);
      else throw new Error(`unknown protobuf wire type ${wire}`);
    }
  }

  skip(n) {
    if (this.pos + n > this.end) throw new Error("a protobuf field runs past the end of the data");
    this.pos += n;
  }

  text() {
    return new TextDecoder().decode(this.bytes.subarray(this.pos, this.end));
  }
}

/** The element count of one TensorProto (product of its dims; dims may be packed or not). */
function tensorElements(reader) {
  const dims = [];
  reader.forEachField((field, wire, value) => {
    if (field !== 1) return;
    if (wire === WIRE_VARINT) dims.push(value);
    else if (wire === WIRE_BYTES) while (value.pos < value.end) dims.push(value.varint());
  });
  return dims.reduce((a, b) => a * b, 1);
}

/**
 * { metadata: {key: value}, storedWeights, graphName } from an ONNX model's bytes.
 * Throws when the bytes are not a protobuf ModelProto with a graph.
 */
export function readOnnxInfo(bytes) {
  const metadata = {};
  let storedWeights = 0;
  let graphName = "";
  let sawGraph = false;
  new ProtoReader(bytes).forEachField((field, wire, value) => {
    if (field === 14 && wire === WIRE_BYTES) {
      let key = "";
      let text = "";
      value.forEachField((f, w, v) => {
        if (f === 1 && w === WIRE_BYTES) key = v.text();
        if (f === 2 && w === WIRE_BYTES) text = v.text();
      });
      metadata[key] = text;
    } else if (field === 7 && wire === WIRE_BYTES) {
      sawGraph = true;
      value.forEachField((f, w, v) => {
        if (f === 5 && w === WIRE_BYTES) storedWeights += tensorElements(v);
        if (f === 2 && w === WIRE_BYTES) graphName = v.text();
      });
    }
  });
  if (!sawGraph) throw new Error("the file has no ONNX graph");
  return { metadata, storedWeights, graphName };
}
