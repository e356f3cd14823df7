/**
 * The built-in default model and images: a small ViT with seeded random weights and seeded structured
 * images, so the demo and the tests run on machines without any downloaded data.
 */
import { check } from "../util/errors.js";
import { gaussian, seededRandom } from "../util/random.js";
import { expectedTensorShapes, validateTensors, type Checkpoint, type ModelConfig, type VitArchitecture } from "./checkpoint.js";
import type { ImageSet } from "./data/mnist.js";
import { elementCount, type Tensor } from "./safetensors.js";

export const SYNTHETIC_MODEL_NAME = "synthetic-vit";
export const SYNTHETIC_DIR = `<built-in:${SYNTHETIC_MODEL_NAME}>`;

const EMBED_DIM = 32;
const NUM_HEADS = 4;

export const SYNTHETIC_ARCHITECTURE: Readonly<VitArchitecture> = {
  family: "vit",
  img_size: 16,
  in_chans: 1,
  patch_size: 4,
  embed_dim: EMBED_DIM,
  depth: 2,
  num_heads: NUM_HEADS,
  mlp_hidden_dim: 64,
  num_classes: 10,
  qkv_bias: true,
  norm_layout: "pre",
  act: "gelu",
  norm_eps: 1e-6,
  attn_scale: (EMBED_DIM / NUM_HEADS) ** -0.5,
  class_token: true,
  pool: "token",
  final_norm: true,
  pre_logits_dim: 0,
  pre_logits_act: null,
};

/** Standard deviation of the biases, as timm's init. */
const SMALL_INIT_STD = 0.02;
/**
 * Standard deviation of the class token and position embedding: O(1) like the patch tokens, as in a
 * trained ViT. At timm's init of 0.02 the class token row is all but zero, its LayerNorm amplifies
 * nothing but rounding noise, and every figure measured through the head would be about that noise.
 */
const TOKEN_INIT_STD = 0.5;

/** The synthetic model's config.json contents. */
export function syntheticConfig(seed = 1): ModelConfig {
  return {
    name: SYNTHETIC_MODEL_NAME,
    source: `seeded random weights (seed ${seed})`,
    architecture: { ...SYNTHETIC_ARCHITECTURE },
    preprocess: { scale: "x/255", mean: [0.5], std: [0.25] },
  };
}

/** A small ViT with weights drawn from a PRNG seeded with `seed`: the same seed gives the same model. */
export function syntheticCheckpoint(seed = 1): Checkpoint {
  checkSeed(seed);
  const config = syntheticConfig(seed);
  const rng = seededRandom(seed);
  const tensors = new Map<string, Tensor>();
  for (const [name, shape] of expectedTensorShapes(config.architecture)) {
    tensors.set(name, { name, shape, data: initialValues(name, shape, rng) });
  }
  validateTensors(config.architecture, tensors, SYNTHETIC_DIR);
  return { dir: SYNTHETIC_DIR, config, tensors };
}

function checkSeed(seed: number): void {
  check(Number.isSafeInteger(seed), `seed: expected an integer, got ${seed}`);
}

function isLayerNorm(name: string): boolean {
  return /(^|\.)norm\d?\.(weight|bias)$/.test(name);
}

/**
 * LayerNorms start as the identity (weight 1, bias 0). Matrix weights get std 1/sqrt(fan-in) rather than
 * timm's 0.02, so every layer's output spreads over O(1) like a trained network's, which makes the
 * attention non-uniform and each layer's quantization error visible.
 */
function initialValues(name: string, shape: number[], rng: () => number): Float32Array {
  const data = new Float32Array(elementCount(shape));
  if (isLayerNorm(name)) return name.endsWith(".weight") ? data.fill(1) : data;
  const std = name.endsWith(".weight") ? 1 / Math.sqrt(fanIn(shape)) : name === "cls_token" || name === "pos_embed" ? TOKEN_INIT_STD : SMALL_INIT_STD;
  for (let i = 0; i < data.length; i++) data[i] = std * gaussian(rng);
  return data;
}

