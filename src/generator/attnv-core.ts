/**
 * The attention·V shift-accumulate engine (attnv_core, templates/rtl/attnv_core.v.hbs): its widths and
 * template values, for the unit renderer (units.ts) and the ATTNV chunk (attnv-chunk.ts, which also
 * counts its cycles).
 *
 * The engine computes one output row t of a head per pass over the row's N log2 codes, one code per
 * cycle: Σ[d] = Σ_{j: code<15} V[j][d] · 2^(14 − code[t][j]) for `lanes` columns d at once, then
 * y[d] = sat8(shiftRound(Σ[d], shift)) (attentionValuesInt with attnBits 4, docs/arithmetic.md).
 * A head wider than `lanes` runs in column groups: V's next `lanes` columns are loaded and the code rows
 * streamed again.
 */
import { SHIFT_MAX, SHIFT_MIN } from "../arith.js";
import { LOG2_ACC_BITS, LOG2_FRAC_BITS, LOG2_ZERO_CODE } from "../sim/golden/attention.js";
import { indexBits } from "./params.js";

/** Bits of one code on the code port: the 4-bit log2 codes, one per cycle, unpacked. */
export const ATTNV_CODE_BITS = 4;
/** Width of one term V · 2^(F − code), signed: −128 · 2^14 = −2^21 is the widest. */
export const ATTNV_TERM_BITS = 8 + LOG2_FRAC_BITS;
/**
 * The accumulator starts a row at the rounding term 2^(s−1) ≤ 2^(LOG2_ACC_BITS − 1) rather than at 0,
 * so it holds Σ + 2^(s−1) ∈ [−2^22, 2^23): one bit more than Σ alone.
 */
export const ATTNV_ACC_BITS = LOG2_ACC_BITS + 1;
/**
 * Right shifts from this one on give 0 for every Σ within ±2^22 (Σ + 2^(s−1) lies in [0, 2^s)), so the
 * core clamps the shift here and its shifter spans SHIFT_MIN..ATTNV_SHIFT_CLAMP only.
 */
export const ATTNV_SHIFT_CLAMP = LOG2_ACC_BITS;
/** The largest left shift, −SHIFT_MIN: the shifter's input is the accumulator times 2^this. */
export const ATTNV_LEFT_MAX = -SHIFT_MIN;
/** Register stages: V read, term shift, accumulate, requantization shift, saturation. */
export const ATTNV_STAGES = 5;

/** Column groups of a head: passes of `lanes` columns over headDim columns. */
export function attnvGroups(headDim: number, lanes: number): number {
  return Math.ceil(headDim / lanes);
}

/** The template values of an attention·V engine of `lanes` columns for rows of up to `maxTokens` codes. */
export function attnvContext(lanes: number, maxTokens: number) {
  const kMax = ATTNV_SHIFT_CLAMP + ATTNV_LEFT_MAX;
  return {
    lanes,
    maxTokens,
    addrBits: indexBits(maxTokens),
    codeBits: ATTNV_CODE_BITS,
    codeMsb: ATTNV_CODE_BITS - 1,
    zeroCode: LOG2_ZERO_CODE,
    fracBits: LOG2_FRAC_BITS,
    termBits: ATTNV_TERM_BITS,
    sumBits: LOG2_ACC_BITS,
    sumMaxBit: LOG2_ACC_BITS - 1,
    roundMaxBit: LOG2_ACC_BITS,
    accBits: ATTNV_ACC_BITS,
    wideBits: ATTNV_ACC_BITS + ATTNV_LEFT_MAX,
    shiftClamp: ATTNV_SHIFT_CLAMP,
    leftMax: ATTNV_LEFT_MAX,
    kMax,
    kBits: indexBits(kMax + 1),
    extBits: kMax + 8,
    latency: ATTNV_STAGES,
    shiftMin: SHIFT_MIN,
    shiftMax: SHIFT_MAX,
  };
}
