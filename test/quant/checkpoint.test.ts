import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import {
  expectedTensorShapes,
  loadCheckpoint,
  parseModelConfig,
  patchEmbedding,
  writeCheckpoint,
  type ModelConfig,
} from "../../src/quant/checkpoint.js";
import { syntheticCheckpoint, syntheticConfig } from "../../src/quant/synthetic.js";
import { P2vitError } from "../../src/util/errors.js";

const dataDir = resolve(dirname(fileURLToPath(import.meta.url)), "../../../shared/data");
const modelsDir = join(dataDir, "models");

/** A config object to mutate in a test; the synthetic model's is a valid one. */
function validConfigJson(): Record<string, any> {
  return JSON.parse(JSON.stringify(syntheticConfig()));
}

function parseError(json: unknown): string {
  try {
    parseModelConfig(json, "models/x/config.json");
  } catch (err) {
    expect(err).toBeInstanceOf(P2vitError);
    return (err as Error).message;
  }
  throw new Error("expected parseModelConfig to fail");
}

describe.skipIf(!existsSync(modelsDir))("real checkpoints", () => {
  test("vit4mnist loads: pre-norm, MLP head, no qkv bias, no final norm", () => {
    const ckpt = loadCheckpoint(join(modelsDir, "vit4mnist"));
    expect(ckpt.config.name).toBe("vit4mnist");
    expect(ckpt.tensors.size).toBe(74);
    expect(ckpt.tensors.get("pos_embed")!.shape).toEqual([1, 17, 64]);
    expect(ckpt.tensors.get("blocks.5.attn.qkv.weight")!.shape).toEqual([192, 64]);
    expect(ckpt.tensors.has("blocks.0.attn.qkv.bias")).toBe(false);
    expect(ckpt.tensors.get("pre_logits.fc.weight")!.shape).toEqual([128, 64]);
    expect(ckpt.tensors.get("head.weight")!.shape).toEqual([10, 128]);
    const params = [...ckpt.tensors.values()].reduce((n, t) => n + t.data.length, 0);
    expect(params).toBe(213_642);
  });

  test("vit-cifar10 loads: post-norm, qkv bias, final norm", () => {
    const ckpt = loadCheckpoint(join(modelsDir, "vit-cifar10"));
    expect(ckpt.config.architecture.norm_layout).toBe("post");
    expect(ckpt.config.preprocess.mean).toHaveLength(3);
    expect(ckpt.tensors.size).toBe(80);
    expect(ckpt.tensors.get("patch_embed.proj.weight")!.shape).toEqual([128, 3, 4, 4]);
    expect(ckpt.tensors.get("blocks.0.attn.qkv.bias")!.shape).toEqual([384]);
    expect(ckpt.tensors.get("norm.weight")!.shape).toEqual([128]);
    expect(ckpt.tensors.get("head.weight")!.shape).toEqual([10, 128]);
    const params = [...ckpt.tensors.values()].reduce((n, t) => n + t.data.length, 0);
    expect(params).toBe(811_146);
  });

  test("patchEmbedding is the conv weight flattened to N×K with K = C·p·p", () => {
    const ckpt = loadCheckpoint(join(modelsDir, "vit-cifar10"));
    const pe = patchEmbedding(ckpt);
    expect(pe).toMatchObject({ outFeatures: 128, inFeatures: 48 });
    expect(pe.weight).toHaveLength(128 * 48);
    expect(pe.bias).toHaveLength(128);
    // Element [d=5, c=2, row=1, col=3] of the conv weight sits at row 5, column (2·4 + 1)·4 + 3.
    const conv = ckpt.tensors.get("patch_embed.proj.weight")!.data;
    expect(pe.weight[5 * 48 + (2 * 4 + 1) * 4 + 3]).toBe(conv[((5 * 3 + 2) * 4 + 1) * 4 + 3]);
    pe.weight[0] += 1;
    expect(conv[0]).not.toBe(pe.weight[0]);
  });
});

