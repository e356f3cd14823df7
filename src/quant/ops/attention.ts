/**
 * Quantizer side of one attention head (docs/arithmetic.md, "Attention: Q·Kᵀ, log-int softmax,
 * attention·V"): the score and output exponents from calibration data, every integer constant of the
 * softmax core derived from the score exponent, and fake-quant simulations that equal the golden
 * kernels (src/sim/golden/attention.ts) bit for bit.
 */
import { SHIFT_MAX, SHIFT_MIN, accumulatorFits, quantizeReal, roundHalfUp } from "../../arith.js";
import {
  AttentionScoresParams,
  AttentionValuesParams,
  EXP_BITS,
  LOG2_FRAC_BITS,
  LOG2_ZERO_CODE,
  SoftmaxParams,
  UNIFORM_PROB_BITS,
  logIntSoftmax,
  uniformIntSoftmax,
} from "../../sim/golden/attention.js";
import { P2vitError, check } from "../../util/errors.js";
import { floatOps } from "../float/float-ops.js";
import { activationExponent, candidateExponents, chooseExponent, floatScale, maxAbs, quantizeTensor } from "../pot.js";

const ACT_BITS = 8;
/** The MatMul engine's accumulator, which computes Q·Kᵀ. */
const SCORE_ACC_BITS = 32;

/**
 * g: the integer exp works in steps of ρ·2^−16 of the real score axis, whatever the score exponent.
 * Fixing the working step fixes the constants (for ρ = 1, L = round(ln2·2^16) = 45426, off by only
 * 0.09), the rounding of L costs at most z·ρ·2^−17 of relative error (1.5e−4 at z = 19, ρ = 1), and
 * the multiplier (B − rem)² is always 18 × 18 bits (one FPGA DSP).
 */
export const EXP_FRAC_BITS = 16;

/**
 * exp(r) ≈ a · ((r + b)² + c) on r ∈ [−ln2, 0]: the second-order polynomial with the smallest maximum
 * relative error, 1.7248e−3, found by the Remez exchange (I-BERT's least-squares fit has 3.1e−3). The
 * relative error is what matters: softmax only uses ratios of E, so a cancels and the integer exp
 * keeps only b and c. a is here for the real value of one E step (docs/arithmetic.md).
 */
export const EXP_POLY = {
  a: 0.35090781496998497,
  b: 1.3690858126153105,
  c: 0.9704401861028922,
} as const;

/**
 * The scale residual ρ may lie in [0.5, 2) (splitScale gives [2^−½, 2^½)): then B < 2^18 and
 * L < 2^17, the widths docs/arithmetic.md states.
 */
const MIN_RESIDUAL = 0.5;
const MAX_RESIDUAL = 2;

/** Largest |G| for the input shift d·2^G: keeps t = −d·2^G below 2^39, far inside a double. */
const MAX_INPUT_SHIFT = 31;

function checkAttnBits(attnBits: number, name: string): asserts attnBits is 4 | 8 {
  check(attnBits === 4 || attnBits === 8, `${name}: attnBits: expected 4 (log2) or 8 (uniform), got ${attnBits}`);
}

function checkShift(name: string, shift: number, how: string): void {
  if (shift < SHIFT_MIN || shift > SHIFT_MAX) {
    throw new P2vitError(
      `${name}: requantization shift ${shift} (${how}) is outside the supported range ${SHIFT_MIN}..${SHIFT_MAX}`,
    );
  }
}

/**
 * scale = ρ · 2^σ with σ = round_half_up(log2 scale): ρ = 1 for a power of two, and ρ ∈ [2^−½, 2^½)
 * otherwise (DeiT with headDim 32: 2^−2.5 = 2^−½ · 2^−2).
 */
export function splitScale(scale: number): { exponent: number; residual: number } {
  check(Number.isFinite(scale) && scale > 0, `attention scale: expected a finite number > 0, got ${scale}`);
  const exponent = roundHalfUp(Math.log2(scale));
  return { exponent, residual: scale * 2 ** -exponent };
}

