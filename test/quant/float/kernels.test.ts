import { describe, expect, it } from "vitest";
import { erf, erfc } from "../../../src/quant/float/erf.js";
import { addArrays, expNonPositive, gelu, layerNorm, matmulTransposed, scalarMatmulTransposed, softmaxRows, transpose } from "../../../src/quant/float/kernels.js";
import { simdMatmulTransposed } from "../../../src/quant/float/simd.js";
import { gaussian, seededRandom } from "../../../src/util/random.js";

function randomMatrix(n: number, seed: number): Float32Array {
  const rng = seededRandom(seed);
  return Float32Array.from({ length: n }, () => gaussian(rng));
}

/** Σ_k x[r,k] · w[o,k] in double precision, the plain way. */
function naiveXWt(x: Float32Array, rows: number, w: Float32Array, inF: number, outF: number): Float64Array {
  const out = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = 0;
      for (let k = 0; k < inF; k++) s += x[r * inF + k] * w[o * inF + k];
      out[r * outF + o] = s;
    }
  }
  return out;
}

/** Largest |a − b| relative to the scale of b's sums (√K for unit-variance products). */
function maxError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < b.length; i++) e = Math.max(e, Math.abs(a[i] - b[i]));
  return e;
}

// Shapes with every remainder: rows odd / not a multiple of 4, K and outF not multiples of 4, and sizes
// on both sides of the SIMD threshold.
const SHAPES: [number, number, number][] = [
  [1, 1, 1], [3, 5, 7], [4, 4, 4], [17, 8, 17], [17, 64, 192], [1, 128, 10], [65, 16, 65], [50, 130, 33], [197, 192, 9],
];

describe("x · Wᵀ", () => {
  it.each(SHAPES)("matches the plain triple loop at %i × %i → %i on every path", (rows, inF, outF) => {
    const x = randomMatrix(rows * inF, rows);
    const w = randomMatrix(outF * inF, inF + 100);
    const expected = naiveXWt(x, rows, w, inF, outF);
    const tolerance = 1e-5 * Math.sqrt(inF) * 4;
    const scalar = new Float32Array(rows * outF);
    scalarMatmulTransposed(x, rows, w, inF, outF, scalar);
    const simd = new Float32Array(rows * outF);
    simdMatmulTransposed(x, rows, w, inF, outF, simd);
    expect(maxError(scalar, expected)).toBeLessThan(tolerance);
    expect(maxError(simd, expected)).toBeLessThan(tolerance);
    expect(maxError(matmulTransposed(x, rows, w, inF, outF), expected)).toBeLessThan(tolerance);
  });

  it("adds the bias to every row", () => {
    const x = Float32Array.from([1, 2, 3, 4]); // 2 × 2
    const w = Float32Array.from([1, 0, 0, 1, 1, 1]); // 3 × 2
    const out = matmulTransposed(x, 2, w, 2, 3, Float32Array.from([10, 20, 30]));
    expect(Array.from(out)).toEqual([11, 22, 33, 13, 24, 37]);
  });

  it("leaves no stale values in the SIMD kernel's padding between calls of different shapes", () => {
    const big = randomMatrix(64 * 64, 7);
    const out = new Float32Array(64 * 64);
    simdMatmulTransposed(big, 64, big, 64, 64, out);
    const x = randomMatrix(3 * 5, 8);
    const w = randomMatrix(6 * 5, 9);
    const small = new Float32Array(3 * 6);
    simdMatmulTransposed(x, 3, w, 5, 6, small);
    expect(maxError(small, naiveXWt(x, 3, w, 5, 6))).toBeLessThan(1e-5);
  });

  it("transposes", () => {
    expect(Array.from(transpose(Float32Array.from([1, 2, 3, 4, 5, 6]), 2, 3))).toEqual([1, 4, 2, 5, 3, 6]);
  });
});

