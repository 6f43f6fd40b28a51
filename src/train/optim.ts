// The optimizer base: parameter groups with PyTorch's semantics (a group's own options override
// the defaults), per-parameter state indexed by the parameter's position across groups (PyTorch's
// state_dict numbering), and state dicts as tensors plus JSON metadata for checkpoints.
import type { Module } from "../nn/module";
import { copyInPlace } from "../ops/inplace";
import { clone } from "../ops/shape";
import { ArgumentError, describe } from "../tensor/errors";
import { keep, scope } from "../tensor/scope";
import { noGrad, Tensor } from "../tensor/tensor";

/** A set of parameters with options that override the optimizer's defaults for them. */
export interface ParamGroup {
  params: Tensor[];
  lr?: number;
  weightDecay?: number;
  /** setLr(lr) gives this group lr·lrScale (e.g. a smaller lr for a pretrained backbone). */
  lrScale?: number;
  [k: string]: unknown;
}

/** A group after the optimizer's defaults were filled in. */
export type ResolvedGroup<O extends object = object> = ParamGroup & O & { lr: number; weightDecay: number };

/** What a checkpoint stores: state tensors by "<param index>.<name>" and JSON metadata. */
export interface OptimizerStateDict {
  state: Map<string, Tensor>;
  meta: OptimizerMeta;
}

export interface OptimizerMeta {
  type: string;
  /** Each group's options, with params as indices into the flat parameter list. */
  paramGroups: Record<string, unknown>[];
  [k: string]: unknown;
}

export abstract class Optimizer {
  abstract readonly paramGroups: ResolvedGroup[];

  /** One update of every parameter that has a gradient. */
  abstract step(): void;
  abstract stateDict(): OptimizerStateDict;
  abstract loadStateDict(sd: OptimizerStateDict): void;
  /** Frees the state tensors. The parameters belong to the model and are left alone. */
  abstract dispose(): void;

  /** Every parameter, in group order (the order of the state dict's indices). */
  params(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** Drops every gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.params()) p.zeroGrad();
  }

  /** Sets every group's lr to lr·lrScale (lrScale defaults to 1); schedules call this each step. */
  setLr(lr: number): void {
    if (!(Number.isFinite(lr) && lr >= 0))
      throw new ArgumentError(`setLr: lr must be a finite number >= 0. Received: lr=${describe(lr)}`);
    for (const g of this.paramGroups) g.lr = lr * (g.lrScale ?? 1);
  }

  /**
   * Sets every group's momentum: SGD's momentum, Adam's beta1 (what OneCycleLR's cycle_momentum
   * moves). Throws for an optimizer without either.
   */
  setMomentum(momentum: number): void {
    if (!(Number.isFinite(momentum) && momentum >= 0 && momentum < 1))
      throw new ArgumentError(`setMomentum: momentum must be in [0, 1). Received: momentum=${describe(momentum)}`);
    for (const g of this.paramGroups) {
      if (typeof g.momentum === "number") g.momentum = momentum;
      else if (Array.isArray(g.betas)) g.betas = [momentum, g.betas[1]];
      else
        throw new ArgumentError(
          `setMomentum: this optimizer has neither momentum nor betas to cycle; use SGD, Adam or AdamW, or leave the schedule's cycleMomentum false.`,
        );
    }
  }

  /** The first group's lr (for logs). */
  get lr(): number {
    return this.paramGroups[0]?.lr ?? 0;
  }
}

/** One parameter's state: named tensors (momentum buffers, moments) and its own step count. */
export interface ParamState {
  step: number;
  tensors: Map<string, Tensor>;
}

/** A parameter with a gradient, as a step sees it. */
export interface GroupItem {
  p: Tensor;
  grad: Tensor;
  state: ParamState;
}

/**
 * Normalizes a parameter list or a list of groups into resolved groups: each group's options
 * override the defaults, no parameter may appear twice (PyTorch's rule), none may be empty.
 */
