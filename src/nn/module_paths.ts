// Which module's forward is running: each module's forward wrapped so a stack of labels
// ("layer1.0 (BasicBlock)") follows the call tree while a trace runs. Used by ONNX export (node
// names, error messages) and by int8 quantization (site keys, src/quant/sites.ts).

import type { Tensor } from "../tensor/tensor";
import type { Module } from "./module";

/** Pushes each module's label on `paths` while its forward() runs; returns the undo. */
export function trackModulePaths(model: Module, paths: string[]): () => void {
  const restores: (() => void)[] = [];
  for (const [path, m] of model.namedModules()) {
    const hadOwn = Object.hasOwn(m, "forward");
    const inner = m.forward;
    const label = path === "" ? `(root ${m.constructor.name})` : `${path} (${m.constructor.name})`;
    m.forward = ((...args: unknown[]) => {
      paths.push(label);
      try {
        return (inner as (...a: unknown[]) => Tensor).apply(m, args);
      } finally {
        paths.pop();
      }
    }) as Module["forward"];
    restores.push(() => {
      if (hadOwn) m.forward = inner;
      else Reflect.deleteProperty(m, "forward");
    });
  }
  return () => {
    for (const r of restores.reverse()) r();
  };
}

/** The module path in a label pushed by trackModulePaths ("" for the root). */
export function pathOfLabel(label: string | undefined): string {
  if (label === undefined || label.startsWith("(root")) return "";
  return label.replace(/ \(.*\)$/, "");
}
