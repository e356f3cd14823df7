/**
 * Golden integer kernel of a Linear layer (docs/arithmetic.md): int8 × int8 products summed exactly
 * into the accumulator, the int32 bias added, then the shifter requantization to int8. Integers only.
 */
import { requantize, signedRange } from "../../arith.js";
import type { QLinear } from "../../quant/qgraph.js";

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
  const { inFeatures: k, outFeatures: n, weight, bias, shift } = layer;
  if (x.length !== rows * k) throw new Error(`${layer.name}: input has ${x.length} values, expected ${rows}×${k}`);
  const { lo, hi } = signedRange(opts.accBits ?? 32);
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