describe("parseModelConfig", () => {
  test("accepts a valid config and keeps optional fields", () => {
    const config = parseModelConfig(validConfigJson(), "c.json");
    expect(config).toEqual(syntheticConfig());
  });

  test.skipIf(!existsSync(modelsDir))("accepts both real config.json files", () => {
    for (const name of ["vit4mnist", "vit-cifar10"]) {
      const file = join(modelsDir, name, "config.json");
      expect(parseModelConfig(JSON.parse(readFileSync(file, "utf8")), file).name).toBe(name);
    }
  });

  test("missing field", () => {
    const json = validConfigJson();
    delete json.architecture.depth;
    expect(parseError(json)).toMatch(/^models\/x\/config\.json: architecture\.depth: expected a positive integer, got nothing \(the field is missing\)$/);
  });

  test("non-positive size", () => {
    const json = validConfigJson();
    json.architecture.patch_size = 0;
    expect(parseError(json)).toBe("models/x/config.json: architecture.patch_size: expected a positive integer, got 0");
  });

  test("wrong type", () => {
    const json = validConfigJson();
    json.architecture.qkv_bias = "yes";
    expect(parseError(json)).toMatch(/architecture\.qkv_bias: expected true or false, got "yes"/);
    const json2 = validConfigJson();
    json2.name = 3;
    expect(parseError(json2)).toMatch(/config\.json: name: expected a non-empty string, got 3/);
  });

  test("unknown field", () => {
    const json = validConfigJson();
    json.architecture.drop_path = 0.1;
    expect(parseError(json)).toMatch(/config\.json: unknown field architecture\.drop_path; architecture\. allows only: family, img_size/);
    const top = validConfigJson();
    top.preprocesss = {};
    expect(parseError(top)).toMatch(/unknown field preprocesss/);
  });

  test("unknown enum value", () => {
    const json = validConfigJson();
    json.architecture.act = "swish";
    expect(parseError(json)).toMatch(/architecture\.act: expected one of "gelu", "relu", got "swish"/);
    const json2 = validConfigJson();
    json2.architecture.norm_layout = "sandwich";
    expect(parseError(json2)).toMatch(/architecture\.norm_layout: expected one of "pre", "post", got "sandwich"/);
  });

  test("sizes that do not divide", () => {
    const json = validConfigJson();
    json.architecture.img_size = 18;
    expect(parseError(json)).toMatch(/architecture\.img_size: 18 is not divisible by architecture\.patch_size 4/);
    const json2 = validConfigJson();
    json2.architecture.num_heads = 5;
    expect(parseError(json2)).toMatch(/architecture\.embed_dim: 32 is not divisible by architecture\.num_heads 5/);
  });

  test("pre-logits dimension and activation must agree", () => {
    const json = validConfigJson();
    json.architecture.pre_logits_dim = 16;
    expect(parseError(json)).toMatch(/architecture\.pre_logits_act: must be one of "gelu", "relu" when pre_logits_dim > 0/);
  });

  test("token pooling needs a class token", () => {
    const json = validConfigJson();
    json.architecture.class_token = false;
    expect(parseError(json)).toMatch(/architecture\.pool: "token" needs a class token/);
  });

  test("preprocess mean and std need one entry per input channel", () => {
    const json = validConfigJson();
    json.preprocess.mean = [0.5, 0.5];
    expect(parseError(json)).toMatch(/preprocess\.mean: expected an array of 1 finite numbers .*got \[0\.5,0\.5\]/);
    const json2 = validConfigJson();
    json2.preprocess.std = [0];
    expect(parseError(json2)).toMatch(/preprocess\.std: expected an array of 1 positive numbers/);
  });

  test("not an object", () => {
    expect(parseError([1])).toMatch(/models\/x\/config\.json: expected a JSON object/);
    const json = validConfigJson();
    json.architecture = "vit";
    expect(parseError(json)).toMatch(/config\.json: architecture: expected an object, got "vit"/);
  });
});

