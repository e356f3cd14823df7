import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  IntLayerNormParams,
  MAX_LN_DIM,
  MAX_LN_EPS_TERM,
  bitLength,
  isqrt,
  layerNormInt,
  layerNormRowStats,
  rowReciprocal,
} from "../../src/sim/golden/layernorm.js";
import { P2vitError } from "../../src/util/errors.js";
import { seededRandom } from "../../src/util/random.js";

/** floor(√n) in BigInt by Newton's method: an implementation independent of the kernel's. */
function bigIsqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = n;
  let y = (x + 1n) / 2n;
  while (y < x) {
    x = y;
    y = (x + n / x) / 2n;
  }
  return x;
}

/** The documented width of every intermediate for D ≤ 1024 (docs/arithmetic.md), as |v| < bound. */
const WIDTH_BOUNDS = {
  sum: 2n ** 20n + 1n, // |S1| ≤ 2^20
  sumSq: 2n ** 31n,
  variance: 2n ** 40n,
  sigma: 2n ** 21n,
  recip: 2n ** 16n + 1n, // R ≤ 2^16
  centered: 2n ** 21n,
  product: 2n ** 37n,
  z: 2n ** 18n,
  scaled: 2n ** 26n,
  sum33: 2n ** 32n,
};
type Widths = Record<keyof typeof WIDTH_BOUNDS, bigint>;

function abs(v: bigint): bigint {
  return v < 0n ? -v : v;
}

/** docs/arithmetic.md's integer LayerNorm written independently in BigInt; records the widest values seen. */
function reference(x: Int8Array, rows: number, dim: number, p: IntLayerNormParams, widths: Widths): Int8Array {
  const note = (key: keyof Widths, v: bigint) => {
    if (abs(v) > widths[key]) widths[key] = abs(v);
  };
  const D = BigInt(dim);
  const y = new Int8Array(x.length);
  for (let r = 0; r < rows; r++) {
    const a = Array.from({ length: dim }, (_, c) => BigInt(x[r * dim + c]) << BigInt(p.k[c]));
    const s1 = a.reduce((s, v) => s + v, 0n);
    const s2 = a.reduce((s, v) => s + v * v, 0n);
    const variance = D * s2 - s1 * s1;
    let sigma = bigIsqrt(variance + BigInt(p.epsTerm));
    if (sigma === 0n) sigma = 1n;
    const L = BigInt(sigma.toString(2).length);
    const recip = (1n << (L + 15n)) / sigma;
    [["sum", s1], ["sumSq", s2], ["variance", variance], ["sigma", sigma], ["recip", recip]].forEach(([k, v]) => note(k as keyof Widths, v as bigint));
    for (let c = 0; c < dim; c++) {
      const d = D * a[c] - s1;
      const s = L + 3n;
      const z = (d * recip + (1n << (s - 1n))) >> s; // BigInt >> floors: the rounding shift, half up
      const acc = BigInt(p.multiplier[c]) * z + BigInt(p.bias[c]);
      const n = BigInt(p.shift[c]);
      const rounded = n > 0n ? acc + (1n << (n - 1n)) : acc;
      let v = n > 0n ? rounded >> n : acc;
      v = v > 127n ? 127n : v < -128n ? -128n : v;
      y[r * dim + c] = Number(v);
      [["centered", d], ["product", d * recip], ["z", z], ["scaled", BigInt(p.multiplier[c]) * z], ["sum33", rounded]].forEach(([k, w]) =>
        note(k as keyof Widths, w as bigint),
      );
    }
  }
  return y;
}

function zeroWidths(): Widths {
  return Object.fromEntries(Object.keys(WIDTH_BOUNDS).map((k) => [k, 0n])) as Widths;
}

function expectWithinDocumentedWidths(widths: Widths): void {
  for (const key of Object.keys(WIDTH_BOUNDS) as (keyof Widths)[]) {
    expect(widths[key] < WIDTH_BOUNDS[key], `${key}: ${widths[key]} reaches the documented bound ${WIDTH_BOUNDS[key]}`).toBe(true);
  }
}

/** Random parameters of the core: k mixes, multipliers over the full 8-bit range, biases that fit 33 bits. */
function randomParams(rng: () => number, dim: number, epsTerm: number): IntLayerNormParams {
  const int = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
  const shift = Uint8Array.from({ length: dim }, () => int(0, 22));
  return {
    k: Uint8Array.from({ length: dim }, () => int(0, 3)),
    epsTerm,
    multiplier: Int16Array.from({ length: dim }, () => int(-255, 255)),
    // |B| up to 2^7 output steps at scale 2^N, and occasionally the int32 extremes.
    bias: Int32Array.from(shift, (n) => (rng() < 0.05 ? (rng() < 0.5 ? -(2 ** 31) : 2 ** 31 - 1) : int(-(2 ** (n + 7)), 2 ** (n + 7)))),
    shift,
  };
}

