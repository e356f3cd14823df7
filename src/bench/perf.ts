/**
 * The cycle model on DeiT-Tiny, -Small and -Base (timm shapes; seeded random weights, calibrated on one
 * ImageNet image: their structure is what counts) on a 16×16 and a 32×32 array: cycles, PE utilization,
 * frames per second, GOPS and GOPS per DSP (DSPs from yosys synth_xilinx on the generated top, cached
 * in .cache/synth), with and without the overlap of chunks, beside the published P2-ViT figures.
 * QGraphs are cached in .cache/qgraph (quantizing DeiT-Base takes minutes).
 *
 *   npm run bench:perf [-- --shared <dir>] [--models deit_tiny,deit_small] [--no-synth]
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { synthesizedDsps } from "../cli/compile.js";
import { quantizeToGraph } from "../cli/test-quant.js";
import { compileGraph } from "../compiler/graph.js";
import { AcceleratorConfig, parseAcceleratorConfig } from "../hw/config.js";
import { loadQGraph, saveQGraph } from "../quant/qgraph-io.js";
import { perfReport } from "../sim/perf.js";

const PUBLISHED_GOPS_PER_DSP: Record<string, number> = { deit_tiny: 0.89, deit_small: 0.923 };

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const CONFIGS: AcceleratorConfig[] = [
  parseAcceleratorConfig({ name: "a16x16", array: { rows: 16, cols: 16 }, busBits: 128 }),
  parseAcceleratorConfig({ name: "a32x32", array: { rows: 32, cols: 32 }, busBits: 256, buffers: { xDepth: 512, wDepth: 8192, oDepth: 256, paramDepth: 128 } }),
];

async function graphOf(model: string, imagenet: string) {
  const dir = resolve(".cache", "qgraph");
  const file = join(dir, `${model}.qgraph`);
  if (existsSync(file)) return loadQGraph(file);
  process.stderr.write(`quantizing ${model} on one image for its structure (minutes for deit_base)…\n`);
  const g = await quantizeToGraph({ model, data: imagenet, calib: 1 });
  mkdirSync(dir, { recursive: true });
  saveQGraph(file, g);
  return g;
}

async function main(): Promise<void> {
  const shared = resolve(arg("shared", join("..", "shared", "data")));
  const models = arg("models", "deit_tiny,deit_small,deit_base").split(",");
  const synth = !process.argv.includes("--no-synth");
  console.log("| model | array | overlap | cycles | PE util | FPS | GOPS | DSP | GOPS/DSP | published GOPS/DSP | speed-up from overlap |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const model of models) {
    const graph = await graphOf(model, join(shared, "imagenet"));
    for (const cfg of CONFIGS) {
      const dsp = synth ? await synthesizedDsps(cfg) : null;
      const on = perfReport(compileGraph(graph, cfg), { dsp });
      const off = perfReport(compileGraph(graph, cfg, { overlap: false }), { dsp });
      for (const r of [on, off]) {
        console.log(
          `| ${model} | ${r.array} | ${r.overlap ? "on" : "off"} | ${r.cycles.toLocaleString("en-US")} | ${(100 * r.utilization).toFixed(1)}% | ${r.fps.toFixed(1)} | ${r.gops.toFixed(1)} | ${dsp ?? "-"} | ${r.gopsPerDsp?.toFixed(3) ?? "-"} | ${PUBLISHED_GOPS_PER_DSP[model] ?? "-"} | ${r.overlap ? `${(off.cycles / on.cycles).toFixed(2)}x` : ""} |`,
        );
      }
    }
  }
  console.log(`\nclock ${CONFIGS[0].clockMHz} MHz; GOPS count 2 operations per MAC (Linear, Q·Kᵀ) and per attention·V shift-accumulate; the paper credits overlap with 1.57x.`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
