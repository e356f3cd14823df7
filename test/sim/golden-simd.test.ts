/**
 * The WebAssembly SIMD int8 GEMM of the golden Linear (src/sim/golden/simd-int.ts) against plain sums:
 * every K tail, channel counts that fill no tile, one to 197 rows, the extremes, the int32 limit; and
 * the whole Linear kernel built on it against a BigInt reference of docs/arithmetic.md.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { accumulatorFits } from "../../src/arith.js";
import { QLinear } from "../../src/quant/qgraph.js";
import { gemmInt8Js, linearGolden, linearGoldenWide } from "../../src/sim/golden/linear.js";
import { gemmInt8Simd, hasInt8Simd } from "../../src/sim/golden/simd-int.js";
import { seededRandom } from "../../src/util/random.js";

/** The accumulators written out plainly: sums of exact doubles (far below 2^53 here). */
function plainGemm(x: Int8Array, rows: number, k: number, w: Int8Array, n: number, bias: Int32Array): Int32Array {
  const acc = new Int32Array(rows * n);
  for (let m = 0; m < rows; m++) {
    for (let c = 0; c < n; c++) {
      let sum = bias[c];
      for (let i = 0; i < k; i++) sum += x[m * k + i] * w[c * k + i];
      acc[m * n + c] = sum;
    }
  }
  return acc;
}

/** int8 values with the extremes over-represented: a quarter are −128 or 127. */
function int8s(rng: () => number, length: number): Int8Array {
  return Int8Array.from({ length }, () => {
    const u = rng();
    return u < 0.125 ? -128 : u < 0.25 ? 127 : Math.floor(rng() * 256) - 128;
  });
}

/** Biases as large as accumulatorFits allows for this K, of either sign. */
function biases(rng: () => number, n: number, k: number): Int32Array {
  const room = 2 ** 31 - 1 - k * 2 ** 14;
  return Int32Array.from({ length: n }, () => Math.floor((rng() * 2 - 1) * room));
}

interface Gemm {
  x: Int8Array;
  rows: number;
  k: number;
  w: Int8Array;
  n: number;
  bias: Int32Array;
}

function randomGemm(rows: number, k: number, n: number, seed: number): Gemm {
  const rng = seededRandom(seed);
  return { x: int8s(rng, rows * k), rows, k, w: int8s(rng, n * k), n, bias: biases(rng, n, k) };
}

const run = (kernel: typeof gemmInt8Simd, g: Gemm) => Array.from(kernel(g.x, g.rows, g.k, g.w, g.n, g.bias));
const expected = (g: Gemm) => Array.from(plainGemm(g.x, g.rows, g.k, g.w, g.n, g.bias));

const KS = [1, 7, 16, 49, 768, 3072];
const ROWS = [1, 17, 197];
/** Channel counts that fill no tile of 4 or 8, from one channel to several tiles and a remainder. */
const NS = [1, 3, 13, 37];

