// In-place updates for optimizers and initializers. They never record autograd history, so
// they are safe on parameters (PyTorch's `with torch.no_grad(): p.add_(...)`).
import { native } from "../tensor/binding";
import type { Tensor } from "../tensor/tensor";
import { handleOf, operand } from "./util";

type Operand = Tensor | number;

export const addInPlace = (x: Tensor, y: Operand): void =>
  native.add_(handleOf(x, "add_", "x"), operand(y, "add_", "y"));
export const mulInPlace = (x: Tensor, y: Operand): void =>
  native.mul_(handleOf(x, "mul_", "x"), operand(y, "mul_", "y"));
export const divInPlace = (x: Tensor, y: Operand): void =>
  native.div_(handleOf(x, "div_", "x"), operand(y, "div_", "y"));
/** x ← y (broadcast, with dtype conversion). */
export const copyInPlace = (x: Tensor, y: Operand): void =>
  native.copy_(handleOf(x, "copy_", "x"), operand(y, "copy_", "y"));
export const maximumInPlace = (x: Tensor, y: Operand): void =>
  native.maximum_(handleOf(x, "maximum_", "x"), operand(y, "maximum_", "y"));
/** x ← x + alpha·y */
export const addScaledInPlace = (x: Tensor, y: Tensor, alpha: number): void =>
  native.addScaled_(handleOf(x, "addScaled_", "x"), handleOf(y, "addScaled_", "y"), alpha);
/** x ← x + value·t1·t2 */
export const addcmulInPlace = (x: Tensor, t1: Tensor, t2: Tensor, value: number): void =>
  native.addcmul_(handleOf(x, "addcmul_", "x"), handleOf(t1, "addcmul_", "t1"), handleOf(t2, "addcmul_", "t2"), value);
/** x ← x + value·t1/t2 */
export const addcdivInPlace = (x: Tensor, t1: Tensor, t2: Tensor, value: number): void =>
  native.addcdiv_(handleOf(x, "addcdiv_", "x"), handleOf(t1, "addcdiv_", "t1"), handleOf(t2, "addcdiv_", "t2"), value);
/** x ← x + weight·(end − x) */
export const lerpInPlace = (x: Tensor, end: Tensor, weight: number): void =>
  native.lerp_(handleOf(x, "lerp_", "x"), handleOf(end, "lerp_", "end"), weight);
export const fillInPlace = (x: Tensor, value: number): void => native.fill_(handleOf(x, "fill_", "x"), value);
export const zeroInPlace = (x: Tensor): void => native.zero_(handleOf(x, "zero_", "x"));
export const clampInPlace = (x: Tensor, min?: number, max?: number): void =>
  native.clamp_(handleOf(x, "clamp_", "x"), min, max);
/** Fills x from U(low, high) with libtorch's generator (manualSeed applies). */
export const uniformInPlace = (x: Tensor, low: number, high: number): void =>
  native.uniform_(handleOf(x, "uniform_", "x"), low, high);
/** Fills x from N(mean, std²) with libtorch's generator. */
export const normalInPlace = (x: Tensor, mean: number, std: number): void =>
  native.normal_(handleOf(x, "normal_", "x"), mean, std);
