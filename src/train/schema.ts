// The training configuration declared once: every field of a recipe at every depth, with its type,
// range or choices, default and one line of help. From this one declaration come
//   - TrainConfig, the TypeScript type (ConfigOf below maps the declaration to it),
//   - the defaults (defaultConfig) and the starting value of an optional object that a dotted flag
//     or a partial JSON value switches on (templateOf: `--lookahead.k 5` starts from k 5, alpha 0.5),
//   - what config.ts checks (describeAllowed, fitsLeaf) and the words of its errors,
//   - schema/recipe.schema.json (recipeJsonSchema; scripts/gen-schema.js writes it), which recipes
//     name in "$schema" so editors complete and check them,
//   - the rows of a help table (fieldRows).
//
// Why a small declarative schema of our own and not zod: the declaration is plain data of eight
// node kinds, and the type mapping and the JSON Schema writer below are a few dozen lines each.
// zod would replace the type mapping only, and add two dependencies (zod, zod-to-json-schema)
// while its errors would still need rewriting into the house form ("recipe field X must be Y.
// Received: X=v") with a did-you-mean; and the model families already declare their options as
// data (src/models/options.ts), so recipes and model options read alike. This module imports
// nothing, so the generator runs without loading the native addon.
//
// modelOptions is an open object here: the model family's own schema (src/models/options.ts)
// checks it, in config.ts's validate, before any data is read.

/** Largest image side a recipe or a run may declare; larger is a mistake or a damaged file, not a data set. */
export const MAX_IMAGE_SIDE = 4096;

interface NodeBase {
  /** One line for help tables and the JSON Schema's description. */
  help: string;
  /** null is a value (for an object: switched off). */
  nullable?: true;
  /** The field may be absent from a checked config (absent = off); the type marks it `?`. */
  optional?: true;
}

interface NumberNode extends NodeBase {
  kind: "int" | "number";
  default?: number | null;
  min?: number;
  max?: number;
  minExclusive?: true;
  maxExclusive?: true;
}
interface BooleanNode extends NodeBase {
  kind: "boolean";
  default?: boolean;
}
interface TextNode extends NodeBase {
  kind: "text";
  default?: string | null;
  nonEmpty?: true;
}
interface ChoiceNode extends NodeBase {
  kind: "choice";
  values: readonly (string | boolean)[];
  default?: string | boolean;
}
interface ListNode extends NodeBase {
  kind: "list";
  of: NumberNode;
  /** A fixed length (the type is then a tuple of 2). */
  length?: 2;
  default?: readonly number[];
}
/** Any JSON object; its keys are checked elsewhere (modelOptions, by the model's schema). */
interface OpenNode extends NodeBase {
  kind: "open";
}
export interface ObjectNode extends NodeBase {
  kind: "object";
  fields: Readonly<Record<string, SchemaNode>>;
  /**
   * The value of an absent field when a config is completed from defaults: "fields" builds the
   * object from its fields' defaults, "null" leaves it switched off, "absent" leaves it out.
   */
  initially: "fields" | "null" | "absent";
  /** At least this many fields must be set (clip without value or norm would clip nothing). */
  minFields?: number;
}
export type LeafNode = NumberNode | BooleanNode | TextNode | ChoiceNode | ListNode;
export type SchemaNode = LeafNode | OpenNode | ObjectNode;

const fraction = { kind: "number", min: 0, max: 1 } as const;
const positive = { kind: "number", min: 0, minExclusive: true } as const;

