/**
 * Float evaluation of a model on a dataset: the API (`evaluateFloat`) and the float half of the
 * `p2vit test-quant` command (`testQuantFloatCommand`). Images of the calibration split are never
 * evaluated, so the float top-1 is measured on exactly the images a quantized run is measured on.
 */
import { check } from "../util/errors.js";
import { DEFAULT_CALIB, loadDataset, type DatasetLayout } from "../quant/data/dataset.js";
import { classifyFloat, defaultWorkers } from "../quant/float/parallel.js";
import { loadModel, randomWeightsNote, type LoadedModel } from "../quant/presets.js";

export interface EvaluateFloatOptions {
  /** A preset name (deit_tiny, …, swin_base) or a model folder. */
  model: string;
  /** For a preset: a folder with model.safetensors, or a .safetensors file, in timm tensor names. */
  weights?: string;
  /** Seed of a preset's random weights when none are given; default 1. */
  seed?: number;
  /** An MNIST IDX folder, a class-folder dataset, or an ImageNet folder. */
  dataDir: string;
  /** Calibration images held out of evaluation (see dataset.ts's split rule); default 100. */
  calib?: number;
  /** Evaluate only the first N evaluation images. */
  limit?: number;
  /** Worker threads; default one per core when the compiled build runs and the images are many. */
  workers?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface EvaluateFloatResult {
  model: string;
  /** Where the weights came from (a file, or "seeded random weights (seed N)"). */
  weights: string;
  randomWeights: boolean;
  /** The printed note about random weights, or null. */
  note: string | null;
  data: string;
  layout: DatasetLayout;
  /** Calibration images held out, and where the evaluated images came from. */
  calib: number;
  evaluated: string;
  /** Images evaluated, of which classified correctly, and the top-1 accuracy in percent. */
  n: number;
  correct: number;
  top1: number;
  seconds: number;
  imagesPerSecond: number;
  workers: number;
}

/** Loads the model and the dataset and measures the float model's top-1 accuracy on the evaluation split. */
export async function evaluateFloat(opts: EvaluateFloatOptions): Promise<EvaluateFloatResult> {
  const model = loadModel(opts.model, { weights: opts.weights, seed: opts.seed });
  const dataset = loadDataset(opts.dataDir, { input: model.input, calib: opts.calib ?? DEFAULT_CALIB, limit: opts.limit, classes: model.classes });
  checkClassCount(model, dataset.classNames.length, opts.dataDir);
  const source = dataset.evaluation;
  const workers = opts.workers ?? defaultWorkers(source.count);
  const start = performance.now();
  const predictions = await classifyFloat(model, source, { workers, onProgress: opts.onProgress });
  const seconds = (performance.now() - start) / 1000;
  let correct = 0;
  for (let i = 0; i < source.count; i++) if (predictions[i] === source.labels[i]) correct++;
  return {
    model: model.name,
    weights: model.source,
    randomWeights: model.randomWeights,
    note: randomWeightsNote(model),
    data: opts.dataDir,
    layout: dataset.layout,
    calib: dataset.calibration.count,
    evaluated: source.origin,
    n: source.count,
    correct,
    top1: (100 * correct) / source.count,
    seconds,
    imagesPerSecond: source.count / seconds,
    workers,
  };
}

/** A dataset numbering more classes than the model's head has outputs cannot be scored by it. */
function checkClassCount(model: LoadedModel, datasetClasses: number, dir: string): void {
  const outputs = model.ckpt.config.architecture.num_classes;
  check(
    datasetClasses <= outputs,
    `${dir}: the dataset has ${datasetClasses} classes but model ${model.name} has ${outputs} outputs (architecture.num_classes)`,
  );
}

// ---------------------------------------------------------------------------------------------------
// The command

/** The options of `p2vit test-quant` without --quant (the lead's yargs definition maps onto these). */
export interface TestQuantFloatArgs {
  /** Positional: a preset name or a model folder. */
  model: string;
  /** Positional: the dataset folder. */
  data: string;
  /** --calib N (default 100). */
  calib?: number;
  /** --limit N. */
  limit?: number;
  /** --weights <folder|file>: timm weights for a preset. */
  weights?: string;
  /** --seed N: seed of a preset's random weights (default 1). */
  seed?: number;
  /** --workers N: worker threads (default: one per core when it pays; 0 = none). */
  workers?: number;
  /** --json: print one JSON object instead of text. */
  json?: boolean;
}

/** `p2vit test-quant <model> <data>` without --quant: prints the float top-1; returns the exit code. */
export async function testQuantFloatCommand(args: TestQuantFloatArgs): Promise<number> {
  const bar = !args.json && process.stderr.isTTY ? progressBar() : undefined;
  const result = await evaluateFloat({
    model: args.model,
    weights: args.weights,
    seed: args.seed,
    dataDir: args.data,
    calib: args.calib,
    limit: args.limit,
    workers: args.workers,
    onProgress: bar,
  });
  if (bar) process.stderr.write("\n");
  if (result.note !== null) console.error(result.note);
  console.log(args.json ? JSON.stringify(floatJson(result, args)) : formatFloatResult(result));
  return 0;
}

/** The JSON object of a float run: `top1` in percent, `n`, and every setting used. */
export function floatJson(r: EvaluateFloatResult, args: Pick<TestQuantFloatArgs, "limit" | "seed">): Record<string, unknown> {
  return {
    model: r.model,
    weights: r.weights,
    random_weights: r.randomWeights,
    data: r.data,
    layout: r.layout,
    quant: false,
    calib: r.calib,
    limit: args.limit ?? null,
    seed: r.randomWeights ? (args.seed ?? 1) : null,
    evaluated: r.evaluated,
    n: r.n,
    correct: r.correct,
    top1: r.top1,
    seconds: r.seconds,
    images_per_second: r.imagesPerSecond,
    workers: r.workers,
  };
}

export function formatFloatResult(r: EvaluateFloatResult): string {
  return [
    `model ${r.model} (${r.weights}), data ${r.data} (${r.layout}): ${r.n} images from ${r.evaluated} evaluated, ${r.calib} held out for calibration`,
    `float top-1: ${r.top1.toFixed(2)}% (${r.correct}/${r.n}) in ${r.seconds.toFixed(1)} s, ${r.imagesPerSecond.toFixed(1)} images/s` +
      `${r.workers > 0 ? ` on ${r.workers} worker threads` : ""}`,
  ].join("\n");
}

/** A progress callback drawing `[#####.....] done/total` on one terminal line of stderr. */
function progressBar(width = 30): (done: number, total: number) => void {
  return (done, total) => {
    const filled = Math.round((width * done) / total);
    process.stderr.write(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total} images`);
  };
}
