/**
 * mac_pe against exact sums: seeded dot products started by `first`, with idle cycles (en low) inside,
 * products of the int8 extremes, and runs that reach the accumulator bound of docs/arithmetic.md.
 */
import { describe, expect, it } from "vitest";
import { accumulatorFits, maxProductMagnitude, signedRange } from "../../../src/arith.js";
import { renderUnit } from "../../../src/generator/units.js";
import { Cycle, Expected, StimulusRng, checkUnit } from "../../../src/sim/verilator/unit.js";

describe("mac_pe (Verilator) against exact sums", () => {
  it.each([20, 32, 40])("is bit-exact at ACC %i", async (accBits) => {
    const unit = renderUnit({ unit: "mac_pe", accBits });
    const rng = new StimulusRng(300 + accBits);
    const { lo, hi } = signedRange(accBits);
    // the longest dot product that cannot overflow, whatever its products (docs/arithmetic.md)
    let kMax = Math.floor(hi / maxProductMagnitude(8, 8));
    expect(accumulatorFits(kMax, 0, accBits)).toBe(true);
    kMax = Math.min(kMax, 400);
    const cycles: Cycle[] = [{ en: 0, first: 1 }]; // en low: `first` alone must not clear anything
    const expected: Expected[] = [];
    const notes: string[] = ["idle"];
    let acc: number | null = null;
    let dots = 0;
    while (cycles.length < 6000) {
      const kind = dots++ % 4;
      const len = kind === 0 ? kMax : rng.int(1, Math.min(kMax, 40));
      // 0: the bound with one extreme product repeated; 1: opposite extremes; 2, 3: random with extremes
      const pair = rng.pick([[-128, -128], [127, 127], [-128, 127], [127, -128]]);
      for (let k = 0; k < len; k++) {
        while (rng.chance(0.15)) {
          cycles.push({ en: 0, first: rng.int(0, 1), x: rng.int8(), w: rng.int8() });
          notes.push("en low");
          if (acc !== null) expected.push({ cycle: cycles.length, vector: cycles.length - 1, values: { acc } });
        }
        const x = kind === 0 ? pair[0] : kind === 1 ? (k % 2 ? -128 : 127) : rng.int8();
        const w = kind === 0 ? pair[1] : kind === 1 ? -128 : rng.int8();
        acc = (k === 0 ? 0 : acc!) + x * w;
        expect(acc >= lo && acc <= hi).toBe(true);
        cycles.push({ en: 1, first: k === 0 ? 1 : 0, x, w });
        notes.push(`dot product ${dots - 1}, k=${k}, x=${x}, w=${w}`);
        expected.push({ cycle: cycles.length, vector: cycles.length - 1, values: { acc } });
      }
    }
    cycles.push({});
    const { mismatch } = await checkUnit(unit, cycles, expected, (i) => notes[i]);
    expect(mismatch, mismatch?.message).toBeNull();
  });
});