/** Every recipe field. Order is the order of help tables and "Known fields" lists. */
export const RECIPE_SCHEMA = {
  kind: "object",
  help: "a budgetnet training recipe: fields left out take their defaults",
  initially: "fields",
  fields: {
    name: { kind: "text", default: "custom", help: "recipe name; run folders are named <name>-<time>" },
    source: { kind: "text", default: "", help: "the paper or code whose settings the recipe reproduces" },
    model: { kind: "text", nonEmpty: true, default: "resnet20", help: "registered model (budgetnet models)" },
    modelOptions: {
      kind: "open",
      help: "the model family's options (budgetnet summary MODEL --help-options); classes and channels default to the data's",
    },
    dataset: {
      kind: "choice",
      values: ["fashion-mnist", "mnist", "cifar10", "cifar100", "folder"],
      default: "fashion-mnist",
      help: "data set; folder: an image folder of class sub-folders at dataRoot",
    },
    dataRoot: { kind: "text", nullable: true, default: null, help: "data folder (null: the default locations)" },
    imageSize: {
      kind: "int",
      nullable: true,
      min: 1,
      max: MAX_IMAGE_SIDE,
      default: null,
      help: "folder data sets: images are resized to imageSize x imageSize",
    },
    valFraction: {
      ...fraction,
      minExclusive: true,
      maxExclusive: true,
      default: 0.1,
      help: "share of the training split held out (stratified, seeded) for validation and model choice",
    },
    trainSubset: {
      kind: "int",
      nullable: true,
      min: 1,
      default: null,
      help: "train on this many images of the training part only (stratified, seeded); null: all",
    },
    valSubset: {
      kind: "int",
      nullable: true,
      min: 1,
      default: null,
      help: "validate on this many images of the validation part only; null: all",
    },
    epochs: { kind: "int", min: 1, default: 10, help: "passes over the training images" },
    batchSize: { kind: "int", min: 1, default: 128, help: "images per optimizer step" },
    optimizer: {
      kind: "object",
      help: "the optimizer",
      initially: "fields",
      fields: {
        type: { kind: "choice", values: ["sgd", "adam", "adamw"], default: "sgd", help: "sgd, adam or adamw" },
        lr: { ...positive, default: 0.1, help: "learning rate (the peak of a onecycle schedule)" },
        momentum: { ...fraction, default: 0.9, help: "SGD momentum" },
        nesterov: { kind: "boolean", default: false, help: "SGD: Nesterov momentum" },
        weightDecay: { kind: "number", min: 0, default: 5e-4, help: "L2 weight decay (decoupled for adamw)" },
        noDecayOnBnAndBias: {
          kind: "boolean",
          default: false,
          help: "no weight decay on BatchNorm weights and biases",
        },
        betas: {
          kind: "list",
          of: { ...fraction, maxExclusive: true, help: "a beta" },
          length: 2,
          default: [0.9, 0.999],
          help: "adam, adamw: the running averages' coefficients",
        },
      },
    },
    schedule: {
      kind: "object",
      help: "the learning-rate schedule",
      initially: "fields",
      fields: {
        type: {
          kind: "choice",
          values: ["constant", "multistep", "cosine", "onecycle", "linear"],
          default: "cosine",
          help: "constant, multistep, cosine, onecycle or linear (src/train/schedule.ts)",
        },
        per: {
          kind: "choice",
          values: ["epoch", "iteration"],
          default: "iteration",
          help: "epoch: the lr changes once per epoch; iteration: every step",
        },
        milestones: {
          kind: "list",
          of: { kind: "number", min: 0, help: "an epoch" },
          default: [],
          help: "multistep: epochs at which the lr is multiplied by gamma",
        },
        gamma: { ...positive, default: 0.1, help: "multistep: factor per milestone" },
        warmupEpochs: { kind: "number", min: 0, default: 0, help: "linear warmup length in epochs (not onecycle)" },
        minLr: { kind: "number", min: 0, default: 0, help: "cosine, linear: the final lr" },
        pctStart: {
          ...fraction,
          minExclusive: true,
          maxExclusive: true,
          default: 0.3,
          help: "onecycle: share of the run spent raising the lr",
        },
        divFactor: { ...positive, default: 25, help: "onecycle: initial lr = lr / divFactor" },
        finalDivFactor: { ...positive, default: 1e4, help: "onecycle: final lr = initial lr / finalDivFactor" },
        cycleMomentum: {
          kind: "boolean",
          default: false,
          help: "onecycle: momentum (Adam's beta1) moves against the lr, maxMomentum -> baseMomentum -> maxMomentum (PyTorch OneCycleLR's default)",
        },
        baseMomentum: {
          ...fraction,
          maxExclusive: true,
          default: 0.85,
          help: "onecycle, cycleMomentum: momentum at the peak lr",
        },
        maxMomentum: {
          ...fraction,
          maxExclusive: true,
          default: 0.95,
          help: "onecycle, cycleMomentum: momentum at the start and end",
        },
      },
    },
    lookahead: {
      kind: "object",
      nullable: true,
      initially: "null",
      help: "Lookahead (Zhang et al. 2019) around the optimizer; null: off",
      fields: {
        k: { kind: "int", min: 1, default: 5, help: "fast steps per slow step" },
        alpha: { ...fraction, default: 0.5, help: "slow weights move this far towards the fast ones" },
      },
    },
    ema: {
      kind: "object",
      nullable: true,
      initially: "null",
      help: "exponential moving average of the weights, evaluated and saved instead of them; null: off",
      fields: { decay: { ...fraction, default: 0.999, help: "weight of the average per step" } },
    },
    clip: {
      kind: "object",
      nullable: true,
      initially: "null",
      minFields: 1,
      help: "gradient clipping before each step (value, then norm); null: off",
      fields: {
        value: { ...positive, optional: true, help: "clip each gradient entry to [-value, value]" },
        norm: { ...positive, optional: true, help: "scale the gradients to at most this global L2 norm" },
      },
    },
    augment: {
      kind: "object",
      help: "training augmentations; a field left out keeps its default (crop with padding 4, flip), null switches it off",
      initially: "fields",
      fields: {
        crop: {
          kind: "object",
          nullable: true,
          optional: true,
          initially: "fields",
          help: "pad, then crop a random window of the original size",
          fields: {
            padding: { kind: "int", min: 0, default: 4, help: "pixels of padding on each side" },
            mode: { kind: "choice", values: ["zero", "reflect"], default: "zero", help: "zero or reflect padding" },
          },
        },
        flip: { kind: "boolean", optional: true, default: true, help: "random horizontal flip" },
        cutout: {
          kind: "object",
          nullable: true,
          optional: true,
          initially: "absent",
          help: "cutout (DeVries & Taylor 2017): one zeroed square per image",
          fields: { size: { kind: "int", min: 1, default: 16, help: "side of the square in pixels" } },
        },
        randomErasing: {
          kind: "object",
          nullable: true,
          optional: true,
          initially: "absent",
          help: "random erasing (Zhong et al. 2020) with torchvision's area and aspect ranges",
          fields: { p: { ...fraction, default: 0.5, help: "chance of erasing an image" } },
        },
        mixup: {
          kind: "object",
          nullable: true,
          optional: true,
          initially: "absent",
          help: "mixup (Zhang et al. 2018): lam ~ Beta(alpha, alpha)",
          fields: { alpha: { ...positive, default: 1, help: "Beta distribution parameter" } },
        },
        cutmix: {
          kind: "object",
          nullable: true,
          optional: true,
          initially: "absent",
          help: "CutMix (Yun et al. 2019): lam ~ Beta(alpha, alpha)",
          fields: {
            alpha: { ...positive, default: 1, help: "Beta distribution parameter" },
            p: {
              ...fraction,
              optional: true,
              help: "chance of CutMix per batch (absent: 0.5 with mixup, else 1)",
            },
          },
        },
      },
    },
    labelSmoothing: { ...fraction, maxExclusive: true, default: 0, help: "label smoothing of the cross-entropy" },
    tta: {
      kind: "boolean",
      default: false,
      help: "flip test-time augmentation: validation (the best-epoch choice) and `budgetnet eval` average each image with its mirror; needs augment.flip",
    },
    seed: { kind: "int", min: 0, max: Number.MAX_SAFE_INTEGER, default: 0, help: "seed of weights, split and order" },
    threads: {
      kind: "int",
      nullable: true,
      min: 1,
      default: null,
      help: "libtorch threads; null: BUDGETNET_THREADS, else one per core (a number here wins over both)",
    },
    device: {
      kind: "choice",
      values: ["cpu", "cuda"],
      default: "cpu",
      help: "where the model trains: cpu, or cuda (the first GPU; needs the addon built against a CUDA libtorch, LIBTORCH=...)",
    },
    logEvery: { kind: "int", min: 1, default: 50, help: "a metrics line every this many steps" },
    syncBatchNorm: {
      kind: "boolean",
      default: false,
      help: "data-parallel runs: BatchNorm statistics over the whole job's batch (SyncBatchNorm), not per rank",
    },
    bucketMb: {
      ...positive,
      default: 25,
      help: "data-parallel runs: gradient bucket size in MB (each bucket is all-reduced as soon as backward fills it)",
    },
    precision: {
      kind: "choice",
      values: ["fp32", "bf16", "auto"],
      default: "fp32",
      help: "fp32, bf16 autocast, or auto: bf16 where the CPU has native bfloat16 (AVX-512 BF16, AMX, Arm BF16) unless fp32 measured faster for the model and image shape, fp32 elsewhere, bf16 on a GPU",
    },
    channelsLast: {
      kind: "choice",
      values: [true, false, "auto"],
      default: false,
      help: 'channels-last memory format; "auto": the measured choice for the model',
    },
  },
} as const satisfies ObjectNode;

