import { describe, expect, it } from "vitest";
import { floatOps } from "../../../src/quant/float/float-ops.js";
import { forwardSwin, relativePositionBiases, shiftMasks, windowOrder } from "../../../src/quant/float/swin.js";
import type { VitOps } from "../../../src/quant/ops.js";
import { elementCount, type Tensor } from "../../../src/quant/safetensors.js";
import { expectedSwinTensorShapes, swinStages, type SwinArchitecture, type SwinCheckpoint } from "../../../src/quant/swin-config.js";
import { gaussian, seededRandom } from "../../../src/util/random.js";

// Literal ports of timm's swin_transformer.py index arithmetic, to check the closed forms against.

/** torch.roll(x, (−shift, −shift)) then window_partition, on a grid of token indices. */
function timmWindowOrder(res: number, window: number, shift: number): number[] {
  const grid = Array.from({ length: res }, (_, r) => Array.from({ length: res }, (_, c) => r * res + c));
  const rolled = grid.map((_, r) => grid[(r + shift) % res].map((_, c) => grid[(r + shift) % res][(c + shift) % res]));
  const out: number[] = [];
  for (let wr = 0; wr < res / window; wr++) {
    for (let wc = 0; wc < res / window; wc++) {
      for (let i = 0; i < window; i++) for (let j = 0; j < window; j++) out.push(rolled[wr * window + i][wc * window + j]);
    }
  }
  return out;
}

/** get_attn_mask: img_mask labelled by slices (0, −window), (−window, −shift), (−shift, None). */
function timmMasks(res: number, window: number, shift: number): number[][] {
  const img: number[][] = Array.from({ length: res }, () => new Array(res).fill(0));
  const slices = [[0, res - window], [res - window, res - shift], [res - shift, res]];
  let cnt = 0;
  for (const [h0, h1] of slices) {
    for (const [w0, w1] of slices) {
      for (let r = h0; r < h1; r++) for (let c = w0; c < w1; c++) img[r][c] = cnt;
      cnt++;
    }
  }
  const masks: number[][] = [];
  for (let wr = 0; wr < res / window; wr++) {
    for (let wc = 0; wc < res / window; wc++) {
      const labels: number[] = [];
      for (let i = 0; i < window; i++) for (let j = 0; j < window; j++) labels.push(img[wr * window + i][wc * window + j]);
      masks.push(labels.flatMap((a) => labels.map((b) => (a - b !== 0 ? -100 : 0))));
    }
  }
  return masks;
}

/** get_relative_position_index. */
function timmRelativeIndex(window: number): number[] {
  const coords: [number, number][] = [];
  for (let i = 0; i < window; i++) for (let j = 0; j < window; j++) coords.push([i, j]);
  return coords.flatMap(([ri, ci]) => coords.map(([rj, cj]) => (ri - rj + window - 1) * (2 * window - 1) + (ci - cj + window - 1)));
}

describe("Swin index arithmetic", () => {
  it.each([[14, 7, 0], [14, 7, 3], [8, 4, 2], [56, 7, 3]])("the shifted window order at res %i, window %i, shift %i is timm's", (res, window, shift) => {
    expect(Array.from(windowOrder(res, window, shift))).toEqual(timmWindowOrder(res, window, shift));
  });

  it.each([[14, 7, 3], [28, 7, 3], [8, 4, 2]])("the shift masks at res %i, window %i, shift %i are timm's", (res, window, shift) => {
    expect(shiftMasks(res, window, shift).map((m) => Array.from(m))).toEqual(timmMasks(res, window, shift));
  });

  it("takes each head's bias from relative_position_bias_table by timm's relative_position_index", () => {
    const window = 3;
    const heads = 2;
    const table = Float32Array.from({ length: (2 * window - 1) ** 2 * heads }, (_, i) => i);
    const biases = relativePositionBiases(table, window, heads);
    const index = timmRelativeIndex(window);
    for (let h = 0; h < heads; h++) expect(Array.from(biases[h])).toEqual(index.map((row) => table[row * heads + h]));
  });
});