export interface QuantizeScoresOptions {
  name: string;
  /** Row length of the scores: the softmax runs over rows of this many values. */
  tokens: number;
  headDim: number;
  qExponent: number;
  kExponent: number;
  /** The model's attention scale (attn_scale, or headDim^−0.5). */
  scale: number;
  /** Float scores scale · Q·Kᵀ seen on calibration data (any number of tokens × tokens matrices). */
  calibration: Float32Array;
}

/**
 * Squared error of the float softmax when the scores are quantized at step ρ·2^exponent: the error
 * that matters for scores, whose only consumer is the softmax.
 */
function softmaxError(scores: Float32Array, tokens: number, reference: Float32Array, exponent: number, residual: number): number {
  const step = 2 ** exponent * residual;
  const quantized = Float32Array.from(scores, (x) => quantizeReal(x / residual, exponent, ACT_BITS) * step);
  const probs = floatOps.softmax("", quantized, scores.length / tokens, tokens);
  let sum = 0;
  for (let i = 0; i < probs.length; i++) sum += (probs[i] - reference[i]) ** 2;
  return sum;
}

/**
 * The score exponent αs: minmax, then adaptive PoT rounding (pot.ts) of the float scores divided by
 * the scale residual ρ (the integer scores are at step ρ·2^αs), judged by the error of the softmax
 * output rather than of the scores. The scores' own MSE prefers exponents that clip the largest scores,
 * and those are the ones the softmax keeps: on random 197-token heads with h = 64 it picks 2^−4, where
 * 2^−3 gives 28.4 instead of 18.2 dB at the head's output (int8 scores alone).
 * A non-PoT scale never reaches the shifter: its PoT part 2^σ joins the shift, and ρ joins the
 * softmax's constants (quantizeSoftmax), because the exp is the only consumer of the scores and its
 * constants are real numbers anyway.
 */
export function quantizeAttentionScores(opts: QuantizeScoresOptions): AttentionScoresParams {
  const { name, tokens, headDim, qExponent, kExponent, calibration } = opts;
  check(Number.isInteger(headDim) && headDim >= 1, `${name}: headDim: expected a positive integer, got ${headDim}`);
  check(
    Number.isInteger(tokens) && tokens >= 1 && calibration.length > 0 && calibration.length % tokens === 0,
    () => `${name}: calibration: expected rows of ${tokens} scores (at least one), got ${calibration.length} values`,
  );
  check(
    Number.isInteger(qExponent) && Number.isInteger(kExponent),
    `${name}: Q and K exponents: expected integers, got ${qExponent} and ${kExponent}`,
  );
  check(
    accumulatorFits(headDim, 0, SCORE_ACC_BITS),
    `${name}: ${headDim} products of int8 × int8 can overflow the ${SCORE_ACC_BITS}-bit accumulator`,
  );
  const { exponent: scaleExponent, residual: scaleResidual } = splitScale(opts.scale);
  const range = floatScale(maxAbs(calibration, `${name} calibration`) / scaleResidual, ACT_BITS);
  const reference = floatOps.softmax("", calibration, calibration.length / tokens, tokens);
  const scoreExponent = chooseExponent(candidateExponents(range), (e) =>
    softmaxError(calibration, tokens, reference, e, scaleResidual),
  );
  const shift = scoreExponent - qExponent - kExponent - scaleExponent;
  checkShift(name, shift, `αs ${scoreExponent} − αq ${qExponent} − αk ${kExponent} − log2 scale ${scaleExponent}`);
  return { headDim, qExponent, kExponent, scaleExponent, scaleResidual, scoreExponent, shift };
}

/** Bit length of an integer 0 ≤ v < 2^53 (counted, since log2 of 2^k − 1 may round up to k). */
function bitLength(v: number): number {
  let bits = 0;
  for (let p = 1; p <= v; p *= 2) bits++;
  return bits;
}