// ---- the TypeScript type ---------------------------------------------------------------------

type ValueOf<N> = N extends { kind: "int" | "number" }
  ? number
  : N extends { kind: "boolean" }
    ? boolean
    : N extends { kind: "text" }
      ? string
      : N extends { kind: "choice"; values: readonly (infer V)[] }
        ? V
        : N extends { kind: "list"; of: infer E; length: 2 }
          ? [ValueOf<E>, ValueOf<E>]
          : N extends { kind: "list"; of: infer E }
            ? ValueOf<E>[]
            : N extends { kind: "object"; fields: infer F }
              ? ObjectOf<F>
              : N extends { kind: "open" }
                ? Record<string, unknown>
                : never;
type FieldValue<N> = N extends { nullable: true } ? ValueOf<N> | null : ValueOf<N>;
type Flatten<T> = { [K in keyof T]: T[K] };
type ObjectOf<F> = Flatten<
  { -readonly [K in keyof F as F[K] extends { optional: true } ? never : K]: FieldValue<F[K]> } & {
    -readonly [K in keyof F as F[K] extends { optional: true } ? K : never]?: FieldValue<F[K]>;
  }
>;

/** The value type a schema node declares. */
export type ConfigOf<N extends SchemaNode> = ValueOf<N>;

// ---- defaults --------------------------------------------------------------------------------

