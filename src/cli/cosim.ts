/**
 * `p2vit cosim`: a whole quantized ViT on the generated RTL, image by image, against the golden model
 * and the ISA simulator, bit for bit on every stored tensor; with the measured cycles per layer beside
 * the in-order cycle model's. The model is the built-in synthetic one, a QGraph file, or a model
 * (folder or preset) quantized on the calibration split of --data.
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodeProgram } from "../compiler/memory.js";
import { renderRtl, writeRtlFiles } from "../generator/rtl.js";
import { AcceleratorConfig, Dispatch } from "../hw/config.js";
import { loadDataset } from "../quant/data/dataset.js";
import type { InputSpec } from "../quant/data/decode.js";
import { DEFAULT_SETTINGS } from "../quant/fakequant.js";
import { quantizeModel } from "../quant/pipeline.js";
import { loadModel } from "../quant/presets.js";
import type { QGraph } from "../quant/qgraph.js";
import { loadQGraph } from "../quant/qgraph-io.js";
import { SYNTHETIC_MODEL_NAME, syntheticCheckpoint, syntheticImages } from "../quant/synthetic.js";
import { CYCLE_MODEL_NAME, ImageCosim, LayerCycles, ModelCosim, ModelCosimOptions, formatDivergence } from "../sim/cosim-model.js";
import { writeDirAtomic } from "../util/atomic.js";
import { P2vitError } from "../util/errors.js";
import { formatProgramListing } from "./compile.js";
import { quantizeToGraph } from "./test-quant.js";

export interface CosimSubject {
  name: string;
  graph: QGraph;
  images: Uint8Array[];
  labels: (number | null)[];
}

export interface SubjectRequest {
  /** "synthetic", a .qgraph file, or a model folder or preset. */
  target: string;
  data?: string;
  images: number;
  calib: number;
  /** Weight bits of a graph quantized here (4: int4 weights, for dual-mode PEs). */
  wBits?: 4 | 8;
}

function positive(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 1) throw new P2vitError(`${what}: expected a positive integer, got ${v}`);
}

/** The QGraph and the evaluation images of a request; calibration images are never evaluated. */
export async function loadSubject(req: SubjectRequest): Promise<CosimSubject> {
  positive(req.images, "--images");
  positive(req.calib, "--calib");
  if (req.target === "synthetic" || req.target === SYNTHETIC_MODEL_NAME) {
    const ckpt = syntheticCheckpoint();
    const size = ckpt.config.architecture.img_size;
    const set = syntheticImages(req.images + req.calib, 1, size);
    const per = set.images.length / set.count;
    const image = (i: number) => ({ pixels: set.images.slice(i * per, (i + 1) * per), label: set.labels[i] });
    const calibration = Array.from({ length: req.calib }, (_, i) => image(req.images + i));
    const graph = quantizeModel(ckpt, calibration, { ...DEFAULT_SETTINGS, wBits: req.wBits ?? 8 }, null).qgraph!;
    return { name: SYNTHETIC_MODEL_NAME, graph, images: Array.from({ length: req.images }, (_, i) => image(i).pixels), labels: Array.from({ length: req.images }, () => null) };
  }
  if (req.data === undefined) throw new P2vitError(`${req.target}: give the images with --data <folder> (MNIST IDX, or class folders of images)`);
  const isGraph = existsSync(req.target) && statSync(req.target).isFile();
  const graph = isGraph ? loadQGraph(req.target) : await quantizeToGraph({ model: req.target, data: req.data, calib: req.calib, wBits: req.wBits });
  const input = isGraph
    ? { channels: graph.input.channels, size: graph.input.height, resize: graph.input.resize as InputSpec["resize"] }
    : loadModel(req.target).input;
  const dataset = loadDataset(req.data, { input, calib: req.calib });
  if (dataset.evaluation.count < req.images) {
    throw new P2vitError(`${req.data}: ${req.images} evaluation images asked for, but the evaluation split holds only ${dataset.evaluation.count} (${req.calib} images calibrate)`);
  }
  const n = req.images;
  const set = await dataset.evaluation.read(0, n);
  const per = set.images.length / n;
  return {
    name: graph.model.name,
    graph,
    images: Array.from({ length: n }, (_, i) => set.images.slice(i * per, (i + 1) * per)),
    labels: Array.from(dataset.evaluation.labels.slice(0, n)),
  };
}

