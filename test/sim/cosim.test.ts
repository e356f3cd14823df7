/**
 * Co-simulation: the generated RTL, run by Verilator, against the golden kernel, bit for bit. Uses the
 * real vit4mnist patch embedding on real MNIST images when ../shared/data is there. Layers with int4
 * weights run in the int4-weight mode of dual-mode builds (weightBits 4).
 */
import { describe, expect, it } from "vitest";
import { loadModelAndImages } from "../../src/cli/cosim-layer.js";
import { blockWord } from "../../src/compiler/layer.js";
import { AcceleratorConfig, deriveHw, parseAcceleratorConfig } from "../../src/hw/config.js";
import { quantizeLinear } from "../../src/quant/linear.js";
import { quantizePatchEmbedding } from "../../src/quant/patch-embed.js";
import { quantizeTensor } from "../../src/quant/pot.js";
import { QLinear } from "../../src/quant/qgraph.js";
import { gaussian, seededRandom } from "../../src/util/random.js";
import { firstMismatch } from "../../src/sim/compare.js";
import { cosimLinear } from "../../src/sim/cosim.js";
import { linearGolden } from "../../src/sim/golden/linear.js";
import { HAS_SHARED_DATA, MNIST_DIR, VIT4MNIST_DIR } from "../paths.js";
import { SMALL_BUFFERS, TINY_CORES } from "../configs.js";

const SHAPES: AcceleratorConfig[] = [
  parseAcceleratorConfig({ name: "a4x4", array: { rows: 4, cols: 4 }, busBits: 32, buffers: SMALL_BUFFERS, cores: TINY_CORES }),
  parseAcceleratorConfig({ name: "a8x16", array: { rows: 8, cols: 16 }, busBits: 64, buffers: SMALL_BUFFERS, cores: TINY_CORES }),
  parseAcceleratorConfig({ name: "a16x16", array: { rows: 16, cols: 16 }, busBits: 128, buffers: SMALL_BUFFERS, cores: TINY_CORES }),
];
const ODD = parseAcceleratorConfig({ name: "a3x5", array: { rows: 3, cols: 5 }, busBits: 32, buffers: SMALL_BUFFERS, cores: TINY_CORES });

function mnistPatchEmbedding(images: number) {
  const { ckpt, calibration, evaluation } = loadModelAndImages({ model: VIT4MNIST_DIR, data: MNIST_DIR, images, calib: 100 });
  return quantizePatchEmbedding(ckpt, calibration, evaluation);
}

/**
 * A random layer with int8 (or int4) weights whose outputs mostly land inside int8: shifts near log2
 * of the typical accumulator over 50, with every eighth channel at the extreme shifts -8 and 31.
 */
function randomLayer(k: number, n: number, seed: number, weightBits: 8 | 4 = 8): QLinear {
  const rnd = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const wMax = 2 ** (weightBits - 1);
  // uniform values have an RMS of about max / √3: 74 for int8
  const typical = Math.round(Math.log2((Math.sqrt(k) * 74 * (wMax / Math.sqrt(3))) / 50));
  return {
    kind: "linear", name: `random${weightBits === 4 ? "_w4" : ""}_${k}x${n}`, inFeatures: k, outFeatures: n,
    input: { bits: 8, exponent: 0 }, output: { bits: 8, exponent: 0 }, weightBits,
    weight: Int8Array.from({ length: n * k }, () => int(-wMax, wMax - 1)),
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

  it("loads weights one column tile at a time when they do not all fit the weight buffer", async () => {
    const small = parseAcceleratorConfig({ ...ODD, name: "a3x5w", buffers: { ...ODD.buffers, wDepth: 40 } });
    const r = await cosimLinear(small, randomLayer(40, 12, 77), randomInput(7, 40, 3), 7);
    const loads = r.program.instructions.map((i) => i.insn).filter((i) => i.op === "LOAD" && i.target === "W");
    expect(loads.length).toBeGreaterThanOrEqual(3);
    expect(loads.every((i) => i.op === "LOAD" && i.count === 40)).toBe(true);
    expect(r.mismatch).toBeNull();
  });
});

/** Dual-mode builds: int4 layers run with MATMUL flag W4 (two MACs per PE per cycle), int8 layers as before. */
const W4_SHAPES: AcceleratorConfig[] = [
  parseAcceleratorConfig({ name: "w4a4x4", weightBits: 4, array: { rows: 4, cols: 4 }, busBits: 32, buffers: { xDepth: 16, wDepth: 128, oDepth: 8, paramDepth: 8 }, cores: TINY_CORES }),
  parseAcceleratorConfig({ ...ODD, name: "w4a3x5", weightBits: 4 }),
  parseAcceleratorConfig({ name: "w4a5x3", weightBits: 4, array: { rows: 5, cols: 3 }, busBits: 64, buffers: { xDepth: 32, wDepth: 64, oDepth: 16, paramDepth: 16 }, cores: TINY_CORES }),
];

