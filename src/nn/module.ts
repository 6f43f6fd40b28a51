// Module: registered parameters, buffers and children with PyTorch's naming, so state-dict
// keys are attribute paths ("layer1.0.bn1.running_mean") and weights move to and from torch.
import { copyInPlace } from "../ops/inplace";
import { to } from "../ops/shape";
import { ArgumentError, checkArg } from "../tensor/errors";
import { setData } from "../tensor/native_calls";
import { keep, scope } from "../tensor/scope";
import { noGrad, type Tensor } from "../tensor/tensor";

export type StateDict = Map<string, Tensor>;
export type ModuleConfig = Record<string, unknown>;
/** Called after a module's forward() with its input and output (PyTorch's forward hook). */
export type ForwardHook = (module: Module, input: Tensor, output: Tensor) => void;

export class StateDictError extends Error {
  constructor(
    readonly missing: string[],
    readonly unexpected: string[],
    readonly mismatched: { key: string; expected: number[]; received: number[] }[],
  ) {
    const keyList = (v: unknown): boolean => Array.isArray(v) && v.every((k) => typeof k === "string");
    checkArg(keyList(missing), "StateDictError", "missing must be an array of key strings", "missing", missing);
    checkArg(
      keyList(unexpected),
      "StateDictError",
      "unexpected must be an array of key strings",
      "unexpected",
      unexpected,
    );
    checkArg(
      Array.isArray(mismatched) &&
        mismatched.every(
          (m) => m !== null && typeof m === "object" && Array.isArray(m.expected) && Array.isArray(m.received),
        ),
      "StateDictError",
      "mismatched must be an array of {key, expected, received} with shape arrays",
      "mismatched",
      mismatched,
    );
    const parts: string[] = [];
    if (missing.length) parts.push(`missing keys (${missing.length}): ${missing.join(", ")}`);
    if (unexpected.length) parts.push(`unexpected keys (${unexpected.length}): ${unexpected.join(", ")}`);
    if (mismatched.length)
      parts.push(
        `shape mismatches (${mismatched.length}): ${mismatched
          .map((m) => `${m.key} expects [${m.expected.join(", ")}] but got [${m.received.join(", ")}]`)
          .join("; ")}`,
      );
    super(`loadStateDict: the state dict does not fit this model. ${parts.join(". ")}.`);
    this.name = "StateDictError";
  }
}

export abstract class Module {
  training = true;
  private readonly params = new Map<string, Tensor | undefined>();
  private readonly buffers = new Map<string, Tensor | undefined>();
  private readonly children = new Map<string, Module>();
  private forwardHooks: Set<ForwardHook> | undefined;
  private restoreForward: (() => void) | undefined;

  abstract forward(x: Tensor): Tensor;

  /** The constructor's options, so the layer (or model) can be rebuilt from a file alone. */
  abstract toConfig(): ModuleConfig;

  /** Registers a trainable tensor under name (kept out of scopes, requiresGrad on). */
  protected registerParameter(name: string, t: Tensor): Tensor;
  protected registerParameter(name: string, t: Tensor | undefined): Tensor | undefined;
  protected registerParameter(name: string, t: Tensor | undefined): Tensor | undefined {
    this.checkName(name);
    if (t !== undefined) {
      keep(t);
      t.requiresGrad = true;
    }
    this.params.set(name, t);
    return t;
  }

  /** Registers a non-trainable tensor that belongs to the state dict (e.g. running_mean). */
  protected registerBuffer(name: string, t: Tensor): Tensor {
    this.checkName(name);
    this.buffers.set(name, keep(t));
    return t;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this.checkName(name);
    this.children.set(name, m);
    return m;
  }

  private checkName(name: string): void {
    if (name === "" || name.includes("."))
      throw new ArgumentError(`Module: a name must be non-empty and have no '.'. Received: name="${name}"`);
    if (this.params.has(name) || this.buffers.has(name) || this.children.has(name))
      throw new ArgumentError(`Module: "${name}" is already registered on ${this.constructor.name}.`);
  }

