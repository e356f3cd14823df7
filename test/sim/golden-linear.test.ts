import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QLinear } from "../../src/quant/qgraph.js";
import { linearGolden } from "../../src/sim/golden/linear.js";

function layer(k: number, n: number, weight: number[], bias: number[], shift: number[]): QLinear {
  return {
    kind: "linear", name: "t", inFeatures: k, outFeatures: n,
    input: { bits: 8, exponent: -4 }, output: { bits: 8, exponent: -2 }, weightBits: 8,
    weight: Int8Array.from(weight), weightExponents: new Int32Array(n), bias: Int32Array.from(bias), shift: Int32Array.from(shift),
  };
}

/** The spec of docs/arithmetic.md written independently, in BigInt. */
function reference(l: QLinear, x: Int8Array, rows: number): Int8Array {
  const y = new Int8Array(rows * l.outFeatures);
  for (let m = 0; m < rows; m++) {
    for (let c = 0; c < l.outFeatures; c++) {
      let acc = BigInt(l.bias[c]);
      for (let i = 0; i < l.inFeatures; i++) acc += BigInt(x[m * l.inFeatures + i]) * BigInt(l.weight[c * l.inFeatures + i]);
      const s = BigInt(l.shift[c]);
      let v = s > 0n ? (acc + (1n << (s - 1n))) >> s : acc << -s; // BigInt >> is floor division
      v = v > 127n ? 127n : v < -128n ? -128n : v;
      y[m * l.outFeatures + c] = Number(v);
    }
  }
  return y;
}

describe("golden linear kernel", () => {
  it("computes a hand-checked example", () => {
    // row [1, -2, 3] · [[4, 5, 6], [-1, -1, -1]] + [10, 0] = [24, -2]; shifts 2 and 0
    const l = layer(3, 2, [4, 5, 6, -1, -1, -1], [10, 0], [2, 0]);
    expect(Array.from(linearGolden(l, Int8Array.from([1, -2, 3]), 1))).toEqual([6, -2]);
  });

  it("rounds ties up and saturates at the extremes", () => {
    const l = layer(1, 4, [1, 1, -128, -128], [0, 0, 0, 0], [1, 1, 0, 31]);
    expect(Array.from(linearGolden(l, Int8Array.from([3]), 1))).toEqual([2, 2, -128, 0]); // 1.5 → 2
    expect(Array.from(linearGolden(l, Int8Array.from([-3]), 1))).toEqual([-1, -1, 127, 0]); // -1.5 → -1
    expect(Array.from(linearGolden(l, Int8Array.from([-128]), 1))).toEqual([-64, -64, 127, 0]);
  });

  it("left-shifts for negative shifts", () => {
    const l = layer(1, 1, [1], [0], [-8]);
    expect(Array.from(linearGolden(l, Int8Array.from([1]), 1))).toEqual([127]);
    expect(Array.from(linearGolden(layer(1, 1, [-1], [0], [-3]), Int8Array.from([2]), 1))).toEqual([-16]);
  });

  it("matches an independent BigInt reference on random layers, extremes included", () => {
    const int8 = fc.oneof(fc.integer({ min: -128, max: 127 }), fc.constantFrom(-128, 127, 0));
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 5 }), fc.integer(),
        (k, n, rows, seed) => {
          const rnd = fc.sample(int8, { numRuns: k * n + rows * k, seed });
          const l = layer(k, n, rnd.slice(0, k * n), fc.sample(fc.integer({ min: -(2 ** 20), max: 2 ** 20 }), { numRuns: n, seed }), fc.sample(fc.integer({ min: -8, max: 31 }), { numRuns: n, seed }));
          const x = Int8Array.from(rnd.slice(k * n));
          expect(Array.from(linearGolden(l, x, rows))).toEqual(Array.from(reference(l, x, rows)));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("gives zero rows the requantized bias", () => {
    const l = layer(4, 2, [5, 5, 5, 5, -7, -7, -7, -7], [100, -100], [3, 3]);
    expect(Array.from(linearGolden(l, new Int8Array(8), 2))).toEqual([13, -12, 13, -12]);
  });

  it("refuses an input of the wrong size and an accumulator that overflows", () => {
    const l = layer(2, 1, [-128, -128], [0], [0]);
    expect(() => linearGolden(l, new Int8Array(3), 2)).toThrow(/input has 3 values, expected 2×2/);
    expect(() => linearGolden(l, Int8Array.from([-128, -128]), 1, { accBits: 16 })).toThrow(/accumulator overflow at row 0, channel 0: 32768/);
  });
});
