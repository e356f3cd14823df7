/**
 * The AXI wrapper in Verilator: an AXI4 slave memory and an AXI4-Lite master (templates/sim/
 * axi_harness.cpp) run a compiled Linear layer through p2vit_axi_top from an exported folder, and the
 * result must equal the golden kernel bit for bit.
 */
import { execa } from "execa";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { compileLayer, readLayerOutput } from "../../src/compiler/layer.js";
import { buildMemory } from "../../src/compiler/memory.js";
import { exportFpga } from "../../src/export/export.js";
import { WRAPPER_TOP } from "../../src/export/wrapper.js";
import { TEMPLATE_DIR, writeRtl } from "../../src/generator/rtl.js";
import { configHash, parseAcceleratorConfig } from "../../src/hw/config.js";
import { QLinear } from "../../src/quant/qgraph.js";
import { firstMismatch } from "../../src/sim/compare.js";
import { linearGolden } from "../../src/sim/golden/linear.js";
import { seededRandom } from "../../src/util/random.js";
import { TINY_CORES } from "../configs.js";
import { HARNESS_HEADER } from "../../src/sim/verilator/build.js";

const CFG = parseAcceleratorConfig({ name: "axi-small", array: { rows: 4, cols: 4 }, busBits: 32, buffers: { xDepth: 32, wDepth: 512, oDepth: 16, paramDepth: 16 }, cores: TINY_CORES });
// above 4 GB, so BASE_HI matters (the default part's AXI address is 40 bits)
const BASE = 0x12_3456_0000n;

/** A random int8 layer with shifts that keep most outputs inside int8. */
function randomLayer(k: number, n: number, seed: number): QLinear {
  const rnd = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  return {
    kind: "linear", name: `axi_${k}x${n}`, inFeatures: k, outFeatures: n,
    input: { bits: 8, exponent: 0 }, output: { bits: 8, exponent: 0 }, weightBits: 8,
    weight: Int8Array.from({ length: n * k }, () => int(-128, 127)),
    weightExponents: new Int32Array(n),
    bias: Int32Array.from({ length: n }, () => int(-4096, 4096)),
    shift: Int32Array.from({ length: n }, (_, c) => 8 + (c % 4)),
  };
}

const dir = mkdtempSync(join(tmpdir(), "p2vit-axi-"));
let binary = "";

beforeAll(async () => {
  await writeRtl(CFG, join(dir, "rtl"));
  const out = join(dir, "export");
  await exportFpga({ rtlDir: join(dir, "rtl"), target: "vivado", out });
  copyFileSync(join(TEMPLATE_DIR, "..", "sim", "axi_harness.cpp"), join(out, "axi_harness.cpp"));
  copyFileSync(HARNESS_HEADER, join(out, "memory_words.h"));
  const sources = readFileSync(join(out, "filelist.f"), "utf8").trim().split("\n");
  const r = await execa("verilator", [
    "--cc", "--exe", "--build", "-O2", "--x-assign", "fast", "--x-initial", "fast", "-Wno-fatal", "-Wno-lint", "-Wno-style",
    "--top-module", WRAPPER_TOP, "-Mdir", "obj", "-o", "Vaxi", "-j", "2", ...sources, "axi_harness.cpp",
  ], { cwd: out, reject: false, all: true });
  if (r.exitCode !== 0) throw new Error(`verilator build of the AXI harness failed:\n${(r.all ?? "").slice(-3000)}`);
  binary = join(out, "obj", "Vaxi");
});

async function run(image: Uint8Array, memory: { latency: number; stall: number; seed: number }) {
  const imageFile = join(dir, "image.bin");
  const outFile = join(dir, "out.bin");
  writeFileSync(imageFile, image);
  const r = await execa(binary, [`+image=${imageFile}`, `+out=${outFile}`, `+base=0x${BASE.toString(16)}`, `+latency=${memory.latency}`, `+stall=${memory.stall}`, `+seed=${memory.seed}`], { reject: false });
  return { exitCode: r.exitCode, stderr: r.stderr, result: JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}"), memory: new Uint8Array(readFileSync(outFile)) };
}

describe("p2vit_axi_top in Verilator", () => {
  const layer = randomLayer(24, 12, 7);
  const rows = 10;
  const x = Int8Array.from({ length: rows * 24 }, (_, i) => ((i * 37 + 11) % 256) - 128);
  const program = compileLayer(CFG, layer, rows);
  const expected = linearGolden(layer, x, rows, { accBits: CFG.accBits });

  it.each([
    ["fast memory", { latency: 1, stall: 0, seed: 1 }],
    ["slow memory refusing 40% of requests", { latency: 7, stall: 40, seed: 3 }],
  ])("runs a Linear layer bit-exact through AXI4 with the %s, driven over AXI4-Lite", async (_what, memory) => {
    const r = await run(buildMemory(program, x), memory);
    expect(r.exitCode, r.stderr).toBe(0);
    const got = readLayerOutput(program, layer, rows, r.memory);
    expect(firstMismatch("output", [rows, 12], expected, got)).toBeNull();
    expect(new Set(got).size).toBeGreaterThan(10);
    const s = r.result;
    expect(s.ident).toBe(parseInt(configHash(CFG).slice(0, 8), 16));
    expect(BigInt(s.base)).toBe(BASE);
    expect(s.idleStatus).toBe(0);
    expect(s.runningStatus & 0b0111).toBe(0b0100); // busy, neither done nor trap
    expect(s.status & 0b1011).toBe(0b0001); // done, no trap, no bus error
    expect(s.settledStatus).toBe(0b0001); // done, and nothing in flight
    expect(s.irq).toBe(1);
    expect(s.cycles).toBeGreaterThan(0);
    expect(s.cycles).toBeLessThan(s.axiCycles);
  });

  it("traps on a corrupted opcode and says so in STATUS", async () => {
    const image = buildMemory(program, x);
    image[0] = (image[0] & 0xf0) | 0xf; // opcode 15 does not exist
    const r = await run(image, { latency: 2, stall: 0, seed: 1 });
    expect(r.exitCode).toBe(2);
    expect(r.result.status & 0b0011).toBe(0b0010);
  });
});