/** Inputs per output unit of a weight [out, ...]: a Linear's in_features, a conv's C·kh·kw. */
function fanIn(shape: number[]): number {
  return elementCount(shape.slice(1));
}

/**
 * `count` seeded grayscale images of `size`×`size`, each a faint gradient with pen strokes and a soft
 * blob, so that activations have the sparse, spatially correlated look of real digits rather than
 * white noise. Labels are seeded uniformly in 0..9.
 */
export function syntheticImages(count: number, seed = 1, size = 16): ImageSet {
  check(Number.isSafeInteger(count) && count >= 1, `count: expected a positive integer, got ${count}`);
  check(Number.isSafeInteger(size) && size >= 1, `size: expected a positive integer, got ${size}`);
  checkSeed(seed);
  const rng = seededRandom(seed);
  const pixels = size * size;
  const images = new Uint8Array(count * pixels);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = Math.floor(rng() * 10);
    const canvas = drawImage(size, rng);
    for (let p = 0; p < pixels; p++) images[i * pixels + p] = Math.round(255 * Math.min(1, Math.max(0, canvas[p])));
  }
  return { images, labels, count, rows: size, cols: size };
}

/** Intensities in [0, 1] (before clamping), row-major. */
function drawImage(size: number, rng: () => number): Float32Array {
  const canvas = new Float32Array(size * size);
  addGradient(canvas, size, rng);
  const strokes = 1 + Math.floor(rng() * 3);
  for (let s = 0; s < strokes; s++) addStroke(canvas, size, rng);
  addBlob(canvas, size, rng);
  return canvas;
}

/** A random point inside the central 70% of the image, in pixel units. */
function randomPoint(size: number, rng: () => number): [number, number] {
  return [size * (0.15 + 0.7 * rng()), size * (0.15 + 0.7 * rng())];
}

function addGradient(canvas: Float32Array, size: number, rng: () => number): void {
  const amplitude = 0.2 * rng();
  const angle = 2 * Math.PI * rng();
  const [dx, dy] = [Math.cos(angle), Math.sin(angle)];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const t = ((x + 0.5) / size - 0.5) * dx + ((y + 0.5) / size - 0.5) * dy;
      canvas[y * size + x] += amplitude * (0.5 + t);
    }
  }
}

/** A straight pen stroke with a one-pixel anti-aliased edge; strokes overlap by maximum, as ink does. */
function addStroke(canvas: Float32Array, size: number, rng: () => number): void {
  const [ax, ay] = randomPoint(size, rng);
  const [bx, by] = randomPoint(size, rng);
  const halfWidth = size * (0.04 + 0.05 * rng());
  const ink = 0.7 + 0.3 * rng();
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const d = distanceToSegment(x + 0.5, y + 0.5, ax, ay, bx, by);
      const coverage = Math.min(1, Math.max(0, halfWidth + 0.5 - d));
      const i = y * size + x;
      canvas[i] = Math.max(canvas[i], ink * coverage);
    }
  }
}

function addBlob(canvas: Float32Array, size: number, rng: () => number): void {
  const [cx, cy] = randomPoint(size, rng);
  const sigma = size * (0.06 + 0.1 * rng());
  const peak = 0.3 + 0.5 * rng();
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const r2 = (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2;
      canvas[y * size + x] += peak * Math.exp(-r2 / (2 * sigma * sigma));
    }
  }
}

function distanceToSegment(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const [vx, vy] = [bx - ax, by - ay];
  const lengthSquared = vx * vx + vy * vy;
  const t = lengthSquared === 0 ? 0 : Math.min(1, Math.max(0, ((px - ax) * vx + (py - ay) * vy) / lengthSquared));
  return Math.hypot(px - (ax + t * vx), py - (ay + t * vy));
}
