/**
 * The golden integer model on whole graphs: integer-only by construction, equal to the fake-quant
 * model on the built-in synthetic ViT, and QGraph files round-trip to the same logits.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS } from "../../src/quant/fakequant.js";
import { forwardVit } from "../../src/quant/float/vit.js";
import { ModelImage, normalized, quantizeModel } from "../../src/quant/pipeline.js";
import { QGraph } from "../../src/quant/qgraph.js";
import { loadQGraph, saveQGraph } from "../../src/quant/qgraph-io.js";
import { syntheticCheckpoint, syntheticImages } from "../../src/quant/synthetic.js";
import { runGolden } from "../../src/sim/golden/model.js";
import { REPO } from "../paths.js";

const GOLDEN_ENTRY = join(REPO, "src", "sim", "golden", "model.ts");
/** What the golden path may import: its own kernels, the arithmetic spec, and plain helpers (errors, data movement, WebAssembly byte encoding). */
const ALLOWED = [/^src\/sim\/golden\//, /^src\/arith\.ts$/, /^src\/util\/(errors|matrix|wasm)\.ts$/];

function importClosure(entry: string): Map<string, string> {
  const seen = new Map<string, string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    const text = readFileSync(file, "utf8");
    seen.set(file, text);
    for (const m of text.matchAll(/^import (?!type )[^;]*? from "(\.[^"]+)\.js";/gm)) visit(resolve(dirname(file), `${m[1]}.ts`));
  };
  visit(entry);
  return seen;
}

function images(n: number, seed: number): ModelImage[] {
  const set = syntheticImages(n, seed, 16);
  return Array.from({ length: n }, (_, i) => ({ pixels: set.images.slice(i * 256, (i + 1) * 256), label: set.labels[i] }));
}

describe("golden integer model", () => {
  it("imports nothing but integer kernels, and calls no float math", () => {
    const files = importClosure(GOLDEN_ENTRY);
    for (const [file, text] of files) {
      const rel = file.slice(REPO.length + 1);
      expect(ALLOWED.some((re) => re.test(rel)), `${rel} is on the golden path`).toBe(true);
      expect(text, rel).not.toMatch(/Math\.(exp|expm1|log|log2|log10|log1p|sqrt|cbrt|pow|sin|cos|tan|tanh|random|fround|round)\b/);
      // matrix.ts moves float tensors too, for the float model; it does no arithmetic
      if (!rel.endsWith("matrix.ts")) expect(text, rel).not.toMatch(/Float(32|64)Array/);
    }
    expect(files.size).toBeGreaterThanOrEqual(6);
  });

  const ckpt = syntheticCheckpoint(3);
  const calib = images(24, 5);
  const model = quantizeModel(ckpt, calib, DEFAULT_SETTINGS);
  const graph = model.qgraph!;

  it("produces only integer tensors, int32 logits, one per class", () => {
    const run = runGolden(graph, images(1, 9)[0].pixels, true);
    expect(run.logits).toBeInstanceOf(Int32Array);
    expect(run.logits.length).toBe(10);
    for (const t of run.tensors.values()) expect(t instanceof Int8Array || t instanceof Uint8Array || t instanceof Int32Array).toBe(true);
    expect(graph.ops[0].kind).toBe("patchify");
    expect(graph.ops.filter((o) => o.kind === "layernorm").length).toBe(2 * 2 + 1);
  });

  it("gives the fake-quant model's logits up to a few output steps", () => {
    // random weights leave logits nearly tied, so compare values rather than top-1
    const exponent = graph.tensors.find((t) => t.name === graph.output)!.exponents[0];
    let signal = 0;
    let noise = 0;
    for (const img of images(20, 77)) {
      const golden = runGolden(graph, img.pixels).logits;
      const fq = forwardVit(ckpt, normalized(ckpt, img), model.fakeQuant);
      golden.forEach((g, c) => {
        signal += fq[c] ** 2;
        noise += (g * 2 ** exponent - fq[c]) ** 2;
      });
    }
    expect(10 * Math.log10(signal / noise)).toBeGreaterThan(20);
  });

  it("quantizes a post-norm model with a final norm (a LayerNorm reading a LayerNorm)", () => {
    const arch = { ...ckpt.config.architecture, norm_layout: "post" as const };
    const post = { ...ckpt, config: { ...ckpt.config, architecture: arch } };
    const g = quantizeModel(post, calib, DEFAULT_SETTINGS).qgraph!;
    const norm = g.ops.find((o) => o.name === "norm");
    expect(norm?.kind).toBe("layernorm");
    if (norm?.kind === "layernorm") expect(Array.from(norm.params.k)).toEqual(new Array(norm.dim).fill(3));
    expect(runGolden(g, images(1, 4)[0].pixels).logits.length).toBe(10);
  });

  it("round-trips through a QGraph file to the same logits", () => {
    const file = join(mkdtempSync(join(tmpdir(), "p2vit-qgraph-")), "synthetic.qgraph");
    saveQGraph(file, graph);
    const loaded = loadQGraph(file);
    const img = images(1, 11)[0];
    expect(Array.from(runGolden(loaded, img.pixels).logits)).toEqual(Array.from(runGolden(graph, img.pixels).logits));
  });

  it("refuses damaged QGraph files with the field that is wrong", () => {
    const dir = mkdtempSync(join(tmpdir(), "p2vit-qgraph-"));
    const file = join(dir, "g.qgraph");
    saveQGraph(file, graph);
    const bytes = readFileSync(file);
    writeFileSync(join(dir, "short.qgraph"), bytes.subarray(0, bytes.length - 100));
    expect(() => loadQGraph(join(dir, "short.qgraph"))).toThrow(/short\.qgraph: truncated: an? \w+ array needs bytes/);
    // a file from a future p2vit: the type allows no other version, the loader must refuse it
    const edited = { ...graph, version: 99 } as unknown as QGraph;
    saveQGraph(join(dir, "v99.qgraph"), edited);
    expect(() => loadQGraph(join(dir, "v99.qgraph"))).toThrow(/version: this p2vit reads version 1, the file is version 99/);
    saveQGraph(join(dir, "op.qgraph"), { ...graph, ops: [{ ...graph.ops[1], inputs: ["nowhere"] }, ...graph.ops.slice(2)] });
    expect(() => loadQGraph(join(dir, "op.qgraph"))).toThrow(/ops\[0\] \(patch_embed\.proj\): reads tensor nowhere before any op produces it/);
    expect(() => loadQGraph(join(dir, "missing.qgraph"))).toThrow(/missing\.qgraph: cannot read \(ENOENT\)/);
  });
});
