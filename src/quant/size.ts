// Weight bytes of a model as `budgetnet quantize` stores it, without quantizing anything: every
// Conv2d and Linear weight as int8 (1 byte a value) plus a float32 scale per output channel,
// every other tensor of the state dict as float32. Header bytes of the file are not counted.
import { Conv2d, Linear } from "../nn/layers";
import type { Module } from "../nn/module";

export function int8WeightBytes(model: Module, perChannel = true): number {
  const quantized = new Set<string>();
  for (const [name, m] of model.namedModules())
    if (m instanceof Conv2d || m instanceof Linear) quantized.add(name === "" ? "weight" : `${name}.weight`);
  let bytes = 0;
  for (const [name, t] of model.stateDict()) {
    if (quantized.has(name)) bytes += t.size + 4 * (perChannel ? (t.shape[0] as number) : 1);
    else bytes += 4 * t.size;
  }
  return bytes;
}
