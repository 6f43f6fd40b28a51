// Every op, by family. Importing this also attaches the chained Tensor methods.
import "./methods";

export * from "./creation";
export * from "./inplace";
export * from "./math";
export * from "./nn";
export * from "./quant";
export * from "./reduce";
export * from "./shape";
