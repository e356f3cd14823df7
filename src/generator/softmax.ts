/**
 * The softmax core (templates/rtl/softmax_core.v.hbs): every number its template prints, and its exact
 * timing. The arithmetic is docs/arithmetic.md's "Softmax core" sections, bit for bit with the golden
 * kernels logIntSoftmax and uniformIntSoftmax (src/sim/golden/attention.ts).
 *
 * A row of N int8 scores enters as ceil(N / lanes) beats of `lanes` scores. The core keeps the row in a
 * score ring while it finds the row maximum, reads it back through the integer exp (one pipeline per
 * lane) into an exp ring while it sums the row, takes R = floor(√2·S) with one digit-by-digit square root
 * per row, then reads the exps back and turns each into a 4-bit log2 code or a uint8 probability. The
 * three passes of consecutive rows overlap; the rings are sized so that rows spaced as
 * softmaxRowSpacing says never overwrite what a later pass still has to read.
 */
import { EXP_BITS, LOG2_ZERO_CODE, MAX_TOKENS, UNIFORM_PROB_BITS, floorSqrt2Times } from "../sim/golden/attention.js";
import { FIELDS, SOFTMAX_MODES } from "../hw/isa.js";
import { P2vitError } from "../util/errors.js";
import { indexBits } from "./params.js";

/** cfg_mode values, the SOFTMAX instruction's mode field: 4-bit log2 codes or uint8 probabilities at exponent −8. */
export { SOFTMAX_MODES };

/**
 * Widths of the per-row constants of SoftmaxParams (docs/arithmetic.md, "Softmax core: constants",
 * ρ ∈ [½, 2)): |G| ≤ 31 signed, L < 2^17, B < 2^18, C < 2^34, D ≤ 16, as the SOFTMAX instruction's
 * fields carry them. The cutoff is not an input: the core forms EXP_BITS · L itself.
 */
export const SOFTMAX_CONST_BITS = {
  inputShift: FIELDS.SOFTMAX.inputShift.width,
  ln2: FIELDS.SOFTMAX.ln2.width,
  polyB: FIELDS.SOFTMAX.polyB.width,
  polyC: FIELDS.SOFTMAX.polyC.width,
  polyShift: FIELDS.SOFTMAX.polyShift.width,
} as const;

/** Largest row the core may be generated for, and its lane range. */
export const SOFTMAX_MAX_TOKENS = MAX_TOKENS;
export const SOFTMAX_MAX_LANES = 128;

const SCORE_BITS = 8;
/** Bits of z = floor(t / L): the spec's 5-step restoring division (quotient bits 16, 8, 4, 2, 1). */
const Z_BITS = 5;
const CODE_BITS = 4;
/** Quotient bits of the uniform probability: 0…256 before the clamp to 255. */
const UNIFORM_QUOTIENT_BITS = UNIFORM_PROB_BITS + 1;

/**
 * The register stages of the integer exp, from the score read out of the ring (stage 0) to E: how far
 * below the row max the score lies, the input shift, the Z_BITS division steps, B − rem, the square, + C, the
 * final shift. The template indexes its shared pipeline of row constants with these.
 */
const EXP_STAGE = { below: 1, shift: 2, div: 3, base: 3 + Z_BITS, square: 4 + Z_BITS, poly: 5 + Z_BITS, exp: 6 + Z_BITS } as const;
const EXP_STAGES = EXP_STAGE.exp;
/** The partial products of S², then 2·S²: the radicand of the square root. */
const SQUARE_STAGES = 2;
/** bitlen(R), then R's top EXP_BITS bits once R is left-aligned. */
const NORM_STAGES = 2;
/**
 * The register stages from an exp read out of its ring (stage 0) to the output. Uniform: the numerator
 * 2^9·E + S, one stage per quotient bit, then the clamp and mode select (the output). Log2: bitlen(E),
 * E left-aligned with bitlen(R) − bitlen(E), the compare and clamp; the code then waits for the output.
 */
const OUT_STAGE = {
  numerator: 1, quotient: 2, output: 2 + UNIFORM_QUOTIENT_BITS,
  expLength: 1, align: 2, code: 3,
} as const;
const OUT_STAGES = OUT_STAGE.output;

export interface SoftmaxCoreShape {
  lanes: number;
  /** Longest row (tokens) the core takes. */
  maxTokens: number;
}

