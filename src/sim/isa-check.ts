/**
 * The ISA simulator against the golden model on one image: every tensor the program stores in
 * memory is read back and compared with the golden model's, in graph order, so a mismatch names the
 * first layer where the two diverge and, through the listing, the instructions that wrote it.
 */
import { GraphProgram } from "../compiler/graph.js";
import { buildMemory, encodeProgram, imageInput, readTensor } from "../compiler/memory.js";
import type { QGraph } from "../quant/qgraph.js";
import { Mismatch, firstMismatch } from "./compare.js";
import { GoldenRun, runGolden } from "./golden/model.js";
import { IsaOptions, runIsa } from "./isa-sim.js";

export interface ImageCheck {
  /** The first tensor (in graph order) that differs, or null: bit-exact everywhere. */
  mismatch: (Mismatch & { layer: string }) | null;
  /** Tensors compared. */
  tensors: number;
  logits: Int32Array;
  goldenLogits: Int32Array;
  instructions: number;
}

/** Runs golden and ISA on the image and compares every stored tensor. `memory` lets a test corrupt the image first. */
export function checkImage(
  graph: QGraph,
  program: GraphProgram,
  pixels: Uint8Array,
  options: IsaOptions & { encoded?: Uint8Array; corrupt?: (memory: Uint8Array) => void } = {},
): ImageCheck {
  const golden = runGolden(graph, pixels, true);
  const memory = buildMemory(program, imageInput(program, pixels), options.encoded ?? encodeProgram(program));
  options.corrupt?.(memory);
  const run = runIsa(program.config, memory, options);
  const { mismatch, tensors, logits } = compareStored(graph, program, memory, golden);
  return { mismatch, tensors, logits, goldenLogits: golden.logits, instructions: run.executed };
}

/**
 * Every tensor the program stores, read from a memory dump and compared with the golden run's, in
 * graph order: the first that differs (with the layer that produced it), or null; and the logits.
 */
export function compareStored(
  graph: QGraph,
  program: GraphProgram,
  memory: Uint8Array,
  golden: GoldenRun,
): { mismatch: (Mismatch & { layer: string }) | null; tensors: number; logits: Int32Array } {
  const info = new Map(graph.tensors.map((t) => [t.name, t]));
  const producer = new Map(graph.ops.map((op) => [op.output, op.name]));
  const logitsOf = () => readTensor(program, memory, info.get(graph.output)!) as Int32Array;
  let compared = 0;
  for (const op of graph.ops) {
    const t = info.get(op.output)!;
    const want = golden.tensors.get(op.output);
    if (!want || !program.tensors.has(op.output)) continue;
    compared++;
    const m = firstMismatch(op.output, [t.rows, t.cols], want, readTensor(program, memory, t));
    if (m) return { mismatch: { ...m, layer: producer.get(op.output) ?? op.output }, tensors: compared, logits: logitsOf() };
  }
  return { mismatch: null, tensors: compared, logits: logitsOf() };
}