/** The value a field takes when a config is completed from defaults; undefined: left out. */
function initialValue(node: SchemaNode): unknown {
  if (node.kind === "object")
    return node.initially === "fields" ? templateOf(node) : node.initially === "null" ? null : undefined;
  if (node.kind === "open") return {};
  return node.default === undefined ? undefined : structuredClone(node.default);
}

/** An object built from its fields' defaults: what an optional object starts from when switched on. */
export function templateOf(node: ObjectNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(node.fields)) {
    const v = initialValue(f);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** A fresh, mutable copy of every default. */
export function defaultConfig(): Record<string, unknown> {
  return templateOf(RECIPE_SCHEMA);
}

// ---- checks and their words ------------------------------------------------------------------

function range(n: NumberNode): string {
  const lo = n.min === undefined ? "" : `${n.minExclusive ? ">" : ">="} ${n.min}`;
  const hi = n.max === undefined ? "" : `${n.maxExclusive ? "<" : "<="} ${n.max}`;
  if (n.min !== undefined && n.max !== undefined)
    return ` in ${n.minExclusive ? "(" : "["}${n.min}, ${n.max}${n.maxExclusive ? ")" : "]"}`;
  return lo || hi ? ` ${lo}${hi}` : "";
}

function oneOf(values: readonly unknown[]): string {
  const shown = values.map((v) => JSON.stringify(v));
  return shown.length < 2 ? (shown[0] ?? "") : `${shown.slice(0, -1).join(", ")} or ${shown[shown.length - 1]}`;
}

/** "an integer >= 1", "a number in [0, 1)", ""sgd", "adam" or "adamw"", "null or an object {k, alpha}". */
export function describeAllowed(node: SchemaNode): string {
  const what = ((): string => {
    switch (node.kind) {
      case "int":
        return `an integer${range(node)}`;
      case "number":
        return `a${node.max === undefined ? " finite" : ""} number${range(node)}`;
      case "boolean":
        return "true or false";
      case "text":
        return node.nonEmpty ? "a non-empty string" : "a string";
      case "choice":
        return oneOf(node.values);
      case "list":
        return `a list of ${node.length ?? ""}${node.length ? " " : ""}${node.of.kind === "int" ? "integers" : "numbers"}${range(node.of)}`;
      case "open":
        return "an object";
      case "object":
        return `an object {${Object.keys(node.fields).join(", ")}}`;
    }
  })();
  return node.nullable ? `null or ${what}` : what;
}

function inRange(n: NumberNode, v: number): boolean {
  if (n.min !== undefined && (n.minExclusive ? v <= n.min : v < n.min)) return false;
  return n.max === undefined || (n.maxExclusive ? v < n.max : v <= n.max);
}

/** Whether a value fits a leaf node (type, range, choices; null where nullable). */
export function fitsLeaf(node: LeafNode, v: unknown): boolean {
  if (v === null) return node.nullable === true;
  switch (node.kind) {
    case "int":
      return typeof v === "number" && Number.isInteger(v) && inRange(node, v);
    case "number":
      return typeof v === "number" && Number.isFinite(v) && inRange(node, v);
    case "boolean":
      return typeof v === "boolean";
    case "text":
      return typeof v === "string" && !(node.nonEmpty && v === "");
    case "choice":
      return (typeof v === "string" || typeof v === "boolean") && node.values.includes(v);
    case "list":
      return (
        Array.isArray(v) &&
        (node.length === undefined || v.length === node.length) &&
        v.every((x) => fitsLeaf(node.of, x))
      );
  }
}

// ---- JSON Schema (draft-07, what editors read) -----------------------------------------------

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function numberSchema(n: NumberNode): Record<string, Json> {
  const type = n.kind === "int" ? "integer" : "number";
  const s: Record<string, Json> = { type: n.nullable ? [type, "null"] : type };
  if (n.min !== undefined) s[n.minExclusive ? "exclusiveMinimum" : "minimum"] = n.min;
  if (n.max !== undefined) s[n.maxExclusive ? "exclusiveMaximum" : "maximum"] = n.max;
  return s;
}

function nodeSchema(node: SchemaNode): Record<string, Json> {
  let s: Record<string, Json>;
  switch (node.kind) {
    case "int":
    case "number":
      s = numberSchema(node);
      break;
    case "boolean":
      s = { type: "boolean" };
      break;
    case "text":
      s = { type: node.nullable ? ["string", "null"] : "string" };
      if (node.nonEmpty) s.minLength = 1;
      break;
    case "choice":
      s = { enum: node.nullable ? [...node.values, null] : [...node.values] };
      break;
    case "list": {
      s = { type: "array", items: nodeSchema(node.of) };
      if (node.length !== undefined) Object.assign(s, { minItems: node.length, maxItems: node.length });
      break;
    }
    case "open":
      s = { type: "object" };
      break;
    case "object": {
      const properties: Record<string, Json> = {};
      for (const [k, f] of Object.entries(node.fields)) properties[k] = nodeSchema(f);
      const obj: Record<string, Json> = { type: "object", properties, additionalProperties: false };
      if (node.minFields !== undefined) obj.minProperties = node.minFields;
      s = node.nullable ? { anyOf: [{ type: "null" }, obj] } : obj;
      break;
    }
  }
  const dflt = initialValue(node);
  return { description: node.help, ...s, ...(dflt === undefined ? {} : { default: dflt as Json }) };
}

/** The JSON Schema of a recipe file (schema/recipe.schema.json is this, as written by scripts/gen-schema.js). */
export function recipeJsonSchema(): Record<string, Json> {
  const root = nodeSchema(RECIPE_SCHEMA);
  const properties = root.properties as Record<string, Json>;
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    title: "budgetnet recipe",
    description:
      "A budgetnet training recipe (budgetnet train --recipe FILE). Generated from src/train/schema.ts by npm run gen-schema; do not edit.",
    type: "object",
    properties: {
      $schema: { description: "this schema, for editors (ignored by budgetnet)", type: "string" },
      ...properties,
    },
    additionalProperties: false,
  };
}

/** The whole generated file's text. */
export function recipeJsonSchemaText(): string {
  return `${JSON.stringify(recipeJsonSchema(), null, 2)}\n`;
}

// ---- help rows -------------------------------------------------------------------------------

/** One row per settable field, dotted (`optimizer.lr`), for help tables and docs. */
export function fieldRows(
  node: ObjectNode = RECIPE_SCHEMA,
  prefix = "",
): { field: string; allowed: string; default: string; help: string }[] {
  const rows: { field: string; allowed: string; default: string; help: string }[] = [];
  for (const [k, f] of Object.entries(node.fields)) {
    const field = prefix ? `${prefix}.${k}` : k;
    const initial = initialValue(f);
    rows.push({
      field,
      allowed: describeAllowed(f),
      default: initial === undefined ? "(absent)" : JSON.stringify(initial),
      help: f.help,
    });
    if (f.kind === "object") rows.push(...fieldRows(f, field));
  }
  return rows;
}
