// ONNX export (opset 17) by tracing, and a reader for checking the files.
export { exportOnnx, type OnnxExportOptions, saveOnnx } from "./export";
export { OnnxExportError } from "./graph";
export { loadOnnx, OnnxFormatError, type OnnxSummary, readOnnx, summarizeOnnx } from "./inspect";
export type { OnnxModel } from "./model";
