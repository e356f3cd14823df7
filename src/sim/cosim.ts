/**
 * Co-simulation of one Linear layer: the golden integer kernel against the Verilator run of the
 * generated RTL executing the compiled program, compared bit for bit.
 */
import { LinearProgram, compileLinear, linearImage, readLinearOutput } from "../compiler/linear.js";
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
  pass: boolean;
  mismatch: Mismatch | null;
  cycles: number;
  macs: number;
  /** Useful MACs over (PEs × cycles), for the whole program including loads and stores. */
  utilization: number;
  program: LinearProgram;
  expected: Int8Array;
  got: Int8Array;
}

export interface LinearCosimOptions {
  memory?: MemoryModel;
  cacheDir?: string;
  /** Changes the image before the run: fault injection, to prove the comparison can fail. */
  corruptImage?: (image: Uint8Array, program: LinearProgram) => void;
}

export async function cosimLinear(
  cfg: AcceleratorConfig,
  layer: QLinear,
  x: Int8Array,
  rows: number,
  opts: LinearCosimOptions = {},
): Promise<LinearCosimResult> {
  const program = compileLinear(cfg, layer, rows);
  const expected = linearGolden(layer, x, rows, { accBits: cfg.accBits });
  const { files, manifest } = renderRtl(cfg);
  const binary = await buildSimulator(files, manifest, opts.cacheDir);
  const image = linearImage(program, layer, x);
  opts.corruptImage?.(image, program);
  const sim = await runSimulator(binary, image, opts.memory ?? DEFAULT_MEMORY);
  const got = readLinearOutput(program, sim.memory);
  const mismatch = firstMismatch(`${layer.name}.output`, [rows, layer.outFeatures], expected, got);
  const pes = cfg.array.rows * cfg.array.cols;
  return {
    layer: layer.name,
    config: cfg,
    rows,
    pass: mismatch === null,
    mismatch,
    cycles: sim.cycles,
    macs: program.macs,
    utilization: program.macs / (pes * sim.cycles),
    program,
    expected,
    got,
  };
}
