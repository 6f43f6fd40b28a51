// Sequential and ModuleList: children named "0", "1", ... as in PyTorch.
import { ArgumentError, checkArg, describe } from "../tensor/errors";
import { scope } from "../tensor/scope";
import type { Tensor } from "../tensor/tensor";
import { BatchNorm2d, ReLU } from "./layers";
import { Module, type ModuleConfig } from "./module";

export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[] = [];

  constructor(modules: M[] = []) {
    super();
    const kind = new.target.name;
    checkArg(Array.isArray(modules), kind, "modules must be an array of Modules", "modules", modules);
    for (const m of modules) this.append(m);
  }

  append(m: M): this {
    if (!(m instanceof Module))
      throw new ArgumentError(`ModuleList.append: expected a Module. Received: m=${describe(m)}`);
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    const m = this.items[i < 0 ? this.items.length + i : i];
    if (m === undefined)
      throw new ArgumentError(`ModuleList.at: index out of range [0, ${this.items.length}). Received: i=${i}`);
    return m;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }

  forward(_x: Tensor): Tensor {
    throw new ArgumentError("ModuleList has no forward(); iterate over it, or use Sequential.");
  }

  toConfig(): ModuleConfig {
    return { length: this.items.length };
  }
}

/**
 * Applies its children in order. Each child runs in its own scope and the previous intermediate is
 * released as soon as the next one exists, so an inference forward keeps a working set of a few
 * activations (hot in cache) instead of every activation until the outer scope ends, as PyTorch's
 * reference counting does. Releasing a handle never breaks backward: autograd holds its own references.
 */
export class Sequential extends ModuleList {
  override forward(x: Tensor): Tensor {
    let y = x;
    for (let i = 0; i < this.items.length; i++) {
      const m = this.items[i] as Module;
      const next = this.items[i + 1];
      const input = y;
      // a BatchNorm2d followed by a ReLU: one fused kernel in training (BatchNorm2d.forwardRelu)
      if (m instanceof BatchNorm2d && next instanceof ReLU) {
        y = scope(() => m.forwardRelu(input, undefined, next));
        i++;
      } else y = scope(() => m.forward(input));
      if (input !== x && input !== y) input.dispose();
    }
    return y;
  }
}
