/**
 * Mixed precision: the budget arithmetic and the tying of layers, and on vit4mnist with real MNIST
 * calibration images: the assembled candidates equal a fresh quantization, the search stays within
 * its budget and is deterministic for a seed, and the bit map survives the QGraph file.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadDataset } from "../../src/quant/data/dataset.js";
import { DEFAULT_SETTINGS } from "../../src/quant/fakequant.js";
import {
  Bits,
  MixedLayout,
  SearchSetup,
  budgetUse,
  checkBudget,
  coarseCandidates,
  fitnessOf,
  groupOf,
  layerBitsOf,
  layoutOf,
  measureSensitivities,
  prepareSearch,
  searchMixed,
  withinBudget,
} from "../../src/quant/mixed.js";
import { ModelImage, calibrate, traceModel } from "../../src/quant/pipeline.js";
import { loadModel } from "../../src/quant/presets.js";
import { loadQGraph, saveQGraph } from "../../src/quant/qgraph-io.js";
import { quantizeGraph } from "../../src/quant/quantize-graph.js";
import { seededRandom } from "../../src/util/random.js";
import { HAS_SHARED_DATA, MNIST_DIR, VIT4MNIST_DIR } from "../paths.js";

/** vit4mnist's Linear layers: 17 tokens of width 64, MLP 128, a pre_logits layer and the head on the class token. */
function vit4mnistLinears(depth = 6) {
  const blocks = Array.from({ length: depth }, (_, b) => [
    { name: `blocks.${b}.attn.qkv`, rows: 17, inF: 64, outF: 192 },
    { name: `blocks.${b}.attn.proj`, rows: 17, inF: 64, outF: 64 },
    { name: `blocks.${b}.mlp.fc1`, rows: 17, inF: 64, outF: 128 },
    { name: `blocks.${b}.mlp.fc2`, rows: 17, inF: 128, outF: 64 },
  ]).flat();
  return [{ name: "patch_embed.proj", rows: 16, inF: 49, outF: 64 }, ...blocks, { name: "pre_logits.fc", rows: 1, inF: 64, outF: 128 }, { name: "head", rows: 1, inF: 128, outF: 10 }];
}