export interface CosimSummary {
  model: string;
  config: string;
  array: string;
  images: number;
  bitExact: number;
  /** Images whose RTL top-1 equals the golden top-1. */
  top1Agree: number;
  /** Images whose RTL top-1 equals the label (when labels are known). */
  correct: number | null;
  cyclesPerImage: number;
  predictedCyclesPerImage: number;
  /** The cycle model of the config's dispatch mode. */
  cycleModel: (typeof CYCLE_MODEL_NAME)[Dispatch];
  /** PE utilization: useful MACs over rows·cols·cycles. */
  utilization: number;
  /** The largest |measured − predicted| / measured over the layers of the first image. */
  worstLayerError: { layer: string; error: number } | null;
  layers: LayerCycles[];
  firstDivergence: (ReturnType<typeof divergenceJson> & { image: number }) | null;
  /** Golden model, ISA simulator and RTL together. */
  wallSecondsPerImage: number;
  /** Cycles per second of the RTL simulator process (Verilator, with its start-up). */
  simulatedCyclesPerSecond: number;
}

function divergenceJson(r: ImageCosim) {
  const d = r.divergence!;
  return { run: d.run, layer: d.layer, tensor: d.tensor, coords: d.coords, expected: d.expected, got: d.got, count: d.count, instruction: d.instruction, instructionText: d.instructionText, trace: d.trace ?? null };
}

export function worstLayer(layers: LayerCycles[]): { layer: string; error: number } | null {
  let worst: { layer: string; error: number } | null = null;
  for (const l of layers) {
    if (l.measured === 0) continue;
    const error = Math.abs(l.measured - l.predicted) / l.measured;
    if (!worst || error > worst.error) worst = { layer: l.layer, error };
  }
  return worst;
}

/** Runs every image; `onImage` sees each result as it comes. Stops at the first divergence unless `keepGoing`. */
export async function runCosim(
  subject: CosimSubject,
  cfg: AcceleratorConfig,
  options: ModelCosimOptions & { keepGoing?: boolean; parallel?: number; onImage?: (r: ImageCosim) => void } = {},
): Promise<{ summary: CosimSummary; results: ImageCosim[]; cosim: ModelCosim }> {
  const cosim = await ModelCosim.create(subject.graph, cfg, options);
  const t0 = performance.now();
  // two simulator processes side by side: the golden model and the ISA simulator of one image run
  // while the RTL of the other does
  const done: ImageCosim[] = [];
  let next = 0;
  let stop = false;
  const worker = async () => {
    while (!stop && next < subject.images.length) {
      const i = next++;
      const r = await cosim.runImage(subject.images[i], i, subject.labels[i]);
      done.push(r);
      options.onImage?.(r);
      if (!r.pass && !options.keepGoing) stop = true;
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.parallel ?? 2, subject.images.length) }, worker));
  const ordered = done.sort((a, b) => a.index - b.index);
  // without keepGoing, the run ends at the first image that failed
  const firstFail = ordered.findIndex((r) => !r.pass);
  const results = firstFail >= 0 && !options.keepGoing ? ordered.slice(0, firstFail + 1) : ordered;
  const seconds = (performance.now() - t0) / 1000;
  const macs = [...cosim.program.macs.values()].reduce((a, b) => a + b, 0);
  const cycles = results.reduce((a, r) => a + r.cycles, 0) / results.length;
  const failed = results.find((r) => !r.pass);
  const labelled = results.filter((r) => r.label !== null);
  return {
    cosim,
    results,
    summary: {
      model: subject.name,
      config: cfg.name,
      array: `${cfg.array.rows}x${cfg.array.cols}${cfg.weightBits === 4 ? " w4" : ""}`,
      images: results.length,
      bitExact: results.filter((r) => r.pass).length,
      top1Agree: results.filter((r) => r.rtlTop1 === r.goldenTop1).length,
      correct: labelled.length ? labelled.filter((r) => r.rtlTop1 === r.label).length : null,
      cyclesPerImage: Math.round(cycles),
      predictedCyclesPerImage: results[0].predictedCycles,
      cycleModel: CYCLE_MODEL_NAME[cfg.dispatch],
      utilization: macs / (cfg.array.rows * cfg.array.cols * cycles),
      worstLayerError: worstLayer(results[0].layers),
      layers: results[0].layers,
      firstDivergence: failed ? { image: failed.index, ...divergenceJson(failed) } : null,
      wallSecondsPerImage: seconds / results.length,
      simulatedCyclesPerSecond: results.reduce((a, r) => a + r.cycles, 0) / results.reduce((a, r) => a + r.rtlSeconds, 0),
    },
  };
}

