/** `p2vit compile` and `p2vit perf` as a user meets them: the program folder, the figures, the errors. */
import { execa } from "execa";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS } from "../../src/quant/fakequant.js";
import { quantizeModel } from "../../src/quant/pipeline.js";
import { saveQGraph } from "../../src/quant/qgraph-io.js";
import { syntheticCheckpoint, syntheticImages } from "../../src/quant/synthetic.js";
import { REPO } from "../paths.js";

const BIN = join(REPO, "bin", "p2vit.js");
const p2vit = (args: string[]) => execa("node", [BIN, ...args], { cwd: REPO, reject: false });

const dir = mkdtempSync(join(tmpdir(), "p2vit-compile-"));
const qgraph = join(dir, "synthetic.qgraph");
const set = syntheticImages(8, 5, 16);
saveQGraph(qgraph, quantizeModel(syntheticCheckpoint(3), Array.from({ length: 8 }, (_, i) => ({ pixels: set.images.slice(i * 256, (i + 1) * 256), label: 0 })), DEFAULT_SETTINGS).qgraph!);

describe("p2vit compile", () => {
  it("writes the program, the data, the listing and the manifest", async () => {
    const out = join(dir, "prog");
    const r = await p2vit(["compile", qgraph, "--out", out]);
    expect(r.exitCode, r.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    expect(manifest).toMatchObject({ format: "p2vit.program", overlap: true, output: "head" });
    expect(readFileSync(join(out, "program.bin")).length).toBe(manifest.instructions * 32);
    expect(readFileSync(join(out, "program.lst"), "utf8")).toMatch(/LAYERNORM .*wait .*; blocks\.0\.norm1: rows 0\.\.15/);
    expect(manifest.tensors["blocks.0.attn.qkv"]).toMatchObject({ padded: true });
  });

  it("refuses a config the model does not fit, and writes nothing", async () => {
    const hw = join(dir, "tiny.json");
    writeFileSync(hw, JSON.stringify({ name: "tiny", array: { rows: 2, cols: 2 }, busBits: 32, buffers: { xDepth: 4 } }));
    const out = join(dir, "never");
    const r = await p2vit(["compile", qgraph, "--hw", hw, "--out", out]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/p2vit: error: layer .* does not fit accelerator "tiny": buffers\.xDepth = 4 cannot hold one input row/);
    expect(existsSync(out)).toBe(false);
  });

  it("names a file that is not a QGraph", async () => {
    const bad = join(dir, "bad.qgraph");
    writeFileSync(bad, "not a qgraph");
    const r = await p2vit(["compile", bad, "--out", join(dir, "x")]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/bad\.qgraph/);
  });
});

describe("p2vit perf", () => {
  it("prints cycles, utilization, frames/s and GOPS/DSP, and is slower without overlap", async () => {
    const on = await p2vit(["perf", qgraph, "--dsp", "256", "--json"]);
    const off = await p2vit(["perf", qgraph, "--dsp", "256", "--json", "--no-overlap"]);
    expect(on.exitCode, on.stderr).toBe(0);
    const a = JSON.parse(on.stdout);
    const b = JSON.parse(off.stdout);
    expect(a).toMatchObject({ overlap: true, dsp: 256 });
    expect(a.gopsPerDsp).toBeCloseTo(a.gops / 256, 9);
    expect(b.cycles).toBeGreaterThan(a.cycles);
    expect(a.layers.find((l: { layer: string }) => l.layer === "blocks.0.attn.qkv").utilization).toBeGreaterThan(0);
    const text = await p2vit(["perf", qgraph, "--layers"]);
    expect(text.stdout).toMatch(/cycles per image, PE utilization \d+\.\d%/);
    expect(text.stdout).toMatch(/blocks\.0\.mlp\.fc1 +\d+/);
  });

  it("asks for data to calibrate a model on", async () => {
    const r = await p2vit(["perf", "deit_tiny"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/deit_tiny: give a QGraph file, or a model with --data/);
  });
});
