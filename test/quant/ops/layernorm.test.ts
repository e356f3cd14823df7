import { describe, expect, it } from "vitest";
import { quantizeReal } from "../../../src/arith.js";
import { Checkpoint, loadCheckpoint, requireTensor } from "../../../src/quant/checkpoint.js";
import { ImageSet, loadMnist } from "../../../src/quant/data/mnist.js";
import {
  PtfParams,
  QuantizedLayerNorm,
  applySmoothing,
  calibratePtf,
  channelMaxAbs,
  dequantizePtf,
  fakeQuantLayerNorm,
  foldEpsilon,
  quantizeLayerNorm,
  quantizePtf,
  smoothingFactors,
} from "../../../src/quant/ops/layernorm.js";
import { floatOps } from "../../../src/quant/float/float-ops.js";
import { layerNorm as layerNormFloat } from "../../../src/quant/float/kernels.js";
import { forwardVit } from "../../../src/quant/float/vit.js";
import { VitOps } from "../../../src/quant/ops.js";
import { sliceImages } from "../../../src/quant/patch-embed.js";
import { normalizeImage } from "../../../src/quant/preprocess.js";
import { activationExponent, candidateExponents, floatScale, maxAbs } from "../../../src/quant/pot.js";
import { MAX_LN_EPS_TERM, MAX_LN_SHIFT, layerNormInt } from "../../../src/sim/golden/layernorm.js";
import { P2vitError } from "../../../src/util/errors.js";
import { gaussian, seededRandom } from "../../../src/util/random.js";
import { HAS_SHARED_DATA, MNIST_DIR, VIT4MNIST_DIR } from "../../paths.js";
import { sqnrDb } from "../../sqnr.js";

const EPS = 1e-5;


/** Channel c's spread in the synthetic inputs: log-uniform over `span`×, channels shuffled. */
function channelScale(c: number, dim: number, span: number): number {
  return 0.05 * span ** (((c * 7919) % dim) / (dim - 1));
}

/**
 * Residual-stream-like rows: per-channel spread over `span`× and per-channel offsets. The offsets come
 * from a fixed seed, so calibration and evaluation rows (different `seed`s) share one distribution.
 */
function unevenChannels(seed: number, rows: number, dim: number, span: number): Float32Array {
  const offsets = seededRandom(99);
  const offset = Float64Array.from({ length: dim }, (_, c) => 0.5 * channelScale(c, dim, span) * gaussian(offsets));
  const rng = seededRandom(seed);
  return Float32Array.from({ length: rows * dim }, (_, i) => offset[i % dim] + channelScale(i % dim, dim, span) * gaussian(rng));
}

/**
 * γ and β as a trained model has them next to such an input: γ[c] is large where channel c is narrow,
 * which brings every output channel to a similar range (and makes a narrow channel's input
 * quantization error count as much as a wide one's).
 */
function compensatingAffine(seed: number, dim: number, span: number): { gamma: Float32Array; beta: Float32Array } {
  const rng = seededRandom(seed);
  let meanSquare = 0;
  for (let c = 0; c < dim; c++) meanSquare += channelScale(c, dim, span) ** 2 / dim;
  return {
    gamma: Float32Array.from({ length: dim }, (_, c) => ((1 + 0.3 * gaussian(rng)) * Math.sqrt(meanSquare)) / channelScale(c, dim, span)),
    beta: Float32Array.from({ length: dim }, () => 0.2 * gaussian(rng)),
  };
}

/** The same core fed a per-tensor input: one exponent (the activation observer's), every k = 3. */
function perTensor(layer: QuantizedLayerNorm, calibration: Float32Array, eps: number): QuantizedLayerNorm {
  const exponent = activationExponent(calibration, 8);
  const k = new Uint8Array(layer.dim).fill(3);
  return { ...layer, inputExponent: exponent, params: { ...layer.params, k, epsTerm: foldEpsilon(eps, layer.dim, exponent) } };
}

/** The output-step error of the core against the ideal: the float LayerNorm of the same PTF input, rounded at αy. */
function stepsFromIdeal(layer: QuantizedLayerNorm, x: Float32Array, rows: number, gamma: Float32Array, beta: Float32Array, eps: number) {
  const ptf = { exponent: layer.inputExponent, k: layer.params.k };
  const ideal = layerNormFloat(dequantizePtf(quantizePtf(x, rows, layer.dim, ptf), layer.dim, ptf), rows, layer.dim, gamma, beta, eps);
  const y = fakeQuantLayerNorm(layer, x, rows);
  let max = 0;
  let off = 0;
  for (let i = 0; i < y.length; i++) {
    const d = Math.abs(y[i] * 2 ** -layer.outputExponent - quantizeReal(ideal[i], layer.outputExponent, 8));
    max = Math.max(max, d);
    if (d > 0) off++;
  }
  return { max, fractionOff: off / y.length };
}

