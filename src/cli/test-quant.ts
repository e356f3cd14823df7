/**
 * The quantized half of `p2vit test-quant` and the `p2vit quantize` command: calibrate on the
 * calibration split, quantize, and measure the quantized model against the float model on exactly the
 * same evaluation images; with PoT scales, the integer (golden) model too.
 */
import { DEFAULT_CALIB, loadDataset } from "../quant/data/dataset.js";
import { QuantSettings, ScaleMode } from "../quant/fakequant.js";
import { classify } from "../quant/float/parallel.js";
import { ObserverMethod } from "../quant/observers.js";
import { ModelImage, QuantizedModel, quantizeModel } from "../quant/pipeline.js";
import { LoadedModel, loadModel, randomWeightsNote } from "../quant/presets.js";
import { MixedChoice, SearchOptions, checkBudget, prepareSearch, searchMixed } from "../quant/mixed.js";
import { saveQGraph } from "../quant/qgraph-io.js";
import type { QGraph } from "../quant/qgraph.js";
import { P2vitError } from "../util/errors.js";

/** The search's budget and seed; population and iterations default to the paper's. */
export type MixedArgs = Pick<SearchOptions, "population" | "iterations"> & { budget: number; seed: number };

export interface QuantRunArgs {
  model: string;
  data: string;
  calib?: number;
  limit?: number;
  weights?: string;
  seed?: number;
  method: ObserverMethod;
  wBits: 4 | 8;
  aBits: 8;
  attnBits: 4 | 8;
  scale: ScaleMode;
  /** Mixed precision: search the weight bits per layer group under budget β (src/quant/mixed.ts). */
  mixed?: MixedArgs;
}

export interface QuantRunResult {
  model: string;
  weights: string;
  note: string | null;
  settings: QuantSettings;
  calib: number;
  n: number;
  /** The quantized (fake-quant) model's top-1, the float model's on the same images, in percent. */
  top1: number;
  floatTop1: number;
  /** PoT only: the integer golden model's top-1, and how often its top-1 equals the fake-quant model's. */
  integerTop1: number | null;
  integerAgreement: number | null;
  /** Calibration, quantization and evaluation together, and the mixed-precision search. */
  seconds: number;
  /** The mixed-precision search's choice, with --mixed. */
  mixed: MixedChoice | null;
}

function settingsOf(a: QuantRunArgs): QuantSettings {
  return { method: a.method, scale: a.scale, wBits: a.wBits, aBits: a.aBits, attnBits: a.attnBits };
}

/** Progress of the mixed-precision search, on stderr so that --json output stays one object. */
function logSearch(line: string): void {
  process.stderr.write(`mixed: ${line}\n`);
}

/**
 * With --mixed, the search's choice: it calibrates on part of the calibration images and measures
 * its fitness on the rest (never on evaluation images). Null without --mixed.
 */
function chooseBits(a: QuantRunArgs, model: LoadedModel, calibration: ModelImage[]): MixedChoice | null {
  if (!a.mixed) return null;
  if (model.family !== "vit") throw new Error("unreachable: loadQuantDataset refuses other families");
  const setup = prepareSearch(model.ckpt, calibration, settingsOf(a), { resize: model.input.resize, log: logSearch });
  return searchMixed(setup, a.mixed);
}

function withChoice(settings: QuantSettings, choice: MixedChoice | null): QuantSettings {
  return choice ? { ...settings, layerBits: choice.layerBits } : settings;
}

/** Loads the model and data, calibrates on the calibration split and returns the quantized model. */
async function prepareQuantized(a: QuantRunArgs): Promise<{ model: LoadedModel; quantized: QuantizedModel; dataset: ReturnType<typeof loadDataset> }> {
  if (a.mixed) checkBudget(a.mixed.budget);
  const model = loadModel(a.model, { weights: a.weights, seed: a.seed });
  const dataset = loadQuantDataset(a, model);
  if (model.family !== "vit") throw new Error("unreachable: loadQuantDataset refuses other families");
  const calibration = await readImages(dataset.calibration);
  const choice = chooseBits(a, model, calibration);
  // the chosen map is quantized afresh on every calibration image, as the uniform settings are
  const quantized = quantizeModel(model.ckpt, calibration, withChoice(settingsOf(a), choice), model.input.resize);
  if (choice && quantized.qgraph) quantized.qgraph.mixedPrecision = { budget: choice.budget, seed: choice.seed, bits: choice.layerBits };
  return { model, quantized, dataset };
}

/**
 * The default PoT QGraph (or with int4 weights, or mixed precision at budget β) of a model calibrated
 * on `calib` images of `data`.
 */
export async function quantizeToGraph(a: { model: string; data: string; calib: number; wBits?: 4 | 8; mixed?: MixedArgs }): Promise<QGraph> {
  const { quantized } = await prepareQuantized({ ...a, limit: 1, method: "minmax", wBits: a.wBits ?? 8, aBits: 8, attnBits: 4, scale: "pot" });
  return quantized.qgraph!;
}

function loadQuantDataset(a: QuantRunArgs, model: LoadedModel) {
  if (model.family !== "vit") throw new P2vitError(`${a.model}: quantization supports the ViT family; ${model.family} models run in float only so far`);
  const dataset = loadDataset(a.data, { input: model.input, calib: a.calib ?? DEFAULT_CALIB, limit: a.limit, classes: model.classes });
  if (dataset.calibration.count === 0) throw new P2vitError(`${a.data}: quantization needs calibration images (--calib must be at least 1)`);
  return dataset;
}