export interface QuantizeSoftmaxOptions {
  name: string;
  attnBits: 4 | 8;
  /** αs and ρ of the scores (AttentionScoresParams). */
  scoreExponent: number;
  scoreResidual: number;
}

/**
 * Every integer constant of the softmax core, from the real step of its input Δ = ρ·2^αs:
 *   G = αs + g                    d·2^G is the score difference in working steps δ = ρ·2^−g;
 *   L = round(ln2 / δ)            ln 2 in working steps (45426 for ρ = 1);
 *   B = round(b / δ)              C = round(c / δ²)   (EXP_POLY);
 *   D = max(0, bitlen(B² + C) − P)  so E(0) = (B² + C) >> D lies in [2^(P−1), 2^P), P = EXP_BITS;
 *   cutoff = P · L                a distance t ≥ cutoff has z ≥ P, where E = 0.
 */
export function quantizeSoftmax(opts: QuantizeSoftmaxOptions): SoftmaxParams {
  const { name, attnBits, scoreExponent, scoreResidual } = opts;
  checkAttnBits(attnBits, name);
  check(Number.isInteger(scoreExponent), `${name}: score exponent: expected an integer, got ${scoreExponent}`);
  check(
    scoreResidual >= MIN_RESIDUAL && scoreResidual < MAX_RESIDUAL,
    `${name}: score residual: expected a number in [${MIN_RESIDUAL}, ${MAX_RESIDUAL}), got ${scoreResidual}`,
  );
  const inputShift = scoreExponent + EXP_FRAC_BITS;
  check(
    Math.abs(inputShift) <= MAX_INPUT_SHIFT,
    `${name}: score exponent ${scoreExponent} is outside the softmax core's range ` +
      `${-MAX_INPUT_SHIFT - EXP_FRAC_BITS}..${MAX_INPUT_SHIFT - EXP_FRAC_BITS}`,
  );
  const stepsPerUnit = 2 ** EXP_FRAC_BITS / scoreResidual;
  const ln2 = roundHalfUp(Math.LN2 * stepsPerUnit);
  const polyB = roundHalfUp(EXP_POLY.b * stepsPerUnit);
  const polyC = roundHalfUp(EXP_POLY.c * stepsPerUnit * stepsPerUnit);
  const polyShift = Math.max(0, bitLength(polyB * polyB + polyC) - EXP_BITS);
  return { attnBits, scoreExponent, scoreResidual, inputShift, ln2, polyB, polyC, polyShift, expCutoff: EXP_BITS * ln2 };
}

export interface QuantizeValuesOptions {
  name: string;
  attnBits: 4 | 8;
  headDim: number;
  vExponent: number;
  /** Float attention outputs P·V seen on calibration data. */
  calibration: Float32Array;
  /** αo fixed by the consumer (all heads of a layer share the exponent of their concatenation). */
  outputExponent?: number;
}

/** Fractional bits of the attention·V accumulator: the exponent of a probability step. */
function probabilityFracBits(attnBits: 4 | 8): number {
  return attnBits === 4 ? LOG2_FRAC_BITS : UNIFORM_PROB_BITS;
}

/** The output exponent αo (minmax + adaptive PoT on the float outputs) and the shift αo − αv + F. */
export function quantizeAttentionValues(opts: QuantizeValuesOptions): AttentionValuesParams {
  const { name, attnBits, headDim, vExponent, calibration } = opts;
  checkAttnBits(attnBits, name);
  check(Number.isInteger(headDim) && headDim >= 1, `${name}: headDim: expected a positive integer, got ${headDim}`);
  check(Number.isInteger(vExponent), `${name}: V exponent: expected an integer, got ${vExponent}`);
  const outputExponent = opts.outputExponent ?? activationExponent(calibration, ACT_BITS);
  const fracBits = probabilityFracBits(attnBits);
  const shift = outputExponent - vExponent + fracBits;
  checkShift(name, shift, `αo ${outputExponent} − αv ${vExponent} + ${fracBits}`);
  return { attnBits, headDim, vExponent, outputExponent, shift };
}

