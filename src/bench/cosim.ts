/**
 * Benchmark: the walking skeleton's co-simulation on vit4mnist's patch embedding with real MNIST
 * images, per array shape: Verilator build time, simulated cycles, PE utilization, simulation speed.
 *
 *   npm run bench:cosim [-- --images N] [--shared <dir>]
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadModelAndImages } from "../cli/cosim-layer.js";
import { compileLayer, readLayerOutput } from "../compiler/layer.js";
import { buildMemory } from "../compiler/memory.js";
import { renderRtl } from "../generator/rtl.js";
import { AcceleratorConfig, DEFAULT_CONFIG, parseAcceleratorConfig } from "../hw/config.js";
import { quantizePatchEmbedding } from "../quant/patch-embed.js";
import { firstMismatch } from "../sim/compare.js";
import { linearGolden } from "../sim/golden/linear.js";
import { buildSimulator } from "../sim/verilator/build.js";
import { DEFAULT_MEMORY, runSimulator } from "../sim/verilator/run.js";

const SHAPES: AcceleratorConfig[] = [
  parseAcceleratorConfig({ name: "a4x4", array: { rows: 4, cols: 4 }, busBits: 32 }),
  parseAcceleratorConfig({ name: "a8x16", array: { rows: 8, cols: 16 }, busBits: 64 }),
  DEFAULT_CONFIG,
  parseAcceleratorConfig({ name: "a32x32", array: { rows: 32, cols: 32 }, busBits: 256 }),
];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const shared = resolve(arg("shared", "../shared/data"));
  const images = Number(arg("images", "100"));
  const model = join(shared, "models", "vit4mnist");
  if (!existsSync(model)) throw new Error(`${model} not found: give the shared data folder with --shared`);
  const { ckpt, calibration, evaluation } = loadModelAndImages({ model, data: join(shared, "mnist"), images, calib: 100 });
  const q = quantizePatchEmbedding(ckpt, calibration, evaluation);
  const expected = linearGolden(q.layer, q.x, q.rows);
  const cacheDir = join(resolve(".cache"), "bench-verilator");
  console.log(`vit4mnist patch_embed (49 -> 64), ${images} MNIST images = ${q.rows} rows, ${q.rows * 49 * 64} MACs; memory latency ${DEFAULT_MEMORY.latency}`);
  console.log("array   bus  build_s  cycles   cycles/img  PE_util  sim_wall_s  Mcycles/s  bit_exact");
  for (const cfg of SHAPES) {
    const { files, manifest } = renderRtl(cfg);
    const t0 = performance.now();
    const binary = await buildSimulator(files, manifest, cacheDir);
    const build = (performance.now() - t0) / 1000;
    const program = compileLayer(cfg, q.layer, q.rows);
    const image = buildMemory(program, q.x);
    const t1 = performance.now();
    const sim = await runSimulator(binary, image);
    const wall = (performance.now() - t1) / 1000;
    const exact = firstMismatch("y", [q.rows, 64], expected, readLayerOutput(program, q.layer, q.rows, sim.memory)) === null;
    const util = (q.rows * 49 * 64) / (cfg.array.rows * cfg.array.cols * sim.cycles);
    console.log(
      [
        `${cfg.array.rows}x${cfg.array.cols}`.padEnd(7), String(cfg.busBits).padStart(4), build.toFixed(1).padStart(8),
        String(sim.cycles).padStart(7), (sim.cycles / images).toFixed(1).padStart(11), `${(100 * util).toFixed(1)}%`.padStart(8),
        wall.toFixed(2).padStart(11), (sim.cycles / wall / 1e6).toFixed(2).padStart(10), String(exact).padStart(10),
      ].join(" "),
    );
  }
}

await main();
