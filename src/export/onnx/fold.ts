// BatchNorm folding in the ONNX graph: an eval-mode BatchNormalization right after a Conv is an
// affine map per output channel, so it merges into the Conv's weight and bias. The math (in
// float64, rounded once) is src/nn/fold.ts's, shared with foldBatchNorm (src/perf/fold.ts).
import { foldConvBatchNorm } from "../../nn/fold";
import { keep, scope } from "../../tensor/scope";
import { noGrad, type Tensor } from "../../tensor/tensor";
import type { GraphBuilder } from "./graph";
import type { OnnxNode } from "./model";

function useCounts(nodes: OnnxNode[], outputs: string[]): Map<string, number> {
  const uses = new Map<string, number>();
  const count = (name: string) => uses.set(name, (uses.get(name) ?? 0) + 1);
  for (const node of nodes) for (const i of node.inputs) count(i);
  for (const o of outputs) count(o);
  return uses;
}

function epsilonOf(bn: OnnxNode): number {
  const a = bn.attributes.find((x) => x.name === "epsilon");
  return a?.kind === "float" ? a.value : 1e-5;
}

/**
 * Folds every Conv → BatchNormalization pair whose convolution output feeds only the BatchNorm
 * and whose weights are used nowhere else. Returns the number of pairs folded.
 */
export function foldBatchNorms(g: GraphBuilder, graphOutputs: string[]): number {
  const uses = useCounts(g.nodes, graphOutputs);
  const producer = new Map<string, OnnxNode>();
  for (const node of g.nodes) for (const o of node.outputs) producer.set(o, node);
  const removed = new Set<OnnxNode>();
  for (const bn of g.nodes) {
    if (bn.opType !== "BatchNormalization") continue;
    const conv = producer.get(bn.inputs[0] as string);
    if (conv === undefined || conv.opType !== "Conv" || uses.get(conv.outputs[0] as string) !== 1) continue;
    const [, wName, bName] = conv.inputs as [string, string, string | undefined];
    const [, gammaName, betaName, meanName, varName] = bn.inputs as string[];
    const tensors = [wName, bName, gammaName, betaName, meanName, varName].map((n) =>
      n === undefined ? undefined : g.tensors.get(n),
    );
    const [w, b, gamma, beta, mean, variance] = tensors;
    const exclusive = uses.get(wName) === 1 && (bName === undefined || uses.get(bName) === 1);
    if (!exclusive || w === undefined || (bName !== undefined && b === undefined)) continue;
    if (gamma === undefined || beta === undefined || mean === undefined || variance === undefined) continue;
    const eps = epsilonOf(bn);
    const [w2, b2] = noGrad(() =>
      scope(() => {
        const folded = foldConvBatchNorm(w, b, {
          weight: gamma,
          bias: beta,
          runningMean: mean,
          runningVar: variance,
          eps,
        });
        return [keep(folded.weight), keep(folded.bias)];
      }),
    );
    // the folded tensors replace the convolution's own initializers (used by nothing else)
    const newW = g.fresh(`${wName}.folded`);
    const newB = g.fresh(`${bName ?? betaName}.folded`);
    g.addTensor(newW, w2 as Tensor);
    g.addTensor(newB, b2 as Tensor);
    conv.inputs = [conv.inputs[0] as string, newW, newB];
    conv.outputs = [...bn.outputs];
    removed.add(bn);
  }
  const kept = g.nodes.filter((n) => !removed.has(n));
  g.nodes.splice(0, g.nodes.length, ...kept);
  return removed.size;
}
