/**
 * Quantizer side of the elementwise core: lookup tables for activations (any function of an int8
 * input is exactly a 256-entry table), and the alignment shifts of a residual add.
 */
import { quantizeReal } from "../../arith.js";
import { AddParams, LutParams } from "../../sim/golden/elementwise.js";
import { P2vitError } from "../../util/errors.js";

/** The table of f for int8 inputs at exponent inExp and int8 outputs at exponent outExp. */
export function buildLut(f: (x: number) => number, inExp: number, outExp: number): LutParams {
  const table = new Int8Array(256);
  for (let q = -128; q < 128; q++) table[q + 128] = quantizeReal(f(q * 2 ** inExp), outExp, 8);
  return { table };
}

/** The largest alignment left shift the elementwise core supports. */
export const MAX_ALIGN_SHIFT = 16;

/**
 * Shifts that add a (exponents aExp per channel) and b (bExp) into y (yExp): both are aligned to the
 * finer exponent of the two, then the sum is requantized to y's exponent.
 */
export function addParams(name: string, aExp: Int32Array, bExp: Int32Array, yExp: Int32Array): AddParams {
  const n = aExp.length;
  const p: AddParams = { alignA: new Int32Array(n), alignB: new Int32Array(n), outShift: new Int32Array(n) };
  for (let c = 0; c < n; c++) {
    const common = Math.min(aExp[c], bExp[c]);
    p.alignA[c] = aExp[c] - common;
    p.alignB[c] = bExp[c] - common;
    p.outShift[c] = yExp[c] - common;
    if (p.alignA[c] > MAX_ALIGN_SHIFT || p.alignB[c] > MAX_ALIGN_SHIFT) {
      throw new P2vitError(`${name}: channel ${c} needs an alignment shift of ${Math.max(p.alignA[c], p.alignB[c])}, more than ${MAX_ALIGN_SHIFT}`);
    }
  }
  return p;
}

/** Per-channel exponents of a tensor quantized per tensor. */
export function perChannel(exponent: number, channels: number): Int32Array {
  return new Int32Array(channels).fill(exponent);
}