export interface QuantizeHeadOptions {
  /** Op names are `${name}.scores`, `${name}.softmax`, `${name}.values`. */
  name: string;
  tokens: number;
  headDim: number;
  scale: number;
  attnBits: 4 | 8;
  /** Exponents of the int8 Q, K and V (slices of the qkv Linear's output). */
  qExponent: number;
  kExponent: number;
  vExponent: number;
  /** Float Q, K, V on calibration data: any number of tokens × headDim matrices, one after another. */
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

export interface AttentionHeadParams {
  scores: AttentionScoresParams;
  softmax: SoftmaxParams;
  values: AttentionValuesParams;
}

/** All three ops of one head, calibrated on the float head's scores and outputs. */
export function quantizeAttentionHead(opts: QuantizeHeadOptions): AttentionHeadParams {
  const { name, tokens, headDim, scale, attnBits, q, k, v } = opts;
  const size = tokens * headDim;
  check(
    Number.isInteger(tokens) && tokens >= 1 && Number.isInteger(headDim) && headDim >= 1,
    `${name}: tokens and headDim: expected positive integers, got ${tokens} and ${headDim}`,
  );
  check(
    q.length > 0 && q.length % size === 0 && k.length === q.length && v.length === q.length,
    () => `${name}: Q, K and V: expected the same multiple of ${tokens}×${headDim} values, got ${q.length}, ${k.length}, ${v.length}`,
  );
  const samples = q.length / size;
  const scoresFloat = new Float32Array(samples * tokens * tokens);
  const outputsFloat = new Float32Array(samples * size);
  for (let i = 0; i < samples; i++) {
    const at = (x: Float32Array) => x.subarray(i * size, (i + 1) * size);
    const s = floatOps.attentionScores(name, at(q), at(k), tokens, headDim, scale);
    const pr = floatOps.softmax(name, s, tokens, tokens);
    scoresFloat.set(s, i * tokens * tokens);
    outputsFloat.set(floatOps.attentionValues(name, pr, at(v), tokens, headDim), i * size);
  }
  const scores = quantizeAttentionScores({
    name: `${name}.scores`,
    tokens,
    headDim,
    qExponent: opts.qExponent,
    kExponent: opts.kExponent,
    scale,
    calibration: scoresFloat,
  });
  const softmax = quantizeSoftmax({
    name: `${name}.softmax`,
    attnBits,
    scoreExponent: scores.scoreExponent,
    scoreResidual: scores.scaleResidual,
  });
  const values = quantizeAttentionValues({
    name: `${name}.values`,
    attnBits,
    headDim,
    vExponent: opts.vExponent,
    calibration: outputsFloat,
  });
  return { scores, softmax, values };
}

// ---------------------------------------------------------------------------------------------------
// Fake quantization: float in, dequantized float out, equal to the golden kernels times their scales.

/**
 * Scores of one head: Q and K quantized to int8, the exact integer Q·Kᵀ, then the score quantized at
 * αs; returned as s · ρ · 2^αs (tokens × tokens). Scaling an exact integer sum by a power of two is
 * exact, so this is the shifter requantization bit for bit.
 */
export function fakeQuantAttentionScores(
  p: AttentionScoresParams,
  q: Float32Array,
  k: Float32Array,
  tokens: number,
): Float32Array {
  const hd = p.headDim;
  check(q.length === tokens * hd && k.length === tokens * hd, `attention scores: expected Q and K of ${tokens}×${hd} values`);
  const qi = quantizeTensor(q, p.qExponent, ACT_BITS);
  const ki = quantizeTensor(k, p.kExponent, ACT_BITS);
  const accScale = 2 ** (p.qExponent + p.kExponent + p.scaleExponent);
  const step = 2 ** p.scoreExponent;
  const s = new Float32Array(tokens * tokens);
  for (let i = 0; i < tokens; i++) {
    for (let j = 0; j < tokens; j++) {
      let dot = 0;
      for (let d = 0; d < hd; d++) dot += qi[i * hd + d] * ki[j * hd + d];
      s[i * tokens + j] = quantizeReal(dot * accScale, p.scoreExponent, ACT_BITS) * step * p.scaleResidual;
    }
  }
  return s;
}

/** The real probabilities of softmax-core outputs: 2^−code (code 15: 0), or p / 256. */
export function probabilities(codes: Uint8Array, attnBits: 4 | 8): Float32Array {
  if (attnBits === 8) return Float32Array.from(codes, (p) => p * 2 ** -UNIFORM_PROB_BITS);
  return Float32Array.from(codes, (c) => (c >= LOG2_ZERO_CODE ? 0 : 2 ** -c));
}

/**
 * Softmax of rows × cols scores: the scores are put back on their int8 grid (exact for the output of
 * fakeQuantAttentionScores) and run through the integer softmax, whose exp has no float counterpart
 * that could match it bit for bit; the result is dequantized.
 */
export function fakeQuantSoftmax(p: SoftmaxParams, scores: Float32Array, rows: number, cols: number): Float32Array {
  const s = Int8Array.from(scores, (x) => quantizeReal(x / p.scoreResidual, p.scoreExponent, ACT_BITS));
  const codes = p.attnBits === 4 ? logIntSoftmax(s, rows, cols, p) : uniformIntSoftmax(s, rows, cols, p);
  return probabilities(codes, p.attnBits);
}

/** A probability put on the attnBits grid: identity on the output of fakeQuantSoftmax. */
function onProbabilityGrid(x: number, attnBits: 4 | 8): number {
  if (attnBits === 8) {
    const p = roundHalfUp(x * 2 ** UNIFORM_PROB_BITS);
    return Math.min(2 ** UNIFORM_PROB_BITS - 1, Math.max(0, p)) * 2 ** -UNIFORM_PROB_BITS;
  }
  if (!(x > 0)) return 0;
  const code = Math.max(0, roundHalfUp(-Math.log2(x)));
  return code >= LOG2_ZERO_CODE ? 0 : 2 ** -code;
}

/**
 * Attention·V: probabilities on their grid, V quantized to int8, Σ P·V̂ in doubles, output quantized at
 * αo (tokens × headDim, dequantized). Every product is a dyadic number and the sum needs fewer than 53
 * significant bits, so the double sum is the integer accumulator times 2^(αv − F), exactly.
 */
export function fakeQuantAttentionValues(
  p: AttentionValuesParams,
  probs: Float32Array,
  v: Float32Array,
  tokens: number,
): Float32Array {
  const hd = p.headDim;
  check(
    probs.length === tokens * tokens && v.length === tokens * hd,
    `attention·V: expected ${tokens}×${tokens} probabilities and ${tokens}×${hd} V values, got ${probs.length} and ${v.length}`,
  );
  const pr = Float64Array.from(probs, (x) => onProbabilityGrid(x, p.attnBits));
  const vStep = 2 ** p.vExponent;
  const vq = Float64Array.from(quantizeTensor(v, p.vExponent, ACT_BITS), (x) => x * vStep);
  const outStep = 2 ** p.outputExponent;
  const out = new Float32Array(tokens * hd);
  const acc = new Float64Array(hd);
  for (let t = 0; t < tokens; t++) {
    acc.fill(0);
    for (let j = 0; j < tokens; j++) {
      const w = pr[t * tokens + j];
      if (w !== 0) for (let d = 0; d < hd; d++) acc[d] += w * vq[j * hd + d];
    }
    for (let d = 0; d < hd; d++) out[t * hd + d] = quantizeReal(acc[d], p.outputExponent, ACT_BITS) * outStep;
  }
  return out;
}
