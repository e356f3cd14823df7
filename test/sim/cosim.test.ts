/**
 * Co-simulation: the generated RTL, run by Verilator, against the golden kernel, bit for bit. Uses the
 * real vit4mnist patch embedding on real MNIST images when ../shared/data is there.
 */
import { describe, expect, it } from "vitest";
import { loadModelAndImages } from "../../src/cli/cosim-layer.js";
import { REGIONS } from "../../src/compiler/linear.js";
import { region } from "../../src/compiler/image.js";
import { AcceleratorConfig, DEFAULT_CONFIG, deriveHw, parseAcceleratorConfig } from "../../src/hw/config.js";
import { quantizePatchEmbedding } from "../../src/quant/patch-embed.js";
import { QLinear } from "../../src/quant/qgraph.js";
import { seededRandom } from "../../src/util/random.js";
import { firstMismatch } from "../../src/sim/compare.js";
import { cosimLinear } from "../../src/sim/cosim.js";
import { linearGolden } from "../../src/sim/golden/linear.js";
import { HAS_SHARED_DATA, MNIST_DIR, VIT4MNIST_DIR } from "../paths.js";

const SHAPES: AcceleratorConfig[] = [
  parseAcceleratorConfig({ name: "a4x4", array: { rows: 4, cols: 4 }, busBits: 32 }),
  parseAcceleratorConfig({ name: "a8x16", array: { rows: 8, cols: 16 }, busBits: 64 }),
  DEFAULT_CONFIG,
];
const ODD = parseAcceleratorConfig({ name: "a3x5", array: { rows: 3, cols: 5 }, busBits: 32, buffers: { xDepth: 32, wDepth: 512, oDepth: 16, paramDepth: 16 } });

function mnistPatchEmbedding(images: number) {
  const { ckpt, calibration, evaluation } = loadModelAndImages({ model: VIT4MNIST_DIR, data: MNIST_DIR, images, calib: 100 });
  return quantizePatchEmbedding(ckpt, calibration, evaluation);
}

/**
 * A random int8 layer whose outputs mostly land inside int8: shifts near log2 of the typical
 * accumulator over 50, with every eighth channel at the extreme shifts -8 and 31.
 */
function randomLayer(k: number, n: number, seed: number): QLinear {
  const rnd = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const typical = Math.round(Math.log2((Math.sqrt(k) * 74 * 74) / 50));
  return {
    kind: "linear", name: `random_${k}x${n}`, inFeatures: k, outFeatures: n,
    input: { bits: 8, exponent: 0 }, output: { bits: 8, exponent: 0 }, weightBits: 8,
    weight: Int8Array.from({ length: n * k }, () => int(-128, 127)),
    weightExponents: new Int32Array(n),
    bias: Int32Array.from({ length: n }, () => int(-(2 ** 12), 2 ** 12)),
    shift: Int32Array.from({ length: n }, (_, c) => (c % 8 === 6 ? -8 : c % 8 === 7 ? 31 : Math.max(0, typical + (c % 5) - 2))),
  };
}

function randomInput(rows: number, k: number, seed: number): Int8Array {
  const rnd = seededRandom(seed);
  return Int8Array.from({ length: rows * k }, () => Math.floor(rnd() * 256) - 128);
}

describe.skipIf(!HAS_SHARED_DATA)("vit4mnist patch embedding on 100 real MNIST images", () => {
  const q = HAS_SHARED_DATA ? mnistPatchEmbedding(100) : undefined;

  it.each(SHAPES.map((c) => [`${c.array.rows}x${c.array.cols}`, c] as const))("is bit-exact on a %s array", async (_shape, cfg) => {
    const r = await cosimLinear(cfg, q!.layer, q!.x, q!.rows);
    expect(r.mismatch).toBeNull();
    expect(r.pass).toBe(true);
    expect(r.got.length).toBe(100 * 16 * 64);
    // the outputs are not degenerate: both signs and many distinct values
    expect(new Set(r.got).size).toBeGreaterThan(100);
    expect(r.utilization).toBeGreaterThan(0);
    expect(r.utilization).toBeLessThanOrEqual(1);
  });
});