export function formatCosim(s: CosimSummary, results: ImageCosim[]): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lines = [
    `${s.model} on ${s.config} (${s.array}): ${s.bitExact}/${s.images} images bit-exact on every tensor, RTL top-1 = golden top-1 on ${s.top1Agree}/${s.images}` +
      (s.correct !== null ? `, ${s.correct}/${s.images} correct` : ""),
    `cycles per image: ${s.cyclesPerImage.toLocaleString("en-US")} measured, ${s.predictedCyclesPerImage.toLocaleString("en-US")} predicted by the ${s.cycleModel} cycle model; PE utilization ${pct(s.utilization)}`,
  ];
  if (s.worstLayerError) lines.push(`worst layer against the model: ${s.worstLayerError.layer}, ${pct(s.worstLayerError.error)} off`);
  lines.push(`simulation: ${s.wallSecondsPerImage.toFixed(2)} s per image, ${Math.round(s.simulatedCyclesPerSecond).toLocaleString("en-US")} cycles/s`);
  const failed = results.find((r) => !r.pass);
  lines.push(failed ? `FAIL: image ${failed.index}: ${formatDivergence(failed.divergence!)}` : "PASS");
  return lines.join("\n");
}

export function formatLayerTable(layers: LayerCycles[]): string {
  const rows = layers.map((l) => `${l.layer.padEnd(28)} ${String(l.measured).padStart(10)} ${String(l.predicted).padStart(10)} ${l.measured ? ((100 * (l.predicted - l.measured)) / l.measured).toFixed(1).padStart(6) + "%" : ""}`);
  return [`${"layer".padEnd(28)} ${"measured".padStart(10)} ${"model".padStart(10)}   diff`, ...rows].join("\n");
}

/** Writes the RTL, the program listing, the memory image of the first image and the summary atomically. */
export async function writeCosimRun(dir: string, cosim: ModelCosim, summary: CosimSummary, results: ImageCosim[]): Promise<void> {
  const { files, manifest } = renderRtl(cosim.program.config);
  await writeDirAtomic(dir, (tmp) => {
    const rtl = join(tmp, "rtl");
    mkdirSync(rtl);
    writeRtlFiles(rtl, files, manifest);
    writeFileSync(join(tmp, "program.bin"), encodeProgram(cosim.program));
    writeFileSync(join(tmp, "program.lst"), formatProgramListing(cosim.program));
    writeFileSync(join(tmp, "result.json"), JSON.stringify({ summary, images: results.map(({ layers: _l, ...r }) => r) }, null, 2) + "\n");
  });
}

export interface ModelCosimCommand {
  subject: SubjectRequest;
  config: AcceleratorConfig;
  options: ModelCosimOptions & { keepGoing?: boolean };
  out?: string;
  layers: boolean;
  json: boolean;
}

/** `p2vit cosim`: exit code 0 when every image is bit-exact. */
export async function modelCosimCommand(c: ModelCosimCommand): Promise<number> {
  const subject = await loadSubject(c.subject);
  process.stderr.write(`${subject.name}: ${subject.images.length} images on ${c.config.name}; building the simulator (cached by config hash)…\n`);
  const { summary, results, cosim } = await runCosim(subject, c.config, {
    ...c.options,
    onImage: (r) => process.stderr.write(`image ${r.index}: ${r.pass ? "bit-exact" : "MISMATCH"}, ${r.cycles.toLocaleString("en-US")} cycles\n`),
  });
  if (c.out) await writeCosimRun(c.out, cosim, summary, results);
  if (c.json) console.log(JSON.stringify(summary));
  else {
    console.log(formatCosim(summary, results));
    if (c.layers && c.config.dispatch === "queued") console.log("per-layer cycles: the layers of a queued top overlap; an in-order top (\"dispatch\": \"inorder\") measures them");
    else if (c.layers) console.log(formatLayerTable(summary.layers));
    if (c.out) console.log(`RTL, program and results written to ${c.out}`);
  }
  return summary.bitExact === summary.images ? 0 : 1;
}
