/**
 * The walking skeleton's quantization: the patch embedding of a checkpoint as a PoT-quantized Linear
 * layer, calibrated on one set of images, and the int8 input rows of another set ready to run on it.
 */
import { Checkpoint, patchEmbedding } from "./checkpoint.js";
import { ImageSet } from "./data/mnist.js";
import { quantizeLinear } from "./linear.js";
import { quantizeTensor } from "./pot.js";
import { normalizeImage, patchify } from "./preprocess.js";
import { QLinear } from "./qgraph.js";
import { P2vitError } from "../util/errors.js";

export const PATCH_EMBED_NAME = "patch_embed";

/** Float patch rows of every image: (images · patches) × (C · p · p). */
export function patchRows(ckpt: Checkpoint, images: ImageSet): Float32Array {
  const arch = ckpt.config.architecture;
  const { img_size: size, in_chans: channels, patch_size: patch } = arch;
  if (images.rows !== size || images.cols !== size) {
    throw new P2vitError(`images are ${images.rows}×${images.cols} but model ${ckpt.config.name} expects ${size}×${size}`);
  }
  const pixels = channels * size * size;
  if (images.images.length !== images.count * pixels) {
    throw new P2vitError(`images hold ${images.images.length} bytes, expected ${images.count}×${channels}×${size}×${size} for ${channels} channel(s)`);
  }
  const k = channels * patch * patch;
  const perImage = (size / patch) ** 2;
  const out = new Float32Array(images.count * perImage * k);
  for (let i = 0; i < images.count; i++) {
    const img = normalizeImage(images.images.subarray(i * pixels, (i + 1) * pixels), channels, size, size, ckpt.config.preprocess);
    out.set(patchify(img, channels, size, patch), i * perImage * k);
  }
  return out;
}

export interface QuantizedPatchEmbedding {
  layer: QLinear;
  /** int8 input rows of the evaluation images at the layer's input exponent. */
  x: Int8Array;
  rows: number;
  patchesPerImage: number;
}

export function quantizePatchEmbedding(
  ckpt: Checkpoint,
  calibration: ImageSet,
  evaluation: ImageSet,
  opts: { accBits?: number } = {},
): QuantizedPatchEmbedding {
  const pe = patchEmbedding(ckpt);
  const layer = quantizeLinear({
    name: PATCH_EMBED_NAME,
    weight: pe.weight,
    bias: pe.bias,
    inFeatures: pe.inFeatures,
    outFeatures: pe.outFeatures,
    calibration: patchRows(ckpt, calibration),
    accBits: opts.accBits,
  });
  const evalRows = patchRows(ckpt, evaluation);
  const rows = evalRows.length / pe.inFeatures;
  return {
    layer,
    x: quantizeTensor(evalRows, layer.input.exponent, layer.input.bits),
    rows,
    patchesPerImage: rows / evaluation.count,
  };
}

/** Takes images [start, start + count) of a set. */
export function sliceImages(set: ImageSet, start: number, count: number): ImageSet {
  const px = set.rows * set.cols * (set.images.length / (set.count * set.rows * set.cols));
  return {
    images: set.images.subarray(start * px, (start + count) * px),
    labels: set.labels.subarray(start, start + count),
    count,
    rows: set.rows,
    cols: set.cols,
  };
}
