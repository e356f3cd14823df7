/**
 * The in-order cycle model against the RTL's instruction log, instruction by instruction, on compiled
 * Linear programs (LOAD, MATMUL, STORE, SYNC, HALT) for two array shapes and two memory latencies.
 */
import { describe, expect, it } from "vitest";
import { compileLayer } from "../../src/compiler/layer.js";
import { buildMemory } from "../../src/compiler/memory.js";
import { renderRtl } from "../../src/generator/rtl.js";
import { parseAcceleratorConfig } from "../../src/hw/config.js";
import { formatInstruction } from "../../src/hw/isa.js";
import type { QLinear } from "../../src/quant/qgraph.js";
import { inOrderEnds } from "../../src/sim/inorder-model.js";
import { buildSimulator } from "../../src/sim/verilator/build.js";
import { runSimulator } from "../../src/sim/verilator/run.js";
import { TINY_CORES } from "../configs.js";

const BUFFERS = { xDepth: 16, wDepth: 64, oDepth: 8, paramDepth: 4 };
const CONFIGS = [
  parseAcceleratorConfig({ name: "io3x5", array: { rows: 3, cols: 5 }, busBits: 32, buffers: BUFFERS, cores: TINY_CORES, dispatch: "inorder" }),
  parseAcceleratorConfig({ name: "io4x16", array: { rows: 4, cols: 16 }, busBits: 128, buffers: BUFFERS, cores: TINY_CORES, dispatch: "inorder" }),
];

function layer(k: number, n: number): QLinear {
  return {
    kind: "linear", name: "lin", inFeatures: k, outFeatures: n, input: { bits: 8, exponent: 0 }, output: { bits: 8, exponent: 0 }, weightBits: 8,
    weight: Int8Array.from({ length: n * k }, (_, i) => ((i * 37) % 200) - 100),
    weightExponents: new Int32Array(n),
    bias: new Int32Array(n),
    shift: new Int32Array(n).fill(6),
  };
}

describe("in-order cycle model against the RTL (Verilator)", () => {
  it.each(CONFIGS.map((c) => [c.name, c] as const))("predicts when every instruction ends (%s)", async (_name, cfg) => {
    const rows = 10;
    const program = compileLayer(cfg, layer(23, 11), rows);
    const image = buildMemory(program, Int8Array.from({ length: rows * 23 }, (_, i) => ((i * 13) % 250) - 125));
    const { files, manifest } = renderRtl(cfg);
    const binary = await buildSimulator(files, manifest);
    for (const latency of [2, 5]) {
      const run = await runSimulator(binary, image, { latency, stallPercent: 0, seed: 1 }, { insnLog: true });
      const predicted = inOrderEnds(program.instructions.map((e) => e.insn), cfg, latency);
      const measured = run.insnEnds!;
      expect(measured.length).toBe(program.instructions.length);
      const first = measured.findIndex((m, i) => m !== predicted[i]);
      expect(first, first >= 0 ? `instruction ${first} (${formatInstruction(program.instructions[first].insn)}) ends at ${measured[first]}, model ${predicted[first]}` : "").toBe(-1);
      expect(run.cycles).toBe(predicted[predicted.length - 1]);
    }
  });
});
