/**
 * The integer arithmetic of p2vit, as code. docs/arithmetic.md is the written spec; the quantizer, the
 * golden model, the ISA simulator and the RTL templates all follow it, and test/arith.test.ts holds
 * this module to it. Values are JavaScript numbers holding integers (exact below 2^53).
 */
import { P2vitError } from "./util/errors.js";

/** 2^i for i = 0…63, so the hot paths need no exponentiation (powers of two are exact doubles). */
const POW2: readonly number[] = Array.from({ length: 64 }, (_, i) => 2 ** i);
const INV_POW2: readonly number[] = Array.from({ length: 64 }, (_, i) => 2 ** -i);

/** Smallest and largest value of a signed two's-complement integer of `bits` bits. */
export function signedRange(bits: number): { lo: number; hi: number } {
  return { lo: -POW2[bits - 1], hi: POW2[bits - 1] - 1 };
}

/** Clamps `v` into the signed `bits`-bit range. */
export function saturate(v: number, bits: number): number {
  const hi = POW2[bits - 1] - 1;
  return v < -hi - 1 ? -hi - 1 : v > hi ? hi : v;
}

/** Round half up (toward +inf): the tie rule the hardware's rounding shift implements. */
export function roundHalfUp(x: number): number {
  return Math.floor(x + 0.5);
}

/** Quantizes a real value to a signed `bits`-bit integer at scale 2^exponent: clamp(round(x / 2^e)). */
export function quantizeReal(x: number, exponent: number, bits: number): number {
  return saturate(Math.floor(x * pow2(-exponent) + 0.5), bits);
}

/** 2^e for any integer e, from the tables within ±63. */
export function pow2(e: number): number {
  return e >= 0 ? (e < 64 ? POW2[e] : 2 ** e) : e > -64 ? INV_POW2[-e] : 2 ** e;
}

/** Requantization shifts the hardware supports; a layer needing another shift is refused by the compiler. */
export const SHIFT_MIN = -8;
export const SHIFT_MAX = 31;

/**
 * Arithmetic shift with rounding: a right shift by `shift` > 0 adds 2^(shift-1) first (round half up);
 * `shift` < 0 is a left shift. Exact: no wrap-around at any width.
 */
export function shiftRound(acc: number, shift: number): number {
  // scaling by a power of two is exact, so multiplying by 2^-shift is the division, floored
  if (shift > 0) return Math.floor((acc + pow2(shift - 1)) * pow2(-shift));
  if (shift < 0) return acc * pow2(-shift);
  return acc;
}

/** The shifter requantization: accumulator (bias already added) → `outBits`-bit integer. */
export function requantize(acc: number, shift: number, outBits: number): number {
  return saturate(shiftRound(acc, shift), outBits);
}

/** The largest |product| of an int8 activation and a `weightBits`-bit weight. */
export function maxProductMagnitude(actBits: number, weightBits: number): number {
  return 2 ** (actBits - 1) * 2 ** (weightBits - 1);
}

/**
 * The accumulator bound of docs/arithmetic.md: for an inner dimension K and a bias of at most
 * `maxAbsBias`, |Σ x·w + b| ≤ K · 2^(a-1) · 2^(w-1) + maxAbsBias must fit a signed `accBits` integer.
 */
export function accumulatorFits(k: number, maxAbsBias: number, accBits: number, actBits = 8, weightBits = 8): boolean {
  return k * maxProductMagnitude(actBits, weightBits) + maxAbsBias <= signedRange(accBits).hi;
}

/** Throws when a value claimed to be an integer of `bits` bits is not one. */
export function assertInRange(v: number, bits: number, what: string): void {
  const { lo, hi } = signedRange(bits);
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new P2vitError(`${what}: ${v} is not a signed ${bits}-bit integer (expected ${lo}..${hi})`);
  }
}
