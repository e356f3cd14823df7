/**
 * The mixed-precision Pareto report: for vit4mnist and vit-cifar10, the integer (golden) model's
 * top-1 against the weight bytes and against the cycles of the cycle model on a 16×16 dual-mode
 * array (weightBits 4), for all-8, all-4 and the coarse-to-fine search at several budgets β; beside
 * top-1, how close each is to the all-8 model on the same images (top-1 agreement, KL of the logits).
 *
 * Every configuration is calibrated on the same calibration split (the last 100 images of the data
 * set) and evaluated on the rest (MNIST: the first --mnist-limit test images; CIFAR: the other 900
 * JPEGs). The search calibrates on 75 of those 100 and measures its fitness on the other 25; the
 * chosen bit map is then quantized on all 100, as all-8 and all-4 are.
 *
 *   npm run bench:pareto [-- --shared <dir>] [--budgets 1,1.05,1.1,1.25,1.5] [--seed 1] [--mnist-limit 1000] [--models vit4mnist,vit-cifar10]
 */
import { join, resolve } from "node:path";
import { compileGraph } from "../compiler/graph.js";
import { parseAcceleratorConfig } from "../hw/config.js";
import { DEFAULT_CALIB, loadDataset } from "../quant/data/dataset.js";
import { DEFAULT_SETTINGS, QuantSettings } from "../quant/fakequant.js";
import { GroupBits, MixedLayout, budgetUse, fitnessOf, logProbabilities, meanKl, measureSensitivities, prepareSearch, searchMixed } from "../quant/mixed.js";
import { ModelImage, calibrate, traceModel } from "../quant/pipeline.js";
import { loadModel } from "../quant/presets.js";
import type { QGraph } from "../quant/qgraph.js";
import { QuantizeCache, quantizeGraph } from "../quant/quantize-graph.js";
import { perfReport } from "../sim/perf.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const HW = parseAcceleratorConfig({ name: "w4x16x16", array: { rows: 16, cols: 16 }, busBits: 128, weightBits: 4 });

const MODELS = [
  { name: "vit4mnist", data: "mnist" },
  { name: "vit-cifar10", data: "cifar10" },
] as const;

