import { describe, expect, it } from "vitest";
import { P2vitError } from "../../src/util/errors.js";
import { gaussian, seededRandom } from "../../src/util/random.js";
import {
  activationExponent,
  candidateExponents,
  chooseExponent,
  fakeQuantMse,
  floatScale,
  maxAbs,
  quantizeTensor,
} from "../../src/quant/pot.js";

describe("floatScale", () => {
  it("divides the range by 2^(bits-1) - 0.5", () => {
    expect(floatScale(127.5, 8)).toBe(1);
    expect(floatScale(7.5, 4)).toBe(1);
    expect(floatScale(1, 8)).toBeCloseTo(1 / 127.5, 15);
  });

  it("gives an all-zero tensor a tiny positive scale", () => {
    const s = floatScale(0, 8);
    expect(s).toBeGreaterThan(0);
    expect(s).toBeLessThan(1e-6);
    expect(candidateExponents(s).every(Number.isInteger)).toBe(true);
  });

  it("refuses negative, infinite and NaN ranges and bad widths", () => {
    expect(() => floatScale(-1, 8)).toThrow(/maxAbs/);
    expect(() => floatScale(Infinity, 8)).toThrow(P2vitError);
    expect(() => floatScale(Number.NaN, 8)).toThrow(P2vitError);
    expect(() => floatScale(1, 1)).toThrow(/bits/);
    expect(() => floatScale(1, 4.5)).toThrow(/bits/);
  });
});

describe("candidateExponents", () => {
  it("is floor(log2 s) - 1 … + 2", () => {
    expect(candidateExponents(1)).toEqual([-1, 0, 1, 2]);
    expect(candidateExponents(floatScale(127.5, 8))).toEqual([-1, 0, 1, 2]);
    expect(candidateExponents(0.75)).toEqual([-2, -1, 0, 1]);
    expect(candidateExponents(1 / 127.5)).toEqual([-8, -7, -6, -5]);
  });

  it("refuses a scale that is not positive", () => {
    expect(() => candidateExponents(0)).toThrow(/scale/);
    expect(() => candidateExponents(-2)).toThrow(P2vitError);
  });
});

describe("chooseExponent", () => {
  it("picks the candidate with the lowest error", () => {
    expect(chooseExponent([-1, 0, 1, 2], (e) => (e - 1) ** 2)).toBe(1);
    expect(chooseExponent([3, 4, 5], (e) => -e)).toBe(5);
  });

  it("keeps the first candidate on a tie", () => {
    expect(chooseExponent([-1, 0, 1, 2], (e) => (e === -1 ? 5 : 1))).toBe(0);
    expect(chooseExponent([7, 8], () => 0)).toBe(7);
  });

  it("refuses an empty candidate list", () => {
    expect(() => chooseExponent([], () => 0)).toThrow(/candidates/);
  });
});

describe("quantizeTensor", () => {
  it("rounds half up and saturates at the int8 range", () => {
    const x = Float32Array.from([200, -200, 0.5, -0.5, 1.5, -1.5, 2.49, 127.4, -128.6]);
    expect(Array.from(quantizeTensor(x, 0, 8))).toEqual([127, -128, 1, 0, 2, -1, 2, 127, -128]);
  });

  it("divides by 2^exponent before rounding", () => {
    const x = Float32Array.from([0.25, -0.25, 3, 0.125]);
    expect(Array.from(quantizeTensor(x, -2, 8))).toEqual([1, -1, 12, 1]);
    expect(Array.from(quantizeTensor(x, 1, 8))).toEqual([0, 0, 2, 0]);
  });

  it("saturates at the int4 range", () => {
    const x = Float32Array.from([100, -100, 7.4, -8.4]);
    expect(Array.from(quantizeTensor(x, 0, 4))).toEqual([7, -8, 7, -8]);
  });

  it("refuses a fractional exponent and widths above 8 bits", () => {
    const x = Float32Array.from([1]);
    expect(() => quantizeTensor(x, 0.5, 8)).toThrow(/exponent/);
    expect(() => quantizeTensor(x, 0, 9)).toThrow(/bits/);
  });
});

describe("maxAbs and fakeQuantMse", () => {
  it("finds the range and names a non-finite element", () => {
    expect(maxAbs(Float32Array.from([0.5, -3, 2]))).toBe(3);
    expect(() => maxAbs(Float32Array.from([1, Number.NaN]), "acts")).toThrow(/acts\[1\]/);
    expect(() => maxAbs(Float32Array.from([Infinity]))).toThrow(P2vitError);
  });

  it("is zero on values the grid holds exactly", () => {
    expect(fakeQuantMse(Float32Array.from([0.5, -1, 63.5]), -1, 8)).toBe(0);
    expect(fakeQuantMse(Float32Array.from([0.25]), -1, 8)).toBeCloseTo(0.25 ** 2, 12);
  });
});

describe("activationExponent", () => {
  it("moves off floor(log2 s) when that exponent would clip the range", () => {
    // s = 1/127.5 gives floor exponent -7, where 1 quantizes to 128 and clips; -6 holds ±1 exactly.
    expect(activationExponent(Float32Array.from([1, -1, 0.5]), 8)).toBe(-6);
  });

  it("is never worse than plain floor(log2 s) rounding", () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rng = seededRandom(seed);
      const spread = 2 ** (rng() * 12 - 6);
      const heavyTail = rng() < 0.5;
      const x = new Float32Array(500);
      for (let i = 0; i < x.length; i++) {
        const g = gaussian(rng) * spread;
        x[i] = heavyTail ? g * Math.abs(gaussian(rng)) ** 2 : g;
      }
      for (const bits of [8, 4]) {
        const chosen = activationExponent(x, bits);
        const plain = Math.floor(Math.log2(floatScale(maxAbs(x), bits)));
        expect(Number.isInteger(chosen)).toBe(true);
        expect(chosen - plain).toBeGreaterThanOrEqual(-1);
        expect(chosen - plain).toBeLessThanOrEqual(2);
        expect(fakeQuantMse(x, chosen, bits)).toBeLessThanOrEqual(fakeQuantMse(x, plain, bits));
      }
    }
  });

  it("refuses an empty calibration set", () => {
    expect(() => activationExponent(new Float32Array(0), 8)).toThrow(/samples/);
  });
});