function randomSwin(arch: SwinArchitecture, seed = 2): SwinCheckpoint {
  const rng = seededRandom(seed);
  const tensors = new Map<string, Tensor>();
  for (const [name, shape] of expectedSwinTensorShapes(arch)) {
    const std = name.endsWith(".weight") && shape.length > 1 ? 1 / Math.sqrt(elementCount(shape.slice(1))) : 0.2;
    tensors.set(name, { name, shape, data: Float32Array.from({ length: elementCount(shape) }, () => std * gaussian(rng) + (/norm\.weight$|norm\d\.weight$/.test(name) ? 1 : 0)) });
  }
  return { dir: "<test>", config: { name: "tiny-swin", architecture: arch, preprocess: { scale: "x/255", mean: [0, 0, 0], std: [1, 1, 1] } }, tensors };
}

// 56 / 4 = 14 tokens a side: stage 0 has 2 × 2 windows of 7 (shifted in block 1), stage 1 one window.
const TINY: SwinArchitecture = {
  family: "swin", img_size: 56, in_chans: 3, patch_size: 4, embed_dim: 16, depths: [2, 2], num_heads: [2, 4],
  window_size: 7, mlp_ratio: 4, num_classes: 5, qkv_bias: true, norm_eps: 1e-5, act: "gelu",
};

describe("forwardSwin", () => {
  const ck = randomSwin(TINY);
  const rng = seededRandom(9);
  const img = Float32Array.from({ length: 3 * 56 * 56 }, () => gaussian(rng));

  it("derives timm's stage geometry", () => {
    expect(swinStages(TINY).map((s) => [s.resolution, s.dim, s.window, s.shift])).toEqual([[14, 16, 7, 3], [7, 32, 7, 0]]);
  });

  it("gives finite, deterministic logits", () => {
    const logits = forwardSwin(ck, img, floatOps);
    expect(logits.length).toBe(5);
    expect(logits.every(Number.isFinite)).toBe(true);
    expect(forwardSwin(ck, img, floatOps)).toEqual(logits);
  });

  it("adds bias and mask per window and head, and merges patches, under timm names", () => {
    const calls: string[] = [];
    const recording = Object.fromEntries(
      Object.entries(floatOps).map(([op, f]) => [op, (name: string, ...rest: unknown[]) => (calls.push(`${op} ${name}`), (f as (...a: unknown[]) => unknown)(name, ...rest))]),
    ) as unknown as VitOps;
    forwardSwin(ck, img, recording);
    const count = (call: string) => calls.filter((c) => c === call).length;
    expect(count("add layers.0.blocks.0.attn.head1.bias")).toBe(4); // 4 windows
    expect(count("add layers.0.blocks.0.attn.head1.mask")).toBe(0); // even blocks are not shifted
    expect(count("add layers.0.blocks.1.attn.head1.mask")).toBe(4);
    expect(count("add layers.1.blocks.1.attn.head3.mask")).toBe(0); // one window covers the stage: no shift
    expect(calls).toContain("layerNorm layers.1.downsample.norm");
    expect(calls).toContain("linear layers.1.downsample.reduction");
    expect(calls.slice(0, 2)).toEqual(["linear patch_embed.proj", "layerNorm patch_embed.norm"]);
    expect(calls.slice(-2)).toEqual(["layerNorm norm", "linear head.fc"]);
  });

  it("makes shifted windows matter: the masked block differs from an unmasked one", () => {
    const noMask = { ...floatOps, add: (name: string, a: Float32Array, b: Float32Array) => (name.endsWith(".mask") ? a : floatOps.add(name, a, b)) };
    const a = forwardSwin(ck, img, floatOps);
    const b = forwardSwin(ck, img, noMask);
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeGreaterThan(1e-4);
  });
});
