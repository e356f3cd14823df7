/**
 * Per-layer agreement report: the SQNR of every tensor of the golden integer model against the float
 * model and against the fake-quant model, on real images (vit4mnist on MNIST, vit-cifar10 on CIFAR).
 *
 *   npm run build && node dist/bench/agreement.js [--shared <dir>] [--images N]
 */
import { join, resolve } from "node:path";
import { layerSqnr } from "../quant/agreement.js";
import { loadDataset } from "../quant/data/dataset.js";
import { DEFAULT_SETTINGS } from "../quant/fakequant.js";
import { ModelImage, quantizeModel } from "../quant/pipeline.js";
import { loadModel } from "../quant/presets.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

async function imagesOf(source: { count: number; labels: Uint16Array; read: (s: number, n: number) => Promise<{ images: Uint8Array }> }, n: number): Promise<ModelImage[]> {
  const set = await source.read(0, n);
  const per = set.images.length / n;
  return Array.from({ length: n }, (_, i) => ({ pixels: set.images.slice(i * per, (i + 1) * per), label: source.labels[i] }));
}

async function report(modelDir: string, dataDir: string, n: number): Promise<void> {
  const model = loadModel(modelDir);
  if (model.family !== "vit") return;
  const dataset = loadDataset(dataDir, { input: model.input, calib: 100, limit: n, classes: model.classes });
  const q = quantizeModel(model.ckpt, await imagesOf(dataset.calibration, dataset.calibration.count), DEFAULT_SETTINGS, model.input.resize);
  const images = await imagesOf(dataset.evaluation, n);
  const vsFloat = layerSqnr(model.ckpt, q.qgraph!, images);
  const vsFake = new Map(layerSqnr(model.ckpt, q.qgraph!, images, q.fakeQuant).map((r) => [r.tensor, r.sqnrDb]));
  console.log(`\n${model.name}: integer model vs float and vs fake-quant, SQNR in dB over ${n} images`);
  console.log(`${"tensor".padEnd(34)} ${"vs float".padStart(9)} ${"vs fake-q".padStart(9)}`);
  for (const r of vsFloat) {
    if (/\.head[1-9]\d*\./.test(r.tensor)) continue; // one head per layer is shown
    console.log(`${r.tensor.padEnd(34)} ${r.sqnrDb.toFixed(1).padStart(9)} ${(vsFake.get(r.tensor) ?? NaN).toFixed(1).padStart(9)}`);
  }
}

const shared = resolve(arg("shared", "../shared/data"));
const n = Number(arg("images", "20"));
await report(join(shared, "models", "vit4mnist"), join(shared, "mnist"), n);
await report(join(shared, "models", "vit-cifar10"), join(shared, "cifar10", "test"), n);
