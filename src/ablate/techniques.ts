// Techniques of an ablation study: named patches of the recipe and/or the model options. A
// built-in technique has parameters with defaults (`mixup`, `mixup:alpha=0.2`, `se:reduction=8`);
// a user technique is a JSON object {name, recipe?, modelOptions?, description?} in a file given
// with --technique-file or inside a study file. Combining techniques applies their patches in
// order; two that set the same field to different values cannot be combined (an error before
// anything runs), and a technique that changes nothing in the study's recipe is refused (the
// baseline already has it).
import { ArgumentError, didYouMean } from "../tensor/errors";

export type ParamValue = number | boolean | string;

export interface Technique {
  /** As written in the study: "mixup" or "mixup:alpha=0.2". */
  name: string;
  description: string;
  /** Partial recipe merged over the study's recipe (null switches an entry off). */
  recipe: Record<string, unknown>;
  /** Model options merged over the model's. */
  modelOptions: Record<string, unknown>;
}

interface BuiltIn {
  description: string;
  params: Record<string, ParamValue>;
  patch(p: Record<string, ParamValue>): { recipe?: Record<string, unknown>; modelOptions?: Record<string, unknown> };
}

const num = (v: ParamValue): number => v as number;

/** The built-in techniques, with the default of each parameter and the paper it comes from. */
export const BUILT_IN: Readonly<Record<string, BuiltIn>> = {
  se: {
    description: "squeeze-and-excitation on every block (Hu et al. 2018), reduction r",
    params: { reduction: 16 },
    patch: (p) => ({ modelOptions: { se: true, seReduction: num(p.reduction) } }),
  },
  mixup: {
    description: "mixup (Zhang et al. 2018), lam ~ Beta(alpha, alpha)",
    params: { alpha: 1 },
    patch: (p) => ({ recipe: { augment: { mixup: { alpha: num(p.alpha) } } } }),
  },
  cutmix: {
    description: "CutMix (Yun et al. 2019), lam ~ Beta(alpha, alpha)",
    params: { alpha: 1 },
    patch: (p) => ({ recipe: { augment: { cutmix: { alpha: num(p.alpha) } } } }),
  },
  cutout: {
    description: "cutout (DeVries & Taylor 2017), one zeroed square of side `size` per image",
    params: { size: 16 },
    patch: (p) => ({ recipe: { augment: { cutout: { size: num(p.size) } } } }),
  },
  "random-erasing": {
    description: "random erasing (Zhong et al. 2020) with probability p",
    params: { p: 0.5 },
    patch: (p) => ({ recipe: { augment: { randomErasing: { p: num(p.p) } } } }),
  },
  "label-smoothing": {
    description: "label smoothing (Szegedy et al. 2016) of the cross-entropy",
    params: { eps: 0.1 },
    patch: (p) => ({ recipe: { labelSmoothing: num(p.eps) } }),
  },
  ema: {
    description: "exponential moving average of the weights, evaluated instead of them",
    params: { decay: 0.999 },
    patch: (p) => ({ recipe: { ema: { decay: num(p.decay) } } }),
  },
  lookahead: {
    description: "Lookahead (Zhang et al. 2019) around the optimizer",
    params: { k: 5, alpha: 0.5 },
    patch: (p) => ({ recipe: { lookahead: { k: num(p.k), alpha: num(p.alpha) } } }),
  },
  dropout: {
    description: "dropout before the classifier (the model's dropout option)",
    params: { p: 0.2 },
    patch: (p) => ({ modelOptions: { dropout: num(p.p) } }),
  },
  "stochastic-depth": {
    description: "stochastic depth (Huang et al. 2016): the model's dropPath rate (families that declare it)",
    params: { rate: 0.2 },
    patch: (p) => ({ modelOptions: { dropPath: num(p.rate) } }),
  },
  clip: {
    description: "gradient clipping by value (Efficient ResNets: 0.1); norm=X clips the global norm instead",
    params: { value: 0.1, norm: 0 },
    patch: (p) => ({ recipe: { clip: num(p.norm) > 0 ? { norm: num(p.norm) } : { value: num(p.value) } } }),
  },
  nesterov: {
    description: "Nesterov momentum in SGD",
    params: {},
    patch: () => ({ recipe: { optimizer: { nesterov: true } } }),
  },
  cosine: {
    description: "cosine learning-rate schedule per iteration (Loshchilov & Hutter 2017), no warmup",
    params: {},
    patch: () => ({ recipe: { schedule: { type: "cosine", per: "iteration", warmupEpochs: 0, minLr: 0 } } }),
  },
};