describe("budget and tying", () => {
  const layout: MixedLayout = layoutOf(vit4mnistLinears());

  it("ties qkv with proj and fc1 with fc2, and keeps the patch embedding, pre_logits and head out", () => {
    expect(groupOf("blocks.3.attn.qkv")).toBe("blocks.3.attn");
    expect(groupOf("blocks.3.attn.proj")).toBe("blocks.3.attn");
    expect(groupOf("blocks.11.mlp.fc2")).toBe("blocks.11.mlp");
    expect(groupOf("blocks.3.attn.fc1")).toBeNull();
    expect(layout.groups.map((g) => g.name)).toEqual(Array.from({ length: 6 }, (_, b) => [`blocks.${b}.attn`, `blocks.${b}.mlp`]).flat());
    expect(layout.groups[0]).toEqual({ name: "blocks.0.attn", layers: ["blocks.0.attn.qkv", "blocks.0.attn.proj"], flops: 17 * 64 * 192 + 17 * 64 * 64 });
    expect(layout.groups[1].flops).toBe(17 * 64 * 128 * 2);
    expect(layout.fixed).toEqual(["patch_embed.proj", "pre_logits.fc", "head"]);
    const bits = layerBitsOf(layout, layout.groups.map((_, i): Bits => (i === 1 ? 8 : 4)));
    expect(bits).toMatchObject({ "patch_embed.proj": 8, head: 8, "pre_logits.fc": 8, "blocks.0.mlp.fc1": 8, "blocks.0.mlp.fc2": 8, "blocks.0.attn.qkv": 4, "blocks.5.mlp.fc2": 4 });
    expect(Object.keys(bits)).toHaveLength(27);
  });

  it("computes Σ FLOPs·b against β · Σ FLOPs·4 over the searched groups", () => {
    const all4 = layout.groups.map((): Bits => 4);
    const oneEight = all4.map((b, i): Bits => (i === 0 ? 8 : b));
    const total = layout.groups.reduce((s, g) => s + g.flops, 0);
    expect(budgetUse(layout, all4)).toBe(1);
    expect(budgetUse(layout, layout.groups.map((): Bits => 8))).toBe(2);
    expect(budgetUse(layout, oneEight)).toBeCloseTo(1 + layout.groups[0].flops / total, 12);
    expect(withinBudget(layout, all4, 1)).toBe(true);
    // one group of 12 equal-FLOP groups needs β = 1 + 1/12 ≈ 1.083
    expect(withinBudget(layout, oneEight, 1.08)).toBe(false);
    expect(withinBudget(layout, oneEight, budgetUse(layout, oneEight))).toBe(true);
    expect(withinBudget(layout, oneEight, 1.1)).toBe(true);
    const twoEight = oneEight.map((b, i): Bits => (i === 1 ? 8 : b));
    expect(withinBudget(layout, twoEight, 1.1)).toBe(false);
  });

  it.each([0.9, 2.5, -1, Number.NaN, Number.POSITIVE_INFINITY])("refuses budget %s naming --budget", (beta) => {
    expect(() => checkBudget(beta)).toThrow(/--budget: expected a number from 1 to 2.*got/);
  });

  it("accepts the ends of [1, 2]", () => {
    expect(() => checkBudget(1)).not.toThrow();
    expect(() => checkBudget(2)).not.toThrow();
  });

  it("samples the coarse candidates of a deep model (24 groups) within the budget, the same for a seed", () => {
    const deep = layoutOf(vit4mnistLinears(12));
    expect(deep.groups).toHaveLength(24);
    // a made-up sensitivity that grows with depth: the lowest Ω raises the deepest groups first
    const sens = deep.groups.map((g, i) => ({ group: g.name, lossIncrease: i, perturbation8: 0, perturbation4: 1, sensitivity: i + 1 }));
    const a = coarseCandidates(deep, sens, 1.25, seededRandom(5));
    expect(a).toHaveLength(25);
    expect(a.every((bits) => withinBudget(deep, bits, 1.25))).toBe(true);
    expect(coarseCandidates(deep, sens, 1.25, seededRandom(5))).toEqual(a);
    expect(a[0].filter((b) => b === 8).length).toBeGreaterThan(0);
  });

  it("refuses a model without transformer blocks to search", () => {
    expect(() => layoutOf([{ name: "head", rows: 1, inF: 4, outF: 2 }])).toThrow(/no transformer block Linear layers/);
  });
});

