/**
 * Quantizer side of the LayerNorm core (docs/arithmetic.md, "Integer LayerNorm with PTF input"):
 * PTF calibration of the input (one PoT base exponent per tensor, a factor 2^k per channel), the
 * integer parameters of the core derived from γ, β and ε, the fake-quant simulation, and the
 * PoT-aware smoothing that moves activation range between this LayerNorm and the Linear after it.
 */
import { roundHalfUp, signedRange } from "../../arith.js";
import {
  IntLayerNormParams,
  MAX_LN_DIM,
  MAX_LN_EPS_TERM,
  MAX_LN_MULTIPLIER,
  MAX_LN_SHIFT,
  MAX_PTF_K,
  NORM_FRAC_BITS,
  layerNormInt,
} from "../../sim/golden/layernorm.js";
import { P2vitError, check } from "../../util/errors.js";
import { layerNorm } from "../float/kernels.js";
import { activationExponent, candidateExponents, chooseExponent, floatScale, maxAbs } from "../pot.js";

const ACT_BITS = 8;
/** How many factors k a channel may take: its step is 2^(α−3+k), so k = 3 is the base scale 2^α, k = 0 is 8× finer. */
const PTF_LEVELS = MAX_PTF_K + 1;

/** PTF quantization of a rows × dim tensor: channel c is int8 at exponent `exponent` − 3 + k[c]. */
export interface PtfParams {
  exponent: number;
  k: Uint8Array;
}

/** The exponent of channel c under PTF. */
function channelExponent(base: number, k: number): number {
  return base - MAX_PTF_K + k;
}

function checkMatrix(x: Float32Array, rows: number, dim: number, what: string): void {
  check(Number.isInteger(rows) && rows >= 1, `${what}: rows: expected a positive integer, got ${rows}`);
  check(Number.isInteger(dim) && dim >= 1, `${what}: dim: expected a positive integer, got ${dim}`);
  check(x.length === rows * dim, () => `${what}: expected ${rows}×${dim} = ${rows * dim} values, got ${x.length}`);
}

/** max|x| of each column of a rows × dim matrix: the per-channel range the smoothing needs. */
export function channelMaxAbs(x: Float32Array, rows: number, dim: number): Float32Array {
  checkMatrix(x, rows, dim, "channelMaxAbs");
  maxAbs(x, "channelMaxAbs input");
  const m = new Float32Array(dim);
  for (let i = 0; i < x.length; i++) m[i % dim] = Math.max(m[i % dim], Math.abs(x[i]));
  return m;
}

/**
 * quantizeReal(v, e, 8) with 2^−e given: round half up, then saturate. Written out for the hot loops
 * (calibration runs it rows × dim × 7 times), where the general function costs ten times as much.
 */
function toInt8(v: number, inverseStep: number): number {
  return Math.min(127, Math.max(-128, Math.floor(v * inverseStep + 0.5)));
}

/** Squared int8 quantization error of every channel at one exponent. */
function channelErrors(x: Float32Array, dim: number, exponent: number): Float64Array {
  const inverse = 2 ** -exponent;
  const step = 2 ** exponent;
  const errors = new Float64Array(dim);
  for (let row = 0; row < x.length; row += dim) {
    for (let c = 0; c < dim; c++) {
      const v = x[row + c];
      errors[c] += (v - toInt8(v, inverse) * step) ** 2;
    }
  }
  return errors;
}

/** Per channel the k with the lowest error (the finest on a tie), and the tensor's total error. */
function bestFactors(errorsAt: (exponent: number) => Float64Array, base: number, dim: number): { k: Uint8Array; error: number } {
  const levels = Array.from({ length: PTF_LEVELS }, (_, k) => errorsAt(channelExponent(base, k)));
  const k = new Uint8Array(dim);
  let error = 0;
  for (let c = 0; c < dim; c++) {
    let best = 0;
    for (let j = 1; j < PTF_LEVELS; j++) if (levels[j][c] < levels[best][c]) best = j;
    k[c] = best;
    error += levels[best][c];
  }
  return { k, error };
}

