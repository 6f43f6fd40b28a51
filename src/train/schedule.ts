// Learning-rate schedules as pure functions of the global step, so a checkpoint needs only the
// step count. Each matches its torch.optim.lr_scheduler counterpart:
//   constant   lr (LinearLR warmup when warmupEpochs > 0)
//   multistep  MultiStepLR: lr·gamma^(milestones passed), e.g. 0.1 → 0.01 at 80 → 0.001 at 120 of
//              160 epochs (He et al. 2016); warmup multiplies (ChainedScheduler), milestones stay absolute
//   cosine     CosineAnnealingLR from lr to minLr (Loshchilov & Hutter 2017); with warmup,
//              SequentialLR(LinearLR, CosineAnnealingLR over the remaining steps)
//   linear     LinearLR from lr to minLr over the run (Li et al. 2020 found linear decay best under a
//              budget); with warmup, SequentialLR(LinearLR, LinearLR)
//   onecycle   OneCycleLR (Smith & Topin 2019): lr/divFactor → lr over pctStart of the run, then down
//              to lr/(divFactor·finalDivFactor), cosine or linear; with cycleMomentum, the momentum
//              (Adam's beta1) moves the other way, maxMomentum → baseMomentum → maxMomentum on the
//              same curve (OneCycleLR's cycle_momentum, PyTorch's default)
// per: "epoch" holds the lr constant within an epoch (the lr of epoch ⌊step/stepsPerEpoch⌋);
// "iteration" moves it every step. Default: "iteration" for onecycle, "epoch" for the rest.
import { ArgumentError, describe } from "../tensor/errors";

export const SCHEDULE_TYPES = ["constant", "multistep", "cosine", "onecycle", "linear"] as const;
export type ScheduleType = (typeof SCHEDULE_TYPES)[number];

export interface ScheduleConfig {
  type: ScheduleType;
  /** Base lr (the peak lr for onecycle). */
  lr: number;
  epochs: number;
  stepsPerEpoch: number;
  per?: "epoch" | "iteration";
  /** multistep: epochs at which the lr is multiplied by gamma. */
  milestones?: number[];
  /** multistep: factor per milestone (default 0.1). */
  gamma?: number;
  /** Linear warmup length in epochs (default 0); not for onecycle, whose warmup is pctStart. */
  warmupEpochs?: number;
  /** Warmup starts at lr·warmupStartFactor (default 1/3, LinearLR's). */
  warmupStartFactor?: number;
  /** cosine, linear: final lr (default 0). */
  minLr?: number;
  /** onecycle: fraction of the run spent increasing the lr (default 0.3). */
  pctStart?: number;
  /** onecycle: initial lr = lr/divFactor (default 25). */
  divFactor?: number;
  /** onecycle: final lr = initial lr/finalDivFactor (default 1e4). */
  finalDivFactor?: number;
  /** onecycle: annealing shape (default "cos"). */
  anneal?: "cos" | "linear";
  /** onecycle: cycle the momentum inversely to the lr (default false; PyTorch's OneCycleLR default is true). */
  cycleMomentum?: boolean;
  /** onecycle with cycleMomentum: the momentum at the peak lr (default 0.85). */
  baseMomentum?: number;
  /** onecycle with cycleMomentum: the momentum at the start and the end (default 0.95). */
  maxMomentum?: number;
}

export interface Schedule {
  /** The config with every default filled in. */
  readonly config: Required<ScheduleConfig>;
  /** epochs·stepsPerEpoch. */
  readonly totalSteps: number;
  /** The lr for the optimizer step with this 0-based global index (clamped to the end of the run). */
  lrAt(step: number): number;
  /** The momentum for that step where the schedule cycles it (onecycle, cycleMomentum), else undefined. */
  momentumAt(step: number): number | undefined;
}

const KNOWN_KEYS = [
  "type",
  "lr",
  "epochs",
  "stepsPerEpoch",
  "per",
  "milestones",
  "gamma",
  "warmupEpochs",
  "warmupStartFactor",
  "minLr",
  "pctStart",
  "divFactor",
  "finalDivFactor",
  "anneal",
  "cycleMomentum",
  "baseMomentum",
  "maxMomentum",
];

function fail(what: string, name: string, value: unknown): never {
  throw new ArgumentError(`createSchedule: ${what}. Received: ${name}=${describe(value)}`);
}