function bitLength(v: number): number {
  let bits = 0;
  for (let p = 1; p <= v; p *= 2) bits++;
  return bits;
}

function checkShape({ lanes, maxTokens }: SoftmaxCoreShape): void {
  const ok = (v: number, hi: number) => Number.isInteger(v) && v >= 1 && v <= hi;
  if (!ok(lanes, SOFTMAX_MAX_LANES)) throw new P2vitError(`softmax core: lanes: expected an integer from 1 to ${SOFTMAX_MAX_LANES}, got ${lanes}`);
  if (!ok(maxTokens, SOFTMAX_MAX_TOKENS)) {
    throw new P2vitError(`softmax core: maxTokens: expected an integer from 1 to ${SOFTMAX_MAX_TOKENS}, got ${maxTokens}`);
  }
}

/** Beats of a row of `tokens` scores: the last one is padded with lanes that come out as probability 0. */
export function softmaxBeats(tokens: number, lanes: number): number {
  return Math.ceil(tokens / lanes);
}

/** Levels of the pipelined max and sum trees over the lanes (0 for one lane). */
function treeLevels(lanes: number): number {
  return lanes === 1 ? 0 : indexBits(lanes);
}

/** Bits of the row sum S ≤ maxTokens · (2^EXP_BITS − 1). */
function rowSumBits(maxTokens: number): number {
  return bitLength(maxTokens * (2 ** EXP_BITS - 1));
}

/** Bits of R = floor(√2·S) for the largest S: also the square root's steps (one result bit each). */
function sqrtSteps(maxTokens: number): number {
  return bitLength(floorSqrt2Times(2 ** rowSumBits(maxTokens) - 1));
}

/**
 * When each pass of a row happens, in cycles after the cycle of its last input beat, for a row of
 * `beats` beats. Every other timing figure of the core is derived from these.
 */
function rowEvents(beats: number, shape: SoftmaxCoreShape) {
  const levels = treeLevels(shape.lanes);
  const steps = sqrtSteps(shape.maxTokens);
  const maxReady = 1 + levels; // the lane maxima settle, then the max tree
  const scoreRead = maxReady + 1; // address of beat 0 in the score ring
  const expWrite = scoreRead + 1 + EXP_STAGES; // E of beat 0 into the exp ring and the lane sums
  const sumReady = expWrite + beats + levels; // the last beat's E summed, then the sum tree
  const sqrtStart = sumReady + SQUARE_STAGES;
  const rootReady = sqrtStart + steps;
  const expRead = rootReady + NORM_STAGES + 1; // address of beat 0 in the exp ring
  const output = expRead + 1 + OUT_STAGES;
  return {
    maxReady, scoreRead, expWrite, sumReady, sqrtStart, expRead, output,
    /** Stretches during which a row holds a part of the core that the next row needs too: [start, end). */
    busy: [
      { start: 0, end: maxReady }, // the row record, written with the last beat, read with the max
      { start: scoreRead, end: scoreRead + beats }, // the score-ring reader
      { start: expWrite + beats - 1, end: sumReady }, // the row record that waits for the sum tree
      { start: sqrtStart, end: sqrtStart + steps }, // the square root
      { start: expRead, end: expRead + beats }, // the exp-ring reader
    ],
  };
}

/** Cycles from the cycle of a row's last input beat to the cycle of its first output beat. */
export function softmaxOutputDelay(tokens: number, shape: SoftmaxCoreShape): number {
  checkShape(shape);
  return rowEvents(softmaxBeats(tokens, shape.lanes), shape).output;
}

/**
 * The least number of cycles between the last input beat of a row of `prevTokens` and the last input
 * beat of the next row, of `tokens`: what keeps the two rows out of each other's way in every pass. For
 * rows of equal length it is max(beats, square-root steps): a row per beat-count of cycles once rows
 * are long enough.
 */
export function softmaxRowSpacing(prevTokens: number, tokens: number, shape: SoftmaxCoreShape): number {
  checkShape(shape);
  const beats = softmaxBeats(tokens, shape.lanes);
  const prev = rowEvents(softmaxBeats(prevTokens, shape.lanes), shape).busy;
  const next = rowEvents(beats, shape).busy;
  // the next row's own beats arrive after the previous row's last beat
  return Math.max(beats, ...prev.map((p, i) => p.end - next[i].start));
}

