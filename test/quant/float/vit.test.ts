import { describe, expect, it } from "vitest";
import { expectedTensorShapes, numTokens, type Checkpoint, type VitArchitecture } from "../../../src/quant/checkpoint.js";
import { floatOps } from "../../../src/quant/float/float-ops.js";
import { forwardVit } from "../../../src/quant/float/vit.js";
import type { VitOps } from "../../../src/quant/ops.js";
import { elementCount, type Tensor } from "../../../src/quant/safetensors.js";
import { SYNTHETIC_ARCHITECTURE, syntheticCheckpoint } from "../../../src/quant/synthetic.js";
import { gaussian, seededRandom } from "../../../src/util/random.js";

/** A checkpoint of `arch` with seeded weights of O(1) spread (LayerNorm affine parameters random too). */
function randomCheckpoint(arch: VitArchitecture, seed = 3): Checkpoint {
  const rng = seededRandom(seed);
  const tensors = new Map<string, Tensor>();
  for (const [name, shape] of expectedTensorShapes(arch)) {
    const std = name.endsWith(".weight") && shape.length > 1 ? 1 / Math.sqrt(elementCount(shape.slice(1))) : 0.3;
    const data = Float32Array.from({ length: elementCount(shape) }, () => std * gaussian(rng) + (/norm\d?\.weight$/.test(name) ? 1 : 0));
    tensors.set(name, { name, shape, data });
  }
  return { dir: "<test>", config: { name: "test", architecture: arch, preprocess: { scale: "x/255", mean: [0], std: [1] } }, tensors };
}

function image(arch: VitArchitecture, seed = 5): Float32Array {
  const rng = seededRandom(seed);
  return Float32Array.from({ length: arch.in_chans * arch.img_size ** 2 }, () => gaussian(rng));
}

// ------------------------------------------------------------------------------------------------
// An independent reference: the ViT written from the definitions with 2-D arrays and double precision.

type M = number[][];
const t = (ck: Checkpoint, name: string) => Array.from(ck.tensors.get(name)!.data);
const linearRef = (x: M, w: number[], b: number[] | null, outF: number): M =>
  x.map((row) => Array.from({ length: outF }, (_, o) => row.reduce((s, v, k) => s + v * w[o * row.length + k], b ? b[o] : 0)));
const lnRef = (x: M, g: number[], b: number[], eps: number): M =>
  x.map((row) => {
    const mean = row.reduce((s, v) => s + v, 0) / row.length;
    const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / row.length;
    return row.map((v, c) => ((v - mean) / Math.sqrt(variance + eps)) * g[c] + b[c]);
  });
const addRef = (a: M, b: M): M => a.map((row, i) => row.map((v, j) => v + b[i][j]));
function erfRef(x: number): number {
  // Simpson's rule on 2/√π · e^(−t²) over [0, x], fine enough for 1e-9.
  const n = 2000;
  const h = x / n;
  let s = 1 + Math.exp(-x * x);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2));
  return ((2 / Math.sqrt(Math.PI)) * s * h) / 3;
}
const actRef = (kind: string) => (v: number) => (kind === "relu" ? Math.max(0, v) : 0.5 * v * (1 + erfRef(v / Math.SQRT2)));