/** Squared error of channel c of x under PTF exponent e − 3 + k. */
function channelError(x: Float32Array, dim: number, c: number, exponent: number, k: number): number {
  let sum = 0;
  const e = exponent - 3 + k;
  for (let i = c; i < x.length; i += dim) sum += (x[i] - quantizeReal(x[i], e, 8) * 2 ** e) ** 2;
  return sum;
}

describe("PTF calibration", () => {
  const rows = 300;
  const dim = 49;
  const x = unevenChannels(1, rows, dim, 30);

  it("chooses α among the adaptive-rounding candidates and each k by its channel's own L2 error", () => {
    const ptf = calibratePtf(x, rows, dim);
    const candidates = candidateExponents(floatScale(maxAbs(x), 8));
    expect(candidates).toContain(ptf.exponent);
    const total = (e: number) => {
      let sum = 0;
      for (let c = 0; c < dim; c++) sum += Math.min(...[0, 1, 2, 3].map((k) => channelError(x, dim, c, e, k)));
      return sum;
    };
    for (const e of candidates) expect(total(ptf.exponent)).toBeLessThanOrEqual(total(e));
    for (let c = 0; c < dim; c++) {
      const errors = [0, 1, 2, 3].map((k) => channelError(x, dim, c, ptf.exponent, k));
      expect(errors[ptf.k[c]]).toBe(Math.min(...errors));
    }
  });

  it("gives narrow channels finer steps than wide ones", () => {
    const ptf = calibratePtf(x, rows, dim);
    const range = channelMaxAbs(x, rows, dim);
    const order = Array.from(range.keys()).sort((a, b) => range[a] - range[b]);
    const meanK = (cs: number[]) => cs.reduce((s, c) => s + ptf.k[c], 0) / cs.length;
    expect(meanK(order.slice(0, 12))).toBeLessThan(meanK(order.slice(-12)));
    expect(ptf.k[order[0]]).toBe(0);
    expect(ptf.k[order[dim - 1]]).toBeGreaterThanOrEqual(2);
  });

  it("quantizes each channel at its own exponent, rounding half up and saturating", () => {
    const ptf: PtfParams = { exponent: 0, k: Uint8Array.from([0, 3]) };
    // channel 0 at 2^-3, channel 1 at 2^0
    const q = quantizePtf(Float32Array.from([0.0625, 0.5, -0.0625, -0.5, 100, -200]), 3, 2, ptf);
    expect(Array.from(q)).toEqual([1, 1, 0, 0, 127, -128]);
    expect(Array.from(dequantizePtf(q, 2, ptf))).toEqual([0.125, 1, 0, 0, 127 / 8, -128]);
  });

  it("quantizes exactly as quantizeReal does at each channel's exponent, ties and extremes included", () => {
    const rng = seededRandom(8);
    const ptf: PtfParams = { exponent: -2, k: Uint8Array.from({ length: dim }, (_, c) => c % 4) };
    // Multiples of a quarter of the finest step hit every tie; some values are far out of range.
    const v = Float32Array.from({ length: rows * dim }, () => (Math.floor(rng() * 4096) - 2048) * 2 ** -7 * (rng() < 0.05 ? 64 : 1));
    const q = quantizePtf(v, rows, dim, ptf);
    for (let i = 0; i < v.length; i++) {
      if (q[i] !== quantizeReal(v[i], ptf.exponent - 3 + ptf.k[i % dim], 8)) throw new Error(`element ${i}: ${v[i]} → ${q[i]}`);
    }
  });

  it("refuses malformed inputs", () => {
    expect(() => calibratePtf(new Float32Array(5), 2, 3)).toThrow(/expected 2×3 = 6 values, got 5/);
    expect(() => calibratePtf(Float32Array.from([1, NaN]), 1, 2)).toThrow(P2vitError);
    expect(() => quantizePtf(new Float32Array(2), 1, 2, { exponent: 0, k: Uint8Array.from([0, 4]) })).toThrow(/k\[1\]: expected 0..3/);
    expect(() => quantizePtf(new Float32Array(2), 1, 2, { exponent: 0.5, k: new Uint8Array(2) })).toThrow(/exponent/);
  });
});

