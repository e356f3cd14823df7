import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EXP_POLY, quantizeSoftmax } from "../../src/quant/ops/attention.js";
import {
  AttentionScoresParams,
  AttentionValuesParams,
  EXP_BITS,
  LOG2_ACC_BITS,
  LOG2_FRAC_BITS,
  LOG2_ZERO_CODE,
  MAX_TOKENS,
  SoftmaxParams,
  UNIFORM_ACC_BITS,
  attentionScoresInt,
  attentionValuesInt,
  floorSqrt2Times,
  intExp,
  log2Code,
  logIntSoftmax,
  uniformIntSoftmax,
  uniformProbability,
} from "../../src/sim/golden/attention.js";
import { P2vitError } from "../../src/util/errors.js";
import { gaussian, seededRandom } from "../../src/util/random.js";
import { REPO } from "../paths.js";

const int8 = fc.integer({ min: -128, max: 127 });
const SQRT1_2_BELOW = 0.7071067811865475; // splitScale(32 ** -0.5).residual, one ulp under Math.SQRT1_2

function softmaxParams(attnBits: 4 | 8, scoreExponent: number, scoreResidual = 1): SoftmaxParams {
  return quantizeSoftmax({ name: "t", attnBits, scoreExponent, scoreResidual });
}

function scoresParams(headDim: number, shift: number): AttentionScoresParams {
  return { headDim, qExponent: -4, kExponent: -4, scaleExponent: -3, scaleResidual: 1, scoreExponent: shift - 11, shift };
}

function valuesParams(attnBits: 4 | 8, headDim: number, shift: number): AttentionValuesParams {
  return { attnBits, headDim, vExponent: -4, outputExponent: shift - 4 - (attnBits === 4 ? LOG2_FRAC_BITS : 8), shift };
}

/** shiftRound then sat8 in BigInt (BigInt >> is floor division): docs/arithmetic.md's requantization. */
function bigRequant(acc: bigint, shift: number): number {
  const s = BigInt(shift);
  const v = s > 0n ? (acc + (1n << (s - 1n))) >> s : acc << -s;
  return Number(v > 127n ? 127n : v < -128n ? -128n : v);
}

/** The spec's code from E and S alone, through squares: the largest j with E²·4^j ≤ 2·S², clamped. */
function bigCode(e: number, sum: number): number {
  if (e === 0) return LOG2_ZERO_CODE;
  const lhs = BigInt(e) * BigInt(e);
  const rhs = 2n * BigInt(sum) * BigInt(sum);
  let j = 0;
  while (j < LOG2_ZERO_CODE && lhs << BigInt(2 * (j + 1)) <= rhs) j++;
  return j;
}

/** A row of int8 scores: Gaussian with a random spread, so rows range from flat to peaked. */
function randomRow(rng: () => number, n: number): Int8Array {
  const sd = 4 + rng() * 60;
  return Int8Array.from({ length: n }, () => Math.max(-128, Math.min(127, Math.round(gaussian(rng) * sd))));
}