interface Row {
  model: string;
  config: string;
  /** β the configuration uses over the searched layers (all-4 and all-8: 1 and 2 by definition). */
  use: number;
  eightBit: string;
  weightBytes: number;
  cycles: number;
  top1: number;
  /** On the same images: how often the top-1 equals all-8's, and the mean KL of the logits from all-8's. */
  agreement: number;
  kl: number;
  n: number;
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Bytes of every Linear's weights as the accelerator stores them: int4 packed two to a byte. */
export function weightBytes(graph: QGraph): number {
  return graph.ops.reduce((sum, op) => (op.kind === "linear" ? sum + (op.layer.inFeatures * op.layer.outFeatures * op.layer.weightBits) / 8 : sum), 0);
}

function argmax(p: Float64Array): number {
  let best = 0;
  for (let i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
  return best;
}

/**
 * Top-1, and closeness to the 8-bit model (`reference`: its log-probabilities on the same images).
 * On a few hundred images top-1 moves by ±1.5 points by chance; agreement and KL show far smaller
 * differences between two quantizations of one model.
 */
function accuracyOf(logProbs: Float64Array[], images: ModelImage[], reference: Float64Array[]): { top1: number; agreement: number; kl: number } {
  let correct = 0;
  let agree = 0;
  logProbs.forEach((p, i) => {
    if (argmax(p) === images[i].label) correct++;
    if (argmax(p) === argmax(reference[i])) agree++;
  });
  const pct = (k: number) => (100 * k) / images.length;
  return { top1: pct(correct), agreement: pct(agree), kl: meanKl(reference, logProbs) };
}

async function readImages(source: { count: number; labels: Uint16Array; read: (s: number, n: number) => Promise<{ images: Uint8Array }> }): Promise<ModelImage[]> {
  const set = await source.read(0, source.count);
  const per = set.images.length / source.count;
  return Array.from({ length: source.count }, (_, i) => ({ pixels: set.images.slice(i * per, (i + 1) * per), label: source.labels[i] }));
}

async function paretoOf(modelDir: string, dataDir: string, budgets: number[], seed: number, limit: number | undefined): Promise<void> {
  const model = loadModel(modelDir);
  if (model.family !== "vit") throw new Error(`${modelDir}: not a ViT`);
  const { ckpt } = model;
  const dataset = loadDataset(dataDir, { input: model.input, calib: DEFAULT_CALIB, limit, classes: model.classes });
  const calibration = await readImages(dataset.calibration);
  const evaluation = await readImages(dataset.evaluation);
  const settings: QuantSettings = { ...DEFAULT_SETTINGS };
  // one calibration on all 100 images for every row: graphs differ only by their weight bits
  const cal = calibrate(ckpt, calibration, settings);
  const floatGraph = traceModel(ckpt, calibration[0]);
  const cache = new QuantizeCache(cal);
  const graph = (s: QuantSettings) => quantizeGraph(ckpt, floatGraph, cal, s, model.input.resize, cache);

  // two budgets often choose the same bit map: it is measured once
  const measured = new Map<string, Omit<Row, "config">>();
  const all8 = graph({ ...settings, wBits: 8 });
  const reference = logProbabilities(all8, evaluation);
  const measure = (config: string, g: QGraph, use: number, eightBit: string) => {
    const t0 = performance.now();
    const key = g.ops.map((op) => (op.kind === "linear" ? op.layer.weightBits : "")).join("");
    let m = measured.get(key);
    if (!m) {
      const accuracy = accuracyOf(g === all8 ? reference : logProbabilities(g, evaluation), evaluation, reference);
      m = { model: model.name, use, eightBit, weightBytes: weightBytes(g), cycles: perfReport(compileGraph(g, HW)).cycles, ...accuracy, n: evaluation.length };
      measured.set(key, m);
    }
    const row = { ...m, config };
    log(`${model.name} ${config}: top-1 ${row.top1.toFixed(2)}% on ${row.n}, ${row.weightBytes} weight bytes, ${row.cycles} cycles (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    console.log(formatRow(row));
  };
  measure("all-8", all8, 2, "all");
  measure("all-4", graph({ ...settings, wBits: 4 }), 1, "none");

  const setup = prepareSearch(ckpt, calibration, settings, { resize: model.input.resize, log: (l) => log(`${model.name}: ${l}`) });
  const sensitivities = measureSensitivities(setup);
  const fitness = fitnessOf(setup);
  for (const budget of budgets) {
    const t0 = performance.now();
    const choice = searchMixed(setup, { budget, seed, sensitivities, fitness });
    log(`${model.name}: search at β ${budget}: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    measure(`mixed β=${budget}`, graph({ ...settings, layerBits: choice.layerBits }), budgetUse(setup.layout, choice.groupBits), eightBitGroups(setup.layout, choice.groupBits));
  }
}

function eightBitGroups(layout: MixedLayout, bits: GroupBits): string {
  const eight = layout.groups.filter((_, i) => bits[i] === 8).map((g) => g.name.replace("blocks.", "b"));
  return eight.length ? eight.join(" ") : "-";
}

const HEADER = [
  "| model | weights | β used | 8-bit groups | weight bytes | cycles (16×16 W4) | integer top-1 | top-1 = all-8's | KL from all-8 | images |",
  "|---|---|---|---|--:|--:|--:|--:|--:|--:|",
].join("\n");

/** One table row, printed as soon as it is measured (a CIFAR run takes a while). */
function formatRow(r: Row): string {
  return `| ${r.model} | ${r.config} | ${r.use.toFixed(3)} | ${r.eightBit} | ${r.weightBytes.toLocaleString("en-US")} | ${r.cycles.toLocaleString("en-US")} | ${r.top1.toFixed(2)} | ${r.agreement.toFixed(2)} | ${r.kl.toExponential(2)} | ${r.n} |`;
}

async function main(): Promise<void> {
  const shared = resolve(arg("shared", "../shared/data"));
  const budgets = arg("budgets", "1,1.05,1.1,1.25,1.5").split(",").map(Number);
  const seed = Number(arg("seed", "1"));
  const mnistLimit = Number(arg("mnist-limit", "1000"));
  const only = arg("models", MODELS.map((m) => m.name).join(",")).split(",");
  console.log(HEADER);
  for (const m of MODELS.filter((m) => only.includes(m.name))) {
    await paretoOf(join(shared, "models", m.name), join(shared, m.data), budgets, seed, m.name === "vit4mnist" ? mnistLimit : undefined);
  }
}

await main();