describe("int8 GEMM on WebAssembly SIMD", () => {
  it("is available in this engine, so the tests below exercise it", () => {
    expect(hasInt8Simd()).toBe(true);
  });

  it("equals the plain sums for every K tail, channel remainder and row count", () => {
    let seed = 1;
    for (const k of KS) {
      for (const rows of ROWS) {
        for (const n of NS) {
          const g = randomGemm(rows, k, n, seed++);
          expect(run(gemmInt8Simd, g), `rows ${rows}, K ${k}, N ${n}`).toEqual(expected(g));
        }
      }
    }
  });

  it("gives K · 2^14 + bias for −128 everywhere, and the exact int32 limits at the largest K", () => {
    for (const k of KS) {
      const rows = 17;
      const n = 13;
      const g: Gemm = { x: new Int8Array(rows * k).fill(-128), rows, k, w: new Int8Array(n * k).fill(-128), n, bias: biases(seededRandom(k), n, k) };
      expect(run(gemmInt8Simd, g)).toEqual(Array.from({ length: rows * n }, (_, i) => k * 2 ** 14 + g.bias[i % n]));
    }
    // K = 131071 is the largest K that accumulatorFits takes (with |bias| ≤ 16383): the sums reach
    // 2^31 − 1 and −16256 · K − 16383, and the lane sums must not lose a bit on the way.
    const k = 131071;
    expect(accumulatorFits(k, 16383, 32)).toBe(true);
    const x = new Int8Array(2 * k).fill(-128);
    const w = new Int8Array(2 * k).fill(-128, 0, k).fill(127, k);
    const top = 2 ** 31 - 1;
    const bottom = -128 * 127 * k - 16383;
    expect(Array.from(gemmInt8Simd(x, 2, k, w, 2, Int32Array.from([16383, -16383])))).toEqual([top, bottom, top, bottom]);
  });

  it("handles empty shapes: no rows, no channels, or K = 0 (the bias alone)", () => {
    for (const [rows, k, n] of [[0, 5, 3], [2, 5, 0], [3, 0, 5]]) {
      const g = randomGemm(rows, k, n, rows + k + n);
      expect(run(gemmInt8Simd, g), `rows ${rows}, K ${k}, N ${n}`).toEqual(expected(g));
    }
  });

  it("keeps each weight array's packed copy per shape, and reuses memory across sizes", () => {
    const big = randomGemm(197, 3072, 13, 7);
    const small = randomGemm(3, 49, 5, 8);
    for (const g of [small, big, small, big]) expect(run(gemmInt8Simd, g)).toEqual(expected(g));
    // the same 12 weights read as 3 × 4 and then as 4 × 3 must be packed again, not taken from the cache
    const w = Int8Array.from({ length: 12 }, (_, i) => i - 6);
    const as3x4: Gemm = { x: Int8Array.from([1, -2, 3, -4]), rows: 1, k: 4, w, n: 3, bias: new Int32Array(3) };
    const as4x3: Gemm = { x: Int8Array.from([5, 6, -7]), rows: 1, k: 3, w, n: 4, bias: new Int32Array(4) };
    expect(run(gemmInt8Simd, as3x4)).toEqual(expected(as3x4));
    expect(run(gemmInt8Simd, as4x3)).toEqual(expected(as4x3));
  });

  it("matches the JavaScript fallback kernel on random small shapes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 19 }), fc.integer(), (rows, k, n, seed) => {
        const g = randomGemm(rows, k, n, seed);
        const want = expected(g);
        expect(run(gemmInt8Simd, g)).toEqual(want);
        expect(run(gemmInt8Js, g)).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });
});

function layer(k: number, n: number, outBits: number, seed: number): QLinear {
  const rng = seededRandom(seed);
  return {
    kind: "linear", name: "t", inFeatures: k, outFeatures: n,
    input: { bits: 8, exponent: -4 }, output: { bits: outBits, exponent: -2 }, weightBits: 8,
    weight: int8s(rng, n * k), weightExponents: new Int32Array(n), bias: biases(rng, n, k),
    shift: Int32Array.from({ length: n }, () => Math.floor(rng() * 40) - 8), // SHIFT_MIN..SHIFT_MAX
  };
}

/** docs/arithmetic.md's Linear in BigInt: exact sum plus bias, rounding shift, saturation to outBits. */
function reference(l: QLinear, x: Int8Array, rows: number): bigint[] {
  const max = (1n << BigInt(l.output.bits - 1)) - 1n;
  const out: bigint[] = [];
  for (let m = 0; m < rows; m++) {
    for (let c = 0; c < l.outFeatures; c++) {
      let acc = BigInt(l.bias[c]);
      for (let i = 0; i < l.inFeatures; i++) acc += BigInt(x[m * l.inFeatures + i]) * BigInt(l.weight[c * l.inFeatures + i]);
      const s = BigInt(l.shift[c]);
      const v = s > 0n ? (acc + (1n << (s - 1n))) >> s : acc << -s;
      out.push(v > max ? max : v < -max - 1n ? -max - 1n : v);
    }
  }
  return out;
}

describe("golden Linear on the SIMD GEMM", () => {
  it("equals the BigInt reference, int8 and int32 outputs, over the shapes above", () => {
    let seed = 100;
    for (const k of [1, 7, 49, 768]) {
      for (const rows of ROWS) {
        const l8 = layer(k, 13, 8, seed++);
        const l32 = layer(k, 37, 32, seed++);
        const x = int8s(seededRandom(seed++), rows * k);
        expect(Array.from(linearGolden(l8, x, rows), BigInt), `int8, K ${k}, rows ${rows}`).toEqual(reference(l8, x, rows));
        expect(Array.from(linearGoldenWide(l32, x, rows), BigInt), `int32, K ${k}, rows ${rows}`).toEqual(reference(l32, x, rows));
      }
    }
  });

  it("still refuses, on its exact path, a sum beyond a narrower accumulator", () => {
    const l = layer(49, 3, 8, 5);
    l.weight.fill(-128);
    l.bias.fill(0);
    expect(() => linearGolden(l, new Int8Array(49).fill(-128), 1, { accBits: 20 })).toThrow(/accumulator overflow at row 0, channel 0: 802816/);
  });
});