/** Rows of int8 values: uniform, the extremes, constant rows, or rows with a few outlier channels. */
function randomRows(rng: () => number, rows: number, dim: number): Int8Array {
  const x = new Int8Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const kind = Math.floor(rng() * 4);
    const constant = rng() < 0.5 ? -128 : 127;
    for (let c = 0; c < dim; c++) {
      const u = Math.floor(rng() * 256) - 128;
      x[r * dim + c] = kind === 0 ? u : kind === 1 ? (rng() < 0.5 ? -128 : 127) : kind === 2 ? constant : rng() < 0.05 ? u : u >> 5;
    }
  }
  return x;
}

function simpleParams(dim: number, m: number, b: number, n: number, k = 0, epsTerm = 0): IntLayerNormParams {
  return {
    k: new Uint8Array(dim).fill(k),
    epsTerm,
    multiplier: new Int16Array(dim).fill(m),
    bias: new Int32Array(dim).fill(b),
    shift: new Uint8Array(dim).fill(n),
  };
}

describe("isqrt", () => {
  it("is exact at every perfect-square edge up to 2^32", () => {
    for (let k = 0; k <= 65536; k++) {
      const sq = k * k;
      if (isqrt(sq) !== k || isqrt(sq + 2 * k) !== k || (k > 0 && isqrt(sq - 1) !== k - 1)) {
        throw new Error(`isqrt wrong near ${k}²: ${isqrt(sq - 1)}, ${isqrt(sq)}, ${isqrt(sq + 2 * k)}`);
      }
    }
    expect(isqrt(2 ** 32 - 1)).toBe(65535);
    expect(isqrt(2 ** 32)).toBe(65536);
  });

  it("matches a BigInt Newton square root on random values up to 2^52", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 52n }), (n) => {
        expect(BigInt(isqrt(Number(n)))).toBe(bigIsqrt(n));
      }),
      { numRuns: 5000 },
    );
    expect(isqrt(2 ** 52)).toBe(2 ** 26);
    expect(isqrt(2 ** 52 - 1)).toBe(2 ** 26 - 1);
  });

  it("refuses negative, fractional and too-large inputs", () => {
    expect(() => isqrt(-1)).toThrow(P2vitError);
    expect(() => isqrt(2.5)).toThrow(/isqrt/);
    expect(() => isqrt(2 ** 52 + 2)).toThrow(/2\^52/);
  });
});

describe("row reciprocal", () => {
  it("is floor(2^(L+15) / σ), a 17-bit quotient in [2^15, 2^16]", () => {
    const check = (sigma: number) => {
      const L = bitLength(sigma);
      const r = rowReciprocal(sigma, L);
      const expected = Number((1n << BigInt(L + 15)) / BigInt(sigma));
      if (r !== expected || r < 2 ** 15 || r > 2 ** 16) throw new Error(`σ = ${sigma}: got ${r}, expected ${expected}`);
    };
    for (let sigma = 1; sigma <= 70000; sigma++) check(sigma);
    fc.assert(fc.property(fc.integer({ min: 1, max: 2 ** 21 }), (s) => check(s)), { numRuns: 2000 });
  });

  it("bit length brackets its argument", () => {
    expect([1, 2, 3, 4, 255, 256, 2 ** 20].map(bitLength)).toEqual([1, 2, 2, 3, 8, 9, 21]);
  });
});