export function resolveGroups<O extends object>(
  name: string,
  paramsOrGroups: readonly Tensor[] | readonly ParamGroup[],
  defaults: O & { lr: number; weightDecay: number },
): ResolvedGroup<O>[] {
  if (!Array.isArray(paramsOrGroups) || paramsOrGroups.length === 0)
    throw new ArgumentError(
      `${name}: got an empty parameter list; pass model.parameters() or parameter groups. Received: params=${describe(paramsOrGroups)}`,
    );
  const groups: ParamGroup[] =
    paramsOrGroups[0] instanceof Tensor ? [{ params: paramsOrGroups as Tensor[] }] : (paramsOrGroups as ParamGroup[]);
  const seen = new Set<Tensor>();
  return groups.map((g, gi) => {
    if (g === null || typeof g !== "object" || !Array.isArray(g.params))
      throw new ArgumentError(
        `${name}: each entry must be a Tensor or a group { params: Tensor[], ... }. Received: paramGroups[${gi}]=${describe(g)}`,
      );
    for (const [pi, p] of g.params.entries()) {
      if (!(p instanceof Tensor))
        throw new ArgumentError(
          `${name}: parameters must be Tensors. Received: paramGroups[${gi}].params[${pi}]=${describe(p)}`,
        );
      if (seen.has(p))
        throw new ArgumentError(
          `${name}: a parameter appears in more than one group (or twice in one); each may appear once. Received: paramGroups[${gi}].params[${pi}]=${describe(p)}`,
        );
      seen.add(p);
    }
    const own = Object.fromEntries(Object.entries(g).filter(([k, v]) => k !== "params" && v !== undefined));
    return { ...defaults, ...own, params: [...g.params] } as ResolvedGroup<O>;
  });
}

/** defaults overridden by the options that are set (an explicit undefined keeps the default). */
export function withDefaults<D extends object>(defaults: D, opts: object): D {
  const set = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  return { ...defaults, ...set } as D;
}

/** Checks a numeric option: "what is wrong. Received: name=value". */
export function checkOption(ok: boolean, fn: string, what: string, name: string, value: unknown): void {
  if (!ok) throw new ArgumentError(`${fn}: ${name} ${what}. Received: ${name}=${describe(value)}`);
}

/** A group's options without its tensors, for JSON metadata. */
export function groupMeta(g: ParamGroup, firstIndex: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(g)) if (k !== "params" && v !== undefined) out[k] = v;
  out.params = g.params.map((_, i) => firstIndex + i);
  return out;
}

/** Checks that a state dict's metadata names this optimizer and has groups of the same sizes. */
export function checkMeta(name: string, groups: readonly ParamGroup[], sd: OptimizerStateDict): void {
  if (sd === null || typeof sd !== "object" || !(sd.state instanceof Map) || typeof sd.meta !== "object")
    throw new ArgumentError(
      `${name}.loadStateDict: expected { state: Map<string, Tensor>, meta } as returned by stateDict(). Received: sd=${describe(sd)}`,
    );
  if (sd.meta.type !== name)
    throw new ArgumentError(
      `${name}.loadStateDict: the state dict was saved by a different optimizer; build the same one to resume. Received: type=${describe(sd.meta.type)}`,
    );
  const sizes = groups.map((g) => g.params.length);
  const got = Array.isArray(sd.meta.paramGroups)
    ? sd.meta.paramGroups.map((g) => (Array.isArray(g.params) ? g.params.length : -1))
    : [];
  if (sizes.length !== got.length || sizes.some((n, i) => n !== got[i]))
    throw new ArgumentError(
      `${name}.loadStateDict: the parameter groups differ from this optimizer's (group sizes [${sizes.join(", ")}]); build the optimizer over the same parameters. Received: group sizes=[${got.join(", ")}]`,
    );
}

/** A copy of src with param's dtype and device, owned by the caller (kept from scopes). */
export function ownedCopy(src: Tensor, like: Tensor): Tensor {
  // Kept only once the copy succeeded: a throwing copy must not leave a kept tensor behind.
  return noGrad(() =>
    scope(() => {
      const t = clone(like);
      copyInPlace(t, src);
      return keep(t);
    }),
  );
}