describe("attention scores kernel", () => {
  it("computes a hand-checked example, rounding ties up and saturating", () => {
    // Q rows [1,2], [-1,3]; K rows [3,4], [64,64]: dots 11, 192, 9, 128; shift 1 → 5.5→6, 96, 4.5→5, 64
    const p = scoresParams(2, 1);
    const s = attentionScoresInt(Int8Array.from([1, 2, -1, 3]), Int8Array.from([3, 4, 64, 64]), 2, 2, p);
    expect(Array.from(s)).toEqual([6, 96, 5, 64]);
    const sat = attentionScoresInt(Int8Array.from([127, -128]), Int8Array.from([127, 127]), 2, 1, scoresParams(1, 0));
    expect(Array.from(sat)).toEqual([127, 127, -128, -128]);
  });

  it("equals the BigInt reference on random int8 Q, K, shapes and shifts", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: -8, max: 20 }),
        fc.integer(),
        (tokens, headDim, shift, seed) => {
          const rng = seededRandom(seed);
          const extreme = () => (rng() < 0.3 ? (rng() < 0.5 ? -128 : 127) : Math.floor(rng() * 256) - 128);
          const q = Int8Array.from({ length: tokens * headDim }, extreme);
          const k = Int8Array.from({ length: tokens * headDim }, extreme);
          const s = attentionScoresInt(q, k, tokens, headDim, scoresParams(headDim, shift));
          for (let i = 0; i < tokens; i++) {
            for (let j = 0; j < tokens; j++) {
              let acc = 0n;
              for (let d = 0; d < headDim; d++) acc += BigInt(q[i * headDim + d]) * BigInt(k[j * headDim + d]);
              expect(s[i * tokens + j]).toBe(bigRequant(acc, shift));
            }
          }
        },
      ),
    );
  });

  it("refuses mismatched shapes", () => {
    expect(() => attentionScoresInt(new Int8Array(6), new Int8Array(6), 2, 3, scoresParams(2, 0))).toThrow(P2vitError);
    expect(() => attentionScoresInt(new Int8Array(6), new Int8Array(4), 2, 3, scoresParams(3, 0))).toThrow(/K: expected 2×3/);
  });
});

describe("integer exp", () => {
  // Bound: |E·u − e^x| ≤ 1.8e-3·e^x + u, u = a·δ²·2^D the real value of one E step. 1.8e-3 is the
  // polynomial's 1.7248e-3 plus the rounding of L, B, C and (for G < 0) of the input.
  const REL_BOUND = 1.8e-3;

  it("follows exp over the whole int8 difference range, every exponent and residual", () => {
    let worst = 0;
    for (const residual of [1, SQRT1_2_BELOW, 0.5, 1.99]) {
      for (let exponent = -20; exponent <= 3; exponent++) {
        const p = softmaxParams(4, exponent, residual);
        const delta = residual * 2 ** -16;
        const unit = EXP_POLY.a * delta * delta * 2 ** p.polyShift;
        for (let d = -255; d <= 0; d++) {
          const e = intExp(d, p);
          const exact = Math.exp(d * residual * 2 ** exponent);
          expect(Number.isInteger(e) && e >= 0 && e < 2 ** EXP_BITS).toBe(true);
          const err = Math.abs(e * unit - exact);
          expect(err).toBeLessThanOrEqual(REL_BOUND * exact + unit);
          worst = Math.max(worst, (err - unit) / exact);
        }
      }
    }
    console.log(`integer exp: worst relative error beyond one unit ${worst.toExponential(3)} (bound ${REL_BOUND})`);
  });

  it("puts E(0) in [2^19, 2^20) and zeroes exactly the distances at or past the cutoff", () => {
    for (const residual of [1, SQRT1_2_BELOW, 0.5, 1.99]) {
      const p = softmaxParams(4, -16, residual); // G = 0: d is t itself
      expect(intExp(0, p)).toBeGreaterThanOrEqual(2 ** (EXP_BITS - 1));
      expect(intExp(0, p)).toBeLessThan(2 ** EXP_BITS);
      expect(intExp(-p.expCutoff, p)).toBe(0);
      // z = 19, r = 0: E(0) >> 19 = 1, the last nonzero power; the cutoff (z = 20) only skips work.
      expect(intExp(-(EXP_BITS - 1) * p.ln2, p)).toBe(1);
      expect(p.polyB).toBeLessThan(2 ** 18);
      expect(p.ln2).toBeLessThan(2 ** 17);
    }
  });
});