describe("integer LayerNorm kernel", () => {
  it("computes a hand-checked row", () => {
    // a = [1,2,3,4]: S1 = 10, S2 = 30, V = 4·30 − 100 = 20, σ = isqrt(20) = 4, L = 3, R = 2^18/4 = 65536;
    // d = 4a − 10 = [−6,−2,2,6], z = d·65536 / 2^6 = d·1024; y = (64·z + 0) / 2^12 = d·16.
    expect(Array.from(layerNormInt(Int8Array.from([1, 2, 3, 4]), 1, 4, simpleParams(4, 64, 0, 12)))).toEqual([-96, -32, 32, 96]);
    // A bias of 5.5 output steps at N = 12 (5.5·4096 = 22528) adds 5.5 before the round-half-up shift.
    expect(Array.from(layerNormInt(Int8Array.from([1, 2, 3, 4]), 1, 4, simpleParams(4, 64, 22528, 12)))).toEqual([-90, -26, 38, 102]);
  });

  it("aligns PTF channels by left shifts before the statistics", () => {
    // Channel factors k = [3, 0, 2, 1] make x = [1, 8, 2, 4] the aligned row a = [8, 8, 8, 8]: zero variance.
    const p = { ...simpleParams(4, 100, 4096 * 7, 12), k: Uint8Array.from([3, 0, 2, 1]) };
    expect(Array.from(layerNormInt(Int8Array.from([1, 8, 2, 4]), 1, 4, p))).toEqual([7, 7, 7, 7]);
    expect(layerNormRowStats(Int8Array.from([1, 8, 2, 4]), 0, 4, p)).toMatchObject({ sum: 32, sumSq: 256, variance: 0, sigma: 1 });
  });

  it("gives a row of equal values its bias alone, with or without ε (no division by zero)", () => {
    for (const value of [-128, -1, 0, 5, 127]) {
      for (const epsTerm of [0, 1, 12345, MAX_LN_EPS_TERM]) {
        const dim = 49;
        const rng = seededRandom(value + epsTerm);
        // One k for all channels: with mixed factors equal integers are not equal values.
        const p = { ...randomParams(rng, dim, epsTerm), k: new Uint8Array(dim).fill(epsTerm % 4) };
        const y = layerNormInt(new Int8Array(dim).fill(value), 1, dim, p);
        const expected = Array.from({ length: dim }, (_, c) => {
          const n = p.shift[c];
          const v = n > 0 ? Math.floor((p.bias[c] + 2 ** (n - 1)) / 2 ** n) : p.bias[c];
          return Math.max(-128, Math.min(127, v));
        });
        expect(Array.from(y)).toEqual(expected);
      }
    }
  });

  it("matches the BigInt reference on random rows, dims and PTF mixes, within the documented widths", () => {
    const widths = zeroWidths();
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 1, max: 80 }), fc.constantFrom(49, 192, 197, 768, 1000, MAX_LN_DIM)),
        fc.integer({ min: 1, max: 4 }),
        fc.oneof(fc.constantFrom(0, 1, MAX_LN_EPS_TERM), fc.integer({ min: 0, max: MAX_LN_EPS_TERM })),
        fc.integer(),
        (dim, rows, epsTerm, seed) => {
          const rng = seededRandom(seed);
          const p = randomParams(rng, dim, epsTerm);
          const x = randomRows(rng, rows, dim);
          expect(Array.from(layerNormInt(x, rows, dim, p))).toEqual(Array.from(reference(x, rows, dim, p, widths)));
        },
      ),
      { numRuns: 300 },
    );
    expectWithinDocumentedWidths(widths);
  });

  it("stays within the documented widths at the extremes of D = 1024", () => {
    const dim = MAX_LN_DIM;
    const widths = zeroWidths();
    const p = { ...simpleParams(dim, -255, -(2 ** 31), 22, 3), bias: new Int32Array(dim).fill(2 ** 31 - 1) };
    const rows: Int8Array[] = [
      Int8Array.from({ length: dim }, (_, c) => (c % 2 ? 127 : -128)), // the largest variance
      Int8Array.from({ length: dim }, (_, c) => (c === 0 ? -128 : 127)), // the largest |x̂| = √(D−1)
      Int8Array.from({ length: dim }, (_, c) => (c === 0 ? 1 : 0)), // the smallest non-zero variance
      new Int8Array(dim).fill(-128),
    ];
    for (const pk of [p, { ...p, k: new Uint8Array(dim) }, { ...p, multiplier: new Int16Array(dim).fill(255), bias: new Int32Array(dim).fill(-(2 ** 31)) }]) {
      for (const row of rows) expect(Array.from(layerNormInt(row, 1, dim, pk))).toEqual(Array.from(reference(row, 1, dim, pk, widths)));
    }
    expectWithinDocumentedWidths(widths);
  });

  it("saturates to the int8 range", () => {
    const y = layerNormInt(Int8Array.from([-128, 127]), 1, 2, simpleParams(2, 255, 0, 0));
    expect(Array.from(y)).toEqual([-128, 127]);
  });

  it("refuses inconsistent shapes and out-of-range parameters with clear errors", () => {
    const ok = simpleParams(4, 1, 0, 0);
    const x = new Int8Array(8);
    expect(() => layerNormInt(new Int8Array(7), 2, 4, ok)).toThrow(/input has 7 values, expected 2×4/);
    expect(() => layerNormInt(x, 2, 4, { ...ok, k: Uint8Array.from([0, 4, 0, 0]) })).toThrow(/k\[1\]: expected 0..3, got 4/);
    expect(() => layerNormInt(x, 2, 4, { ...ok, multiplier: Int16Array.from([0, 0, 256, 0]) })).toThrow(/multiplier\[2\]/);
    expect(() => layerNormInt(x, 2, 4, { ...ok, shift: Uint8Array.from([0, 0, 0, 23]) })).toThrow(/shift\[3\]/);
    expect(() => layerNormInt(x, 2, 4, { ...ok, epsTerm: MAX_LN_EPS_TERM + 1 })).toThrow(/epsTerm/);
    expect(() => layerNormInt(x, 2, 4, { ...ok, epsTerm: 0.5 })).toThrow(P2vitError);
    expect(() => layerNormInt(x, 2, 4, { ...ok, bias: new Int32Array(3) })).toThrow(/expected 4 values each/);
    expect(() => layerNormInt(new Int8Array(1025), 1, 1025, simpleParams(1025, 1, 0, 0))).toThrow(/dim: expected an integer from 1 to 1024/);
  });
});