/** Parses a state key "<index>.<name>". */
export function parseStateKey(key: string): { index: number; name: string } | undefined {
  const m = /^(\d+)\.([A-Za-z_]+)$/.exec(key);
  return m === null ? undefined : { index: Number(m[1]), name: m[2] };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Validates state tensors against the parameters: every key "<index>.<name>" must name a
 * parameter and a known state, with the parameter's shape. All problems in one error.
 */
export function checkStateTensors(
  fn: string,
  params: readonly Tensor[],
  state: Map<string, Tensor>,
  knownNames: readonly string[],
): void {
  const problems: string[] = [];
  for (const [key, t] of state) {
    const k = parseStateKey(key);
    if (k === undefined || k.index >= params.length || !knownNames.includes(k.name)) {
      problems.push(
        `unexpected key "${key}" (expected "<index < ${params.length}>.<${knownNames.join(" | ") || "none"}>")`,
      );
      continue;
    }
    if (!(t instanceof Tensor)) {
      problems.push(`"${key}" is not a Tensor`);
      continue;
    }
    const want = params[k.index].shape;
    if (!sameShape(t.shape, want))
      problems.push(`"${key}" has shape [${t.shape.join(", ")}] but parameter ${k.index} has [${want.join(", ")}]`);
  }
  if (problems.length > 0)
    throw new ArgumentError(
      `${fn}: the state dict does not fit these parameters (${problems.length} problem${problems.length > 1 ? "s" : ""}): ${problems.join("; ")}.`,
    );
}

/**
 * Parameters for paramGroupsWithoutDecay-style splits: weight decay on weights (rank >= 2:
 * convolution and linear kernels), none on biases and BatchNorm scales/shifts (rank 1), which
 * decay only shrinks towards a worse optimum (Goyal et al. 2017; He et al. 2019, "Bag of Tricks").
 */
export function paramGroupsWithoutDecay(model: Module, weightDecay: number): ParamGroup[] {
  checkOption(
    Number.isFinite(weightDecay) && weightDecay >= 0,
    "paramGroupsWithoutDecay",
    "must be a finite number >= 0",
    "weightDecay",
    weightDecay,
  );
  const decay: Tensor[] = [];
  const noDecay: Tensor[] = [];
  for (const [, p] of model.namedParameters()) (p.rank <= 1 ? noDecay : decay).push(p);
  const groups: ParamGroup[] = [];
  if (decay.length > 0) groups.push({ params: decay, weightDecay });
  if (noDecay.length > 0) groups.push({ params: noDecay, weightDecay: 0 });
  return groups;
}

/**
 * An optimizer whose update touches one parameter at a time (SGD, Adam, AdamW). It owns the
 * per-parameter state, the step loop (no grad, one scope per parameter so temporaries are freed
 * at once), and state dicts. Subclasses give the update and the names of their state tensors.
 */
export abstract class ParamwiseOptimizer<O extends object> extends Optimizer {
  readonly paramGroups: ResolvedGroup<O>[];
  private states: (ParamState | undefined)[] = [];

  protected constructor(
    /** The optimizer's name, checked when a state dict is loaded. */
    readonly name: string,
    paramsOrGroups: readonly Tensor[] | readonly ParamGroup[],
    defaults: O & { lr: number; weightDecay: number },
    /** The state tensors a parameter may have, e.g. ["momentum_buffer"]. */
    private readonly stateNames: readonly string[],
    /** Whether each parameter's step count is part of its state (Adam's bias correction). */
    private readonly countsSteps: boolean,
  ) {
    super();
    this.paramGroups = resolveGroups(name, paramsOrGroups, defaults);
  }

  /** Throws when a group's options are out of range. Called on construction and after loading. */
  protected abstract validateGroup(g: ResolvedGroup<O>): void;

  /** Updates p in place from grad; runs under noGrad inside a scope. */
  protected abstract updateParam(p: Tensor, grad: Tensor, group: ResolvedGroup<O>, state: ParamState): void;

  /** Stores a state tensor that outlives the step's scope. */
  protected setState(state: ParamState, name: string, t: Tensor): Tensor {
    state.tensors.get(name)?.dispose();
    state.tensors.set(name, keep(t));
    return t;
  }

  /**
   * Updates a group's parameters that have gradients; runs under noGrad inside one scope. The
   * default updates one parameter at a time, each in its own scope so temporaries are freed at
   * once; an optimizer with a multi-tensor update (SGD) overrides it.
   */
  protected updateGroup(group: ResolvedGroup<O>, items: readonly GroupItem[]): void {
    for (const { p, grad, state } of items) scope(() => this.updateParam(p, grad, group, state));
  }

  step(): void {
    noGrad(() => {
      let index = 0;
      for (const group of this.paramGroups) {
        scope(() => {
          const items: GroupItem[] = [];
          for (const p of group.params) {
            const i = index++;
            const grad = p.grad;
            if (grad === undefined) continue;
            this.states[i] ??= { step: 0, tensors: new Map() };
            items.push({ p, grad, state: this.states[i] });
          }
          if (items.length > 0) this.updateGroup(group, items);
        });
      }
    });
  }

  /** The state tensors are the live ones (not copies): write them out, do not dispose them. */
  stateDict(): OptimizerStateDict {
    const state = new Map<string, Tensor>();
    const steps: Record<string, number> = {};
    this.states.forEach((s, i) => {
      if (s === undefined) return;
      for (const [name, t] of s.tensors) state.set(`${i}.${name}`, t);
      if (this.countsSteps) steps[String(i)] = s.step;
    });
    let first = 0;
    const paramGroups = this.paramGroups.map((g) => {
      const m = groupMeta(g, first);
      first += g.params.length;
      return m;
    });
    const meta: OptimizerMeta = { type: this.name, paramGroups };
    if (this.countsSteps) meta.steps = steps;
    return { state, meta };
  }

  /**
   * Restores state and group options (lr included, as PyTorch does) from stateDict() of the
   * same optimizer over parameters of the same shapes. Tensors are copied, so the source may be
   * disposed afterwards. Nothing changes when the state dict does not fit.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const fn = `${this.name}.loadStateDict`;
    checkMeta(this.name, this.paramGroups, sd);
    const params = this.params();
    checkStateTensors(fn, params, sd.state, this.stateNames);
    const steps = (sd.meta.steps ?? {}) as Record<string, unknown>;
    if (this.countsSteps)
      for (const [k, v] of Object.entries(steps))
        if (!(Number(k) < params.length && Number.isInteger(v) && (v as number) >= 0))
          throw new ArgumentError(
            `${fn}: steps must map parameter indices to integers >= 0. Received: steps[${describe(k)}]=${describe(v)}`,
          );
    const resolved = this.paramGroups.map((g, gi) => {
      const own = { ...sd.meta.paramGroups[gi] };
      delete own.params;
      const next = { ...g, ...own, params: g.params } as ResolvedGroup<O>;
      this.validateGroup(next);
      return next;
    });
    this.dispose();
    resolved.forEach((g, gi) => {
      this.paramGroups[gi] = g;
    });
    const states: (ParamState | undefined)[] = [];
    const ensure = (i: number): ParamState => {
      states[i] ??= { step: 0, tensors: new Map() };
      return states[i];
    };
    for (const [key, t] of sd.state) {
      const k = parseStateKey(key)!;
      ensure(k.index).tensors.set(k.name, ownedCopy(t, params[k.index]));
    }
    if (this.countsSteps) for (const [k, v] of Object.entries(steps)) ensure(Number(k)).step = v as number;
    this.states = states;
  }

  dispose(): void {
    for (const s of this.states) if (s !== undefined) for (const t of s.tensors.values()) t.dispose();
    this.states = [];
  }
}