/**
 * Cycles of `rows` rows of `tokens` scores each, beats given back to back and rows as close as
 * softmaxRowSpacing allows: from the first input beat to the last output beat, both included.
 */
export function softmaxCycles(rows: number, tokens: number, shape: SoftmaxCoreShape): number {
  if (!Number.isInteger(rows) || rows < 1) throw new P2vitError(`softmax core: rows: expected a positive integer, got ${rows}`);
  const beats = softmaxBeats(tokens, shape.lanes);
  const lastInput = beats - 1 + (rows - 1) * softmaxRowSpacing(tokens, tokens, shape);
  return lastInput + softmaxOutputDelay(tokens, shape) + beats;
}

/**
 * Ring depths (beats): one more than the most beats written after a beat up to and including the cycle
 * that reads it, so a slot is never read in the cycle it is written again (block RAM collision
 * behaviour varies). At most one beat is written per cycle, and the stretch is longest for the longest row.
 */
function ringDepths(shape: SoftmaxCoreShape): { scores: number; exps: number } {
  const maxBeats = softmaxBeats(shape.maxTokens, shape.lanes);
  const e = rowEvents(maxBeats, shape);
  // in cycles after the row's last beat: beat k is written at or before k − (maxBeats − 1) and read at
  // scoreRead + k, and the next row's beats may follow at once
  const scores = e.scoreRead + maxBeats;
  // beat k: written at expWrite + k, read at expRead + k
  const exps = e.expRead - e.expWrite + 1;
  return { scores, exps };
}

/** The template values of a softmax core (for units and, later, the top). */
export function softmaxCoreContext(shape: SoftmaxCoreShape) {
  checkShape(shape);
  const { lanes, maxTokens } = shape;
  const levels = treeLevels(lanes);
  const sumBits = rowSumBits(maxTokens);
  const rootBits = sqrtSteps(maxTokens);
  const rings = ringDepths(shape);
  const cutoffBits = bitLength(EXP_BITS * (2 ** SOFTMAX_CONST_BITS.ln2 - 1));
  const largestExpShift = 2 ** Z_BITS - 1 + (2 ** SOFTMAX_CONST_BITS.polyShift - 1); // z + D
  return {
    lanes,
    maxTokens,
    tokenBits: indexBits(maxTokens + 1),
    modeLog2: SOFTMAX_MODES.LOG2,
    modeUniform: SOFTMAX_MODES.UNIFORM,
    ...SOFTMAX_CONST_BITS,
    treeLeaves: 2 ** levels,
    treeLevels: levels,
    scoreRingDepth: rings.scores,
    scoreRingBits: indexBits(rings.scores),
    expRingDepth: rings.exps,
    expRingBits: indexBits(rings.exps),
    expBits: EXP_BITS,
    // t = d·2^G saturates once it passes every cutoff: a left shift of 1 by cutoffBits already does
    cutoffBits,
    leftShiftMax: cutoffBits,
    distBits: SCORE_BITS + cutoffBits,
    // (d + 2^(s−1) − 1) >> s is 0 for every int8 distance once s ≥ 9
    rightShiftMax: SCORE_BITS + 1,
    zBits: Z_BITS,
    // B − rem, its square, + C: a 2·18-bit square plus a 34-bit C never carries past 37 bits
    polyBits: 2 * SOFTMAX_CONST_BITS.polyB + 1,
    expShiftBits: indexBits(largestExpShift + 1),
    sumBits,
    // S = hi · 2^sumLowBits + lo: three narrow products instead of one 30 × 30 multiplier
    sumLowBits: Math.ceil(sumBits / 2),
    rootBits,
    rootLenBits: indexBits(rootBits + 1),
    expLenBits: indexBits(EXP_BITS + 1),
    codeBits: CODE_BITS,
    zeroCode: LOG2_ZERO_CODE,
    quotientBits: UNIFORM_QUOTIENT_BITS,
    probMax: 2 ** UNIFORM_PROB_BITS - 1,
    // 2^9·E + S < 2S·2^9, and the signed partial remainders of its division by 2S
    uniformBits: sumBits + 2 + UNIFORM_QUOTIENT_BITS,
    expStages: EXP_STAGES,
    expStage: EXP_STAGE,
    outStages: OUT_STAGES,
    outStage: OUT_STAGE,
  };
}