  /** Direct children, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.children.entries()];
  }

  /** This module and every descendant, with dotted paths ("" for this one). */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.children) out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules())
      for (const [name, t] of m.params) if (t !== undefined) out.push([path ? `${path}.${name}` : name, t]);
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules())
      for (const [name, t] of m.buffers) if (t !== undefined) out.push([path ? `${path}.${name}` : name, t]);
    return out;
  }

  /** Trainable parameter count (elements). */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  /**
   * Parameters and buffers by PyTorch key, in PyTorch's order (each module's own parameters,
   * then its buffers, then its children). The tensors are the live ones, not copies.
   */
  stateDict(): StateDict {
    const sd: StateDict = new Map();
    this.collectState("", sd);
    return sd;
  }

  private collectState(prefix: string, sd: StateDict): void {
    for (const [n, t] of this.params) if (t !== undefined) sd.set(prefix + n, t);
    for (const [n, t] of this.buffers) if (t !== undefined) sd.set(prefix + n, t);
    for (const [n, c] of this.children) c.collectState(`${prefix}${n}.`, sd);
  }

  /**
   * Copies values into this module's tensors in place (optimizers keep their references).
   * strict (default): every missing, unexpected and mis-shaped key is reported in one error and
   * nothing is changed. Not strict: missing and unexpected keys are returned, mismatched shapes
   * still throw.
   */
  loadStateDict(
    sd: StateDict | Record<string, Tensor>,
    opts: { strict?: boolean } = {},
  ): { missing: string[]; unexpected: string[] } {
    const strict = opts.strict ?? true;
    const incoming = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !incoming.has(k));
    const unexpected = [...incoming.keys()].filter((k) => !own.has(k));
    const mismatched: { key: string; expected: number[]; received: number[] }[] = [];
    for (const [k, t] of own) {
      const src = incoming.get(k);
      if (src === undefined) continue;
      const a = t.shape;
      const b = src.shape;
      if (a.length !== b.length || a.some((d, i) => d !== b[i])) mismatched.push({ key: k, expected: a, received: b });
    }
    if (mismatched.length > 0 || (strict && (missing.length > 0 || unexpected.length > 0)))
      throw new StateDictError(missing, strict ? unexpected : [], mismatched);
    noGrad(() => {
      for (const [k, t] of own) {
        const src = incoming.get(k);
        if (src !== undefined) copyInPlace(t, src);
      }
    });
    return { missing, unexpected };
  }

  /**
   * Moves every parameter, buffer and gradient to device ("cpu", "cuda" or "cuda:N") in place, as
   * PyTorch's module.to(device) does (param.data = ...): the same Tensor objects, so an optimizer
   * built before keeps its references. Memory formats (channels-last) are kept. Returns this.
   */
  to(device: string): this {
    if (typeof device !== "string" || !/^(cpu|cuda(:\d+)?)$/.test(device))
      throw new ArgumentError(
        `Module.to: device must be "cpu", "cuda" or "cuda:N". Received: device=${JSON.stringify(device)}`,
      );
    for (const t of [...this.parameters(), ...this.namedBuffers().map(([, b]) => b)]) {
      if (t.device === device) continue;
      scope(() => setData(t, to(t, { device })));
      const g = t.grad;
      if (g !== undefined) {
        scope(() => setData(g, to(g, { device })));
        g.dispose();
      }
    }
    return this;
  }

  /** The device of the first parameter (or buffer); "cpu" for a module without either. */
  get device(): string {
    const first = this.parameters()[0] ?? this.namedBuffers()[0]?.[1];
    return first === undefined ? "cpu" : first.device;
  }

  /** Training mode on (or off), recursively. Returns this. */
  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Clears every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /** Frees every parameter and buffer. The module cannot be used afterwards. */
  dispose(): void {
    for (const [, t] of this.stateDict()) t.dispose();
  }

  /**
   * Calls hook after every forward() of this module, however it is reached (parents call
   * child.forward directly), until the returned function removes it. While hooks exist, an own
   * `forward` property shadows the class method; removing the last hook deletes it again.
   */
  registerForwardHook(hook: ForwardHook): () => void {
    if (this.forwardHooks === undefined) {
      const hooks = new Set<ForwardHook>();
      const inner = this.forward;
      const hadOwnForward = Object.hasOwn(this, "forward");
      this.forwardHooks = hooks;
      this.restoreForward = () => {
        if (hadOwnForward) this.forward = inner;
        else Reflect.deleteProperty(this, "forward");
      };
      this.forward = (x: Tensor): Tensor => {
        const y = inner.call(this, x);
        for (const h of hooks) h(this, x, y);
        return y;
      };
    }
    const hooks = this.forwardHooks;
    hooks.add(hook);
    return () => {
      hooks.delete(hook);
      if (hooks.size === 0 && this.forwardHooks === hooks) {
        this.forwardHooks = undefined;
        this.restoreForward?.();
      }
    };
  }

  /** forward() inside a scope: only the output survives. */
  call(x: Tensor): Tensor {
    return scope(() => this.forward(x));
  }
}
