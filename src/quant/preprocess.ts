/**
 * Image preprocessing as the checkpoints were trained with it, and the patch-embedding convolution
 * rewritten as a matrix so that it runs as an ordinary Linear layer.
 */
import { check } from "../util/errors.js";

function checkPositiveInteger(value: number, what: string): void {
  check(Number.isInteger(value) && value > 0, `${what}: expected a positive integer, got ${value}`);
}

/**
 * 8-bit pixels (CHW) → (p/255 − mean[c]) / std[c], CHW, the normalisation the model was trained on.
 */
export function normalizeImage(
  pixels: Uint8Array,
  channels: number,
  height: number,
  width: number,
  pre: { mean: number[]; std: number[] },
): Float32Array {
  checkPositiveInteger(channels, "channels");
  checkPositiveInteger(height, "height");
  checkPositiveInteger(width, "width");
  const plane = height * width;
  check(
    pixels.length === channels * plane,
    `pixels: expected ${channels}×${height}×${width} = ${channels * plane} values, got ${pixels.length}`,
  );
  check(pre.mean.length === channels, `mean: expected ${channels} values (one per channel), got ${pre.mean.length}`);
  check(pre.std.length === channels, `std: expected ${channels} values (one per channel), got ${pre.std.length}`);
  for (let c = 0; c < channels; c++) {
    check(Number.isFinite(pre.mean[c]), `mean[${c}]: expected a finite number, got ${pre.mean[c]}`);
    check(Number.isFinite(pre.std[c]) && pre.std[c] > 0, `std[${c}]: expected a number > 0, got ${pre.std[c]}`);
  }
  const out = new Float32Array(pixels.length);
  for (let c = 0; c < channels; c++) {
    const mean = pre.mean[c];
    const std = pre.std[c];
    for (let i = c * plane; i < (c + 1) * plane; i++) out[i] = (pixels[i] / 255 - mean) / std;
  }
  return out;
}

/**
 * The patch-embedding convolution (kernel = stride = patchSize) as a matrix product's left operand:
 * one row per patch in raster order over the patch grid, columns K = C·p·p in (channel, row, col)
 * order — the order of a flattened conv weight [D, C, p, p], so weight rows apply unchanged.
 * Returns numPatches × K, row-major.
 */
export function patchify(image: Float32Array, channels: number, imgSize: number, patchSize: number): Float32Array {
  checkPositiveInteger(channels, "channels");
  checkPositiveInteger(imgSize, "imgSize");
  checkPositiveInteger(patchSize, "patchSize");
  check(imgSize % patchSize === 0, `patchSize: expected a divisor of imgSize ${imgSize}, got ${patchSize}`);
  check(
    image.length === channels * imgSize * imgSize,
    `image: expected ${channels}×${imgSize}×${imgSize} = ${channels * imgSize * imgSize} values, got ${image.length}`,
  );
  const grid = imgSize / patchSize;
  const k = channels * patchSize * patchSize;
  const out = new Float32Array(grid * grid * k);
  let o = 0;
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      for (let c = 0; c < channels; c++) {
        for (let i = 0; i < patchSize; i++) {
          const rowStart = (c * imgSize + gy * patchSize + i) * imgSize + gx * patchSize;
          for (let j = 0; j < patchSize; j++) out[o++] = image[rowStart + j];
        }
      }
    }
  }
  return out;
}
