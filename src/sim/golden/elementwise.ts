/**
 * Golden kernels of the elementwise core (docs/arithmetic.md, "Lookup tables" and "Residual add"):
 * a 256-entry table for any function of one int8 value, and the add of two int8 tensors whose
 * exponents differ, aligned by left shifts and requantized by a rounding shift.
 */
import { requantize } from "../../arith.js";

/** table[x + 128] is the int8 output for input x. */
export interface LutParams {
  table: Int8Array;
}

export function lutInt(x: Int8Array, p: LutParams): Int8Array {
  const y = new Int8Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = p.table[x[i] + 128];
  return y;
}

/**
 * Per channel c: a is shifted left by alignA[c] and b by alignB[c], which brings both to their common
 * (finer) exponent; the sum is requantized by outShift[c] (right if positive, as in requantize).
 */
export interface AddParams {
  alignA: Int32Array;
  alignB: Int32Array;
  outShift: Int32Array;
}

/** y[r][c] = requantize((a[r][c] << alignA[c]) + (b[r][c] << alignB[c]), outShift[c], 8); b may hold one row, broadcast. */
export function addInt(a: Int8Array, b: Int8Array, rows: number, channels: number, p: AddParams): Int8Array {
  if (a.length !== rows * channels) throw new Error(`add: a has ${a.length} values, expected ${rows}×${channels}`);
  if (b.length !== a.length && b.length !== channels) throw new Error(`add: b has ${b.length} values, expected ${rows}×${channels} or one row of ${channels}`);
  const bStride = b.length === channels ? 0 : channels;
  const y = new Int8Array(a.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < channels; c++) {
      const sum = a[r * channels + c] * 2 ** p.alignA[c] + b[r * bStride + c] * 2 ** p.alignB[c];
      y[r * channels + c] = requantize(sum, p.outShift[c], 8);
    }
  }
  return y;
}
