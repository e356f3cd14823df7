/**
 * The decisions behind elementwise_core (LUT and residual ADD) and the requantization lane it shares
 * with the MatMul chunk: every number its template prints.
 */
import { SHIFT_MAX, SHIFT_MIN } from "../arith.js";
import { LUT_ENTRIES } from "../hw/footprint.js";
import { MAX_ALIGN_SHIFT } from "../quant/ops/elementwise.js";
import { indexBits } from "./params.js";

/** Register stages of requant_lane (and of requant_mult_lane, which matches it). */
export const REQUANT_LATENCY = 4;

/** requant_lane's sum width: acc + bias + rounding term with a guard bit (as params.ts `sumBits`). */
export function requantSumBits(accBits: number): number {
  return Math.max(accBits, 32) + 2;
}

/** in_mode values of the elementwise core. */
export const ELEMENTWISE_MODES = { LUT: 0, ADD: 1 } as const;
/** Largest alignment left shift of a residual-add operand (the quantizer refuses larger ones). */
export const ALIGN_MAX = MAX_ALIGN_SHIFT;
/** Entries of the lookup table: one per int8 input (the LUT instruction's table, hw/footprint.ts). */
export { LUT_ENTRIES };
/** Cycles from in_valid to out_valid: the alignment / table-read stage, then requant_lane. */
export const ELEMENTWISE_LATENCY = 1 + REQUANT_LATENCY;

/** The template values of an elementwise core of `lanes` lanes (for units and, later, the top). */
export function elementwiseContext(lanes: number) {
  const alignedBits = 8 + ALIGN_MAX;
  return {
    lanes,
    modeLut: ELEMENTWISE_MODES.LUT,
    modeAdd: ELEMENTWISE_MODES.ADD,
    alignMax: ALIGN_MAX,
    alignBits: indexBits(ALIGN_MAX + 1),
    alignedBits,
    alignSumBits: requantSumBits(alignedBits),
    addSumBits: alignedBits + 1,
    shiftMin: SHIFT_MIN,
    shiftMax: SHIFT_MAX,
    latency: ELEMENTWISE_LATENCY,
    lutEntries: LUT_ENTRIES,
    lutAddrBits: indexBits(LUT_ENTRIES),
  };
}

