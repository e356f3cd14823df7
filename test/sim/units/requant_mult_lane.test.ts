/**
 * requant_mult_lane, the multiplier (float-scale) requantization, against its TS reference
 * requantizeMult: random and extreme multipliers and shifts, and with M = 2^15, N = s + 15 against the
 * shifter's requantize, which it must then equal.
 */
import { describe, expect, it } from "vitest";
import { SHIFT_MAX, SHIFT_MIN, requantize, signedRange } from "../../../src/arith.js";
import { MULT_BITS, MULT_NORM_BIT, MULT_SHIFT_MAX, renderUnit, requantizeMult } from "../../../src/generator/units.js";
import { Cycle, Expected, StimulusRng, checkUnit, requantVectors } from "../../../src/sim/verilator/unit.js";

interface MultVector {
  acc: number;
  bias: number;
  mult: number;
  n: number;
}

function multVectors(accBits: number, n: number, seed: number): MultVector[] {
  const rng = new StimulusRng(seed);
  const mMax = 2 ** MULT_BITS - 1;
  return requantVectors(accBits, n, seed).map((v, i) => {
    // a third of the vectors take the power-of-two scale of their shift, the rest a random scale
    if (i % 3 === 0) return { acc: v.acc, bias: v.bias, mult: 2 ** MULT_NORM_BIT, n: v.shift + MULT_NORM_BIT };
    const mult = rng.edgy(0, mMax, 0.3, [0, 1, 2 ** MULT_NORM_BIT, mMax]);
    // keep the result often inside int8: N near log2(|acc + bias| · M / 64)
    const mag = Math.log2(Math.abs(v.acc + v.bias) * Math.max(mult, 1) + 1);
    const near = Math.max(0, Math.min(MULT_SHIFT_MAX, Math.round(mag - 6) + rng.int(-2, 2)));
    const nShift = rng.chance(0.25) ? rng.pick([0, 1, MULT_SHIFT_MAX - 1, MULT_SHIFT_MAX]) : near;
    return { acc: v.acc, bias: v.bias, mult, n: nShift };
  });
}

describe("requantizeMult (the TS reference)", () => {
  it("equals the shifter for M = 2^15, N = s + 15, on every shift", () => {
    const { lo, hi } = signedRange(48);
    for (let s = SHIFT_MIN; s <= SHIFT_MAX; s++) {
      for (const sum of [lo, hi, 0, -1, 1, 3 * 2 ** Math.max(s, 0), -(2 ** Math.max(s + 7, 0)) - 1, 2 ** Math.max(s + 7, 0) - 1, 12345678901, -987654321]) {
        expect(requantizeMult(sum, 0, 2 ** MULT_NORM_BIT, s + MULT_NORM_BIT)).toBe(requantize(sum, s, 8));
      }
    }
  });

  it("rounds half up and saturates", () => {
    expect(requantizeMult(5, 0, 1, 1)).toBe(3); // 2.5 → 3
    expect(requantizeMult(-5, 0, 1, 1)).toBe(-2); // −2.5 → −2
    expect(requantizeMult(3, 2, 3, 2)).toBe(4); // 15 / 4 = 3.75 → 4
    expect(requantizeMult(2 ** 40, 0, 65535, 0)).toBe(127);
    expect(requantizeMult(-(2 ** 40), -(2 ** 31), 65535, 47)).toBe(-128);
    expect(requantizeMult(-(2 ** 46), 0, 1, 47)).toBe(0); // −0.5 → 0
    expect(requantizeMult(-(2 ** 46) - 1, 0, 1, 47)).toBe(-1);
    expect(() => requantizeMult(0, 0, 65536, 0)).toThrow(RangeError);
    expect(() => requantizeMult(0, 0, 1, 48)).toThrow(RangeError);
  });
});

describe("requant_mult_lane (Verilator) against requantizeMult", () => {
  it.each([20, 32, 48])("is bit-exact at ACC %i", async (accBits) => {
    const unit = renderUnit({ unit: "requant_mult_lane", accBits });
    const vecs = multVectors(accBits, 3000, 200 + accBits);
    const cycles: Cycle[] = vecs.map((v) => ({ acc: v.acc, bias: v.bias, shift: v.n, mult: v.mult }));
    for (let i = 0; i < unit.latency; i++) cycles.push({});
    const expected: Expected[] = vecs.map((v, i) => ({ cycle: i + unit.latency, vector: i, values: { y: requantizeMult(v.acc, v.bias, v.mult, v.n) } }));
    const describeVec = (i: number) => `acc=${vecs[i].acc} bias=${vecs[i].bias} mult=${vecs[i].mult} N=${vecs[i].n}`;
    const { mismatch } = await checkUnit(unit, cycles, expected, describeVec);
    expect(mismatch, mismatch?.message).toBeNull();
    // the power-of-two third agrees with the shifter as well
    const pot = vecs.filter((v) => v.mult === 2 ** MULT_NORM_BIT && v.n >= MULT_NORM_BIT + SHIFT_MIN);
    for (const v of pot) expect(requantizeMult(v.acc, v.bias, v.mult, v.n)).toBe(requantize(v.acc + v.bias, v.n - MULT_NORM_BIT, 8));
  });
});