describe("co-simulation without the shared data", () => {
  it("is bit-exact on the built-in synthetic model", async () => {
    const { ckpt, calibration, evaluation } = loadModelAndImages({ model: "synthetic", images: 8, calib: 16 });
    const q = quantizePatchEmbedding(ckpt, calibration, evaluation);
    const r = await cosimLinear(SHAPES[0], q.layer, q.x, q.rows);
    expect(r.mismatch).toBeNull();
  });

  it.each([
    [7, 12, 5, "K < array rows, N not a multiple of the columns"],
    [37, 9, 13, "K, N and M multiples of nothing"],
    [1, 1, 1, "a single multiply"],
    [130, 5, 4, "K spanning many vector words"],
  ])("is bit-exact on awkward shapes: K=%i N=%i M=%i (%s)", async (k, n, m, _why) => {
    const r = await cosimLinear(ODD, randomLayer(k, n, k * 1000 + n), randomInput(m, k, m), m);
    expect(r.mismatch).toBeNull();
    // most outputs are inside int8, so the comparison sees the arithmetic, not only saturation
    const inside = r.expected.filter((v) => v > -128 && v < 127).length;
    if (r.expected.length >= 20) expect(inside).toBeGreaterThan(r.expected.length / 2);
  });

  it("stays bit-exact with a slow memory that refuses 40% of requests", async () => {
    const layer = randomLayer(23, 11, 5);
    const x = randomInput(10, 23, 9);
    const fast = await cosimLinear(ODD, layer, x, 10);
    const slow = await cosimLinear(ODD, layer, x, 10, { memory: { latency: 9, stallPercent: 40, seed: 4 } });
    expect(slow.mismatch).toBeNull();
    expect(slow.cycles).toBeGreaterThan(fast.cycles);
  });

  it("reloads weights per column tile when they do not all fit the weight buffer", async () => {
    const small = parseAcceleratorConfig({ ...ODD, name: "a3x5w", buffers: { ...ODD.buffers, wDepth: 40 } });
    const r = await cosimLinear(small, randomLayer(40, 12, 77), randomInput(7, 40, 3), 7);
    expect(r.program.instructions.filter((i) => i.insn.op === "LOAD" && i.insn.target === "W").length).toBe(3 * 3);
    expect(r.mismatch).toBeNull();
  });
});

describe("fault injection: the comparison can fail", () => {
  const layer = randomLayer(20, 10, 11);
  const x = randomInput(6, 20, 21);

  it("reports the first output a corrupted weight byte changes", async () => {
    // weight vector word 3 of column tile 1 holds w[5 + c][3] at byte c; corrupt channel 5's
    const corrupted = { ...layer, weight: layer.weight.slice() };
    corrupted.weight[5 * 20 + 3] ^= 0x40;
    const firstChanged = firstMismatch("y", [6, 10], linearGolden(layer, x, 6), linearGolden(corrupted, x, 6));
    expect(firstChanged).not.toBeNull();
    const r = await cosimLinear(ODD, layer, x, 6, {
      corruptImage: (image, program) => {
        const hw = deriveHw(program.config);
        const w = region(program, REGIONS.weights);
        image[(w.word + (1 * 20 + 3) * hw.wordsPerVector) * hw.busBytes + 0] ^= 0x40;
      },
    });
    expect(r.pass).toBe(false);
    expect(r.mismatch).toMatchObject({ tensor: "random_20x10.output", coords: firstChanged!.coords, got: firstChanged!.got, expected: firstChanged!.expected });
  });

  it("traps on a corrupted opcode", async () => {
    await expect(
      cosimLinear(ODD, layer, x, 6, {
        corruptImage: (image, program) => {
          const hw = deriveHw(program.config);
          const i = program.instructions.findIndex((p) => p.insn.op === "MATMUL");
          image[i * hw.wordsPerInstruction * hw.busBytes] = 0x0f;
        },
      }),
    ).rejects.toThrow(/trapped on an unknown opcode/);
  });

  it("reports a mismatch when an instruction's K field is corrupted", async () => {
    const r = await cosimLinear(ODD, layer, x, 6, {
      corruptImage: (image, program) => {
        const hw = deriveHw(program.config);
        const i = program.instructions.findIndex((p) => p.insn.op === "MATMUL");
        image[i * hw.wordsPerInstruction * hw.busBytes + 1] = 19; // k: 20 → 19
      },
    });
    expect(r.pass).toBe(false);
    expect(r.mismatch!.tensor).toBe("random_20x10.output");
    expect(r.mismatch!.got).not.toBe(r.mismatch!.expected);
  });
});
