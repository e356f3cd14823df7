/**
 * The attention·V shift-accumulate engine (attnv_core, templates/rtl/attnv_core.v.hbs): its widths, the
 * template values and its timing, for the unit renderer (units.ts) and the cycle model.
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

/** Timing of the engine for rows of `tokens` codes; `lanes` sets only how many columns a pass makes. */
export interface AttnvTiming {
  /** Cycles the code port is busy per output row (one beat of `lanes` int8 values): one code per cycle. */
  rowCycles: number;
  /** Cycles the V write port is busy per column group: one row of V per cycle. */
  vLoadCycles: number;
  /** Cycles from the cycle of a row's last code to the cycle its output beat is valid. */
  latency: number;
}

export function attnvTiming(tokens: number, lanes: number): AttnvTiming {
  checkSizes(tokens, lanes);
  return { rowCycles: tokens, vLoadCycles: tokens, latency: ATTNV_STAGES };
}

/** Column groups of a head: passes of `lanes` columns over headDim columns. */
export function attnvGroups(headDim: number, lanes: number): number {
  return Math.ceil(headDim / lanes);
}

/**
 * Cycles of one whole head (every row, every column group) from its first V write to its last output
 * beat, with the overlaps the core allows: a V row may be rewritten from the cycle after the code that
 * last reads its old value, and a code reads a row written in an earlier cycle. So group g + 1's load
 * starts the cycle after the last row of group g gives its first code, and group g + 1's first row
 * starts one cycle after its load does or when the code port is free, whichever is later: for N ≥ 2
 * only the first load costs a cycle of its own.
 */
export function attnvHeadCycles(tokens: number, headDim: number, lanes: number): number {
  const { rowCycles, latency } = attnvTiming(tokens, lanes);
  const rowsCycles = tokens * rowCycles;
  let loadStart = 0;
  let rowsStart = 1;
  for (let g = 1; g < attnvGroups(headDim, lanes); g++) {
    loadStart = Math.max(loadStart + tokens, rowsStart + rowsCycles - rowCycles + 1);
    rowsStart = Math.max(loadStart + 1, rowsStart + rowsCycles);
  }
  return rowsStart + rowsCycles - 1 + latency + 1;
}

function checkSizes(tokens: number, lanes: number): void {
  if (!Number.isInteger(tokens) || tokens < 1) throw new RangeError(`attnv_core: tokens: expected a positive integer, got ${tokens}`);
  if (!Number.isInteger(lanes) || lanes < 1) throw new RangeError(`attnv_core: lanes: expected a positive integer, got ${lanes}`);
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
