/**
 * Whole models on the generated RTL: every tensor the program stores is bit-exact with the golden
 * model, the RTL's top-1 is the golden top-1, and each layer's measured cycles are within 5% of the
 * in-order cycle model. The built-in model on a non-square array, with int4 weights on dual-mode PEs,
 * and on the queued dispatcher (within 5% of the concurrent cycle model); the real models are in
 * cosim-mnist.test.ts and cosim-cifar.test.ts. Fault injection shows the comparison can fail and
 * names where; `p2vit regress --quick`; a missing verilator.
 */
import { execa } from "execa";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CosimSubject, formatCosim, loadSubject, runCosim } from "../../src/cli/cosim.js";
import { REGRESS_CONFIGS, regressMatrix, runRegress, junitXml } from "../../src/cli/regress.js";
import { compileGraph } from "../../src/compiler/graph.js";
import { blockWord } from "../../src/compiler/layer.js";
import { tensorWord } from "../../src/compiler/memory.js";
import { deriveHw } from "../../src/hw/config.js";
import { DEP_FIELDS } from "../../src/hw/isa.js";
import { inOrderEnds } from "../../src/sim/inorder-model.js";
import { DEFAULT_MEMORY } from "../../src/sim/verilator/run.js";
import { REPO } from "../paths.js";
import { expectClean } from "./cosim-expect.js";

// Q16 and A3x5 are queued, A8x16 in order
const [Q16, A8x16, A3x5, W4] = REGRESS_CONFIGS;

/** Clears both wait fields of every instruction of a compiled program in a memory image (the signals stay). */
function stripWaits(image: Uint8Array, instructions: number, cfg: typeof Q16): void {
  const hw = deriveHw(cfg);
  const waitBytes = [DEP_FIELDS.wait0Chunk.lsb, DEP_FIELDS.wait1Count.lsb + DEP_FIELDS.wait1Count.width].map((bit) => bit / 8);
  for (let i = 0; i < instructions; i++) image.fill(0, i * hw.wordsPerInstruction * hw.busBytes + waitBytes[0], i * hw.wordsPerInstruction * hw.busBytes + waitBytes[1]);
}

describe("full-model co-simulation (Verilator)", () => {
  it("runs the built-in model bit-exact on a non-square array, every layer within 5% of the cycle model", async () => {
    const subject = await loadSubject({ target: "synthetic", images: 3, calib: 32 });
    const { summary, results } = await runCosim(subject, A8x16);
    expectClean(results, "synthetic");
    expect(summary.bitExact).toBe(3);
    expect(formatCosim(summary, results)).toMatch(/PASS/);
    // a slow memory that refuses requests: still bit-exact (the model assumes a memory that never refuses)
    const slow = await runCosim({ ...subject, images: subject.images.slice(0, 1) }, A8x16, { memory: { latency: 5, stallPercent: 20, seed: 2 } });
    expect(slow.results[0].divergence).toBeNull();
    expect(slow.results[0].cycles).toBeGreaterThan(results[0].cycles);
  }, 900_000);

  it("runs the built-in model bit-exact on the queued top: chunks overlap, within 5% of the concurrent model", async () => {
    const subject = await loadSubject({ target: "synthetic", images: 2, calib: 32 });
    const { summary, results, cosim } = await runCosim(subject, Q16);
    expectClean(results, "synthetic queued");
    expect(summary.cycleModel).toBe("concurrent");
    // the same program in program order takes a third longer: the chunks did overlap
    const inOrder = inOrderEnds(cosim.program.instructions.map((e) => e.insn), { ...Q16, dispatch: "inorder" }, DEFAULT_MEMORY.latency).at(-1)!;
    expect(results[0].cycles).toBeLessThan(0.85 * inOrder);
    // a slow memory that refuses requests: the arbiter and the read tags still route every word
    const slow = await runCosim({ ...subject, images: subject.images.slice(0, 1) }, Q16, { memory: { latency: 7, stallPercent: 30, seed: 5 } });
    expect(slow.results[0].divergence).toBeNull();
  }, 900_000);

  it("runs int4 weights on dual-mode PEs bit-exact", async () => {
    const subject = await loadSubject({ target: "synthetic", images: 2, calib: 32, wBits: 4 });
    const { results } = await runCosim(subject, W4);
    expectClean(results, "synthetic w4");
  }, 900_000);

});

