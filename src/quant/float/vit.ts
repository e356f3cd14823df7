/**
 * The forward pass of a timm-style VisionTransformer (family "vit"), written once against the op
 * contract of ../ops.ts. Every layer is an op call under its timm module name, in execution order, so
 * the same pass is the float reference, the calibration run, the fake-quantized model or the QGraph
 * trace, depending only on the VitOps it is given.
 */
import { check } from "../../util/errors.js";
import { numPatches, numTokens, type Checkpoint, type VitArchitecture } from "../checkpoint.js";
import type { VitOps } from "../ops.js";
import { patchify } from "../preprocess.js";
import { applyLayerNorm, applyLinear, meanRows, tensorData } from "./layers.js";

/**
 * Logits of one image. `image` is the normalized CHW image (preprocess.normalizeImage) of the model's
 * in_chans × img_size × img_size.
 */
export function forwardVit(ckpt: Checkpoint, image: Float32Array, ops: VitOps): Float32Array {
  const arch = ckpt.config.architecture;
  check(arch.family === "vit", `${ckpt.dir}: forwardVit runs family "vit" models, got family ${JSON.stringify(arch.family)}`);
  const D = arch.embed_dim;
  const tokens = numTokens(arch);
  let x = embed(ckpt, image, ops);
  for (let i = 0; i < arch.depth; i++) {
    x = arch.norm_layout === "pre" ? preNormBlock(ckpt, ops, i, x, tokens) : postNormBlock(ckpt, ops, i, x, tokens);
  }
  if (arch.final_norm) x = applyLayerNorm(ops, ckpt, "norm", x, tokens, D, arch.norm_eps);
  let features = pool(arch, ops, x, tokens);
  let width = D;
  if (arch.pre_logits_dim > 0) {
    features = applyLinear(ops, ckpt, "pre_logits.fc", features, 1, D, arch.pre_logits_dim);
    // checkpoint.ts guarantees an activation whenever pre_logits_dim > 0.
    features = ops.activation("pre_logits.act", arch.pre_logits_act!, features);
    width = arch.pre_logits_dim;
  }
  return applyLinear(ops, ckpt, "head", features, 1, width, arch.num_classes);
}

/** Patch embedding, class token and position embedding: tokens × D. */
function embed(ckpt: Checkpoint, image: Float32Array, ops: VitOps): Float32Array {
  const arch = ckpt.config.architecture;
  const D = arch.embed_dim;
  const patches = numPatches(arch);
  const k = arch.in_chans * arch.patch_size * arch.patch_size;
  const rows = patchify(image, arch.in_chans, arch.img_size, arch.patch_size);
  // The conv weight [D, C, p, p] flattened is the D × (C·p·p) matrix of a Linear on patchify's rows.
  const patchTokens = applyLinear(ops, ckpt, "patch_embed.proj", rows, patches, k, D);
  const x = arch.class_token ? ops.prependRow("cls_token", tensorData(ckpt, "cls_token"), patchTokens, patches, D) : patchTokens;
  return ops.add("pos_embed", x, tensorData(ckpt, "pos_embed"));
}

/** timm Block: x + attn(norm1(x)), then x + mlp(norm2(x)). */
function preNormBlock(ckpt: Checkpoint, ops: VitOps, i: number, x: Float32Array, tokens: number): Float32Array {
  const arch = ckpt.config.architecture;
  const D = arch.embed_dim;
  const b = `blocks.${i}`;
  const attended = attention(ckpt, ops, i, applyLayerNorm(ops, ckpt, `${b}.norm1`, x, tokens, D, arch.norm_eps), tokens);
  const y = ops.add(`${b}.residual1`, x, attended);
  return ops.add(`${b}.residual2`, y, mlp(ckpt, ops, i, applyLayerNorm(ops, ckpt, `${b}.norm2`, y, tokens, D, arch.norm_eps), tokens));
}

/** torch nn.TransformerEncoderLayer (norm_first=False): norm1(x + attn(x)), then norm2(x + mlp(x)). */
function postNormBlock(ckpt: Checkpoint, ops: VitOps, i: number, x: Float32Array, tokens: number): Float32Array {
  const arch = ckpt.config.architecture;
  const D = arch.embed_dim;
  const b = `blocks.${i}`;
  const attended = ops.add(`${b}.residual1`, x, attention(ckpt, ops, i, x, tokens));
  const y = applyLayerNorm(ops, ckpt, `${b}.norm1`, attended, tokens, D, arch.norm_eps);
  const transformed = ops.add(`${b}.residual2`, y, mlp(ckpt, ops, i, y, tokens));
  return applyLayerNorm(ops, ckpt, `${b}.norm2`, transformed, tokens, D, arch.norm_eps);
}

/** Multi-head self-attention of block i on tokens × D input, with its output projection. */
function attention(ckpt: Checkpoint, ops: VitOps, i: number, x: Float32Array, tokens: number): Float32Array {
  const arch = ckpt.config.architecture;
  const D = arch.embed_dim;
  const heads = arch.num_heads;
  const headDim = D / heads;
  const a = `blocks.${i}.attn`;
  const qkv = applyLinear(ops, ckpt, `${a}.qkv`, x, tokens, D, 3 * D);
  const outputs: Float32Array[] = [];
  for (let h = 0; h < heads; h++) {
    const name = `${a}.head${h}`;
    // timm's qkv row is [Q | K | V], each D wide and split by head
    const [q, k, v] = ["q", "k", "v"].map((part, p) => ops.sliceCols(`${name}.${part}`, qkv, tokens, 3 * D, p * D + h * headDim, headDim));
    const scores = ops.attentionScores(name, q, k, tokens, headDim, arch.attn_scale);
    const probs = ops.softmax(name, scores, tokens, tokens);
    outputs.push(ops.attentionValues(name, probs, v, tokens, headDim));
  }
  const merged = ops.concatCols(`${a}.heads`, outputs, tokens, outputs.map(() => headDim));
  return applyLinear(ops, ckpt, `${a}.proj`, merged, tokens, D, D);
}

/** fc1 → activation → fc2 of block i. */
function mlp(ckpt: Checkpoint, ops: VitOps, i: number, x: Float32Array, tokens: number): Float32Array {
  const arch = ckpt.config.architecture;
  const m = `blocks.${i}.mlp`;
  const hidden = applyLinear(ops, ckpt, `${m}.fc1`, x, tokens, arch.embed_dim, arch.mlp_hidden_dim);
  const activated = ops.activation(`${m}.act`, arch.act, hidden);
  return applyLinear(ops, ckpt, `${m}.fc2`, activated, tokens, arch.mlp_hidden_dim, arch.embed_dim);
}

/**
 * The feature vector the head sees: the class token's row (an op, so tracing follows it), or the
 * mean of the patch tokens (float only: the integer graph has no mean yet, and tracing refuses it).
 */
function pool(arch: VitArchitecture, ops: VitOps, x: Float32Array, tokens: number): Float32Array {
  const D = arch.embed_dim;
  if (arch.pool === "token") return ops.selectRow("pool", x, tokens, D, 0);
  const first = arch.class_token ? 1 : 0;
  return meanRows(x, first, tokens, D);
}
