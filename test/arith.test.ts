import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { accumulatorFits, quantizeReal, requantize, roundHalfUp, saturate, shiftRound } from "../src/arith.js";

describe("arithmetic spec (docs/arithmetic.md)", () => {
  it("rounds half up, toward +inf, on ties of either sign", () => {
    expect(roundHalfUp(2.5)).toBe(3);
    expect(roundHalfUp(-2.5)).toBe(-2);
    expect(roundHalfUp(-2.51)).toBe(-3);
    expect(shiftRound(5, 1)).toBe(3); // 2.5 → 3
    expect(shiftRound(-5, 1)).toBe(-2); // -2.5 → -2
    expect(shiftRound(-7, 2)).toBe(-2); // -1.75 → -2
  });

  it("handles shifts beyond the lookup tables", () => {
    expect(requantize(5, -64, 8)).toBe(127);
    expect(requantize(-5, -70, 8)).toBe(-128);
    expect(shiftRound(-(2 ** 40), 64)).toBe(0);
    expect(shiftRound(2 ** 40, 80)).toBe(0);
  });

  it("shifts left for negative shift amounts, exactly", () => {
    expect(shiftRound(3, -4)).toBe(48);
    expect(shiftRound(-3, -8)).toBe(-768);
    expect(shiftRound(17, 0)).toBe(17);
  });

  it("saturates to the signed range", () => {
    expect(saturate(128, 8)).toBe(127);
    expect(saturate(-129, 8)).toBe(-128);
    expect(requantize(2 ** 31 - 1, 0, 8)).toBe(127);
    expect(requantize(-(2 ** 31), 31, 8)).toBe(-1);
    expect(requantize(-(2 ** 31), -8, 8)).toBe(-128);
  });

  it("a rounding right shift equals floor(acc / 2^s + 1/2) for all int32 accumulators", () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 31 }), (acc, s) => {
        expect(shiftRound(acc, s)).toBe(Math.floor(acc / 2 ** s + 0.5));
      }),
    );
  });

  it("quantizes reals at a power-of-two scale with saturation", () => {
    expect(quantizeReal(0.3, -2, 8)).toBe(1); // 1.2 → 1
    expect(quantizeReal(0.375, -3, 8)).toBe(3);
    expect(quantizeReal(1000, 0, 8)).toBe(127);
    expect(quantizeReal(-1000, 0, 4)).toBe(-8);
  });

  it("bounds the accumulator by K · 2^7 · 2^7 + |bias|", () => {
    expect(accumulatorFits(131071, 0, 32)).toBe(true); // 131071 · 16384 < 2^31
    expect(accumulatorFits(131072, 0, 32)).toBe(false);
    expect(accumulatorFits(49, 2 ** 31 - 1 - 49 * 16384, 32)).toBe(true);
    expect(accumulatorFits(49, 2 ** 31 - 49 * 16384, 32)).toBe(false);
  });
});
