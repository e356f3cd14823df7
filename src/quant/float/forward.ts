/**
 * One entry point for every model family: logits of an image, and the predicted class.
 */
import type { VitOps } from "../ops.js";
import type { LoadedModel } from "../presets.js";
import { normalizeImage } from "../preprocess.js";
import { forwardSwin } from "./swin.js";
import { forwardVit } from "./vit.js";

/** Logits of one normalized CHW image through `ops`, by the model's family. */
export function forwardModel(model: LoadedModel, image: Float32Array, ops: VitOps): Float32Array {
  return model.family === "vit" ? forwardVit(model.ckpt, image, ops) : forwardSwin(model.ckpt, image, ops);
}

/** Index of the largest logit (the first one on ties, as torch.argmax). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let c = 1; c < logits.length; c++) if (logits[c] > logits[best]) best = c;
  return best;
}

/** Predicted class of each of `count` images of 8-bit CHW pixels at the model's input geometry. */
export function predictImages(model: LoadedModel, pixels: Uint8Array, count: number, ops: VitOps): Int32Array {
  const { channels, size } = model.input;
  const perImage = channels * size * size;
  const predictions = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const image = normalizeImage(pixels.subarray(i * perImage, (i + 1) * perImage), channels, size, size, model.preprocess);
    predictions[i] = argmax(forwardModel(model, image, ops));
  }
  return predictions;
}
