/**
 * The forward pass of timm's SwinTransformer against the op contract of ../ops.ts: patch embedding,
 * stages of (shifted) window attention with relative position bias, patch merging between stages,
 * final norm, average pooling and the head. Op names are timm module paths
 * ("layers.2.blocks.3.attn.qkv"); each window's attention runs under its head's name, so a head's
 * statistics gather over all its windows, as they gather over images.
 *
 * Token rows are kept in raster order (row-major over the stage's grid). The cyclic shift and window
 * partition are one permutation of rows, applied before attention and undone after; like the patch
 * merging gather and the average pooling, it moves data without arithmetic and is done here directly.
 */
import { check } from "../../util/errors.js";
import type { VitOps } from "../ops.js";
import { patchify } from "../preprocess.js";
import { swinStages, type SwinCheckpoint, type SwinStage } from "../swin-config.js";
import { applyLayerNorm, applyLinear, meanRows, tensorData } from "./layers.js";

/** timm's value for masked attention scores in shifted windows: exp(−100) vanishes beside any real score. */
const MASKED = -100;

/** Logits of one image; `image` is the normalized CHW image of in_chans × img_size × img_size. */
export function forwardSwin(ckpt: SwinCheckpoint, image: Float32Array, ops: VitOps): Float32Array {
  const arch = ckpt.config.architecture;
  check(arch.family === "swin", `${ckpt.dir}: forwardSwin runs family "swin" models, got family ${JSON.stringify(arch.family)}`);
  const stages = swinStages(arch);
  const grid = stages[0].resolution;
  const k = arch.in_chans * arch.patch_size * arch.patch_size;
  let x = applyLinear(ops, ckpt, "patch_embed.proj", patchify(image, arch.in_chans, arch.img_size, arch.patch_size), grid * grid, k, arch.embed_dim);
  x = applyLayerNorm(ops, ckpt, "patch_embed.norm", x, grid * grid, arch.embed_dim, arch.norm_eps);
  stages.forEach((stage, i) => {
    if (i > 0) x = patchMerging(ckpt, ops, i, x, stages[i - 1]);
    for (let j = 0; j < stage.depth; j++) x = swinBlock(ckpt, ops, i, j, x, stage);
  });
  const last = stages[stages.length - 1];
  const tokens = last.resolution ** 2;
  x = applyLayerNorm(ops, ckpt, "norm", x, tokens, last.dim, arch.norm_eps);
  return applyLinear(ops, ckpt, "head.fc", meanRows(x, 0, tokens, last.dim), 1, last.dim, arch.num_classes);
}

/**
 * timm PatchMerging at the start of stage i: each 2 × 2 group of tokens becomes one token of 4C
 * channels, in timm's order (row 2r, col 2c), (2r+1, 2c), (2r, 2c+1), (2r+1, 2c+1); then LayerNorm
 * and a bias-free Linear 4C → 2C.
 */
function patchMerging(ckpt: SwinCheckpoint, ops: VitOps, i: number, x: Float32Array, before: SwinStage): Float32Array {
  const res = before.resolution;
  const C = before.dim;
  const half = res / 2;
  const merged = new Float32Array(half * half * 4 * C);
  const offsets: [number, number][] = [[0, 0], [1, 0], [0, 1], [1, 1]];
  for (let r = 0; r < half; r++) {
    for (let c = 0; c < half; c++) {
      const to = (r * half + c) * 4 * C;
      offsets.forEach(([dr, dc], q) => {
        const from = ((2 * r + dr) * res + 2 * c + dc) * C;
        merged.set(x.subarray(from, from + C), to + q * C);
      });
    }
  }
  const d = `layers.${i}.downsample`;
  const normed = applyLayerNorm(ops, ckpt, `${d}.norm`, merged, half * half, 4 * C, ckpt.config.architecture.norm_eps);
  return applyLinear(ops, ckpt, `${d}.reduction`, normed, half * half, 4 * C, 2 * C);
}

/** timm SwinTransformerBlock: x + attn(norm1(x)) over (shifted) windows, then x + mlp(norm2(x)). */
function swinBlock(ckpt: SwinCheckpoint, ops: VitOps, i: number, j: number, x: Float32Array, stage: SwinStage): Float32Array {
  const eps = ckpt.config.architecture.norm_eps;
  const b = `layers.${i}.blocks.${j}`;
  const tokens = stage.resolution ** 2;
  const C = stage.dim;
  const shift = j % 2 === 1 ? stage.shift : 0;
  const attended = windowAttention(ckpt, ops, b, applyLayerNorm(ops, ckpt, `${b}.norm1`, x, tokens, C, eps), stage, shift);
  const y = ops.add(`${b}.residual1`, x, attended);
  const hidden = applyLinear(ops, ckpt, `${b}.mlp.fc1`, applyLayerNorm(ops, ckpt, `${b}.norm2`, y, tokens, C, eps), tokens, C, stage.mlpHidden);
  const mlp = applyLinear(ops, ckpt, `${b}.mlp.fc2`, ops.activation(`${b}.mlp.act`, "gelu", hidden), tokens, stage.mlpHidden, C);
  return ops.add(`${b}.residual2`, y, mlp);
}

/**
 * Window multi-head self-attention of block `b` on raster-ordered tokens: shift and partition, qkv,
 * per window and head scale · Q·Kᵀ + relative position bias (+ shift mask), softmax, · V; heads
 * concatenated, projection, and the tokens put back in raster order.
 */