describe("quantizeLayerNorm", () => {
  const rows = 256;
  const dim = 192;
  const calibration = unevenChannels(2, rows, dim, 30);
  const evaluation = unevenChannels(3, rows, dim, 30);
  const { gamma, beta } = compensatingAffine(4, dim, 30);
  const layer = quantizeLayerNorm({ name: "ln", gamma, beta, eps: EPS, calibrationInput: calibration, rows, dim });

  it("derives integer parameters in range, with full 8-bit multipliers", () => {
    expect(layer.params.epsTerm).toBe(foldEpsilon(EPS, dim, layer.inputExponent));
    for (let c = 0; c < dim; c++) {
      const m = Math.abs(layer.params.multiplier[c]);
      expect(m).toBeLessThanOrEqual(255);
      if (layer.params.shift[c] < MAX_LN_SHIFT) expect(m).toBeGreaterThanOrEqual(128);
      const a = gamma[c] * 2 ** -layer.outputExponent;
      expect(Math.abs(layer.params.multiplier[c] * 2 ** (12 - layer.params.shift[c]) - a)).toBeLessThanOrEqual(2 ** (11 - layer.params.shift[c]));
    }
  });

  it("is the integer core bit for bit: fake-quant = layerNormInt · 2^αy", () => {
    const ptf = { exponent: layer.inputExponent, k: layer.params.k };
    const q = quantizePtf(evaluation, rows, dim, ptf);
    const expected = Float32Array.from(layerNormInt(q, rows, dim, layer.params), (v) => v * 2 ** layer.outputExponent);
    // The first index where they differ (−1: none); a deep toEqual on 49k floats takes seconds.
    const firstDifference = (y: Float32Array) => y.findIndex((v, i) => !Object.is(v, expected[i]));
    expect(firstDifference(fakeQuantLayerNorm(layer, evaluation, rows))).toBe(-1);
    expect(firstDifference(fakeQuantLayerNorm(layer, dequantizePtf(q, dim, ptf), rows))).toBe(-1);
  });

  it("stays within one output step of the ideal LayerNorm of its input, and PTF beats a per-tensor input", () => {
    const { max, fractionOff } = stepsFromIdeal(layer, evaluation, rows, gamma, beta, EPS);
    expect(max).toBeLessThanOrEqual(1);
    const reference = layerNormFloat(evaluation, rows, dim, gamma, beta, EPS);
    // What int8 at αy allows at best: the float LayerNorm output itself, rounded.
    const outputOnlyDb = sqnrDb(reference, Float32Array.from(reference, (v) => quantizeReal(v, layer.outputExponent, 8) * 2 ** layer.outputExponent));
    const ptfDb = sqnrDb(reference, fakeQuantLayerNorm(layer, evaluation, rows));
    const tensorDb = sqnrDb(reference, fakeQuantLayerNorm(perTensor(layer, calibration, EPS), evaluation, rows));
    const ptf = { exponent: layer.inputExponent, k: layer.params.k };
    const inputPtfDb = sqnrDb(evaluation, dequantizePtf(quantizePtf(evaluation, rows, dim, ptf), dim, ptf));
    const single = { exponent: activationExponent(calibration, 8), k: new Uint8Array(dim).fill(3) };
    const inputTensorDb = sqnrDb(evaluation, dequantizePtf(quantizePtf(evaluation, rows, dim, single), dim, single));
    console.log(
      `synthetic LN (D=${dim}, channel ranges over 30×): output SQNR PTF ${ptfDb.toFixed(2)} dB, per-tensor ${tensorDb.toFixed(2)} dB, ` +
        `int8 output alone ${outputOnlyDb.toFixed(2)} dB; input SQNR PTF ${inputPtfDb.toFixed(2)} dB, per-tensor ${inputTensorDb.toFixed(2)} dB; ` +
        `${(100 * fractionOff).toFixed(2)}% of outputs one step from the ideal rounding`,
    );
    expect(ptfDb).toBeGreaterThan(25);
    expect(ptfDb).toBeGreaterThan(tensorDb + 6);
    expect(inputPtfDb).toBeGreaterThan(inputTensorDb + 3);
  });

  it("outputs β for constant rows, with ε = 0 too (no division by zero)", () => {
    for (const eps of [0, EPS]) {
      const l = quantizeLayerNorm({ name: "ln", gamma, beta, eps, calibrationInput: calibration, rows, dim });
      // 0 and 3·2^α are on every channel's PTF grid, so these rows stay constant once quantized.
      for (const value of [0, 3 * 2 ** l.inputExponent]) {
        const y = fakeQuantLayerNorm(l, new Float32Array(4 * dim).fill(value), 4);
        for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - beta[i % dim])).toBeLessThanOrEqual(2 ** (l.outputExponent - 1));
      }
    }
  });

  it("lifts the input exponent of a vanishing input so that ε still fits the core", () => {
    const tiny = Float32Array.from(calibration, (v) => v * 2 ** -30);
    for (const input of [tiny, new Float32Array(rows * dim)]) {
      const l = quantizeLayerNorm({ name: "ln", gamma, beta, eps: EPS, calibrationInput: input, rows, dim });
      expect(l.params.epsTerm).toBeLessThanOrEqual(MAX_LN_EPS_TERM);
      expect(foldEpsilon(EPS, dim, l.inputExponent - 1)).toBeGreaterThan(MAX_LN_EPS_TERM);
      const y = fakeQuantLayerNorm(l, input, rows);
      const reference = layerNormFloat(input, rows, dim, gamma, beta, EPS);
      expect(sqnrDb(reference, y)).toBeGreaterThan(25);
    }
  });

  it("keeps a forced output exponent", () => {
    const l = quantizeLayerNorm({ name: "ln", gamma, beta, eps: EPS, calibrationInput: calibration, rows, dim, outputExponent: -3 });
    expect(l.outputExponent).toBe(-3);
  });

  it("refuses bad options with messages that name the layer", () => {
    const base = { name: "blocks.0.norm1", gamma, beta, eps: EPS, calibrationInput: calibration, rows, dim };
    expect(() => quantizeLayerNorm({ ...base, name: "" })).toThrow(/name/);
    expect(() => quantizeLayerNorm({ ...base, gamma: new Float32Array(3) })).toThrow(/"blocks.0.norm1": gamma and beta: expected 192 values each, got 3/);
    expect(() => quantizeLayerNorm({ ...base, eps: -1 })).toThrow(/eps/);
    expect(() => quantizeLayerNorm({ ...base, rows: 3 })).toThrow(/calibrationInput/);
    expect(() => quantizeLayerNorm({ ...base, outputExponent: 1.5 })).toThrow(/outputExponent/);
    expect(() => quantizeLayerNorm({ ...base, dim: 2048, gamma: new Float32Array(2048), beta: new Float32Array(2048) })).toThrow(/dim/);
    const huge = Float32Array.from(beta, (b, c) => (c === 5 ? 1e8 : b));
    expect(() => quantizeLayerNorm({ ...base, beta: huge, outputExponent: -8 })).toThrow(/channel 5/);
    expect(() => quantizeLayerNorm({ ...base, beta: Float32Array.from(beta, () => NaN) })).toThrow(P2vitError);
  });
});