describe("log-int softmax", () => {
  const p = softmaxParams(4, -3);

  it("takes the square root of 2S² exactly", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 30 - 1 }), (s) => {
        const r = BigInt(floorSqrt2Times(s));
        const n = 2n * BigInt(s) * BigInt(s);
        expect(r * r <= n && (r + 1n) * (r + 1n) > n).toBe(true);
      }),
    );
  });

  it("codes each element as round(log2(S/E)) exactly: the BigInt squares reference", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** EXP_BITS - 1 }), fc.integer({ min: 0, max: 2 ** 30 - 1 }), (e, extra) => {
        const sum = Math.max(e, 1) + extra;
        expect(log2Code(e, floorSqrt2Times(sum))).toBe(bigCode(e, sum));
      }),
    );
  });

  it("gives every element of an equal row the code round(log2 n), so Σ 2^-q is within [2^-½, 2^½]", () => {
    fc.assert(
      fc.property(int8, fc.integer({ min: 1, max: MAX_TOKENS }), fc.integer({ min: -8, max: 1 }), (v, n, exponent) => {
        const codes = logIntSoftmax(new Int8Array(n).fill(v), 1, n, softmaxParams(4, exponent));
        const expected = Math.round(Math.log2(n));
        expect(codes.every((c) => c === expected)).toBe(true);
        const total = n * 2 ** -expected;
        expect(total).toBeGreaterThanOrEqual(Math.SQRT1_2);
        expect(total).toBeLessThanOrEqual(Math.SQRT2);
      }),
      { numRuns: 200 },
    );
  });

  it("handles extreme and dominant scores", () => {
    // 127 against −128: 255 steps of 2^-3 = 31.9 real, far past the cutoff of 20·ln2.
    const dominant = Int8Array.from([-128, 127, -128, -128, -128]);
    expect(Array.from(logIntSoftmax(dominant, 1, 5, p))).toEqual([15, 0, 15, 15, 15]);
    // Two maxima share: round(log2 2) = 1 each.
    const two = Int8Array.from([127, -128, 127]);
    expect(Array.from(logIntSoftmax(two, 1, 3, p))).toEqual([1, 15, 1]);
    // All at the extremes of int8, 197 tokens, fine and coarse exponents: codes match the spec.
    const rng = seededRandom(5);
    const row = Int8Array.from({ length: 197 }, () => (rng() < 0.5 ? -128 : 127));
    for (const exponent of [-9, -6, -3]) {
      const q = softmaxParams(4, exponent);
      const codes = logIntSoftmax(row, 1, 197, q);
      const e = Array.from(row, (s) => intExp(s - 127, q));
      const sum = e.reduce((a, b) => a + b, 0);
      expect(Array.from(codes)).toEqual(e.map((x) => bigCode(x, sum)));
    }
  });

  it("matches round(log2(Σe/e)) of a float softmax on ≥ 99% of codes, rows of 17, 65 and 197", () => {
    const rng = seededRandom(11);
    let agree = 0;
    let total = 0;
    let agreeNonZero = 0;
    let totalNonZero = 0;
    let farOff = 0;
    for (let it = 0; it < 600; it++) {
      const n = [17, 65, 197][it % 3];
      const exponent = -1 - Math.floor(rng() * 5);
      const residual = it % 2 ? 1 : SQRT1_2_BELOW;
      const row = randomRow(rng, n);
      const codes = logIntSoftmax(row, 1, n, softmaxParams(4, exponent, residual));
      const max = Math.max(...row);
      const e = Array.from(row, (s) => Math.exp((s - max) * residual * 2 ** exponent));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j < n; j++) {
        const ref = Math.min(LOG2_ZERO_CODE, Math.round(Math.log2(sum / e[j])));
        if (Math.abs(ref - codes[j]) > 1) farOff++;
        total++;
        if (ref === codes[j]) agree++;
        if (ref < LOG2_ZERO_CODE) {
          totalNonZero++;
          if (ref === codes[j]) agreeNonZero++;
        }
      }
    }
    console.log(
      `log2 codes vs float softmax: ${((100 * agree) / total).toFixed(2)}% of ${total} codes, ` +
        `${((100 * agreeNonZero) / totalNonZero).toFixed(2)}% of the ${totalNonZero} with nonzero probability`,
    );
    expect(farOff).toBe(0);
    expect(agree / total).toBeGreaterThanOrEqual(0.99);
    expect(agreeNonZero / totalNonZero).toBeGreaterThanOrEqual(0.99);
  });

  it("processes several rows independently, for token counts that are not powers of two", () => {
    const rng = seededRandom(3);
    for (const n of [17, 65, 197]) {
      const rows = 3;
      const scores = new Int8Array(rows * n);
      for (let i = 0; i < rows; i++) scores.set(randomRow(rng, n), i * n);
      const all = logIntSoftmax(scores, rows, n, p);
      for (let i = 0; i < rows; i++) {
        const alone = logIntSoftmax(scores.subarray(i * n, (i + 1) * n), 1, n, p);
        expect(Array.from(all.subarray(i * n, (i + 1) * n))).toEqual(Array.from(alone));
      }
    }
  });

  it("refuses rows longer than the core takes, and parameters for the other mode", () => {
    expect(() => logIntSoftmax(new Int8Array(MAX_TOKENS + 1), 1, MAX_TOKENS + 1, p)).toThrow(P2vitError);
    expect(() => logIntSoftmax(new Int8Array(4), 1, 4, softmaxParams(8, -3))).toThrow(/attnBits 8/);
    expect(() => logIntSoftmax(new Int8Array(5), 2, 3, p)).toThrow(/expected 2×3/);
  });
});

