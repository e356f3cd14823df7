/**
 * Golden integer kernel of a Linear layer (docs/arithmetic.md): int8 × int8 products summed exactly
 * into the accumulator, the int32 bias added, then the shifter requantization to int8. Integers only.
 */
import { accumulatorFits, requantize, signedRange } from "../../arith.js";
import type { QLinear } from "../../quant/qgraph.js";
import { gemmInt8Simd, hasInt8Simd } from "./simd-int.js";

export interface LinearGoldenOptions {
  /** Accumulator width: a sum outside it is an error here, as the config check promises it cannot happen. */
  accBits?: number;
}

/** y[m][n] = requantize(Σ_k x[m][k] · w[n][k] + bias[n], shift[n]) for `rows` input rows, int8 out. */
export function linearGolden(layer: QLinear, x: Int8Array, rows: number, opts: LinearGoldenOptions = {}): Int8Array {
  return linearInto(layer, x, rows, new Int8Array(rows * layer.outFeatures), opts);
}

/** The same for a layer with a 32-bit output: the classifier head, whose outputs are the logits. */
export function linearGoldenWide(layer: QLinear, x: Int8Array, rows: number, opts: LinearGoldenOptions = {}): Int32Array {
  return linearInto(layer, x, rows, new Int32Array(rows * layer.outFeatures), opts);
}

function linearInto<T extends Int8Array | Int32Array>(layer: QLinear, x: Int8Array, rows: number, y: T, opts: LinearGoldenOptions): T {
  const { inFeatures: k, outFeatures: n, weight, bias } = layer;
  if (x.length !== rows * k) throw new Error(`${layer.name}: input has ${x.length} values, expected ${rows}×${k}`);
  const accBits = opts.accBits ?? 32;
  const maxBias = bias.reduce((m, b) => Math.max(m, Math.abs(b)), 0);
  // Within the bound no sum can leave the accumulator, so int32 arithmetic is exact; outside it,
  // compute exactly and report the first sum that does not fit.
  if (accBits <= 32 && accumulatorFits(k, maxBias, accBits, 8, 8)) return linearInt32(layer, x, rows, y);
  const { lo, hi } = signedRange(accBits);
  const shift = layer.shift;
  const outBits = layer.output.bits;
  for (let m = 0; m < rows; m++) {
    const xo = m * k;
    for (let c = 0; c < n; c++) {
      const wo = c * k;
      let acc = bias[c];
      for (let i = 0; i < k; i++) acc += x[xo + i] * weight[wo + i];
      if (acc < lo || acc > hi) throw new Error(`${layer.name}: accumulator overflow at row ${m}, channel ${c}: ${acc}`);
      y[m * n + c] = requantize(acc, shift[c], outBits);
    }
  }
  return y;
}

/** The fast path: int32 accumulators, requantized in place, then stored into y. */
function linearInt32<T extends Int8Array | Int32Array>(layer: QLinear, x: Int8Array, rows: number, y: T): T {
  const { inFeatures: k, outFeatures: n, weight, bias, shift } = layer;
  const outBits = layer.output.bits;
  const acc = hasInt8Simd() ? gemmInt8Simd(x, rows, k, weight, n, bias) : gemmInt8Js(x, rows, k, weight, n, bias);
  // In place on the one Int32Array type keeps this loop monomorphic; set() then converts to y's type
  // as storing each element would.
  for (let m = 0; m < rows; m++) {
    for (let c = 0; c < n; c++) acc[m * n + c] = requantize(acc[m * n + c], shift[c], outBits);
  }
  y.set(acc);
  return y;
}

/**
 * The same accumulators as gemmInt8Simd in plain JavaScript, for engines without WebAssembly SIMD:
 * four output channels per pass over an input row, sums in int32 (exact under accumulatorFits).
 */
export function gemmInt8Js(x: Int8Array, rows: number, k: number, w: Int8Array, n: number, bias: Int32Array): Int32Array {
  const acc = new Int32Array(rows * n);
  for (let m = 0; m < rows; m++) {
    const xo = m * k;
    let c = 0;
    for (; c + 4 <= n; c += 4) {
      let a0 = bias[c] | 0;
      let a1 = bias[c + 1] | 0;
      let a2 = bias[c + 2] | 0;
      let a3 = bias[c + 3] | 0;
      const w0 = c * k;
      for (let i = 0; i < k; i++) {
        const v = x[xo + i];
        a0 = (a0 + v * w[w0 + i]) | 0;
        a1 = (a1 + v * w[w0 + k + i]) | 0;
        a2 = (a2 + v * w[w0 + 2 * k + i]) | 0;
        a3 = (a3 + v * w[w0 + 3 * k + i]) | 0;
      }
      acc[m * n + c] = a0;
      acc[m * n + c + 1] = a1;
      acc[m * n + c + 2] = a2;
      acc[m * n + c + 3] = a3;
    }
    for (; c < n; c++) {
      let a = bias[c] | 0;
      for (let i = 0; i < k; i++) a = (a + x[xo + i] * w[c * k + i]) | 0;
      acc[m * n + c] = a;
    }
  }
  return acc;
}