function referenceForward(ck: Checkpoint, img: Float32Array): number[] {
  const a = ck.config.architecture;
  const D = a.embed_dim;
  const p = a.patch_size;
  const g = a.img_size / p;
  const patches: M = [];
  for (let gy = 0; gy < g; gy++) {
    for (let gx = 0; gx < g; gx++) {
      const row: number[] = [];
      for (let c = 0; c < a.in_chans; c++) for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) row.push(img[(c * a.img_size + gy * p + i) * a.img_size + gx * p + j]);
      patches.push(row);
    }
  }
  let x = linearRef(patches, t(ck, "patch_embed.proj.weight"), t(ck, "patch_embed.proj.bias"), D);
  if (a.class_token) x = [t(ck, "cls_token"), ...x];
  const pos = t(ck, "pos_embed");
  x = x.map((row, i) => row.map((v, c) => v + pos[i * D + c]));
  const hd = D / a.num_heads;
  for (let b = 0; b < a.depth; b++) {
    const pre = (name: string, y: M) => lnRef(y, t(ck, `blocks.${b}.${name}.weight`), t(ck, `blocks.${b}.${name}.bias`), a.norm_eps);
    const lin = (name: string, y: M, outF: number) => linearRef(y, t(ck, `blocks.${b}.${name}.weight`), ck.tensors.has(`blocks.${b}.${name}.bias`) ? t(ck, `blocks.${b}.${name}.bias`) : null, outF);
    const attn = (y: M): M => {
      const qkv = lin("attn.qkv", y, 3 * D);
      const merged: M = y.map(() => new Array(D).fill(0));
      for (let h = 0; h < a.num_heads; h++) {
        const part = (which: number) => qkv.map((row) => row.slice(which * D + h * hd, which * D + (h + 1) * hd));
        const [q, k, v] = [part(0), part(1), part(2)];
        q.forEach((qi, i) => {
          const s = k.map((kj) => a.attn_scale * qi.reduce((acc, val, d) => acc + val * kj[d], 0));
          const m = Math.max(...s);
          const e = s.map((z) => Math.exp(z - m));
          const sum = e.reduce((u, w) => u + w, 0);
          for (let d = 0; d < hd; d++) merged[i][h * hd + d] = e.reduce((acc, w, j) => acc + (w / sum) * v[j][d], 0);
        });
      }
      return lin("attn.proj", merged, D);
    };
    const mlp = (y: M): M => lin("mlp.fc2", lin("mlp.fc1", y, a.mlp_hidden_dim).map((r) => r.map(actRef(a.act))), D);
    if (a.norm_layout === "pre") {
      x = addRef(x, attn(pre("norm1", x)));
      x = addRef(x, mlp(pre("norm2", x)));
    } else {
      x = pre("norm1", addRef(x, attn(x)));
      x = pre("norm2", addRef(x, mlp(x)));
    }
  }
  if (a.final_norm) x = lnRef(x, t(ck, "norm.weight"), t(ck, "norm.bias"), a.norm_eps);
  let f = a.pool === "token" ? x[0] : x.slice(a.class_token ? 1 : 0).reduce((s, r) => s.map((v, c) => v + r[c] / (x.length - (a.class_token ? 1 : 0))), new Array(D).fill(0));
  let width = D;
  if (a.pre_logits_dim > 0) {
    f = linearRef([f], t(ck, "pre_logits.fc.weight"), t(ck, "pre_logits.fc.bias"), a.pre_logits_dim)[0].map(actRef(a.pre_logits_act!));
    width = a.pre_logits_dim;
  }
  expect(f.length).toBe(width);
  return linearRef([f], t(ck, "head.weight"), t(ck, "head.bias"), a.num_classes)[0];
}

const VARIANTS: [string, Partial<VitArchitecture>][] = [
  ["pre-norm, GELU, class token, final norm (timm / DeiT)", {}],
  ["post-norm, ReLU, qkv bias, final norm (vit-cifar10's layout)", { norm_layout: "post", act: "relu" }],
  ["pre-norm without qkv bias or final norm, MLP pre-logits head (vit4mnist's layout)", { qkv_bias: false, final_norm: false, pre_logits_dim: 24, pre_logits_act: "gelu" }],
  ["no class token, average pooling", { class_token: false, pool: "avg" }],
];

describe("forwardVit", () => {
  it.each(VARIANTS)("matches an independent reference: %s", (_name, change) => {
    const arch: VitArchitecture = { ...SYNTHETIC_ARCHITECTURE, ...change };
    const ck = randomCheckpoint(arch);
    const img = image(arch);
    const logits = forwardVit(ck, img, floatOps);
    const expected = referenceForward(ck, img);
    expect(logits.length).toBe(arch.num_classes);
    expected.forEach((v, i) => expect(Math.abs(logits[i] - v)).toBeLessThan(1e-4 * (1 + Math.abs(v))));
  });

  it("is deterministic on the built-in synthetic model", () => {
    const ck = syntheticCheckpoint();
    const img = image(ck.config.architecture);
    expect(forwardVit(ck, img, floatOps)).toEqual(forwardVit(ck, img, floatOps));
  });

  it("calls the ops in execution order under timm names", () => {
    const ck = syntheticCheckpoint();
    const calls: string[] = [];
    const recording = Object.fromEntries(
      Object.entries(floatOps).map(([op, f]) => [op, (name: string, ...rest: unknown[]) => (calls.push(`${op} ${name}`), (f as (...a: unknown[]) => unknown)(name, ...rest))]),
    ) as unknown as VitOps;
    forwardVit(ck, image(ck.config.architecture), recording);
    const firstBlock = calls.slice(0, calls.indexOf("layerNorm blocks.1.norm1"));
    expect(firstBlock.slice(0, 6)).toEqual([
      "linear patch_embed.proj", "prependRow cls_token", "add pos_embed", "layerNorm blocks.0.norm1", "linear blocks.0.attn.qkv",
      "sliceCols blocks.0.attn.head0.q",
    ]);
    expect(firstBlock).toContain("attentionScores blocks.0.attn.head3");
    expect(firstBlock.slice(-8)).toEqual([
      "concatCols blocks.0.attn.heads", "linear blocks.0.attn.proj", "add blocks.0.residual1", "layerNorm blocks.0.norm2",
      "linear blocks.0.mlp.fc1", "activation blocks.0.mlp.act", "linear blocks.0.mlp.fc2", "add blocks.0.residual2",
    ]);
    expect(calls.slice(-3)).toEqual(["layerNorm norm", "selectRow pool", "linear head"]);
    expect(numTokens(ck.config.architecture)).toBe(17);
  });
});
