import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { expectedTensorShapes, WEIGHTS_FILE, type VitArchitecture } from "../../src/quant/checkpoint.js";
import { loadDataset } from "../../src/quant/data/dataset.js";
import { floatOps } from "../../src/quant/float/float-ops.js";
import { argmax, forwardModel } from "../../src/quant/float/forward.js";
import { loadModel, parameterCount, presetArchitecture, presetName, PRESET_NAMES, randomWeightsNote } from "../../src/quant/presets.js";
import { normalizeImage } from "../../src/quant/preprocess.js";
import { elementCount, writeSafetensors, type Tensor } from "../../src/quant/safetensors.js";
import { SHARED_DATA } from "../paths.js";

const IMAGENET_DIR = join(SHARED_DATA, "imagenet");

function scratch(): string {
  return mkdtempSync(join(tmpdir(), "p2vit-presets-"));
}

describe("presets", () => {
  it("have timm's exact parameter counts", () => {
    const counts = Object.fromEntries(PRESET_NAMES.map((p) => [p, parameterCount(presetArchitecture(p))]));
    expect(counts).toEqual({
      deit_tiny: 5_717_416,
      deit_small: 22_050_664,
      deit_base: 86_567_656,
      vit_base: 86_567_656,
      vit_large: 304_326_632,
      swin_tiny: 28_288_354,
      swin_small: 49_606_258,
      swin_base: 87_768_224,
    });
  });

  it("are found by short name, timm name and tagged timm name", () => {
    expect(presetName("deit_small")).toBe("deit_small");
    expect(presetName("deit_small_patch16_224")).toBe("deit_small");
    expect(presetName("swin_tiny_patch4_window7_224.ms_in1k")).toBe("swin_tiny");
    expect(presetName("resnet50")).toBeUndefined();
  });

  it("refuse an unknown name, listing the presets", () => {
    expect(() => loadModel("deit_huge")).toThrow(/unknown model "deit_huge": expected a model folder \(config.json \+ model.safetensors\) or a preset: deit_tiny, deit_small/);
  });

  it("without weights get seeded random weights, and say so", () => {
    const a = loadModel("deit_tiny");
    expect(a.randomWeights).toBe(true);
    expect(a.source).toBe("seeded random weights (seed 1)");
    expect(randomWeightsNote(a)).toMatch(/^note: deit_tiny has no weights .* accuracy is meaningless/);
    expect(a.input).toEqual({ channels: 3, size: 224, resize: { shortSide: 256, interpolation: "bicubic" } });
    expect(a.preprocess.mean).toEqual([0.485, 0.456, 0.406]);
    const b = loadModel("deit_tiny");
    expect(b.ckpt.tensors.get("blocks.3.mlp.fc1.weight")!.data).toEqual(a.ckpt.tensors.get("blocks.3.mlp.fc1.weight")!.data);
    expect(loadModel("deit_tiny", { seed: 2 }).ckpt.tensors.get("head.weight")!.data).not.toEqual(a.ckpt.tensors.get("head.weight")!.data);
  });

  it("follow the paper's evaluation transforms: ViT with mean = std = 0.5 and crop 0.9, Swin crop 0.9", () => {
    const arch = presetArchitecture("vit_base") as VitArchitecture;
    expect(arch).toMatchObject({ embed_dim: 768, depth: 12, num_heads: 12, mlp_hidden_dim: 3072, norm_eps: 1e-6, attn_scale: 0.125, qkv_bias: true });
    expect(presetArchitecture("vit_large")).toMatchObject({ embed_dim: 1024, depth: 24, num_heads: 16 });
    expect(presetArchitecture("swin_base")).toMatchObject({ embed_dim: 128, depths: [2, 2, 18, 2], num_heads: [4, 8, 16, 32], window_size: 7 });
  });

  it("load a user's timm export from a folder named after the model, and list every mismatched tensor", () => {
    const arch = presetArchitecture("deit_tiny") as VitArchitecture;
    const tensors: Tensor[] = [...expectedTensorShapes(arch)].map(([name, shape]) => ({ name, shape, data: new Float32Array(elementCount(shape)).fill(0.01) }));
    const dir = join(scratch(), "deit_tiny_patch16_224");
    mkdirSync(dir);
    writeSafetensors(join(dir, WEIGHTS_FILE), tensors);
    const model = loadModel(dir);
    expect(model).toMatchObject({ name: "deit_tiny", family: "vit", randomWeights: false, source: join(dir, WEIGHTS_FILE) });
    expect(randomWeightsNote(model)).toBeNull();
    expect(loadModel("deit_tiny", { weights: dir }).randomWeights).toBe(false);

    const broken = join(scratch(), "deit_tiny");
    mkdirSync(broken);
    const wrong = tensors.filter((t) => t.name !== "blocks.0.norm1.bias").map((t) => (t.name === "head.weight" ? { ...t, shape: [10, 192], data: new Float32Array(1920) } : t));
    writeSafetensors(join(broken, WEIGHTS_FILE), [...wrong, { name: "dist_token", shape: [1, 1, 192], data: new Float32Array(192) }]);
    expect(() => loadModel(broken)).toThrow(
      /the weights do not match preset deit_tiny \(timm deit_tiny_patch16_224\) \(3 problems\):\n {2}missing tensor blocks.0.norm1.bias \(expected shape \[192\]\)\n {2}head.weight: shape \[10,192\] expected \[1000,192\]\n {2}unexpected tensor dist_token/,
    );
  });

  it("refuse a folder that is neither a model folder nor named after a preset", () => {
    const dir = scratch();
    writeFileSync(join(dir, "notes.txt"), "x");
    expect(() => loadModel(dir)).toThrow(/not a model folder: expected config.json \+ model.safetensors, or a model.safetensors in a folder named after a preset/);
    expect(() => loadModel("deit_tiny", { weights: join(dir, "missing.safetensors") })).toThrow(/missing.safetensors: weights file not found/);
  });

  it("read a Swin model folder and refuse a bad Swin field", () => {
    const dir = scratch();
    const architecture = { ...presetArchitecture("swin_tiny"), depths: [2, 2], num_heads: [3, 6], img_size: 112, num_classes: 4 };
    const config = { name: "my-swin", architecture, preprocess: { scale: "x/255", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } };
    writeFileSync(join(dir, "config.json"), JSON.stringify(config));
    expect(() => loadModel(dir)).toThrow(/model.safetensors: file not found/);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, architecture: { ...architecture, window_size: 5 } }));
    expect(() => loadModel(dir)).toThrow(/config.json: architecture.window_size: stage 0 is 28×28 tokens, not a whole number of 5×5 windows/);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, architecture: { ...architecture, depths: [2, 2, 2] } }));
    expect(() => loadModel(dir)).toThrow(/architecture.num_heads: 2 entries but architecture.depths has 3/);
  });
});

describe.skipIf(!existsSync(IMAGENET_DIR))("deit_tiny on an ImageNet image", () => {
  it("runs the whole pipeline: ImageNet folder, resize and crop, normalization, forward", async () => {
    const model = loadModel("deit_tiny");
    const ds = loadDataset(IMAGENET_DIR, { input: model.input, calib: 64, limit: 1 });
    const set = await ds.evaluation.read(0, 1);
    const image = normalizeImage(set.images, 3, 224, 224, model.preprocess);
    const logits = forwardModel(model, image, floatOps);
    expect(logits.length).toBe(1000);
    expect(logits.every(Number.isFinite)).toBe(true);
    expect(argmax(logits)).toBeGreaterThanOrEqual(0);
  });

  it("runs swin_tiny on the same image", async () => {
    const model = loadModel("swin_tiny");
    const ds = loadDataset(IMAGENET_DIR, { input: model.input, calib: 0, limit: 1 });
    const set = await ds.evaluation.read(0, 1);
    const logits = forwardModel(model, normalizeImage(set.images, 3, 224, 224, model.preprocess), floatOps);
    expect(logits.length).toBe(1000);
    expect(logits.every(Number.isFinite)).toBe(true);
  });
});
