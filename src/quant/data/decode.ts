/**
 * Decoding of JPEG and PNG files (sharp, i.e. libvips with libjpeg-turbo) into the 8-bit CHW pixels a
 * model takes, with the geometry the model was evaluated with: either its native size, which the file
 * must already have, or timm's "resize the short side, then center crop".
 */
import sharp from "sharp";
import type { Metadata, OutputInfo, Sharp } from "sharp";
import { check, P2vitError } from "../../util/errors.js";

/** Resize the short side to `shortSide` (bicubic), keeping the aspect ratio, then center-crop. */
export interface ResizeSpec {
  shortSide: number;
  interpolation: "bicubic";
}

/** What a model takes as input: channels × size × size pixels, and how to get there from a file. */
export interface InputSpec {
  /** 1 (grayscale) or 3 (RGB). */
  channels: number;
  size: number;
  /** null: the model's native size; a file of another size or channel count is an error. */
  resize: ResizeSpec | null;
}

/** The short side timm resizes to for a crop fraction: floor(size / crop_pct), e.g. 224 / 0.875 = 256. */
export function shortSideForCrop(size: number, cropPct: number): number {
  return Math.floor(size / cropPct);
}

/** The file's 8-bit pixels, channels × size × size, channel-major (CHW). */
export async function decodeImage(file: string, input: InputSpec): Promise<Uint8Array> {
  check(input.channels === 1 || input.channels === 3, `input channels: expected 1 or 3, got ${input.channels}`);
  const header = await readHeader(file);
  const pipeline = input.resize === null ? nativePipeline(file, header, input) : resizePipeline(file, header, input.resize, input.size);
  const colour = pipeline.toColourspace(input.channels === 1 ? "b-w" : "srgb");
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await colour.raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new P2vitError(`${file}: cannot decode: ${(err as Error).message}`);
  }
  check(
    raw.info.width === input.size && raw.info.height === input.size && raw.info.channels === input.channels,
    `${file}: decoded to ${describe(raw.info)}, expected ${describe({ width: input.size, height: input.size, channels: input.channels })}`,
  );
  return interleavedToPlanar(raw.data, input.channels, input.size * input.size);
}

interface Header {
  width: number;
  height: number;
  channels: number;
}

async function readHeader(file: string): Promise<Header> {
  let meta: Metadata;
  try {
    meta = await sharp(file).metadata();
  } catch (err) {
    throw new P2vitError(`${file}: not a readable image (expected JPEG or PNG): ${(err as Error).message}`);
  }
  check(meta.width !== undefined && meta.height !== undefined && meta.channels !== undefined, `${file}: the image header gives no size or channel count`);
  return { width: meta.width, height: meta.height, channels: meta.channels };
}

function describe(h: Header): string {
  const kind = h.channels === 1 ? "grayscale" : h.channels === 2 ? "grayscale + alpha" : h.channels === 3 ? "RGB" : h.channels === 4 ? "RGBA" : "";
  return `${h.width}×${h.height} with ${h.channels} channel${h.channels === 1 ? "" : "s"}${kind ? ` (${kind})` : ""}`;
}

/**
 * The model's native geometry: a checkpoint trained on 28×28 grayscale or 32×32 RGB images is only
 * meaningful on exactly such images, so anything else is refused rather than silently converted.
 */
function nativePipeline(file: string, header: Header, input: InputSpec): Sharp {
  check(
    header.width === input.size && header.height === input.size && header.channels === input.channels,
    () =>
      `${file}: image is ${describe(header)}, but the model takes ${describe({ width: input.size, height: input.size, channels: input.channels })} ` +
      `and does not resize`,
  );
  return sharp(file);
}

/**
 * timm's evaluation transform (Resize(shortSide, bicubic) then CenterCrop(size)): alpha dropped and
 * grayscale expanded, as PIL's convert("RGB") does, so any JPEG or PNG is accepted.
 */
function resizePipeline(file: string, header: Header, resize: ResizeSpec, size: number): Sharp {
  const [width, height] = resizedDimensions(header.width, header.height, resize.shortSide);
  check(width >= size && height >= size, `${file}: resized to ${width}×${height}, smaller than the ${size}×${size} crop`);
  return sharp(file)
    .removeAlpha()
    // fastShrinkOnLoad would let libjpeg downscale by DCT first, which another decoder would not do.
    .resize(width, height, { kernel: "cubic", fit: "fill", fastShrinkOnLoad: false })
    .extract({ left: centerOffset(width, size), top: centerOffset(height, size), width: size, height: size });
}

/** torchvision's Resize(int): the short side becomes `shortSide`, the long side int(shortSide · long / short). */
export function resizedDimensions(width: number, height: number, shortSide: number): [number, number] {
  if (width <= height) return [shortSide, Math.trunc((shortSide * height) / width)];
  return [Math.trunc((shortSide * width) / height), shortSide];
}

/** torchvision's CenterCrop offset: round((full − crop) / 2), Python's round (half to even). */
export function centerOffset(full: number, crop: number): number {
  const half = (full - crop) / 2;
  const floor = Math.floor(half);
  if (half - floor !== 0.5) return Math.round(half);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** HWC (sharp's raw output) to CHW (the layout of normalizeImage and patchify). */
function interleavedToPlanar(data: Buffer, channels: number, plane: number): Uint8Array {
  const out = new Uint8Array(channels * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < channels; c++) out[c * plane + p] = data[p * channels + c];
  }
  return out;
}