describe("PoT-aware smoothing", () => {
  it("computes cs = 2^round(log2(max|X|^0.35 / max|W|^0.65)) per input channel", () => {
    // W is 2 × 4; column maxima 1, 0.25, 0, 4.
    const w = Float32Array.from([1, -0.25, 0, 4, -0.5, 0.125, 0, -1]);
    const xMax = Float32Array.from([2 ** 10, 1, 5, 0]);
    // channel 0: 0.35·10 − 0 = 3.5 → 4; channel 1: 0 + 0.65·2 = 1.3 → 1; W or X range 0 → 1.
    expect(Array.from(smoothingFactors(xMax, w, 2, 4))).toEqual([16, 2, 1, 1]);
  });

  it("folds exactly: the LayerNorm→Linear float output is unchanged", () => {
    const rows = 20;
    const dim = 24;
    const outF = 10;
    const x = unevenChannels(5, rows, dim, 30);
    const { gamma, beta } = compensatingAffine(6, dim, 30);
    const rng = seededRandom(7);
    const weight = Float32Array.from({ length: outF * dim }, (_, i) => gaussian(rng) * (1 + (i % dim)));
    const cs = smoothingFactors(channelMaxAbs(layerNormFloat(x, rows, dim, gamma, beta, EPS), rows, dim), weight, outF, dim);
    expect(cs.every((f) => Number.isInteger(Math.log2(f)))).toBe(true);
    expect(new Set(cs).size).toBeGreaterThan(1);
    const s = applySmoothing(gamma, beta, weight, cs);
    const linear = (h: Float32Array, w: Float32Array) =>
      Float64Array.from({ length: rows * outF }, (_, i) => {
        let sum = 0;
        for (let c = 0; c < dim; c++) sum += h[Math.floor(i / outF) * dim + c] * w[(i % outF) * dim + c];
        return sum;
      });
    expect(linear(layerNormFloat(x, rows, dim, s.gamma, s.beta, EPS), s.weight)).toEqual(
      linear(layerNormFloat(x, rows, dim, gamma, beta, EPS), weight),
    );
    expect(s.gamma).not.toBe(gamma);
    expect(Array.from(gamma)).toEqual(Array.from(compensatingAffine(6, dim, 30).gamma));
  });

  it("refuses mismatched shapes and factors that are not powers of two", () => {
    const one = new Float32Array(2).fill(1);
    expect(() => smoothingFactors(new Float32Array(3), new Float32Array(4), 2, 2)).toThrow(/expected 2 LayerNorm output ranges, got 3/);
    expect(() => applySmoothing(one, one, new Float32Array(4), Float32Array.from([1, 3]))).toThrow(/factors\[1\]: expected a power of two, got 3/);
    expect(() => applySmoothing(one, new Float32Array(1), new Float32Array(4), one)).toThrow(/gamma and beta/);
    expect(() => applySmoothing(one, one, new Float32Array(5), one)).toThrow(/weight/);
  });
});