describe("fault injection: the full-model comparison can fail", () => {
  let subject: CosimSubject;
  const load = async () => (subject ??= await loadSubject({ target: "synthetic", images: 1, calib: 32 }));

  it("names the first diverging layer, element and instruction for a corrupted weight byte", async () => {
    const s = await load();
    // a byte of the first weight block of the second block's fc1 (the listing's block names); the
    // compiler is deterministic, so this program is the one the co-simulation compiles
    const program = compileGraph(s.graph, A3x5);
    const at = blockWord(program, "blocks.1.mlp.fc1 weights") * deriveHw(A3x5).busBytes;
    const dir = mkdtempSync(join(tmpdir(), "p2vit-trace-"));
    const trace = join(dir, "mismatch.fst");
    const { results, cosim } = await runCosim(s, A3x5, { corrupt: (image) => void (image[at] ^= 0x5a), trace, traceMargin: 200 });
    const d = results[0].divergence!;
    expect(d, "a corrupted weight must be caught").not.toBeNull();
    expect(d.run).toBe("rtl");
    expect(d.layer).toBe("blocks.1.mlp.fc1");
    expect(d.instruction).toBeGreaterThan(0);
    expect(cosim.program.instructions[d.instruction].layer).toBe("blocks.1.mlp.fc1");
    expect(d.expected).not.toBe(d.got);
    // the instruction named wrote the element
    const t = s.graph.tensors.find((x) => x.name === d.tensor)!;
    const word = tensorWord(cosim.program, d.tensor, d.coords[0], d.coords[1]);
    expect(word).toBeGreaterThanOrEqual(cosim.program.dataWord);
    expect(t.rows).toBeGreaterThan(d.coords[0]);
    // the waveform around the instruction that wrote it
    expect(d.trace).toMatchObject({ file: trace });
    expect(d.trace!.to - d.trace!.from).toBeGreaterThan(400);
    expect(statSync(trace).size).toBeGreaterThan(1000);
    rmSync(dir, { recursive: true, force: true });
  }, 900_000);

  it.each([A8x16, Q16].map((c) => [c.name, c] as const))("traps with a clear error on a corrupted opcode (%s)", async (_name, cfg) => {
    const s = await load();
    await expect(
      runCosim(s, cfg, {
        corrupt: (image) => {
          const hw = deriveHw(cfg);
          image[40 * hw.wordsPerInstruction * hw.busBytes] = 0x0f;
        },
      }),
    ).rejects.toThrow(/trapped on an unknown opcode/);
  }, 900_000);

  it("diverges on the queued top when the waits are cleared: the dependency fields keep the chunks apart", async () => {
    const s = await load();
    const instructions = compileGraph(s.graph, Q16).instructions.length;
    const { results } = await runCosim(s, Q16, { corrupt: (image) => stripWaits(image, instructions, Q16) });
    expect(results[0].divergence, "a program without waits must not run correctly").not.toBeNull();
    expect(results[0].divergence!.run).toBe("rtl");
  }, 900_000);
});

describe("p2vit regress --quick and the command line", () => {
  it("runs the quick slice and writes a JUnit XML", async () => {
    const { entries } = regressMatrix(true);
    expect(entries.length).toBeGreaterThanOrEqual(1);
    const results = await runRegress(entries, 2);
    for (const r of results) expect(r.pass, `${r.id}: ${r.error}`).toBe(true);
    const xml = junitXml(results);
    expect(xml).toMatch(new RegExp(`<testsuite name="p2vit-regress" tests="${results.length}" failures="0"`));
    expect(junitXml([{ ...results[0], pass: false, error: "image 0: <diverged>" }])).toMatch(/<failure message="image 0: &lt;diverged&gt;">/);
  }, 1_800_000);

  it("says clearly that verilator is missing", async () => {
    const cli = join(REPO, "bin", "p2vit.js");
    expect(existsSync(cli)).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), "p2vit-nopath-"));
    try {
      const r = await execa(process.execPath, [cli, "cosim", "synthetic", "--images", "1", "--calib", "8"], { reject: false, env: { PATH: dir, P2VIT_CACHE: dir } });
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(/verilator was not found on PATH/);
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
