/**
 * Per-layer agreement between the integer model and a float-domain model: each tensor the golden
 * model produces, dequantized, against the same tensor of the float (or fake-quant) forward pass.
 */
import { runGolden } from "../sim/golden/model.js";
import { Checkpoint } from "./checkpoint.js";
import { forwardVit } from "./float/vit.js";
import { VitOps } from "./ops.js";
import { ModelImage, normalized } from "./pipeline.js";
import { QGraph } from "./qgraph.js";
import { tracingOps } from "./trace.js";

export interface LayerSqnr {
  tensor: string;
  /** Signal power over error power, in dB, summed over the images. */
  sqnrDb: number;
}

/** SQNR of every integer tensor against the float tensor of the same name, over `images`. */
export function layerSqnr(ckpt: Checkpoint, graph: QGraph, images: ModelImage[], reference?: VitOps): LayerSqnr[] {
  const power = new Map<string, { signal: number; noise: number }>();
  const info = new Map(graph.tensors.map((t) => [t.name, t]));
  for (const img of images) {
    const trace = tracingOps(reference);
    forwardVit(ckpt, normalized(ckpt, img), trace.ops);
    const floats = trace.values();
    const ints = runGolden(graph, img.pixels, true).tensors;
    for (const [name, q] of ints) {
      const t = info.get(name);
      const f = floats.get(name);
      // the input is (pixel − 128) in the integer model and normalized in the float one: not comparable
      if (!t || !f || !t.signed || t.data || name === graph.ops[0].output || f.length !== q.length) continue;
      const acc = power.get(name) ?? { signal: 0, noise: 0 };
      for (let i = 0; i < q.length; i++) {
        const v = q[i] * 2 ** t.exponents[i % t.cols];
        acc.signal += f[i] * f[i];
        acc.noise += (v - f[i]) ** 2;
      }
      power.set(name, acc);
    }
  }
  return graph.ops
    .filter((op) => power.has(op.output))
    .map((op) => {
      const p = power.get(op.output)!;
      return { tensor: op.output, sqnrDb: 10 * Math.log10(p.signal / Math.max(p.noise, 1e-30)) };
    });
}
