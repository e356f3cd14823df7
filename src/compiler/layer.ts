/**
 * One Linear layer as a QGraph of its own (input x, output y), so the graph compiler compiles a single
 * layer exactly as it compiles a model: what the layer co-simulation runs on the RTL.
 */
import type { QGraph, QLinear } from "../quant/qgraph.js";
import { QGRAPH_FORMAT, QGRAPH_VERSION } from "../quant/qgraph.js";
import { GraphProgram, compileGraph } from "./graph.js";
import { AcceleratorConfig } from "../hw/config.js";
import { readTensor } from "./memory.js";

export const LAYER_INPUT = "x";
export const LAYER_OUTPUT = "y";

export function layerGraph(layer: QLinear, rows: number): QGraph {
  const tensor = (name: string, cols: number, t: { bits: number; exponent: number }) => ({
    name, rows, cols, bits: t.bits, signed: true, exponents: new Int32Array(cols).fill(t.exponent),
  });
  return {
    format: QGRAPH_FORMAT,
    version: QGRAPH_VERSION,
    model: { name: layer.name, source: "one layer", numClasses: layer.outFeatures },
    settings: {},
    input: { name: LAYER_INPUT, channels: 1, height: rows, width: layer.inFeatures, resize: null },
    tensors: [tensor(LAYER_INPUT, layer.inFeatures, layer.input), tensor(LAYER_OUTPUT, layer.outFeatures, layer.output)],
    ops: [{ kind: "linear", name: layer.name, inputs: [LAYER_INPUT], output: LAYER_OUTPUT, rows, layer }],
    output: LAYER_OUTPUT,
  };
}

export function compileLayer(cfg: AcceleratorConfig, layer: QLinear, rows: number): GraphProgram {
  return compileGraph(layerGraph(layer, rows), cfg);
}

/** The layer's output (rows × outFeatures) read back from a memory dump. */
export function readLayerOutput(program: GraphProgram, layer: QLinear, rows: number, memory: Uint8Array): Int8Array {
  const t = layerGraph(layer, rows).tensors[1];
  return readTensor(program, memory, t) as Int8Array;
}

/** First memory word of one of the program's constant blocks (e.g. "<layer> weights"). */
export function blockWord(program: GraphProgram, name: string): number {
  const b = program.blocks.find((x) => x.name === name);
  if (!b) throw new Error(`program has no block '${name}' (has ${program.blocks.map((x) => x.name).join(", ")})`);
  return b.word;
}