function windowAttention(ckpt: SwinCheckpoint, ops: VitOps, b: string, x: Float32Array, stage: SwinStage, shift: number): Float32Array {
  const C = stage.dim;
  const N = stage.window ** 2;
  const heads = stage.heads;
  const headDim = C / heads;
  const tokens = stage.resolution ** 2;
  const order = windowOrder(stage.resolution, stage.window, shift);
  const windows = tokens / N;
  const qkv = applyLinear(ops, ckpt, `${b}.attn.qkv`, gatherRows(x, order, C), tokens, C, 3 * C);
  const biases = relativePositionBiases(tensorData(ckpt, `${b}.attn.relative_position_bias_table`), stage.window, heads);
  const masks = shift > 0 ? shiftMasks(stage.resolution, stage.window, shift) : null;
  const out = new Float32Array(tokens * C);
  for (let w = 0; w < windows; w++) {
    const rows = qkv.subarray(w * N * 3 * C, (w + 1) * N * 3 * C);
    const outputs: Float32Array[] = [];
    for (let h = 0; h < heads; h++) {
      const name = `${b}.attn.head${h}`;
      // timm's qkv row is [Q | K | V], each C wide and split by head
      const [q, k, v] = ["q", "k", "v"].map((part, p) => ops.sliceCols(`${name}.${part}`, rows, N, 3 * C, p * C + h * headDim, headDim));
      let scores = ops.attentionScores(name, q, k, N, headDim, headDim ** -0.5);
      scores = ops.add(`${name}.bias`, scores, biases[h]);
      if (masks !== null) scores = ops.add(`${name}.mask`, scores, masks[w]);
      outputs.push(ops.attentionValues(name, ops.softmax(name, scores, N, N), v, N, headDim));
    }
    out.set(ops.concatCols(`${b}.attn.heads`, outputs, N, outputs.map(() => headDim)), w * N * C);
  }
  const projected = applyLinear(ops, ckpt, `${b}.attn.proj`, out, tokens, C, C);
  return scatterRows(projected, order, C);
}

/**
 * The row permutation of a cyclic shift by −shift (torch.roll) followed by window partition: entry
 * w·N + t is the raster index of the token that lands at position t (raster within the window) of
 * window w (raster over windows). After the roll, position (r, c) holds the token from
 * ((r + shift) mod res, (c + shift) mod res).
 */
export function windowOrder(res: number, window: number, shift: number): Int32Array {
  const perSide = res / window;
  const order = new Int32Array(res * res);
  let n = 0;
  for (let wr = 0; wr < perSide; wr++) {
    for (let wc = 0; wc < perSide; wc++) {
      for (let tr = 0; tr < window; tr++) {
        for (let tc = 0; tc < window; tc++) {
          const r = (wr * window + tr + shift) % res;
          const c = (wc * window + tc + shift) % res;
          order[n++] = r * res + c;
        }
      }
    }
  }
  return order;
}

/** Rows order[0], order[1], … of a matrix with `cols` columns. */
function gatherRows(x: Float32Array, order: Int32Array, cols: number): Float32Array {
  const out = new Float32Array(order.length * cols);
  order.forEach((from, to) => out.set(x.subarray(from * cols, (from + 1) * cols), to * cols));
  return out;
}

/** The inverse of gatherRows: row t goes back to row order[t]. */
function scatterRows(x: Float32Array, order: Int32Array, cols: number): Float32Array {
  const out = new Float32Array(order.length * cols);
  order.forEach((to, from) => out.set(x.subarray(from * cols, (from + 1) * cols), to * cols));
  return out;
}

/**
 * Each head's N × N relative position bias (N = window²): entry (i, j) is table row
 * (ri − rj + window − 1) · (2·window − 1) + (ci − cj + window − 1), column h, for tokens i = (ri, ci)
 * and j = (rj, cj) of the window — timm's relative_position_index.
 */
export function relativePositionBiases(table: Float32Array, window: number, heads: number): Float32Array[] {
  const N = window * window;
  const span = 2 * window - 1;
  const biases = Array.from({ length: heads }, () => new Float32Array(N * N));
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      const row = (Math.floor(i / window) - Math.floor(j / window) + window - 1) * span + ((i % window) - (j % window) + window - 1);
      for (let h = 0; h < heads; h++) biases[h][i * N + j] = table[row * heads + h];
    }
  }
  return biases;
}

/**
 * The attention mask of each window after a cyclic shift: tokens that came from different regions of
 * the unshifted image (the wrapped-around strips) must not attend to each other. timm labels the
 * shifted grid in 3 × 3 regions, split at res − window and res − shift along each axis; a pair with
 * different labels gets MASKED, a pair with equal labels 0.
 */
export function shiftMasks(res: number, window: number, shift: number): Float32Array[] {
  const region = (v: number) => (v < res - window ? 0 : v < res - shift ? 1 : 2);
  const perSide = res / window;
  const N = window * window;
  const masks: Float32Array[] = [];
  for (let wr = 0; wr < perSide; wr++) {
    for (let wc = 0; wc < perSide; wc++) {
      const labels = new Int32Array(N);
      for (let t = 0; t < N; t++) labels[t] = 3 * region(wr * window + Math.floor(t / window)) + region(wc * window + (t % window));
      const mask = new Float32Array(N * N);
      for (let i = 0; i < N; i++) {
        for (let j = 0; j < N; j++) mask[i * N + j] = labels[i] === labels[j] ? 0 : MASKED;
      }
      masks.push(mask);
    }
  }
  return masks;
}
