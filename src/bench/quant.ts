/**
 * Benchmark of the quantizer and the golden integer model, on one core: calibration and quantization
 * time, fake-quant images per second, and the integer model's images per second and integer
 * multiply-accumulates per second (Linear layers, Q·Kᵀ and attention·V). For vit4mnist (100 MNIST
 * calibration images) and the deit_tiny preset (seeded random weights, calibrated on 4 synthetic
 * images: the figures are speed, not accuracy).
 *
 *   npm run bench:quant [-- --shared <dir>] [--images N]
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { DEFAULT_SETTINGS } from "../quant/fakequant.js";
import { loadMnist } from "../quant/data/mnist.js";
import { Checkpoint, loadCheckpoint } from "../quant/checkpoint.js";
import { ModelImage, predictFloat, quantizeModel } from "../quant/pipeline.js";
import { loadModel } from "../quant/presets.js";
import { QGraph } from "../quant/qgraph.js";
import { runGolden } from "../sim/golden/model.js";
import { seededRandom } from "../util/random.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

/** Multiply-accumulates of one image through the graph. */
export function graphMacs(g: QGraph): number {
  let macs = 0;
  for (const op of g.ops) {
    if (op.kind === "linear") macs += op.rows * op.layer.inFeatures * op.layer.outFeatures;
    if (op.kind === "attn_scores") macs += op.tokens * op.tokens * op.params.headDim;
    if (op.kind === "attn_values") macs += op.tokens * op.tokens * op.params.headDim;
  }
  return macs;
}

function syntheticImages(count: number, channels: number, size: number, seed: number): ModelImage[] {
  const rnd = seededRandom(seed);
  return Array.from({ length: count }, () => ({ pixels: Uint8Array.from({ length: channels * size * size }, () => Math.floor(rnd() * 256)), label: 0 }));
}

function rate(images: ModelImage[], run: (img: ModelImage) => void): number {
  run(images[0]); // warm up the JIT
  const t0 = performance.now();
  for (const img of images) run(img);
  return images.length / ((performance.now() - t0) / 1000);
}

function measure(label: string, ckpt: Checkpoint, calib: ModelImage[], images: ModelImage[], resize: QGraph["input"]["resize"]): void {
  const t0 = performance.now();
  const q = quantizeModel(ckpt, calib, DEFAULT_SETTINGS, resize);
  const calibrate = (performance.now() - t0) / 1000;
  const g = q.qgraph!;
  const fakeQuant = rate(images, (img) => predictFloat(ckpt, img, q.fakeQuant));
  const golden = rate(images, (img) => runGolden(g, img.pixels));
  console.log(
    [
      label.padEnd(28), String(calib.length).padStart(6), calibrate.toFixed(1).padStart(8), String(images.length).padStart(6),
      fakeQuant.toFixed(2).padStart(9), golden.toFixed(2).padStart(9), (graphMacs(g) / 1e6).toFixed(1).padStart(9), ((golden * graphMacs(g)) / 1e9).toFixed(3).padStart(8),
    ].join(" "),
  );
}

async function main(): Promise<void> {
  const shared = resolve(arg("shared", "../shared/data"));
  const n = Number(arg("images", "200"));
  console.log(
    `${"model".padEnd(28)} ${"calib".padStart(6)} ${"calib_s".padStart(8)} ${"images".padStart(6)} ${"fq_img/s".padStart(9)} ${"int_img/s".padStart(9)} ${"MMAC/img".padStart(9)} ${"int_GMAC/s".padStart(8)}`,
  );
  const mnistModel = join(shared, "models", "vit4mnist");
  if (existsSync(mnistModel)) {
    const ckpt = loadCheckpoint(mnistModel);
    const mnist = loadMnist(join(shared, "mnist"));
    const img = (i: number): ModelImage => ({ pixels: mnist.images.slice(i * 784, (i + 1) * 784), label: mnist.labels[i] });
    const calib = Array.from({ length: 100 }, (_, i) => img(mnist.count - 100 + i));
    measure("vit4mnist (MNIST)", ckpt, calib, Array.from({ length: n }, (_, i) => img(i)), null);
  }
  const deit = loadModel("deit_tiny");
  if (deit.family === "vit") measure("deit_tiny (random weights)", deit.ckpt, syntheticImages(4, 3, 224, 1), syntheticImages(Math.max(2, Math.round(n / 50)), 3, 224, 2), deit.input.resize);
}

await main();
