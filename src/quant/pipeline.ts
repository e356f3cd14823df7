/**
 * The quantizer end to end: calibrate the float model on calibration images, trace its graph, and
 * build the QGraph; plus the evaluation of each model the test-quant command compares.
 */
import { runGolden } from "../sim/golden/model.js";
import { P2vitError } from "../util/errors.js";
import { Calibration, recordingOps } from "./calibration.js";
import { Checkpoint } from "./checkpoint.js";
import { QuantSettings, floatScaleFakeQuantOps, potFakeQuantOps } from "./fakequant.js";
import { floatOps } from "./float/float-ops.js";
import { forwardVit } from "./float/vit.js";
import { VitOps } from "./ops.js";
import { normalizeImage } from "./preprocess.js";
import { QGraph } from "./qgraph.js";
import { quantizeGraph } from "./quantize-graph.js";
import { FloatGraph, tracingOps } from "./trace.js";

/** One image as the float model and the integer model take it. */
export interface ModelImage {
  /** C×H×W pixels 0..255, at the model's input size. */
  pixels: Uint8Array;
  label: number;
}

export function normalized(ckpt: Checkpoint, img: ModelImage): Float32Array {
  const a = ckpt.config.architecture;
  return normalizeImage(img.pixels, a.in_chans, a.img_size, a.img_size, ckpt.config.preprocess);
}

export interface QuantizedModel {
  settings: QuantSettings;
  calibration: Calibration;
  floatGraph: FloatGraph;
  /** The fake-quantized model (FQ-ViT-style simulation at the same scales). */
  fakeQuant: VitOps;
  /** The integer graph; PoT scales only. */
  qgraph: QGraph | null;
}

export function calibrate(ckpt: Checkpoint, images: ModelImage[], settings: QuantSettings): Calibration {
  // the percentile observer needs whole batches; the others do with the bounded row sample
  const cal = new Calibration(settings.method === "percentile");
  const ops = recordingOps(floatOps, cal);
  for (const img of images) forwardVit(ckpt, normalized(ckpt, img), ops);
  return cal;
}

export function traceModel(ckpt: Checkpoint, image: ModelImage): FloatGraph {
  const t = tracingOps();
  return t.finish(forwardVit(ckpt, normalized(ckpt, image), t.ops));
}

export function quantizeModel(
  ckpt: Checkpoint,
  calibrationImages: ModelImage[],
  settings: QuantSettings,
  resize: QGraph["input"]["resize"] = null,
): QuantizedModel {
  if (calibrationImages.length === 0) throw new Error("quantizeModel: no calibration images");
  if (settings.layerBits && settings.scale !== "pot") throw new P2vitError("mixed precision needs power-of-two scales (--scale pot)");
  const calibration = calibrate(ckpt, calibrationImages, settings);
  const floatGraph = traceModel(ckpt, calibrationImages[0]);
  if (settings.scale === "float") {
    return { settings, calibration, floatGraph, fakeQuant: floatScaleFakeQuantOps(calibration, settings), qgraph: null };
  }
  const qgraph = quantizeGraph(ckpt, floatGraph, calibration, settings, resize);
  const { patch_size } = ckpt.config.architecture;
  const { mean, std } = ckpt.config.preprocess;
  return { settings, calibration, floatGraph, fakeQuant: potFakeQuantOps(qgraph, { patchArea: patch_size ** 2, mean, std }), qgraph };
}

function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

export function predictFloat(ckpt: Checkpoint, img: ModelImage, ops: VitOps = floatOps): number {
  return argmax(forwardVit(ckpt, normalized(ckpt, img), ops));
}

export function predictGolden(graph: QGraph, img: ModelImage): number {
  return argmax(runGolden(graph, img.pixels).logits);
}
