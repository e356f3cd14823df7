import { describe, expect, test } from "vitest";
import { expectedTensorShapes, patchEmbedding, validateTensors } from "../../src/quant/checkpoint.js";
import { SYNTHETIC_DIR, syntheticCheckpoint, syntheticImages } from "../../src/quant/synthetic.js";
import { gaussian, seededRandom } from "../../src/util/random.js";

describe("seededRandom", () => {
  test("is deterministic, in [0, 1), and roughly uniform", () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 10000 }, () => a());
    expect(Array.from({ length: 10000 }, () => b())).toEqual(xs);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeCloseTo(0.5, 1);
  });

  test("gaussian has mean 0 and standard deviation 1", () => {
    const rng = seededRandom(7);
    const xs = Array.from({ length: 20000 }, () => gaussian(rng));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.sqrt(variance)).toBeCloseTo(1, 1);
    expect(xs.every(Number.isFinite)).toBe(true);
  });
});

describe("syntheticCheckpoint", () => {
  test("passes validation and has the documented architecture", () => {
    const ckpt = syntheticCheckpoint();
    expect(ckpt.dir).toBe(SYNTHETIC_DIR);
    expect(ckpt.config.name).toBe("synthetic-vit");
    expect(ckpt.config.source).toBe("seeded random weights (seed 1)");
    expect(ckpt.config.architecture).toMatchObject({ img_size: 16, patch_size: 4, embed_dim: 32, depth: 2, num_heads: 4, attn_scale: 8 ** -0.5 });
    expect([...ckpt.tensors.keys()]).toEqual([...expectedTensorShapes(ckpt.config.architecture).keys()]);
    expect(() => validateTensors(ckpt.config.architecture, ckpt.tensors, ckpt.dir)).not.toThrow();
  });

  test("is deterministic for a seed and differs for another", () => {
    expect(syntheticCheckpoint(5).tensors).toEqual(syntheticCheckpoint(5).tensors);
    const a = syntheticCheckpoint(1).tensors.get("blocks.0.attn.qkv.weight")!.data;
    const b = syntheticCheckpoint(2).tensors.get("blocks.0.attn.qkv.weight")!.data;
    expect(a).not.toEqual(b);
    expect(syntheticCheckpoint(2).config.source).toBe("seeded random weights (seed 2)");
  });

  test("LayerNorms are the identity and matrix weights scale with 1/sqrt(fan-in)", () => {
    const ckpt = syntheticCheckpoint();
    expect(ckpt.tensors.get("blocks.0.norm1.weight")!.data.every((v) => v === 1)).toBe(true);
    expect(ckpt.tensors.get("norm.bias")!.data.every((v) => v === 0)).toBe(true);
    const std = (d: Float32Array) => Math.sqrt(d.reduce((s, v) => s + v * v, 0) / d.length);
    expect(std(patchEmbedding(ckpt).weight)).toBeCloseTo(1 / 4, 1);
    expect(std(ckpt.tensors.get("blocks.1.mlp.fc2.weight")!.data)).toBeCloseTo(1 / 8, 1);
    expect(std(ckpt.tensors.get("pos_embed")!.data)).toBeCloseTo(0.5, 1);
    expect(std(ckpt.tensors.get("blocks.0.attn.qkv.bias")!.data)).toBeCloseTo(0.02, 2);
  });

  test("refuses a non-integer seed", () => {
    expect(() => syntheticCheckpoint(1.5)).toThrow(/seed: expected an integer, got 1\.5/);
  });
});

describe("syntheticImages", () => {
  test("has the loadMnist shape, labels in 0..9, and is deterministic per seed", () => {
    const set = syntheticImages(50);
    expect(set).toMatchObject({ count: 50, rows: 16, cols: 16 });
    expect(set.images).toHaveLength(50 * 256);
    expect(set.labels.every((l) => l <= 9)).toBe(true);
    expect(new Set(set.labels).size).toBeGreaterThan(5);
    expect(syntheticImages(50)).toEqual(set);
    expect(syntheticImages(50, 2).images).not.toEqual(set.images);
    expect(syntheticImages(2, 1, 28)).toMatchObject({ rows: 28, cols: 28 });
  });

  test("images are structured, not noise: dark background, bright ink, smooth neighbours", () => {
    const { images, count } = syntheticImages(20, 3);
    let dark = 0;
    let bright = 0;
    let jump = 0;
    let pairs = 0;
    for (let i = 0; i < count; i++) {
      for (let y = 0; y < 16; y++) {
        for (let x = 0; x < 16; x++) {
          const v = images[i * 256 + y * 16 + x];
          if (v < 64) dark++;
          if (v > 192) bright++;
          if (x > 0) {
            jump += Math.abs(v - images[i * 256 + y * 16 + x - 1]);
            pairs++;
          }
        }
      }
    }
    const pixels = count * 256;
    expect(dark / pixels).toBeGreaterThan(0.4);
    expect(bright / pixels).toBeGreaterThan(0.03);
    // White noise in [0, 255] would average a jump of 85 between neighbours.
    expect(jump / pairs).toBeLessThan(40);
  });

  test("rejects bad counts and sizes", () => {
    expect(() => syntheticImages(0)).toThrow(/count: expected a positive integer, got 0/);
    expect(() => syntheticImages(2, 1, 2.5)).toThrow(/size: expected a positive integer, got 2\.5/);
  });
});