/** A user technique as written in JSON. */
export interface TechniqueDef {
  name: string;
  description?: string;
  recipe?: Record<string, unknown>;
  modelOptions?: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** Checks a user technique object (from a file or a study file); `where` names it in errors. */
export function parseTechniqueDef(raw: unknown, where: string): TechniqueDef {
  if (!isObject(raw))
    throw new ArgumentError(`${where}: a technique must be a JSON object {name, recipe?, modelOptions?}`);
  const known = ["name", "description", "recipe", "modelOptions"];
  for (const k of Object.keys(raw))
    if (!known.includes(k))
      throw new ArgumentError(
        `${where}: unknown technique field "${k}". Known: ${known.join(", ")}${didYouMean(k, known)}`,
      );
  const { name, description, recipe, modelOptions } = raw;
  if (typeof name !== "string" || !/^[a-z0-9][a-z0-9_.-]*$/i.test(name))
    throw new ArgumentError(
      `${where}: "name" must be letters, digits, '_', '.' or '-'. Received: ${JSON.stringify(name)}`,
    );
  if (recipe !== undefined && !isObject(recipe))
    throw new ArgumentError(`${where} (${name}): "recipe" must be an object`);
  if (modelOptions !== undefined && !isObject(modelOptions))
    throw new ArgumentError(`${where} (${name}): "modelOptions" must be an object`);
  if (recipe === undefined && modelOptions === undefined)
    throw new ArgumentError(
      `${where} (${name}): a technique needs "recipe" and/or "modelOptions" (the patch it applies)`,
    );
  if (recipe !== undefined && ("model" in recipe || "modelOptions" in recipe || "seed" in recipe))
    throw new ArgumentError(
      `${where} (${name}): a technique's recipe patch may not set model, modelOptions or seed (the study sets them; use "modelOptions" for model options)`,
    );
  if (description !== undefined && typeof description !== "string")
    throw new ArgumentError(`${where} (${name}): "description" must be a string`);
  return { name, description, recipe, modelOptions };
}

function parseParam(v: string, def: ParamValue): ParamValue {
  if (typeof def === "number") {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n)) throw new ArgumentError(`must be a number. Received: ${v}`);
    return n;
  }
  if (typeof def === "boolean") {
    if (v !== "true" && v !== "false") throw new ArgumentError(`must be true or false. Received: ${v}`);
    return v === "true";
  }
  return v;
}

/** The technique a study names: a built-in with its parameters (`mixup:alpha=0.2`) or a user technique. */
export function resolveTechnique(spec: string, user: readonly TechniqueDef[] = []): Technique {
  const own = user.find((t) => t.name === spec);
  if (own !== undefined)
    return {
      name: own.name,
      description: own.description ?? "user technique",
      recipe: own.recipe ?? {},
      modelOptions: own.modelOptions ?? {},
    };
  const colon = spec.indexOf(":");
  const base = colon < 0 ? spec : spec.slice(0, colon);
  const builtIn = Object.hasOwn(BUILT_IN, base) ? BUILT_IN[base] : undefined;
  if (builtIn === undefined) {
    const names = [...Object.keys(BUILT_IN), ...user.map((t) => t.name)];
    throw new ArgumentError(
      `unknown technique "${base}". Known techniques: ${names.join(", ")}; add your own with --technique-file FILE${didYouMean(base, names)}`,
    );
  }
  const params = { ...builtIn.params };
  if (colon >= 0) {
    for (const pair of spec.slice(colon + 1).split(",")) {
      const eq = pair.indexOf("=");
      const key = eq < 0 ? pair : pair.slice(0, eq);
      if (!Object.hasOwn(builtIn.params, key)) {
        const keys = Object.keys(builtIn.params);
        throw new ArgumentError(
          `technique ${base} has no parameter "${key}". ${keys.length ? `Its parameters: ${keys.map((k) => `${k} (default ${builtIn.params[k]})`).join(", ")}` : "It takes no parameters"}${didYouMean(key, keys)}`,
        );
      }
      if (eq < 0) throw new ArgumentError(`technique ${spec}: write ${key}=VALUE`);
      try {
        params[key] = parseParam(pair.slice(eq + 1), builtIn.params[key] as ParamValue);
      } catch (e) {
        throw new ArgumentError(`technique ${base}, parameter ${key}: ${(e as Error).message}`);
      }
    }
  }
  const patch = builtIn.patch(params);
  return {
    name: spec,
    description: builtIn.description,
    recipe: patch.recipe ?? {},
    modelOptions: patch.modelOptions ?? {},
  };
}

/** Leaves of a patch as dotted paths ("augment.mixup.alpha" -> 1); an empty object is a leaf. */
function leaves(v: unknown, prefix: string, out: Map<string, unknown>): Map<string, unknown> {
  if (isObject(v) && Object.keys(v).length > 0)
    for (const [k, x] of Object.entries(v)) leaves(x, prefix ? `${prefix}.${k}` : k, out);
  else out.set(prefix, v);
  return out;
}

/**
 * One patch from several techniques, in order. Two that set one field to different values are an
 * error naming both and the field.
 */
export function combinePatches(techniques: readonly Technique[]): {
  recipe: Record<string, unknown>;
  modelOptions: Record<string, unknown>;
} {
  const owner = new Map<string, { by: string; value: string }>();
  const recipe: Record<string, unknown> = {};
  const modelOptions: Record<string, unknown> = {};
  for (const t of techniques) {
    const all = leaves(t.recipe, "", new Map());
    for (const [k, v] of leaves(t.modelOptions, "", new Map())) all.set(`modelOptions.${k}`, v);
    for (const [field, v] of all) {
      const value = JSON.stringify(v);
      const prev = owner.get(field);
      if (prev !== undefined && prev.value !== value)
        throw new ArgumentError(
          `techniques ${prev.by} and ${t.name} cannot be combined: both set ${field} (${prev.value} and ${value}). Use --combine single, or give one of them another value.`,
        );
      owner.set(field, { by: t.name, value });
    }
    deepAssign(recipe, t.recipe);
    Object.assign(modelOptions, t.modelOptions);
  }
  return { recipe, modelOptions };
}

function deepAssign(into: Record<string, unknown>, from: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    if (isObject(v) && isObject(cur)) deepAssign(cur, v);
    else into[k] = isObject(v) ? structuredClone(v) : v;
  }
}
