// Turns a recipe's optimization fields into one object the trainer drives: optimizer (with
// optional Lookahead), schedule, gradient clipping and weight EMA, with one checkpoint state.
import type { Module } from "../nn/module";
import type { Tensor } from "../tensor/tensor";
import { Adam, AdamW } from "./adam";
import { clipGradNorm, clipGradValue } from "./clip";
import type { TrainConfig } from "./config";
import { EMA, type EMAStateDict } from "./ema";
import { Lookahead } from "./lookahead";
import { type Optimizer, type OptimizerMeta, type ParamGroup, paramGroupsWithoutDecay } from "./optim";
import { createSchedule, type Schedule } from "./schedule";
import { SGD } from "./sgd";

export interface Optimization {
  /** Sets the lr for the optimizer step with this 0-based global index. */
  setStep(step: number): void;
  zeroGrad(): void;
  /** Clip, update, and fold into the EMA. */
  step(): void;
  lr(): number;
  /** Runs fn with the weights to evaluate and save (the EMA's when enabled), then restores the training weights. */
  withEvalWeights<T>(fn: () => T): T;
  state(): { state: Map<string, Tensor>; meta: OptimizerMeta; emaState: Map<string, Tensor> | null; emaMeta: unknown };
  loadState(state: Map<string, Tensor>, meta: unknown, emaState: Map<string, Tensor> | null, emaMeta: unknown): void;
  dispose(): void;
}

export function buildOptimizer(cfg: TrainConfig, model: Module): Optimizer {
  const o = cfg.optimizer;
  const groups: Tensor[] | ParamGroup[] = o.noDecayOnBnAndBias
    ? paramGroupsWithoutDecay(model, o.weightDecay)
    : model.parameters();
  const inner =
    o.type === "sgd"
      ? new SGD(groups, { lr: o.lr, momentum: o.momentum, nesterov: o.nesterov, weightDecay: o.weightDecay })
      : o.type === "adam"
        ? new Adam(groups, { lr: o.lr, betas: o.betas, weightDecay: o.weightDecay })
        : new AdamW(groups, { lr: o.lr, betas: o.betas, weightDecay: o.weightDecay });
  return cfg.lookahead ? new Lookahead(inner, cfg.lookahead) : inner;
}

export function buildSchedule(cfg: TrainConfig, stepsPerEpoch: number): Schedule {
  return createSchedule({ ...cfg.schedule, lr: cfg.optimizer.lr, epochs: cfg.epochs, stepsPerEpoch });
}

export function buildOptimization(cfg: TrainConfig, model: Module, stepsPerEpoch: number): Optimization {
  const optimizer = buildOptimizer(cfg, model);
  const schedule = buildSchedule(cfg, stepsPerEpoch);
  const ema = cfg.ema ? new EMA(model, { decay: cfg.ema.decay }) : null;
  const params = model.parameters();
  const clip = cfg.clip;
  return {
    setStep(step) {
      optimizer.setLr(schedule.lrAt(step));
      const momentum = schedule.momentumAt(step);
      if (momentum !== undefined) optimizer.setMomentum(momentum);
    },
    zeroGrad() {
      optimizer.zeroGrad();
    },
    step() {
      if (clip?.value !== undefined) clipGradValue(params, clip.value);
      if (clip?.norm !== undefined) clipGradNorm(params, clip.norm);
      optimizer.step();
      ema?.update();
    },
    lr() {
      return optimizer.lr;
    },
    withEvalWeights(fn) {
      if (!ema) return fn();
      ema.swap();
      try {
        return fn();
      } finally {
        ema.swap();
      }
    },
    state() {
      const sd = optimizer.stateDict();
      const e = ema?.stateDict();
      return { state: sd.state, meta: sd.meta, emaState: e?.state ?? null, emaMeta: e?.meta ?? null };
    },
    loadState(state, meta, emaState, emaMeta) {
      optimizer.loadStateDict({ state, meta: meta as OptimizerMeta });
      if (ema) {
        if (!emaState)
          throw new Error(
            "the checkpoint has no EMA state but the recipe enables ema; resume with the run's own recipe.",
          );
        ema.loadStateDict({ state: emaState, meta: emaMeta as EMAStateDict["meta"] });
      }
    },
    dispose() {
      optimizer.dispose();
      ema?.dispose();
    },
  };
}