/** An int4 layer from the quantizer: gaussian float weights quantized at 4 bits, calibrated on gaussian rows. */
function quantizedInt4Layer(k: number, n: number, rows: number, seed: number): { layer: QLinear; x: Int8Array } {
  const rnd = seededRandom(seed);
  const floats = (length: number, scale: number) => Float32Array.from({ length }, () => gaussian(rnd) * scale);
  const layer = quantizeLinear({
    name: `quantized_w4_${k}x${n}`, weight: floats(n * k, 0.2), bias: floats(n, 0.1), inFeatures: k, outFeatures: n,
    calibration: floats(64 * k, 1), weightBits: 4,
  });
  return { layer, x: quantizeTensor(floats(rows * k, 1), layer.input.exponent, 8) };
}

describe("int4-weight mode (weightBits 4)", () => {
  it.each(W4_SHAPES.map((c) => [`${c.array.rows}x${c.array.cols}`, c] as const))("is bit-exact on a %s array with odd and even K", async (_shape, cfg) => {
    for (const [k, n, m] of [[23, 2 * cfg.array.cols + 1, 2 * cfg.array.rows + 1], [12, cfg.array.cols + 2, cfg.array.rows]]) {
      const r = await cosimLinear(cfg, randomLayer(k, n, k * 100 + n, 4), randomInput(m, k, k + m), m);
      expect(r.mismatch).toBeNull();
      expect(r.program.instructions.filter((i) => i.insn.op === "MATMUL").every((i) => i.insn.op === "MATMUL" && i.insn.flags === 1)).toBe(true);
      const inside = r.expected.filter((v) => v > -128 && v < 127).length;
      expect(inside).toBeGreaterThan(r.expected.length / 2);
    }
  });

  it("runs int8 layers on the same dual-mode build, and a layer from the quantizer at 4 bits", async () => {
    const cfg = W4_SHAPES[1];
    const int8 = await cosimLinear(cfg, randomLayer(37, 9, 5), randomInput(13, 37, 2), 13);
    expect(int8.mismatch).toBeNull();
    expect(int8.program.instructions.some((i) => i.insn.op === "MATMUL" && i.insn.flags === 0)).toBe(true);
    const q = quantizedInt4Layer(49, 11, 7, 3);
    expect(q.layer.weightBits).toBe(4);
    expect(Math.min(...q.layer.weight)).toBeGreaterThanOrEqual(-8);
    expect(Math.max(...q.layer.weight)).toBeLessThanOrEqual(7);
    const r = await cosimLinear(cfg, q.layer, q.x, 7);
    expect(r.mismatch).toBeNull();
    expect(new Set(r.got).size).toBeGreaterThan(10);
  });

  it("reloads int4 weights per column tile when they do not all fit the weight buffer", async () => {
    // K = 39: 20 W entries of pairs per tile, the last pair's high nibble zero; 4 tiles need 80 > wDepth 64
    const r = await cosimLinear(W4_SHAPES[2], randomLayer(39, 12, 78, 4), randomInput(7, 39, 4), 7);
    const loads = r.program.instructions.map((i) => i.insn).filter((i) => i.op === "LOAD" && i.target === "W");
    expect(loads.length).toBeGreaterThanOrEqual(4);
    expect(loads.every((i) => i.op === "LOAD" && i.count % 20 === 0 && i.count <= 64)).toBe(true);
    expect(r.mismatch).toBeNull();
  });

  it("reports the output a corrupted high nibble changes", async () => {
    const cfg = W4_SHAPES[1];
    const layer = randomLayer(21, 10, 12, 4);
    const x = randomInput(4, 21, 8);
    // W entry 4 of column tile 1 holds pair 4: w[5 + c][8] in bits 3:0, w[5 + c][9] in bits 7:4 of byte c;
    // corrupt w[8][9], byte 3
    const corrupted = { ...layer, weight: layer.weight.slice() };
    corrupted.weight[8 * 21 + 9] = corrupted.weight[8 * 21 + 9] === 7 ? -8 : 7;
    const firstChanged = firstMismatch("y", [4, 10], linearGolden(layer, x, 4), linearGolden(corrupted, x, 4));
    expect(firstChanged).not.toBeNull();
    const r = await cosimLinear(cfg, layer, x, 4, {
      corruptImage: (image, program) => {
        const hw = deriveHw(program.config);
        const w = blockWord(program, `${layer.name} weights`);
        const byte = (w + (1 * 11 + 4) * hw.wordsPerVector) * hw.busBytes + 3;
        image[byte] = (image[byte] & 0x0f) | ((corrupted.weight[8 * 21 + 9] & 0xf) << 4);
      },
    });
    expect(r.mismatch).toMatchObject({ coords: firstChanged!.coords, got: firstChanged!.got, expected: firstChanged!.expected });
  });

  it("traps on a W4 MATMUL in an int8-only build", async () => {
    await expect(
      cosimLinear(ODD, randomLayer(20, 10, 11), randomInput(6, 20, 21), 6, {
        corruptImage: (image, program) => {
          const hw = deriveHw(program.config);
          const i = program.instructions.findIndex((p) => p.insn.op === "MATMUL");
          image[i * hw.wordsPerInstruction * hw.busBytes + 11] = 1; // flags (bits 95:88) = W4
        },
      }),
    ).rejects.toThrow(/trapped/);
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
        const w = blockWord(program, `${layer.name} weights`);
        image[(w + (1 * 20 + 3) * hw.wordsPerVector) * hw.busBytes + 0] ^= 0x40;
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
