/**
 * Benchmark: whole-model co-simulation on the RTL, per model, array and dispatch mode: Verilator build
 * time, simulated cycles per image (measured, and the cycle model of the dispatch mode), PE utilization,
 * wall time per image and simulated cycles per second; every image checked bit for bit.
 *
 *   npm run bench:cosim [-- --images N] [-- --only 16]
 */
import { join } from "node:path";
import { CosimSubject, loadSubject, runCosim } from "../cli/cosim.js";
import { REGRESS_CONFIGS, SHARED_DATA } from "../cli/regress.js";
import { renderRtl } from "../generator/rtl.js";
import { AcceleratorConfig, parseAcceleratorConfig } from "../hw/config.js";
import { buildSimulator } from "../sim/verilator/build.js";

/** The regression's 16×16, queued and in order (their simulators are likely cached), and the same buffers on 32×32. */
const [R16, R16_INORDER] = [REGRESS_CONFIGS[0], REGRESS_CONFIGS[4]];
const ARRAYS: AcceleratorConfig[] = [
  R16,
  R16_INORDER,
  parseAcceleratorConfig({ ...R16, name: "r32x32", array: { rows: 32, cols: 32 }, busBits: 256 }),
  parseAcceleratorConfig({ ...R16_INORDER, name: "r32x32i", array: { rows: 32, cols: 32 }, busBits: 256 }),
];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const images = Number(arg("images", "5"));
  const only = arg("only", "");
  const arrays = only ? ARRAYS.filter((c) => String(c.array.rows) === only) : ARRAYS;
  const subjects: CosimSubject[] = [
    await loadSubject({ target: "synthetic", images, calib: 32 }),
    await loadSubject({ target: join(SHARED_DATA, "models", "vit4mnist"), data: join(SHARED_DATA, "mnist"), images, calib: 100 }),
    await loadSubject({ target: join(SHARED_DATA, "models", "vit-cifar10"), data: join(SHARED_DATA, "cifar10"), images, calib: 100 }),
  ];
  console.log(`${images} images per model; memory latency 2; one simulator process at a time`);
  console.log("model          array   dispatch  build_s  cycles/img  model_cycles  PE_util  wall_s/img  cycles/s  bit_exact");
  for (const cfg of arrays) {
    const { files, manifest } = renderRtl(cfg);
    const t0 = performance.now();
    await buildSimulator(files, manifest);
    const build = (performance.now() - t0) / 1000;
    for (const subject of subjects) {
      const { summary: s } = await runCosim(subject, cfg, { keepGoing: true });
      console.log(
        [
          s.model.padEnd(14), `${cfg.array.rows}x${cfg.array.cols}`.padEnd(7), cfg.dispatch.padEnd(8), build.toFixed(0).padStart(7), String(s.cyclesPerImage).padStart(11),
          String(s.predictedCyclesPerImage).padStart(13), `${(100 * s.utilization).toFixed(1)}%`.padStart(8), s.wallSecondsPerImage.toFixed(2).padStart(11),
          Math.round(s.simulatedCyclesPerSecond).toString().padStart(9), `${s.bitExact}/${s.images}`.padStart(10),
        ].join(" "),
      );
    }
  }
}

await main();
