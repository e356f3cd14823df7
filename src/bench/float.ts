/**
 * Benchmark: float evaluation speed (images/s) and top-1, on the calling thread and on worker threads,
 * for vit4mnist on all 10,000 MNIST test images (the README's 97.91%), vit-cifar10 on the 1,000 CIFAR
 * JPEGs (69.00%), and the deit_tiny preset with seeded random weights on the ImageNet folder's val/
 * images (or, without the shared data, on synthetic 224×224 inputs).
 *
 *   npm run build && node dist/bench/float.js [--shared <dir>] [--quick]
 *
 * --quick evaluates 1,000 MNIST images instead of 10,000.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { evaluateFloat, type EvaluateFloatResult } from "../cli/evaluate.js";
import { floatOps } from "../quant/float/float-ops.js";
import { forwardModel } from "../quant/float/forward.js";
import { defaultWorkers } from "../quant/float/parallel.js";
import { loadModel } from "../quant/presets.js";
import { gaussian, seededRandom } from "../util/random.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

function row(label: string, r: EvaluateFloatResult): string {
  return [
    label.padEnd(44),
    String(r.n).padStart(6),
    `${r.top1.toFixed(2)}%`.padStart(8),
    r.seconds.toFixed(1).padStart(8),
    r.imagesPerSecond.toFixed(1).padStart(10),
    String(r.workers).padStart(8),
  ].join(" ");
}

/** The same evaluation on the calling thread and on the default worker threads. */
async function both(label: string, opts: Parameters<typeof evaluateFloat>[0]): Promise<void> {
  const single = await evaluateFloat({ ...opts, workers: 0 });
  if (single.note !== null) console.log(single.note);
  console.log(row(`${label}, 1 thread`, single));
  const workers = defaultWorkers(Number.MAX_SAFE_INTEGER);
  if (workers > 0) console.log(row(`${label}, workers`, await evaluateFloat({ ...opts, workers })));
}

/** deit_tiny's forward pass alone, on seeded synthetic inputs, when no image folder is at hand. */
function syntheticDeitTiny(images: number): void {
  const model = loadModel("deit_tiny");
  const rng = seededRandom(1);
  const inputs = Array.from({ length: images }, () => Float32Array.from({ length: 3 * 224 * 224 }, () => gaussian(rng)));
  const start = performance.now();
  for (const image of inputs) forwardModel(model, image, floatOps);
  const seconds = (performance.now() - start) / 1000;
  console.log(`deit_tiny (random weights), ${images} synthetic 224×224 inputs, 1 thread: ${(images / seconds).toFixed(2)} images/s`);
}

async function main(): Promise<void> {
  const shared = resolve(arg("shared", "../shared/data"));
  const quick = process.argv.includes("--quick");
  console.log(`${"model / data".padEnd(44)} ${"images".padStart(6)} ${"top-1".padStart(8)} ${"seconds".padStart(8)} ${"images/s".padStart(10)} ${"workers".padStart(8)}`);
  const mnist = join(shared, "mnist");
  if (existsSync(mnist)) {
    await both(`vit4mnist, MNIST ${quick ? "first 1,000" : "all 10,000"}`, {
      model: join(shared, "models", "vit4mnist"),
      dataDir: mnist,
      calib: 0,
      limit: quick ? 1000 : undefined,
    });
    await both("vit-cifar10, 1,000 CIFAR JPEGs", { model: join(shared, "models", "vit-cifar10"), dataDir: join(shared, "cifar10"), calib: 0 });
  }
  const imagenet = join(shared, "imagenet");
  if (existsSync(imagenet)) {
    await both("deit_tiny, ImageNet val/ (200)", { model: "deit_tiny", dataDir: imagenet, calib: 64 });
  } else {
    console.log(`${imagenet} not found: timing deit_tiny on synthetic inputs`);
    syntheticDeitTiny(8);
  }
}

await main();
