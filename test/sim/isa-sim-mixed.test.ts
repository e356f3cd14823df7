/**
 * A mixed-precision graph on the hardware: vit4mnist with the weight bits the search chose (int4 and
 * int8 layers side by side) compiles for a 16×16 dual-mode array, each MATMUL in the mode of its
 * layer's weights, and the ISA simulator equals the golden model on every tensor of real MNIST images.
 */
import { describe, expect, it } from "vitest";
import { compileGraph } from "../../src/compiler/graph.js";
import { encodeProgram } from "../../src/compiler/memory.js";
import { DEFAULT_CONFIG, parseAcceleratorConfig } from "../../src/hw/config.js";
import { MATMUL_FLAGS } from "../../src/hw/isa.js";
import { formatMismatch } from "../../src/sim/compare.js";
import { checkImage } from "../../src/sim/isa-check.js";
import { HAS_SHARED_DATA, MNIST_DIR, VIT4MNIST_DIR } from "../paths.js";
import { realSet } from "../images.js";

const DUAL_MODE = parseAcceleratorConfig({ name: "w4x16x16", array: { rows: 16, cols: 16 }, busBits: 128, weightBits: 4 });

describe.skipIf(!HAS_SHARED_DATA)("ISA simulator on a mixed-precision vit4mnist", () => {
  it("runs each layer in its own weight mode, bit-exact with the golden model on 30 MNIST images", async () => {
    // a quick search (population 10, 3 iterations) at β = 1.25: some blocks int8, the rest int4
    const set = await realSet(VIT4MNIST_DIR, MNIST_DIR, 30, 40, 8, { budget: 1.25, seed: 1, population: 10, iterations: 3 });
    const g = set.graph;
    expect(g.mixedPrecision?.budget).toBe(1.25);
    const linears = g.ops.flatMap((op) => (op.kind === "linear" ? [op] : []));
    const bits = new Map(linears.map((op) => [op.name, op.layer.weightBits]));
    expect(new Set(bits.values())).toEqual(new Set([4, 8]));
    expect(bits.get("patch_embed.proj")).toBe(8);

    expect(() => compileGraph(g, DEFAULT_CONFIG)).toThrow(/4-bit weights; accelerator "default" has weightBits 8/);
    const program = compileGraph(g, DUAL_MODE);
    for (const [layer, b] of bits) {
      const matmuls = program.instructions.filter((e) => e.layer === layer && e.insn.op === "MATMUL");
      expect(matmuls.length, layer).toBeGreaterThan(0);
      expect(matmuls.every((e) => e.insn.op === "MATMUL" && Boolean(e.insn.flags & MATMUL_FLAGS.W4) === (b === 4)), layer).toBe(true);
    }
    const encoded = encodeProgram(program);
    for (const [i, pixels] of set.images.entries()) {
      const r = checkImage(g, program, pixels, { encoded, seed: i });
      expect(r.mismatch, r.mismatch ? `image ${i}: ${r.mismatch.layer}: ${formatMismatch(r.mismatch)}` : "").toBeNull();
      expect(Array.from(r.logits)).toEqual(Array.from(r.goldenLogits));
      await new Promise((done) => setImmediate(done)); // let the test runner's messages through
    }
  }, 240_000);
});