describe("uniform 8-bit softmax", () => {
  it("rounds 256·E/S half up with a clamp at 255: the BigInt reference", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** EXP_BITS - 1 }), fc.integer({ min: 0, max: 2 ** 30 - 2 ** EXP_BITS }), (e, extra) => {
        const sum = Math.max(e, 1) + extra;
        const ref = (512n * BigInt(e) + BigInt(sum)) / (2n * BigInt(sum));
        expect(uniformProbability(e, sum)).toBe(Number(ref > 255n ? 255n : ref));
      }),
    );
  });

  it("stays within half a step (plus the exp's error) of a float softmax", () => {
    const rng = seededRandom(12);
    for (let it = 0; it < 200; it++) {
      const n = [17, 65, 197][it % 3];
      const row = randomRow(rng, n);
      const probs = uniformIntSoftmax(row, 1, n, softmaxParams(8, -3));
      const max = Math.max(...row);
      const e = Array.from(row, (s) => Math.exp((s - max) / 8));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j < n; j++) {
        const ref = Math.min(255, 256 * (e[j] / sum));
        expect(Math.abs(probs[j] - ref)).toBeLessThanOrEqual(0.5 + 256 * 4e-3 * (e[j] / sum) + 1e-3);
      }
    }
    // One dominant score: 256 clamps to 255.
    expect(Array.from(uniformIntSoftmax(Int8Array.from([127, -128, -128]), 1, 3, softmaxParams(8, -3)))).toEqual([255, 0, 0]);
  });
});

/** docs/arithmetic.md's attention·V in BigInt: Σ V·2^(14−code) (log2) or Σ V·p (uniform), one requantization. */
function bigValues(probs: Uint8Array, v: Int8Array, tokens: number, headDim: number, p: AttentionValuesParams): Int8Array {
  const out = new Int8Array(tokens * headDim);
  for (let t = 0; t < tokens; t++) {
    for (let d = 0; d < headDim; d++) {
      let acc = 0n;
      for (let j = 0; j < tokens; j++) {
        const c = probs[t * tokens + j];
        const vj = BigInt(v[j * headDim + d]);
        if (p.attnBits === 8) acc += vj * BigInt(c);
        else if (c < LOG2_ZERO_CODE) acc += vj << BigInt(LOG2_FRAC_BITS - c);
      }
      out[t * headDim + d] = bigRequant(acc, p.shift);
    }
  }
  return out;
}