describe("expectedTensorShapes", () => {
  test("follows the optional parts of the architecture", () => {
    const arch = { ...syntheticConfig().architecture };
    const withAll = expectedTensorShapes(arch);
    expect(withAll.get("cls_token")).toEqual([1, 1, 32]);
    expect(withAll.get("pos_embed")).toEqual([1, 17, 32]);
    expect(withAll.get("blocks.1.attn.qkv.bias")).toEqual([96]);
    expect(withAll.get("norm.weight")).toEqual([32]);
    expect(withAll.get("head.weight")).toEqual([10, 32]);
    expect(withAll.size).toBe(4 + 2 * 12 + 2 + 2);

    const bare = expectedTensorShapes({ ...arch, class_token: false, pool: "avg", qkv_bias: false, final_norm: false, pre_logits_dim: 24, pre_logits_act: "relu" });
    expect(bare.has("cls_token")).toBe(false);
    expect(bare.get("pos_embed")).toEqual([1, 16, 32]);
    expect(bare.has("blocks.0.attn.qkv.bias")).toBe(false);
    expect(bare.has("norm.weight")).toBe(false);
    expect(bare.get("pre_logits.fc.weight")).toEqual([24, 32]);
    expect(bare.get("head.weight")).toEqual([10, 24]);
  });
});

describe("loadCheckpoint on a folder", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "p2vit-ckpt-"));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test("round-trips a written checkpoint", () => {
    const ckpt = syntheticCheckpoint(3);
    writeCheckpoint(dir, ckpt.config, ckpt.tensors.values());
    const loaded = loadCheckpoint(dir);
    expect(loaded.config).toEqual(ckpt.config);
    expect(loaded.tensors).toEqual(ckpt.tensors);
  });

  test("one error lists the mis-shaped, missing and unexpected tensors", () => {
    const ckpt = syntheticCheckpoint();
    const tensors = new Map(ckpt.tensors);
    tensors.set("blocks.0.attn.qkv.weight", { name: "blocks.0.attn.qkv.weight", shape: [96, 31], data: new Float32Array(96 * 31) });
    tensors.delete("blocks.1.mlp.fc2.bias");
    tensors.set("blocks.0.attn.relative_bias", { name: "blocks.0.attn.relative_bias", shape: [4], data: new Float32Array(4) });
    writeCheckpoint(dir, ckpt.config, tensors.values());
    let message = "";
    try {
      loadCheckpoint(dir);
    } catch (err) {
      expect(err).toBeInstanceOf(P2vitError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/model\.safetensors: the weights do not match the architecture in config\.json \(3 problems\)/);
    expect(message).toMatch(/blocks\.0\.attn\.qkv\.weight: shape \[96,31\] expected \[96,32\]/);
    expect(message).toMatch(/missing tensor blocks\.1\.mlp\.fc2\.bias \(expected shape \[32\]\)/);
    expect(message).toMatch(/unexpected tensor blocks\.0\.attn\.relative_bias \(shape \[4\]\)/);
  });

  test("non-finite weights are reported", () => {
    const ckpt = syntheticCheckpoint();
    ckpt.tensors.get("head.bias")!.data[3] = NaN;
    writeCheckpoint(dir, ckpt.config, ckpt.tensors.values());
    expect(() => loadCheckpoint(dir)).toThrow(/head\.bias: 1 non-finite values/);
  });

  test("missing folder, config.json, or weights", () => {
    expect(() => loadCheckpoint(join(dir, "nope"))).toThrow(/nope: checkpoint folder not found/);
    expect(() => loadCheckpoint(dir)).toThrow(/config\.json: file not found/);
    writeFileSync(join(dir, "config.json"), JSON.stringify(syntheticConfig()));
    expect(() => loadCheckpoint(dir)).toThrow(/model\.safetensors: file not found/);
    writeFileSync(join(dir, "config.json"), "{ name: ");
    expect(() => loadCheckpoint(dir)).toThrow(/config\.json: not valid JSON/);
  });

  test("config errors name the file in the folder", () => {
    const config: ModelConfig = syntheticConfig();
    writeCheckpoint(dir, { ...config, architecture: { ...config.architecture, depth: -1 } }, syntheticCheckpoint().tensors.values());
    expect(() => loadCheckpoint(dir)).toThrow(new RegExp(`${join(dir, "config.json").replace(/[.\\]/g, "\\$&")}: architecture\\.depth: expected a positive integer, got -1`));
  });
});