function resolve(cfg: ScheduleConfig): Required<ScheduleConfig> {
  if (cfg === null || typeof cfg !== "object") fail("the config must be an object", "config", cfg);
  for (const k of Object.keys(cfg))
    if (!KNOWN_KEYS.includes(k)) fail(`unknown option; known options: ${KNOWN_KEYS.join(", ")}`, k, cfg[k as "type"]);
  if (!SCHEDULE_TYPES.includes(cfg.type))
    fail(`unknown schedule type; known types: ${SCHEDULE_TYPES.join(", ")}`, "type", cfg.type);
  const c: Required<ScheduleConfig> = {
    per: cfg.type === "onecycle" ? "iteration" : "epoch",
    milestones: [],
    gamma: 0.1,
    warmupEpochs: 0,
    warmupStartFactor: 1 / 3,
    minLr: 0,
    pctStart: 0.3,
    divFactor: 25,
    finalDivFactor: 1e4,
    anneal: "cos",
    cycleMomentum: false,
    baseMomentum: 0.85,
    maxMomentum: 0.95,
    ...Object.fromEntries(Object.entries(cfg).filter(([, v]) => v !== undefined)),
  } as unknown as Required<ScheduleConfig>;
  const isInt = Number.isInteger;
  if (!(Number.isFinite(c.lr) && c.lr > 0)) fail("lr must be a finite number > 0", "lr", c.lr);
  if (!(isInt(c.epochs) && c.epochs >= 1)) fail("epochs must be an integer >= 1", "epochs", c.epochs);
  if (!(isInt(c.stepsPerEpoch) && c.stepsPerEpoch >= 1))
    fail("stepsPerEpoch must be an integer >= 1", "stepsPerEpoch", c.stepsPerEpoch);
  if (c.per !== "epoch" && c.per !== "iteration") fail('per must be "epoch" or "iteration"', "per", c.per);
  const w = c.warmupEpochs;
  if (!(Number.isFinite(w) && w >= 0 && w < c.epochs))
    fail(`warmupEpochs must be >= 0 and below epochs (${c.epochs})`, "warmupEpochs", w);
  if (c.per === "epoch" && !isInt(w)) fail('warmupEpochs must be an integer when per is "epoch"', "warmupEpochs", w);
  if (!(c.warmupStartFactor > 0 && c.warmupStartFactor <= 1))
    fail("warmupStartFactor must be in (0, 1]", "warmupStartFactor", c.warmupStartFactor);
  if (!(Number.isFinite(c.minLr) && c.minLr >= 0 && c.minLr <= c.lr))
    fail(`minLr must be in [0, lr=${c.lr}]`, "minLr", c.minLr);
  if (c.type === "multistep") {
    const m = c.milestones;
    if (!Array.isArray(m) || m.length === 0)
      fail("multistep needs milestones (epochs), e.g. [80, 120]", "milestones", m);
    if (!m.every((e, i) => Number.isFinite(e) && e > 0 && e <= c.epochs && (i === 0 || e >= m[i - 1])))
      fail(`milestones must be non-decreasing epochs in (0, ${c.epochs}]`, "milestones", m);
    if (c.per === "epoch" && !m.every(isInt)) fail('milestones must be integers when per is "epoch"', "milestones", m);
    if (!(Number.isFinite(c.gamma) && c.gamma > 0)) fail("gamma must be a finite number > 0", "gamma", c.gamma);
  }
  if (c.type === "onecycle") {
    if (w > 0) fail("onecycle has its own warmup (pctStart); leave warmupEpochs at 0", "warmupEpochs", w);
    const total = c.epochs * (c.per === "epoch" ? 1 : c.stepsPerEpoch);
    if (!(c.pctStart * total > 1 && c.pctStart < 1))
      fail(
        `pctStart must be below 1 and leave more than one step (of ${total}) to the rising phase`,
        "pctStart",
        c.pctStart,
      );
    if (!(c.divFactor > 0)) fail("divFactor must be > 0", "divFactor", c.divFactor);
    if (!(c.finalDivFactor > 0)) fail("finalDivFactor must be > 0", "finalDivFactor", c.finalDivFactor);
    if (c.anneal !== "cos" && c.anneal !== "linear") fail('anneal must be "cos" or "linear"', "anneal", c.anneal);
  }
  if (typeof c.cycleMomentum !== "boolean")
    fail("cycleMomentum must be true or false", "cycleMomentum", c.cycleMomentum);
  if (c.cycleMomentum) {
    if (c.type !== "onecycle")
      fail(
        `cycleMomentum belongs to onecycle; a ${c.type} schedule keeps the optimizer's momentum`,
        "cycleMomentum",
        true,
      );
    const { baseMomentum: lo, maxMomentum: hi } = c;
    if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo > 0 && lo <= hi && hi < 1))
      fail(
        "baseMomentum and maxMomentum must satisfy 0 < baseMomentum <= maxMomentum < 1",
        "[baseMomentum, maxMomentum]",
        [lo, hi],
      );
  }
  return c;
}