/**
 * PTF calibration: the base exponent α is the adaptive rounding (pot.ts) of the scale at which the
 * widest channel fits with k = 3, judged by the total L2 error after each channel has taken its best
 * k; then k[c] is the factor with the lowest L2 error of channel c. `minExponent` lifts candidates
 * that are too fine (quantizeLayerNorm uses it to keep the folded ε within the core's width).
 * The four candidates and four factors share their channel exponents (7 distinct), so each channel's
 * error at each exponent is computed once.
 */
export function calibratePtf(x: Float32Array, rows: number, dim: number, minExponent = -Infinity): PtfParams {
  checkMatrix(x, rows, dim, "calibratePtf");
  const candidates = candidateExponents(floatScale(maxAbs(x, "PTF calibration input"), ACT_BITS)).map((e) =>
    Math.max(e, minExponent),
  );
  const errors = new Map<number, Float64Array>();
  const errorsAt = (e: number) => {
    let errorsOfE = errors.get(e);
    if (!errorsOfE) errors.set(e, (errorsOfE = channelErrors(x, dim, e)));
    return errorsOfE;
  };
  const choices = new Map(candidates.map((e) => [e, bestFactors(errorsAt, e, dim)]));
  const exponent = chooseExponent(candidates, (e) => choices.get(e)!.error);
  return { exponent, k: choices.get(exponent)!.k };
}

function checkPtf(params: PtfParams, dim: number): void {
  check(Number.isInteger(params.exponent), `PTF exponent: expected an integer, got ${params.exponent}`);
  check(params.k.length === dim, () => `PTF k: expected ${dim} factors, got ${params.k.length}`);
  for (let c = 0; c < dim; c++) check(params.k[c] <= MAX_PTF_K, () => `PTF k[${c}]: expected 0..${MAX_PTF_K}, got ${params.k[c]}`);
}

/** 2^(±(α − 3 + k[c])) per channel: the step (sign 1) or its inverse (sign −1). */
function channelSteps(params: PtfParams, sign: 1 | -1): Float64Array {
  return Float64Array.from(params.k, (k) => 2 ** (sign * channelExponent(params.exponent, k)));
}

/** int8 integers of x under PTF: channel c at exponent α − 3 + k[c], rounded half up, saturated. */
export function quantizePtf(x: Float32Array, rows: number, dim: number, params: PtfParams): Int8Array {
  checkMatrix(x, rows, dim, "quantizePtf");
  checkPtf(params, dim);
  const inverse = channelSteps(params, -1);
  const q = new Int8Array(x.length);
  for (let row = 0; row < x.length; row += dim) {
    for (let c = 0; c < dim; c++) q[row + c] = toInt8(x[row + c], inverse[c]);
  }
  return q;
}

/** The real values of PTF integers. */
export function dequantizePtf(q: Int8Array, dim: number, params: PtfParams): Float32Array {
  checkPtf(params, dim);
  check(q.length % dim === 0, () => `dequantizePtf: expected rows × ${dim} values, got ${q.length}`);
  const step = channelSteps(params, 1);
  const x = new Float32Array(q.length);
  for (let row = 0; row < q.length; row += dim) {
    for (let c = 0; c < dim; c++) x[row + c] = q[row + c] * step[c];
  }
  return x;
}

/**
 * ε as the core adds it: the variance term V = D·S2 − S1² is D² · variance in units of the aligned
 * step 2^(α−3), so ε becomes E = round(ε · D² · 2^(2·(3−α))).
 */
export function foldEpsilon(eps: number, dim: number, inputExponent: number): number {
  return roundHalfUp(eps * dim * dim * 2 ** (2 * (MAX_PTF_K - inputExponent)));
}

/**
 * The finest input exponent at which the folded ε fits the core (E ≤ 2^40). An input that would need
 * a finer one is so small against √ε that its LayerNorm output is nearly β: the coarser step costs
 * nothing, since at E = 2^40 one step is 2^-10 of √ε already.
 */
function minInputExponent(eps: number, dim: number): number {
  if (eps === 0) return -Infinity;
  let e = Math.ceil((Math.log2(eps * dim * dim) + 2 * MAX_PTF_K - Math.log2(MAX_LN_EPS_TERM)) / 2);
  while (foldEpsilon(eps, dim, e - 1) <= MAX_LN_EPS_TERM) e--;
  while (foldEpsilon(eps, dim, e) > MAX_LN_EPS_TERM) e++;
  return e;
}

