/**
 * Co-simulation of one Linear layer: the golden integer kernel against the Verilator run of the
 * generated RTL executing the compiled program, compared bit for bit.
 */
import { GraphProgram } from "../compiler/graph.js";
import { compileLayer, readLayerOutput } from "../compiler/layer.js";
import { buildMemory } from "../compiler/memory.js";
import { renderRtl } from "../generator/rtl.js";
import { AcceleratorConfig } from "../hw/config.js";
import { QLinear } from "../quant/qgraph.js";
import { Mismatch, firstMismatch } from "./compare.js";
import { linearGolden } from "./golden/linear.js";
import { buildSimulator } from "./verilator/build.js";
import { DEFAULT_MEMORY, MemoryModel, runSimulator } from "./verilator/run.js";

export interface LinearCosimResult {
  layer: string;
  config: AcceleratorConfig;
  rows: number;
  k: number;
  n: number;
  pass: boolean;
  mismatch: Mismatch | null;
  cycles: number;
  macs: number;
  /** Useful MACs over (PEs × cycles), for the whole program including loads and stores. */
  utilization: number;
  program: GraphProgram;
  expected: Int8Array;
  got: Int8Array;
}

export interface LinearCosimOptions {
  memory?: MemoryModel;
  cacheDir?: string;
  /** Changes the image before the run: fault injection, to prove the comparison can fail. */
  corruptImage?: (image: Uint8Array, program: GraphProgram) => void;
}

export async function cosimLinear(
  cfg: AcceleratorConfig,
  layer: QLinear,
  x: Int8Array,
  rows: number,
  opts: LinearCosimOptions = {},
): Promise<LinearCosimResult> {
  const program = compileLayer(cfg, layer, rows);
  const expected = linearGolden(layer, x, rows, { accBits: cfg.accBits });
  const { files, manifest } = renderRtl(cfg);
  const binary = await buildSimulator(files, manifest, opts.cacheDir);
  const image = buildMemory(program, x);
  opts.corruptImage?.(image, program);
  const sim = await runSimulator(binary, image, opts.memory ?? DEFAULT_MEMORY);
  const got = readLayerOutput(program, layer, rows, sim.memory);
  const mismatch = firstMismatch(`${layer.name}.output`, [rows, layer.outFeatures], expected, got);
  const pes = cfg.array.rows * cfg.array.cols;
  return {
    layer: layer.name,
    config: cfg,
    rows,
    k: layer.inFeatures,
    n: layer.outFeatures,
    pass: mismatch === null,
    mismatch,
    cycles: sim.cycles,
    macs: rows * layer.inFeatures * layer.outFeatures,
    utilization: (rows * layer.inFeatures * layer.outFeatures) / (pes * sim.cycles),
    program,
    expected,
    got,
  };
}
