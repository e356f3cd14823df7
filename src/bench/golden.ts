/**
 * Benchmark: the golden integer model's speed, as integer multiply-accumulates per second (Linear
 * layers, Q·Kᵀ and attention·V) and images per second, for vit4mnist and the deit_tiny preset (seeded
 * random weights, calibrated on a few synthetic images: the figure is speed, not accuracy). One core.
 *
 *   npm run build && node dist/bench/golden.js [--shared <dir>] [--images N]
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { DEFAULT_SETTINGS } from "../quant/fakequant.js";
import { loadMnist } from "../quant/data/mnist.js";
import { ModelImage, quantizeModel } from "../quant/pipeline.js";
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

function measure(label: string, g: QGraph, images: ModelImage[]): void {
  runGolden(g, images[0].pixels); // warm up the JIT
  const t0 = performance.now();
  for (const img of images) runGolden(g, img.pixels);
  const seconds = (performance.now() - t0) / 1000;
  const macs = graphMacs(g) * images.length;
  console.log(`${label.padEnd(34)} ${String(images.length).padStart(6)} ${(images.length / seconds).toFixed(1).padStart(10)} ${(graphMacs(g) / 1e6).toFixed(1).padStart(10)} ${(macs / seconds / 1e9).toFixed(3).padStart(8)}`);
}

async function main(): Promise<void> {
  const shared = resolve(arg("shared", "../shared/data"));
  const n = Number(arg("images", "200"));
  console.log(`${"model".padEnd(34)} ${"images".padStart(6)} ${"images/s".padStart(10)} ${"MMAC/img".padStart(10)} ${"GMAC/s".padStart(8)}`);
  const mnistModel = join(shared, "models", "vit4mnist");
  if (existsSync(mnistModel)) {
    const model = loadModel(mnistModel);
    const mnist = loadMnist(join(shared, "mnist"));
    const img = (i: number): ModelImage => ({ pixels: mnist.images.slice(i * 784, (i + 1) * 784), label: mnist.labels[i] });
    const calib = Array.from({ length: 100 }, (_, i) => img(mnist.count - 100 + i));
    if (model.family === "vit") measure("vit4mnist (MNIST images)", quantizeModel(model.ckpt, calib, DEFAULT_SETTINGS).qgraph!, Array.from({ length: n }, (_, i) => img(i)));
  }
  const deit = loadModel("deit_tiny");
  if (deit.family === "vit") {
    const calib = syntheticImages(4, 3, 224, 1);
    measure("deit_tiny (random weights)", quantizeModel(deit.ckpt, calib, DEFAULT_SETTINGS, deit.input.resize).qgraph!, syntheticImages(Math.max(2, Math.round(n / 50)), 3, 224, 2));
  }
}

await main();
