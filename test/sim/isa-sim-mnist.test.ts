/**
 * The ISA simulator equals the golden model on every tensor of vit4mnist, for 100 real MNIST images on
 * three accelerator shapes (square, non-square, and a small odd array), with int4 weights on dual-mode PEs,
 * in program order and in random interleavings of the chunks; and the comparison can fail.
 */
import { describe, expect, it } from "vitest";
import { compileGraph } from "../../src/compiler/graph.js";
import { encodeProgram } from "../../src/compiler/memory.js";
import { MATMUL_FLAGS, encodeInstruction } from "../../src/hw/isa.js";
import { DEFAULT_CONFIG, deriveHw, parseAcceleratorConfig } from "../../src/hw/config.js";
import { checkImage } from "../../src/sim/isa-check.js";
import { formatMismatch } from "../../src/sim/compare.js";
import { HAS_SHARED_DATA, MNIST_DIR, VIT4MNIST_DIR } from "../paths.js";
import { realSet } from "../images.js";

const CONFIGS = [
  DEFAULT_CONFIG,
  parseAcceleratorConfig({ name: "a8x16", array: { rows: 8, cols: 16 }, busBits: 64 }),
  parseAcceleratorConfig({ name: "a3x5", array: { rows: 3, cols: 5 }, busBits: 32, buffers: { xDepth: 64, wDepth: 1024, oDepth: 64, paramDepth: 64 } }),
];
/** Dual-mode PEs, for a graph with int4 weights. */
const INT4 = parseAcceleratorConfig({ name: "w4x8x8", array: { rows: 8, cols: 8 }, busBits: 64, weightBits: 4 });

describe.skipIf(!HAS_SHARED_DATA)("ISA simulator on vit4mnist with 100 MNIST images", async () => {
  const set = HAS_SHARED_DATA ? await realSet(VIT4MNIST_DIR, MNIST_DIR, 100) : null;

  it.each(CONFIGS.map((c) => [c.name, c] as const))("equals the golden model on every tensor on %s", async (_, cfg) => {
    const program = compileGraph(set!.graph, cfg);
    const encoded = encodeProgram(program);
    let tensors = 0;
    for (const [i, pixels] of set!.images.entries()) {
      const r = checkImage(set!.graph, program, pixels, { encoded });
      expect(r.mismatch, r.mismatch ? `image ${i}: ${r.mismatch.layer}: ${formatMismatch(r.mismatch)}` : "").toBeNull();
      expect(Array.from(r.logits)).toEqual(Array.from(r.goldenLogits));
      tensors += r.tensors;
      await new Promise((done) => setImmediate(done)); // let the test runner's messages through
    }
    expect(tensors).toBeGreaterThan(100 * 300);
  }, 240_000);

  it("equals the golden model on every tensor with int4 weights on dual-mode PEs", async () => {
    const w4 = await realSet(VIT4MNIST_DIR, MNIST_DIR, 100, 100, 4);
    const program = compileGraph(w4.graph, INT4);
    expect(program.instructions.filter((e) => e.insn.op === "MATMUL" && e.insn.flags & MATMUL_FLAGS.W4).length).toBeGreaterThan(100);
    const encoded = encodeProgram(program);
    for (const [i, pixels] of w4.images.entries()) {
      const r = checkImage(w4.graph, program, pixels, { encoded, seed: i });
      expect(r.mismatch, r.mismatch ? `image ${i}: ${r.mismatch.layer}: ${formatMismatch(r.mismatch)}` : "").toBeNull();
      await new Promise((done) => setImmediate(done));
    }
  }, 240_000);

  it("is still equal when the chunks run in random orders the dependencies allow", () => {
    const cfg = CONFIGS[1];
    const program = compileGraph(set!.graph, cfg);
    for (const seed of [1, 2, 3]) {
      const r = checkImage(set!.graph, program, set!.images[seed], { seed });
      expect(r.mismatch, r.mismatch ? formatMismatch(r.mismatch) : "").toBeNull();
    }
  });

  it("catches a program whose dependencies were dropped", () => {
    const cfg = CONFIGS[1];
    const program = compileGraph(set!.graph, cfg);
    const stripped = { ...program, instructions: program.instructions.map((e) => ({ ...e, insn: { ...e.insn, dep: undefined } })) };
    const caught = [1, 2, 3].filter((seed) => {
      try {
        return checkImage(set!.graph, stripped, set!.images[0], { seed }).mismatch !== null;
      } catch {
        return true; // an out-of-order instruction read garbage the kernels refuse
      }
    });
    expect(caught.length).toBeGreaterThan(0);
  });

  it("names the first layer a corrupted weight byte changes", () => {
    const cfg = CONFIGS[0];
    const program = compileGraph(set!.graph, cfg);
    const block = program.blocks.find((b) => b.name === "blocks.2.mlp.fc1 weights")!;
    const hw = deriveHw(cfg);
    const r = checkImage(set!.graph, program, set!.images[0], {
      corrupt: (mem) => {
        const at = (block.word + 5 * hw.wordsPerVector) * hw.busBytes + 3;
        mem[at] ^= 0x40;
      },
    });
    expect(r.mismatch?.layer).toBe("blocks.2.mlp.fc1");
  });

  it("traps a corrupted opcode with the instruction's index", () => {
    const program = compileGraph(set!.graph, CONFIGS[0]);
    const encoded = encodeProgram(program);
    const slot = deriveHw(CONFIGS[0]).wordsPerInstruction * deriveHw(CONFIGS[0]).busBytes;
    encoded[17 * slot] = 0x0d;
    expect(() => checkImage(set!.graph, program, set!.images[0], { encoded })).toThrow(/instruction 17: unknown opcode 13/);
    expect(encodeInstruction({ op: "HALT" })[0]).toBe(0);
  });
});
