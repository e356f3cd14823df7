import { existsSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { floatOps } from "../../../src/quant/float/float-ops.js";
import {
  AttentionHeadParams,
  EXP_FRAC_BITS,
  EXP_POLY,
  fakeQuantAttentionScores,
  fakeQuantAttentionValues,
  fakeQuantSoftmax,
  probabilities,
  quantizeAttentionHead,
  quantizeAttentionScores,
  quantizeAttentionValues,
  quantizeSoftmax,
  splitScale,
} from "../../../src/quant/ops/attention.js";
import { activationExponent, quantizeTensor } from "../../../src/quant/pot.js";
import { readSafetensors } from "../../../src/quant/safetensors.js";
import {
  EXP_BITS,
  LOG2_FRAC_BITS,
  attentionScoresInt,
  attentionValuesInt,
  logIntSoftmax,
  uniformIntSoftmax,
} from "../../../src/sim/golden/attention.js";
import { P2vitError } from "../../../src/util/errors.js";
import { gaussian, seededRandom } from "../../../src/util/random.js";
import { VIT4MNIST_DIR } from "../../paths.js";
import { sqnrDb } from "../../sqnr.js";

function randomMatrix(rng: () => number, n: number, sd = 1): Float32Array {
  return Float32Array.from({ length: n }, () => gaussian(rng) * sd);
}


function floatHead(q: Float32Array, k: Float32Array, v: Float32Array, tokens: number, headDim: number, scale: number): Float32Array {
  const s = floatOps.attentionScores("h", q, k, tokens, headDim, scale);
  return floatOps.attentionValues("h", floatOps.softmax("h", s, tokens, tokens), v, tokens, headDim);
}

function fakeQuantHead(p: AttentionHeadParams, q: Float32Array, k: Float32Array, v: Float32Array, tokens: number): Float32Array {
  const s = fakeQuantAttentionScores(p.scores, q, k, tokens);
  return fakeQuantAttentionValues(p.values, fakeQuantSoftmax(p.softmax, s, tokens, tokens), v, tokens);
}

/** The golden kernels end to end on the int8 Q, K, V; the output dequantized at αo. */
function integerHead(p: AttentionHeadParams, q: Float32Array, k: Float32Array, v: Float32Array, tokens: number): Float32Array {
  const hd = p.scores.headDim;
  const s = attentionScoresInt(quantizeTensor(q, p.scores.qExponent, 8), quantizeTensor(k, p.scores.kExponent, 8), tokens, hd, p.scores);
  const probs = p.softmax.attnBits === 4 ? logIntSoftmax(s, tokens, tokens, p.softmax) : uniformIntSoftmax(s, tokens, tokens, p.softmax);
  const out = attentionValuesInt(probs, quantizeTensor(v, p.values.vExponent, 8), tokens, hd, p.values);
  return Float32Array.from(out, (x) => x * 2 ** p.values.outputExponent);
}

interface HeadData {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

/**
 * Calibrates a head on `calib` (batches of tokens × headDim) and measures on `test`: the SQNR in dB of
 * the fake-quant output against the float head, after checking that the golden kernels agree with the
 * fake-quant model bit for bit.
 */
function headSqnr(calib: HeadData, test: HeadData, tokens: number, headDim: number, scale: number, attnBits: 4 | 8): number {
  const p = quantizeAttentionHead({
    name: "h",
    tokens,
    headDim,
    scale,
    attnBits,
    qExponent: activationExponent(calib.q, 8),
    kExponent: activationExponent(calib.k, 8),
    vExponent: activationExponent(calib.v, 8),
    ...calib,
  });
  const size = tokens * headDim;
  const reference = new Float32Array(test.q.length);
  const approx = new Float32Array(test.q.length);
  for (let i = 0; i < test.q.length / size; i++) {
    const at = (x: Float32Array) => x.subarray(i * size, (i + 1) * size);
    const fake = fakeQuantHead(p, at(test.q), at(test.k), at(test.v), tokens);
    expect(integerHead(p, at(test.q), at(test.k), at(test.v), tokens)).toEqual(fake);
    reference.set(floatHead(at(test.q), at(test.k), at(test.v), tokens, headDim, scale), i * size);
    approx.set(fake, i * size);
  }
  return sqnrDb(reference, approx);
}

describe("attention scale", () => {
  it("splits a scale into a power of two and a residual in [2^-½, 2^½)", () => {
    expect(splitScale(0.125)).toEqual({ exponent: -3, residual: 1 });
    expect(splitScale(0.25)).toEqual({ exponent: -2, residual: 1 });
    expect(splitScale(64 ** -0.5)).toEqual({ exponent: -3, residual: 1 });
    const deit32 = splitScale(32 ** -0.5);
    expect(deit32.exponent).toBe(-2);
    expect(deit32.residual).toBeCloseTo(Math.SQRT1_2, 15);
    expect(() => splitScale(0)).toThrow(P2vitError);
    expect(() => splitScale(Number.NaN)).toThrow(P2vitError);
  });
});

describe("softmax constants", () => {
  it("derives the documented constants for αs = −3, ρ = 1", () => {
    expect(quantizeSoftmax({ name: "s", attnBits: 4, scoreExponent: -3, scoreResidual: 1 })).toEqual({
      attnBits: 4,
      scoreExponent: -3,
      scoreResidual: 1,
      inputShift: 13,
      ln2: 45426,
      polyB: 89724,
      polyC: 4168008862,
      polyShift: 14,
      expCutoff: 908520,
    });
  });

  it("follows the formulas of docs/arithmetic.md for any exponent and residual", () => {
    fc.assert(
      fc.property(fc.integer({ min: -40, max: 12 }), fc.double({ min: 0.5, max: 1.999, noNaN: true }), (exponent, residual) => {
        const p = quantizeSoftmax({ name: "s", attnBits: 8, scoreExponent: exponent, scoreResidual: residual });
        const perUnit = 2 ** EXP_FRAC_BITS / residual;
        expect(p.inputShift).toBe(exponent + EXP_FRAC_BITS);
        expect(Math.abs(p.ln2 - Math.LN2 * perUnit)).toBeLessThanOrEqual(0.5);
        expect(Math.abs(p.polyB - EXP_POLY.b * perUnit)).toBeLessThanOrEqual(0.5);
        expect(Math.abs(p.polyC - EXP_POLY.c * perUnit * perUnit)).toBeLessThanOrEqual(0.5);
        const e0 = Math.floor((p.polyB * p.polyB + p.polyC) / 2 ** p.polyShift);
        expect(e0 >= 2 ** (EXP_BITS - 1) && e0 < 2 ** EXP_BITS).toBe(true);
        expect(p.expCutoff).toBe(EXP_BITS * p.ln2);
      }),
    );
  });

  it("refuses bad attnBits, residuals and exponents", () => {
    const ok = { name: "s", attnBits: 4 as const, scoreExponent: -3, scoreResidual: 1 };
    expect(() => quantizeSoftmax({ ...ok, attnBits: 6 as 4 })).toThrow(/attnBits: expected 4 \(log2\) or 8/);
    expect(() => quantizeSoftmax({ ...ok, scoreResidual: 3 })).toThrow(/score residual/);
    expect(() => quantizeSoftmax({ ...ok, scoreExponent: 20 })).toThrow(/outside the softmax core's range/);
    expect(() => quantizeSoftmax({ ...ok, scoreExponent: 0.5 })).toThrow(P2vitError);
  });
});

describe("calibration", () => {
  const rng = seededRandom(1);
  const scores = randomMatrix(rng, 17 * 17 * 4, 3);

  /** Σ (softmax(quantized scores) − softmax(scores))² at step ρ·2^e, written out directly. */
  function softmaxSquaredError(x: Float32Array, tokens: number, e: number, residual: number): number {
    let total = 0;
    for (let r = 0; r < x.length / tokens; r++) {
      const row = Array.from(x.subarray(r * tokens, (r + 1) * tokens));
      const quant = row.map((v) => Math.max(-128, Math.min(127, Math.floor(v / residual / 2 ** e + 0.5))) * 2 ** e * residual);
      const soft = (v: number[]) => {
        const m = Math.max(...v);
        const ex = v.map((y) => Math.exp(y - m));
        const sum = ex.reduce((a, b) => a + b, 0);
        return ex.map((y) => y / sum);
      };
      const a = soft(row);
      const b = soft(quant);
      for (let j = 0; j < tokens; j++) total += (a[j] - b[j]) ** 2;
    }
    return total;
  }

  it("picks the score exponent among a−1…a+2 by the softmax's error, and the shift from it", () => {
    for (const [scale, headDim, sigma] of [
      [0.125, 8, -3],
      [32 ** -0.5, 32, -2],
    ]) {
      const p = quantizeAttentionScores({ name: "s", tokens: 17, headDim, qExponent: -5, kExponent: -6, scale, calibration: scores });
      const { residual } = splitScale(scale);
      const a = Math.floor(Math.log2(Math.max(...scores.map(Math.abs)) / residual / 127.5));
      const errors = [a - 1, a, a + 1, a + 2].map((e) => softmaxSquaredError(scores, 17, e, residual));
      const best = a - 1 + errors.indexOf(Math.min(...errors));
      expect(p.scoreExponent).toBe(best);
      expect(p.shift).toBe(p.scoreExponent + 5 + 6 - sigma);
    }
  });

  it("does not clip the largest scores where the scores' own MSE would", () => {
    // A random 197-token head with h = 64: the scores' MSE trades the largest scores for resolution.
    const rng = seededRandom(4);
    const [tokens, headDim] = [197, 64];
    const [q, k] = [randomMatrix(rng, tokens * headDim, 1.5), randomMatrix(rng, tokens * headDim, 1.5)];
    const x = floatOps.attentionScores("s", q, k, tokens, headDim, 0.125);
    const p = quantizeAttentionScores({ name: "s", tokens, headDim, qExponent: -4, kExponent: -4, scale: 0.125, calibration: x });
    expect(activationExponent(x, 8)).toBeLessThan(p.scoreExponent);
    expect(127 * 2 ** p.scoreExponent).toBeGreaterThanOrEqual(Math.max(...x));
  });

  it("refuses shifts the shifter cannot do, accumulators that could overflow and ragged calibration", () => {
    const opts = { name: "blocks.0.attn.head1", tokens: 17, headDim: 8, qExponent: -5, kExponent: -6, scale: 0.125, calibration: scores };
    expect(() => quantizeAttentionScores({ ...opts, tokens: 16 })).toThrow(/rows of 16 scores/);
    expect(() => quantizeAttentionScores({ ...opts, qExponent: 20 })).toThrow(/blocks.0.attn.head1: requantization shift -\d+/);
    expect(() => quantizeAttentionScores({ ...opts, headDim: 2 ** 17 })).toThrow(/overflow the 32-bit accumulator/);
    const values = { name: "v", attnBits: 4 as const, headDim: 8, vExponent: -4, calibration: scores };
    expect(() => quantizeAttentionValues({ ...values, vExponent: 40 })).toThrow(/requantization shift/);
  });

  it("sets the attention·V shift to αo − αv + F for both probability formats", () => {
    const v4 = quantizeAttentionValues({ name: "v", attnBits: 4, headDim: 8, vExponent: -4, calibration: scores });
    expect(v4.outputExponent).toBe(activationExponent(scores, 8));
    expect(v4.shift).toBe(v4.outputExponent + 4 + LOG2_FRAC_BITS);
    const v8 = quantizeAttentionValues({ name: "v", attnBits: 8, headDim: 8, vExponent: -4, calibration: scores });
    expect(v8.shift).toBe(v8.outputExponent + 4 + 8);
  });
});

describe("fake quantization equals the golden kernels", () => {
  it("scores: the integer kernel's int8 times ρ·2^αs, for PoT and non-PoT scales", () => {
    fc.assert(
      fc.property(fc.constantFrom(0.125, 0.25, 32 ** -0.5, 0.3), fc.integer({ min: 1, max: 20 }), fc.integer(), (scale, tokens, seed) => {
        const rng = seededRandom(seed);
        const headDim = 1 + Math.floor(rng() * 16);
        const q = randomMatrix(rng, tokens * headDim, 2);
        const k = randomMatrix(rng, tokens * headDim, 2);
        const p = quantizeAttentionScores({
          name: "s",
          tokens,
          headDim,
          qExponent: activationExponent(q, 8),
          kExponent: activationExponent(k, 8),
          scale,
          calibration: floatOps.attentionScores("s", q, k, tokens, headDim, scale),
        });
        const ints = attentionScoresInt(quantizeTensor(q, p.qExponent, 8), quantizeTensor(k, p.kExponent, 8), tokens, headDim, p);
        const expected = Float32Array.from(ints, (s) => s * 2 ** p.scoreExponent * p.scaleResidual);
        expect(fakeQuantAttentionScores(p, q, k, tokens)).toEqual(expected);
      }),
      { numRuns: 100 },
    );
  });

  it("softmax: the codes' probabilities, from the fake-quant scores", () => {
    const rng = seededRandom(2);
    for (const attnBits of [4, 8] as const) {
      for (const residual of [1, splitScale(32 ** -0.5).residual]) {
        const p = quantizeSoftmax({ name: "s", attnBits, scoreExponent: -3, scoreResidual: residual });
        const ints = Int8Array.from({ length: 3 * 17 }, () => Math.floor(rng() * 256) - 128);
        const scores = Float32Array.from(ints, (s) => s * 2 ** -3 * residual);
        const codes = attnBits === 4 ? logIntSoftmax(ints, 3, 17, p) : uniformIntSoftmax(ints, 3, 17, p);
        expect(fakeQuantSoftmax(p, scores, 3, 17)).toEqual(probabilities(codes, attnBits));
      }
    }
  });

  it("attention·V: the integer kernel's int8 times 2^αo, for both probability formats", () => {
    fc.assert(
      fc.property(fc.constantFrom(4 as const, 8 as const), fc.constantFrom(1, 17, 65), fc.integer(), (attnBits, tokens, seed) => {
        const rng = seededRandom(seed);
        const headDim = 1 + Math.floor(rng() * 12);
        const sp = quantizeSoftmax({ name: "s", attnBits, scoreExponent: -3, scoreResidual: 1 });
        const scores = Int8Array.from({ length: tokens * tokens }, () => Math.floor(rng() * 256) - 128);
        const codes = attnBits === 4 ? logIntSoftmax(scores, tokens, tokens, sp) : uniformIntSoftmax(scores, tokens, tokens, sp);
        const v = randomMatrix(rng, tokens * headDim, 1 + 4 * rng());
        const p = quantizeAttentionValues({ name: "v", attnBits, headDim, vExponent: activationExponent(v, 8), calibration: v });
        const ints = attentionValuesInt(codes, quantizeTensor(v, p.vExponent, 8), tokens, headDim, p);
        const expected = Float32Array.from(ints, (x) => x * 2 ** p.outputExponent);
        expect(fakeQuantAttentionValues(p, probabilities(codes, attnBits), v, tokens)).toEqual(expected);
      }),
      { numRuns: 100 },
    );
  });
});

describe("accuracy of a whole head (SQNR of the output against float softmax attention)", () => {
  /** Random Q, K, V: Gaussian with unequal spreads, so the score rows range from flat to peaked. */
  function randomHead(seed: number, batches: number, tokens: number, headDim: number): HeadData {
    const rng = seededRandom(seed);
    const n = batches * tokens * headDim;
    return { q: randomMatrix(rng, n, 1.5), k: randomMatrix(rng, n, 1.5), v: randomMatrix(rng, n) };
  }

  it("on random data, with PoT and non-PoT scales (DeiT headDim 64 and 32)", () => {
    for (const [tokens, headDim] of [
      [17, 8],
      [197, 64],
      [197, 32],
    ]) {
      const scale = headDim === 8 ? 0.125 : headDim ** -0.5;
      const calib = randomHead(1, 8, tokens, headDim);
      const test = randomHead(2, 2, tokens, headDim);
      const log2 = headSqnr(calib, test, tokens, headDim, scale, 4);
      const uniform = headSqnr(calib, test, tokens, headDim, scale, 8);
      console.log(
        `random head, ${tokens} tokens, headDim ${headDim}, scale ${scale.toPrecision(4)}: ` +
          `SQNR 4-bit log2 ${log2.toFixed(1)} dB, 8-bit uniform ${uniform.toFixed(1)} dB`,
      );
      expect(log2).toBeGreaterThan(12);
      expect(uniform).toBeGreaterThan(log2);
    }
  });

  const hasVit4mnist = existsSync(join(VIT4MNIST_DIR, "model.safetensors"));
  it.skipIf(!hasVit4mnist)("on vit4mnist block 0: its qkv weights on random LayerNorm-like token rows", () => {
    const tensors = readSafetensors(join(VIT4MNIST_DIR, "model.safetensors"));
    const w = tensors.get("blocks.0.attn.qkv.weight")!.data; // 192 × 64
    const gamma = tensors.get("blocks.0.norm1.weight")!.data;
    const beta = tensors.get("blocks.0.norm1.bias")!.data;
    const [dim, heads, headDim, tokens, scale] = [64, 8, 8, 17, 0.125];
    /** `batches` token matrices x = γ·z + β (z standard normal), through qkv, split into one head's Q, K, V. */
    const headData = (seed: number, batches: number, head: number): HeadData => {
      const rng = seededRandom(seed);
      const rows = batches * tokens;
      const x = Float32Array.from({ length: rows * dim }, (_, i) => gamma[i % dim] * gaussian(rng) + beta[i % dim]);
      const qkv = floatOps.linear("qkv", x, rows, w, null, dim, 3 * dim);
      const slice = (part: number) =>
        Float32Array.from({ length: rows * headDim }, (_, i) => {
          const [row, d] = [Math.floor(i / headDim), i % headDim];
          return qkv[row * 3 * dim + part * dim + head * headDim + d];
        });
      return { q: slice(0), k: slice(1), v: slice(2) };
    };
    const results: string[] = [];
    let worst4 = Infinity;
    let worst8 = Infinity;
    for (let head = 0; head < heads; head++) {
      const calib = headData(10, 32, head);
      const test = headData(20, 16, head);
      const log2 = headSqnr(calib, test, tokens, headDim, scale, 4);
      const uniform = headSqnr(calib, test, tokens, headDim, scale, 8);
      results.push(`head ${head}: ${log2.toFixed(1)} / ${uniform.toFixed(1)}`);
      worst4 = Math.min(worst4, log2);
      worst8 = Math.min(worst8, uniform);
    }
    console.log(`vit4mnist block 0, SQNR dB 4-bit log2 / 8-bit uniform: ${results.join(", ")}`);
    expect(worst4).toBeGreaterThan(12);
    expect(worst8).toBeGreaterThan(worst4);
  });
});