describe.skipIf(!HAS_SHARED_DATA)("the search on vit4mnist", () => {
  let setup: SearchSetup;
  let images: ModelImage[];

  beforeAll(async () => {
    const model = loadModel(VIT4MNIST_DIR);
    if (model.family !== "vit") throw new Error("vit4mnist is a ViT");
    const dataset = loadDataset(MNIST_DIR, { input: model.input, calib: 24, classes: model.classes });
    const set = await dataset.calibration.read(0, 24);
    images = Array.from({ length: 24 }, (_, i) => ({ pixels: set.images.slice(i * 784, (i + 1) * 784), label: dataset.calibration.labels[i] }));
    setup = prepareSearch(model.ckpt, images, DEFAULT_SETTINGS);
  }, 60_000);

  it("holds out the last quarter of the calibration images for the fitness", () => {
    expect(setup.calibration).toHaveLength(18);
    expect(setup.holdout).toEqual(images.slice(18));
  });

  it("assembles a candidate that equals a fresh quantization with its bit map", () => {
    const bits = setup.layout.groups.map((_, i): Bits => (i % 3 === 0 ? 8 : 4));
    const assembled = setup.graphOf(bits);
    const cal = calibrate(setup.ckpt, setup.calibration, DEFAULT_SETTINGS);
    const fresh = quantizeGraph(setup.ckpt, traceModel(setup.ckpt, setup.calibration[0]), cal, { ...DEFAULT_SETTINGS, layerBits: layerBitsOf(setup.layout, bits) });
    expect(assembled).toEqual(fresh);
    const linear = (name: string) => assembled.ops.find((op) => op.name === name);
    expect(linear("blocks.0.attn.qkv")).toMatchObject({ layer: { weightBits: 8 } });
    expect(linear("blocks.0.mlp.fc1")).toMatchObject({ layer: { weightBits: 4 } });
    expect(linear("head")).toMatchObject({ layer: { weightBits: 8 } });
    expect(assembled.settings.wBits).toBe("mixed");
  }, 60_000);

  it("stays within the budget, is deterministic for a seed, and depends on it", () => {
    const sensitivities = measureSensitivities(setup);
    expect(sensitivities.every((s) => s.lossIncrease >= 0 && s.perturbation4 > s.perturbation8)).toBe(true);
    const fitness = fitnessOf(setup);
    // a small search (population 10, 4 iterations) keeps the test quick; the paper's sizes are the defaults
    const quick = { budget: 1.5, population: 10, iterations: 4, sensitivities, fitness };
    const a = searchMixed(setup, { ...quick, seed: 7 });
    const b = searchMixed(setup, { ...quick, seed: 7 });
    const c = searchMixed(setup, { ...quick, seed: 8 });
    expect(b.layerBits).toEqual(a.layerBits);
    expect(b.trail).toEqual(a.trail);
    expect(c.trail).not.toEqual(a.trail);
    for (const key of [...a.trail, ...c.trail]) {
      expect(budgetUse(setup.layout, [...key].map((d) => Number(d) as Bits))).toBeLessThanOrEqual(1.5);
    }
    expect(a.budgetUse).toBeLessThanOrEqual(1.5);
    // the fine stage went beyond the coarse stage's 10 seeds, and kept the best it measured
    expect(a.evaluated).toBeGreaterThan(10);
    expect(a.fitness).toBe(Math.min(...a.trail.map((k) => fitness([...k].map((d) => Number(d) as Bits)))));
  }, 120_000);

  it("writes the bit map into the QGraph file and reads it back; a map that disagrees with a layer is refused", () => {
    const bits = setup.layout.groups.map((_, i): Bits => (i < 2 ? 8 : 4));
    const graph = { ...setup.graphOf(bits), mixedPrecision: { budget: 1.25, seed: 3, bits: layerBitsOf(setup.layout, bits) } };
    const dir = mkdtempSync(join(tmpdir(), "p2vit-mixed-"));
    saveQGraph(join(dir, "mixed.qgraph"), graph);
    const back = loadQGraph(join(dir, "mixed.qgraph"));
    expect(back.mixedPrecision).toEqual(graph.mixedPrecision);
    expect(back.ops.filter((op) => op.kind === "linear").map((op) => op.kind === "linear" && op.layer.weightBits)).toEqual(
      graph.ops.filter((op) => op.kind === "linear").map((op) => op.kind === "linear" && op.layer.weightBits),
    );

    const { mixedPrecision: _, ...uniform } = graph;
    saveQGraph(join(dir, "uniform.qgraph"), uniform);
    expect(loadQGraph(join(dir, "uniform.qgraph")).mixedPrecision).toBeUndefined();

    const wrong = { ...graph, mixedPrecision: { ...graph.mixedPrecision, bits: { ...graph.mixedPrecision.bits, "blocks.3.mlp.fc1": 8 as const } } };
    saveQGraph(join(dir, "wrong.qgraph"), wrong);
    expect(() => loadQGraph(join(dir, "wrong.qgraph"))).toThrow(/mixedPrecision\.bits\["blocks\.3\.mlp\.fc1"\]: expected 4 \(the layer's weightBits\), got 8/);
  }, 60_000);
});