// ---------------------------------------------------------------------------------------------------
// Real data: every LayerNorm input of vit4mnist, recorded from the float reference forward pass.

/** The input rows of every LayerNorm over `images`, by timm name, concatenated image after image. */
function layerNormInputs(ckpt: Checkpoint, images: ImageSet): Map<string, Float32Array> {
  const arch = ckpt.config.architecture;
  const seen = new Map<string, Float32Array[]>();
  const recording: VitOps = {
    ...floatOps,
    layerNorm: (name, x, rows, dim, gamma, beta, eps) => {
      seen.set(name, [...(seen.get(name) ?? []), x.slice()]);
      return floatOps.layerNorm(name, x, rows, dim, gamma, beta, eps);
    },
  };
  const pixels = arch.in_chans * arch.img_size ** 2;
  for (let i = 0; i < images.count; i++) {
    const image = normalizeImage(images.images.subarray(i * pixels, (i + 1) * pixels), arch.in_chans, arch.img_size, arch.img_size, ckpt.config.preprocess);
    forwardVit(ckpt, image, recording);
  }
  const joined = new Map<string, Float32Array>();
  for (const [name, parts] of seen) {
    const all = new Float32Array(parts.length * parts[0].length);
    parts.forEach((part, i) => all.set(part, i * part.length));
    joined.set(name, all);
  }
  return joined;
}

describe.skipIf(!HAS_SHARED_DATA)("integer LayerNorm on vit4mnist (real data)", () => {
  it("every LayerNorm: > 25 dB against the float LayerNorm, within one step of ideal, PTF ahead of per-tensor", () => {
    const ckpt = loadCheckpoint(VIT4MNIST_DIR);
    const arch = ckpt.config.architecture;
    const dim = arch.embed_dim;
    const images = loadMnist(MNIST_DIR, { limit: 100 });
    const calibration = layerNormInputs(ckpt, sliceImages(images, 0, 50));
    const evaluation = layerNormInputs(ckpt, sliceImages(images, 50, 50));
    const rows = calibration.get("blocks.0.norm1")!.length / dim;
    const table: string[] = [];
    let gain = 0;
    for (const [name, x] of calibration) {
      const gamma = requireTensor(ckpt, `${name}.weight`).data;
      const beta = requireTensor(ckpt, `${name}.bias`).data;
      const layer = quantizeLayerNorm({ name, gamma, beta, eps: arch.norm_eps, calibrationInput: x, rows, dim });
      const xe = evaluation.get(name)!;
      const reference = layerNormFloat(xe, rows, dim, gamma, beta, arch.norm_eps);
      const ptfDb = sqnrDb(reference, fakeQuantLayerNorm(layer, xe, rows));
      const tensorDb = sqnrDb(reference, fakeQuantLayerNorm(perTensor(layer, x, arch.norm_eps), xe, rows));
      const { max, fractionOff } = stepsFromIdeal(layer, xe, rows, gamma, beta, arch.norm_eps);
      table.push(`${name.padEnd(15)} PTF ${ptfDb.toFixed(2)} dB  per-tensor ${tensorDb.toFixed(2)} dB  off-ideal ${(100 * fractionOff).toFixed(1)}%`);
      expect(ptfDb, name).toBeGreaterThan(25);
      expect(ptfDb, name).toBeGreaterThan(tensorDb);
      expect(max, name).toBeLessThanOrEqual(1);
      gain += (ptfDb - tensorDb) / calibration.size;
    }
    console.log(`vit4mnist LayerNorm output SQNR vs float (50 images, 850 rows each):\n${table.join("\n")}\nmean PTF gain ${gain.toFixed(2)} dB`);
    expect(gain).toBeGreaterThan(1);
  });
});