/**
 * M, B and N of one channel for y = A·x̂ + b in output steps (A = γ/2^αy, b = β/2^αy): the largest
 * shift N ≤ 22 at which M = round(A · 2^(N−F)) fits 8 bits with its sign and B = round(b · 2^N) fits
 * int32. The largest N gives M its most significant bits. N stops at 22, where M = round(A · 2^10):
 * a γ so small that |M| < 128 there loses at most 2^-11 of an output step per unit of x̂.
 */
function channelAffine(name: string, c: number, a: number, b: number): { m: number; bias: number; n: number } {
  const { lo, hi } = signedRange(32);
  for (let n = MAX_LN_SHIFT; n >= 0; n--) {
    const m = roundHalfUp(a * 2 ** (n - NORM_FRAC_BITS));
    const bias = roundHalfUp(b * 2 ** n);
    if (Math.abs(m) <= MAX_LN_MULTIPLIER && bias >= lo && bias <= hi) return { m, bias, n };
  }
  throw new P2vitError(
    `layernorm "${name}", channel ${c}: γ/2^αy = ${a} and β/2^αy = ${b} output steps do not fit an ` +
      `8-bit multiplier and an int32 bias at any shift; the output exponent is too fine for this γ, β`,
  );
}

export interface QuantizeLayerNormOptions {
  name: string;
  gamma: Float32Array;
  beta: Float32Array;
  eps: number;
  /** rows × dim float inputs this LayerNorm sees on the calibration images, row-major. */
  calibrationInput: Float32Array;
  rows: number;
  dim: number;
  /** Forces the output exponent (e.g. shared with another consumer); default: minmax + adaptive rounding. */
  outputExponent?: number;
  /**
   * The input's one exponent, when its producer fixed it (a LayerNorm reading another LayerNorm's
   * output): PTF then has k = 3 on every channel. Default: PTF calibrated on the input.
   */
  inputExponent?: number;
}

/** A quantized LayerNorm: PTF int8 input at base exponent α, int8 output at αy, integer parameters. */
export interface QuantizedLayerNorm {
  name: string;
  dim: number;
  /** PTF base exponent α: input channel c is int8 at α − 3 + params.k[c]. */
  inputExponent: number;
  outputExponent: number;
  params: IntLayerNormParams;
}

function checkLayerNormOptions(opts: QuantizeLayerNormOptions): void {
  const { name, gamma, beta, eps, dim } = opts;
  check(typeof name === "string" && name.length > 0, `name: expected a non-empty layer name, got ${JSON.stringify(name)}`);
  check(
    Number.isInteger(dim) && dim >= 1 && dim <= MAX_LN_DIM,
    `layernorm "${name}": dim: expected an integer from 1 to ${MAX_LN_DIM}, got ${dim}`,
  );
  check(gamma.length === dim && beta.length === dim, `layernorm "${name}": gamma and beta: expected ${dim} values each, got ${gamma.length} and ${beta.length}`);
  maxAbs(gamma, `layernorm "${name}" gamma`);
  maxAbs(beta, `layernorm "${name}" beta`);
  check(Number.isFinite(eps) && eps >= 0, `layernorm "${name}": eps: expected a finite number >= 0, got ${eps}`);
  check(
    opts.outputExponent === undefined || Number.isInteger(opts.outputExponent),
    `layernorm "${name}": outputExponent: expected an integer, got ${opts.outputExponent}`,
  );
  checkMatrix(opts.calibrationInput, opts.rows, dim, `layernorm "${name}" calibrationInput`);
}

/**
 * Quantizes one LayerNorm from γ, β, ε and the float inputs it sees on calibration data: PTF for the
 * input, then the output exponent by minmax + adaptive rounding on the float LayerNorm of the
 * PTF-dequantized input (what the deployed core normalizes), then M, B, N per channel.
 */