describe("LayerNorm and softmax", () => {
  it("normalizes each row with the biased variance, then scales and shifts", () => {
    const x = Float32Array.from([1, 2, 3, 4, 10, 10, 10, 10]);
    const out = layerNorm(x, 2, 4, Float32Array.from([1, 2, 1, 1]), Float32Array.from([0, 0, 1, 0]), 1e-5);
    const std = Math.sqrt(1.25 + 1e-5);
    const expected = [-1.5 / std, (2 * -0.5) / std, 0.5 / std + 1, 1.5 / std, 0, 0, 1, 0];
    expected.forEach((v, i) => expect(out[i]).toBeCloseTo(v, 6));
  });

  it("gives rows that sum to one, equal to exp(x)/Σexp(x), even for large scores", () => {
    const x = Float32Array.from([1, 2, 3, 1000, 1001, 1002]);
    const out = softmaxRows(x, 2, 3);
    const e = [1, Math.E, Math.E ** 2].map((v) => v / (1 + Math.E + Math.E ** 2));
    [...e, ...e].forEach((v, i) => expect(out[i]).toBeCloseTo(v, 7));
  });
});

describe("the softmax's exp", () => {
  it("agrees with Math.exp to 1e-15 relative over the whole range of a double", () => {
    const rng = seededRandom(11);
    for (let i = 0; i < 20000; i++) {
      const x = -rng() * (i % 2 ? 30 : 700);
      expect(Math.abs(expNonPositive(x) - Math.exp(x))).toBeLessThanOrEqual(1e-15 * Math.exp(x));
    }
    expect(expNonPositive(0)).toBe(1);
    expect(expNonPositive(-746)).toBe(0);
  });
});

describe("erf and the exact GELU", () => {
  // Reference values from Python's math.erf / math.erfc (correctly rounded doubles).
  const ERF: [number, number][] = [
    [0, 0], [0.3, 0.3286267594591274], [0.7071, 0.682684851094082], [1.2345, 0.9191623964135658], [2.2, 0.9981371537020182],
    [2.49, 0.9995707121322661], [2.51, 0.9996142945182758], [3.3, 0.9999969422902035], [4.7, 0.9999999999700474],
    [5.99, 1.0], [-0.8, -0.7421009647076605], [-3.1, -0.9999883513426328],
  ];
  const ERFC: [number, number][] = [
    [2.6, 0.00023603441652934908], [3.7, 1.6715105790914596e-7], [5.2, 1.9249061099972327e-13], [8, 1.1224297172982928e-29],
  ];
  const GELU: [number, number][] = [
    [-9, -1.015729565358458e-18], [-6, -5.919525870226207e-9], [-3, -0.004049694094890287], [-1, -0.15865525393145707],
    [-0.1, -0.0460172162722971], [0, 0], [0.5, 0.34573123063700656], [1, 0.8413447460685429], [2.5, 2.4844758366855597],
    [7, 6.999999999991041],
  ];

  it.each(ERF)("erf(%d) is correct to 1e-15", (x, e) => expect(Math.abs(erf(x) - e)).toBeLessThan(1e-15));
  it.each(ERFC)("erfc(%d) has full relative accuracy in the tail", (x, e) => expect(Math.abs(erfc(x) - e) / e).toBeLessThan(1e-14));
  it.each(GELU)("gelu(%d) = x·Φ(x) to relative 1e-12", (x, g) => expect(Math.abs(gelu(x) - g)).toBeLessThanOrEqual(1e-12 * Math.abs(g)));

  it("is odd and monotone between grid points", () => {
    for (let x = 0; x < 6; x += 0.0037) {
      expect(erf(-x) + erf(x)).toBe(0);
      expect(erf(x + 0.0037)).toBeGreaterThanOrEqual(erf(x));
    }
  });
});

describe("add", () => {
  it("adds elementwise, or broadcasts one row over every row", () => {
    expect(Array.from(addArrays(Float32Array.from([1, 2, 3, 4]), Float32Array.from([10, 20, 30, 40])))).toEqual([11, 22, 33, 44]);
    expect(Array.from(addArrays(Float32Array.from([1, 2, 3, 4]), Float32Array.from([10, 20])))).toEqual([11, 22, 13, 24]);
    expect(() => addArrays(new Float32Array(4), new Float32Array(3))).toThrow(/neither a's shape nor one row/);
  });
});