async function readImages(source: { count: number; labels: Uint16Array; read: (s: number, n: number) => Promise<{ images: Uint8Array }> }): Promise<ModelImage[]> {
  const set = await source.read(0, source.count);
  const per = set.images.length / source.count;
  return Array.from({ length: source.count }, (_, i) => ({ pixels: set.images.slice(i * per, (i + 1) * per), label: source.labels[i] }));
}

export async function runQuantEvaluation(a: QuantRunArgs, onProgress?: (done: number, total: number) => void, workers?: number): Promise<QuantRunResult> {
  if (a.mixed) checkBudget(a.mixed.budget);
  const model = loadModel(a.model, { weights: a.weights, seed: a.seed });
  const dataset = loadQuantDataset(a, model);
  const calibration = await dataset.calibration.read(0, dataset.calibration.count);
  const t1 = performance.now();
  const choice = chooseBits(a, model, a.mixed ? await readImages(dataset.calibration) : []);
  // each thread calibrates and quantizes on its own, the same way
  const quant = { settings: withChoice(settingsOf(a), choice), pixels: calibration.images, count: dataset.calibration.count };
  const source = dataset.evaluation;
  const p = await classify(model, source, quant, { workers, onProgress });
  const count = (model: number) => {
    let k = 0;
    for (let i = 0; i < source.count; i++) if (p[3 * i + model] === source.labels[i]) k++;
    return k;
  };
  let agree = 0;
  for (let i = 0; i < source.count; i++) if (p[3 * i + 2] === p[3 * i + 1]) agree++;
  const pct = (k: number) => (100 * k) / source.count;
  const integer = a.scale === "pot";
  return {
    model: model.name,
    weights: model.source,
    note: randomWeightsNote(model),
    settings: quant.settings,
    calib: dataset.calibration.count,
    n: source.count,
    top1: pct(count(1)),
    floatTop1: pct(count(0)),
    integerTop1: integer ? pct(count(2)) : null,
    integerAgreement: integer ? pct(agree) : null,
    seconds: (performance.now() - t1) / 1000,
    mixed: choice,
  };
}

export function quantJson(r: QuantRunResult, a: QuantRunArgs): Record<string, unknown> {
  return {
    model: r.model,
    weights: r.weights,
    data: a.data,
    quant: true,
    quant_method: r.settings.method,
    w_bits: r.mixed ? "mixed" : r.settings.wBits,
    a_bits: r.settings.aBits,
    attn_bits: r.settings.attnBits,
    scale: r.settings.scale,
    calib: r.calib,
    limit: a.limit ?? null,
    n: r.n,
    top1: r.top1,
    float_top1: r.floatTop1,
    integer_top1: r.integerTop1,
    integer_agreement: r.integerAgreement,
    seconds: r.seconds,
    mixed: r.mixed && {
      budget: r.mixed.budget,
      seed: r.mixed.seed,
      budget_use: r.mixed.budgetUse,
      holdout_kl: r.mixed.fitness,
      configurations_evaluated: r.mixed.evaluated,
      layer_bits: r.mixed.layerBits,
    },
  };
}

export function formatQuantResult(r: QuantRunResult): string {
  const s = r.settings;
  const lines = [
    `model ${r.model} (${r.weights}): ${r.n} evaluation images, ${r.calib} calibration images`,
    `quantization: ${s.scale === "pot" ? "power-of-two" : "float"} scales, W${r.mixed ? "4/8 mixed" : s.wBits}/A${s.aBits}/Attn${s.attnBits}, observer ${s.method}`,
    `float top-1:       ${r.floatTop1.toFixed(2)}%`,
    `quantized top-1:   ${r.top1.toFixed(2)}%  (fake-quant model)`,
  ];
  if (r.integerTop1 !== null) lines.push(`integer top-1:     ${r.integerTop1.toFixed(2)}%  (golden integer model; top-1 equal to the fake-quant model's on ${r.integerAgreement!.toFixed(2)}% of images)`);
  if (r.mixed) lines.push(formatChoice(r.mixed));
  lines.push(`time: ${r.seconds.toFixed(1)} s (${r.mixed ? "mixed-precision search, " : ""}calibration, quantization and evaluation)`);
  return lines.join("\n");
}

function formatChoice(c: MixedChoice): string {
  const eight = Object.entries(c.layerBits).filter(([, b]) => b === 8).map(([name]) => name);
  return `mixed precision: budget β ${c.budget} (uses ${c.budgetUse.toFixed(3)}), seed ${c.seed}, ${c.evaluated} configurations searched, held-out KL ${c.fitness.toExponential(3)}; 8-bit layers: ${eight.join(", ")}; the others 4-bit`;
}

/** `p2vit quantize`: calibrate, quantize and write the QGraph file. */
export async function quantizeCommand(a: QuantRunArgs, out: string): Promise<string> {
  if (a.scale !== "pot") throw new P2vitError("--scale float has no integer graph to write: QGraph files hold power-of-two scales only");
  const { model, quantized, dataset } = await prepareQuantized({ ...a, limit: a.limit ?? 1 });
  saveQGraph(out, quantized.qgraph!);
  const g = quantized.qgraph!;
  const mixed = g.mixedPrecision ? `, mixed precision at β ${g.mixedPrecision.budget} (8-bit: ${Object.entries(g.mixedPrecision.bits).filter(([, b]) => b === 8).map(([n]) => n).join(", ")})` : "";
  return `wrote ${out}: ${model.name}, ${g.ops.length} ops, ${g.tensors.length} tensors, calibrated on ${dataset.calibration.count} images (${dataset.calibration.origin})${mixed}`;
}