export function quantizeLayerNorm(opts: QuantizeLayerNormOptions): QuantizedLayerNorm {
  checkLayerNormOptions(opts);
  const { name, gamma, beta, eps, rows, dim } = opts;
  const ptf =
    opts.inputExponent === undefined
      ? calibratePtf(opts.calibrationInput, rows, dim, minInputExponent(eps, dim))
      : { exponent: opts.inputExponent, k: new Uint8Array(dim).fill(MAX_PTF_K) };
  const seen = dequantizePtf(quantizePtf(opts.calibrationInput, rows, dim, ptf), dim, ptf);
  const outputExponent = opts.outputExponent ?? activationExponent(layerNorm(seen, rows, dim, gamma, beta, eps), ACT_BITS);
  const params: IntLayerNormParams = {
    k: ptf.k,
    epsTerm: foldEpsilon(eps, dim, ptf.exponent),
    multiplier: new Int16Array(dim),
    bias: new Int32Array(dim),
    shift: new Uint8Array(dim),
  };
  const outStep = 2 ** -outputExponent;
  for (let c = 0; c < dim; c++) {
    const { m, bias, n } = channelAffine(name, c, gamma[c] * outStep, beta[c] * outStep);
    params.multiplier[c] = m;
    params.bias[c] = bias;
    params.shift[c] = n;
  }
  return { name, dim, inputExponent: ptf.exponent, outputExponent, params };
}

/**
 * The fake-quant LayerNorm: float input quantized by PTF, normalized by the integer core itself, and
 * dequantized at αy. The core's square root, reciprocal and roundings have no float counterpart that
 * matches them bit for bit, so the simulation runs them: quantizer and golden model cannot drift.
 */
export function fakeQuantLayerNorm(layer: QuantizedLayerNorm, x: Float32Array, rows: number): Float32Array {
  const q = quantizePtf(x, rows, layer.dim, { exponent: layer.inputExponent, k: layer.params.k });
  const y = layerNormInt(q, rows, layer.dim, layer.params);
  const step = 2 ** layer.outputExponent;
  const out = new Float32Array(y.length);
  for (let i = 0; i < y.length; i++) out[i] = y[i] * step;
  return out;
}

/**
 * PoT-aware smoothing factors (DESIGN.md) for the Linear after a LayerNorm, one per input channel c:
 * cs[c] = 2^round(log2(max|X_c|^0.35 / max|W_c|^0.65)), with X the LayerNorm output and W_c column c
 * of the outF × inF weight. A channel whose X or W range is 0 has nothing to balance: cs = 1.
 */
export function smoothingFactors(lnOutputMaxAbs: Float32Array, weight: Float32Array, outF: number, inF: number): Float32Array {
  checkMatrix(weight, outF, inF, "smoothingFactors weight");
  check(lnOutputMaxAbs.length === inF, () => `smoothingFactors: expected ${inF} LayerNorm output ranges, got ${lnOutputMaxAbs.length}`);
  maxAbs(lnOutputMaxAbs, "smoothingFactors LayerNorm output range");
  const wMax = channelMaxAbs(weight, outF, inF);
  return Float32Array.from(lnOutputMaxAbs, (xMax, c) => {
    if (xMax === 0 || wMax[c] === 0) return 1;
    return 2 ** roundHalfUp(0.35 * Math.log2(Math.abs(xMax)) - 0.65 * Math.log2(wMax[c]));
  });
}

/**
 * Folds smoothing factors: the LayerNorm output channel c is divided by cs[c] (γ and β divided) and
 * column c of the next Linear's weight multiplied by it. Valid because in a pre-norm block the
 * LayerNorm output feeds only that Linear; exact in float, since every cs is a power of two.
 */
export function applySmoothing(
  gamma: Float32Array,
  beta: Float32Array,
  weight: Float32Array,
  factors: Float32Array,
): { gamma: Float32Array; beta: Float32Array; weight: Float32Array } {
  const inF = factors.length;
  check(gamma.length === inF && beta.length === inF, () => `applySmoothing: expected ${inF} values in gamma and beta, got ${gamma.length} and ${beta.length}`);
  check(weight.length % inF === 0 && weight.length > 0, () => `applySmoothing: weight: expected outF × ${inF} values, got ${weight.length}`);
  for (let c = 0; c < inF; c++) {
    check(factors[c] > 0 && Number.isInteger(Math.log2(factors[c])), () => `applySmoothing: factors[${c}]: expected a power of two, got ${factors[c]}`);
  }
  return {
    gamma: Float32Array.from(gamma, (g, c) => g / factors[c]),
    beta: Float32Array.from(beta, (b, c) => b / factors[c]),
    weight: Float32Array.from(weight, (w, i) => w * factors[i % inF]),
  };
}