describe("attention·V kernel", () => {
  it("equals the BigInt reference for probabilities from both softmax modes", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(4 as const, 8 as const),
        fc.constantFrom(1, 2, 17, 65),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 20 }),
        fc.integer(),
        (attnBits, tokens, headDim, shift, seed) => {
          const rng = seededRandom(seed);
          const scores = new Int8Array(tokens * tokens);
          for (let t = 0; t < tokens; t++) scores.set(randomRow(rng, tokens), t * tokens);
          const sp = softmaxParams(attnBits, -3);
          const probs = attnBits === 4 ? logIntSoftmax(scores, tokens, tokens, sp) : uniformIntSoftmax(scores, tokens, tokens, sp);
          const v = Int8Array.from({ length: tokens * headDim }, () => (rng() < 0.2 ? -128 : Math.floor(rng() * 256) - 128));
          const p = valuesParams(attnBits, headDim, shift);
          expect(Array.from(attentionValuesInt(probs, v, tokens, headDim, p))).toEqual(Array.from(bigValues(probs, v, tokens, headDim, p)));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("keeps the accumulator within its stated width at the worst case: V = −128 everywhere", () => {
    for (const n of [1, 2, 3, 17, 197, MAX_TOKENS]) {
      const v = new Int8Array(n).fill(-128);
      // Equal scores give every row the largest Σ 2^-q; a shift of 0 returns the clamped sum.
      const codes = logIntSoftmax(new Int8Array(n * n), n, n, softmaxParams(4, -3));
      const log2Sum = n * 2 ** (LOG2_FRAC_BITS - codes[0]) * -128;
      expect(Math.abs(log2Sum)).toBeLessThan(2 ** (LOG2_ACC_BITS - 1));
      expect(() => attentionValuesInt(codes, v, n, 1, valuesParams(4, 1, 0))).not.toThrow();
      const probs = uniformIntSoftmax(new Int8Array(n * n), n, n, softmaxParams(8, -3));
      expect(n * probs[0] * 128).toBeLessThan(2 ** (UNIFORM_ACC_BITS - 1));
    }
  });

  it("bounds the weights of any softmax row: Σ 2^-q ≤ √2 (log2) and Σ p ≤ 256 + n/2 (uniform)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: -9, max: 0 }), fc.integer(), (n, exponent, seed) => {
        const row = randomRow(seededRandom(seed), n);
        const codes = logIntSoftmax(row, 1, n, softmaxParams(4, exponent));
        let weight = 0;
        for (const c of codes) if (c < LOG2_ZERO_CODE) weight += 2 ** -c;
        expect(weight).toBeLessThanOrEqual(Math.SQRT2);
        const probs = uniformIntSoftmax(row, 1, n, softmaxParams(8, exponent));
        expect(probs.reduce((t, x) => t + x, 0)).toBeLessThanOrEqual(256 + n / 2);
      }),
    );
  });

  it("reports an accumulator overflow for codes no softmax produces", () => {
    const n = 300; // 300 · 128 · 2^14 ≥ 2^22
    const allZeroCodes = new Uint8Array(n * n);
    expect(() => attentionValuesInt(allZeroCodes, new Int8Array(n).fill(-128), n, 1, valuesParams(4, 1, 14))).toThrow(
      /overflows its 23 bits/,
    );
    expect(() => attentionValuesInt(Uint8Array.from([16]), Int8Array.from([1]), 1, 1, valuesParams(4, 1, 14))).toThrow(P2vitError);
  });

  it("refuses mismatched shapes", () => {
    expect(() => attentionValuesInt(new Uint8Array(4), new Int8Array(6), 2, 2, valuesParams(4, 3, 14))).toThrow(P2vitError);
    expect(() => attentionValuesInt(new Uint8Array(3), new Int8Array(6), 2, 3, valuesParams(4, 3, 14))).toThrow(/2×2/);
  });
});

describe("golden attention module", () => {
  it("uses no floating-point functions and imports only the integer arithmetic", () => {
    const source = readFileSync(`${REPO}/src/sim/golden/attention.ts`, "utf8");
    expect(source).not.toMatch(/Math\.(exp|log|log2|log10|sqrt|pow|round|fround|hypot|cbrt)\b/);
    const imports = [...source.matchAll(/from "([^"]+)"/g)].map((m) => m[1]);
    expect(imports.sort()).toEqual(["../../arith.js", "../../util/errors.js"]);
  });
});