/** OneCycleLR's two phases: `start` → `peak` over pctStart of the run, then `peak` → `end`. */
function oneCycle(
  c: Required<ScheduleConfig>,
  T: number,
  start: number,
  peak: number,
  end: number,
): (t: number) => number {
  const peakStep = c.pctStart * T - 1;
  const anneal =
    c.anneal === "cos"
      ? (a: number, b: number, pct: number) => b + ((a - b) / 2) * (Math.cos(Math.PI * pct) + 1)
      : (a: number, b: number, pct: number) => (b - a) * pct + a;
  return (t) => {
    const s = Math.min(t, T - 1);
    return s <= peakStep ? anneal(start, peak, s / peakStep) : anneal(peak, end, (s - peakStep) / (T - 1 - peakStep));
  };
}

/** The lr as a function of the schedule's unit index t (epochs or iterations) and the run length T. */
function unitCurve(c: Required<ScheduleConfig>, unitsPerEpoch: number): (t: number) => number {
  const T = c.epochs * unitsPerEpoch;
  const W = Math.round(c.warmupEpochs * unitsPerEpoch);
  // LinearLR's closed form: lr·(start + (1 − start)·min(t, W)/W).
  const warmup = (t: number) => (t >= W ? 1 : c.warmupStartFactor + ((1 - c.warmupStartFactor) * t) / W);
  switch (c.type) {
    case "constant":
      return (t) => c.lr * warmup(t);
    case "multistep": {
      const marks = c.milestones.map((m) => Math.round(m * unitsPerEpoch));
      return (t) => {
        let lr = c.lr;
        for (const m of marks) if (t >= m) lr *= c.gamma;
        return lr * warmup(t);
      };
    }
    case "cosine":
      return (t) =>
        t < W ? c.lr * warmup(t) : c.minLr + ((c.lr - c.minLr) * (1 + Math.cos((Math.PI * (t - W)) / (T - W)))) / 2;
    case "linear":
      return (t) => (t < W ? c.lr * warmup(t) : c.lr + ((c.minLr - c.lr) * Math.min(t - W, T - W)) / (T - W));
    case "onecycle": {
      const initial = c.lr / c.divFactor;
      return oneCycle(c, T, initial, c.lr, initial / c.finalDivFactor);
    }
  }
}

export function createSchedule(cfg: ScheduleConfig): Schedule {
  const config = resolve(cfg);
  const unitsPerEpoch = config.per === "epoch" ? 1 : config.stepsPerEpoch;
  const totalSteps = config.epochs * config.stepsPerEpoch;
  const totalUnits = config.epochs * unitsPerEpoch;
  const curve = unitCurve(config, unitsPerEpoch);
  const momentum = config.cycleMomentum
    ? oneCycle(config, totalUnits, config.maxMomentum, config.baseMomentum, config.maxMomentum)
    : undefined;
  const unitOf = (step: number, fn: string): number => {
    if (!(Number.isInteger(step) && step >= 0))
      throw new ArgumentError(`${fn}: step must be an integer >= 0. Received: step=${describe(step)}`);
    return Math.min(config.per === "epoch" ? Math.floor(step / config.stepsPerEpoch) : step, totalUnits);
  };
  return {
    config,
    totalSteps,
    lrAt: (step) => curve(unitOf(step, "lrAt")),
    momentumAt: (step) => (momentum === undefined ? undefined : momentum(unitOf(step, "momentumAt"))),
  };
}
