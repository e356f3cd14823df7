/**
 * mac_pe against exact sums: seeded dot products started by `first`, with idle cycles (en low) inside,
 * products of the extremes, and runs that reach the accumulator bound of docs/arithmetic.md. The
 * dual-mode PE (weightBits 4) switches between int8 and int4-pair dot products from one to the next.
 */
import { describe, expect, it } from "vitest";
import { accumulatorFits, maxProductMagnitude, signedRange } from "../../../src/arith.js";
import { MAC_PE_LATENCY } from "../../../src/generator/mac.js";
import { renderUnit } from "../../../src/generator/units.js";
import { packInt4Pair } from "../../../src/compiler/graph.js";
import { Cycle, Expected, StimulusRng, checkUnit } from "../../../src/sim/verilator/unit.js";

/** The inputs of one enabled step and what it adds to the accumulator. */
interface Step {
  inputs: Cycle;
  sum: number;
  note: string;
}

/** An int8 step: x · w (x_hi, when the PE has it, must not matter). */
function int8Step(x: number, w: number, rng: StimulusRng, dual: boolean): Step {
  const mode: Cycle = dual ? { w4: 0, x_hi: rng.int8() } : {};
  return { inputs: { ...mode, x, w }, sum: x * w, note: `int8 x=${x} w=${w}` };
}

/** An int4-pair step: x · wLo + xHi · wHi, the weights packed into one byte as the compiler packs them. */
function pairStep(x: number, xHi: number, wLo: number, wHi: number): Step {
  const packed = (packInt4Pair(wLo, wHi) << 24) >> 24;
  return { inputs: { w4: 1, x, x_hi: xHi, w: packed }, sum: x * wLo + xHi * wHi, note: `w4 x=${x},${xHi} w=${wLo},${wHi}` };
}

const int4 = (rng: StimulusRng) => rng.edgy(-8, 7);

/**
 * Dot products of `len` steps. Kind 0 repeats one extreme product up to the bound; kind 1 alternates
 * opposite extremes; kinds 2 and 3 are random with extremes.
 */
function dotProduct(kind: number, len: number, w4: boolean, dual: boolean, rng: StimulusRng): Step[] {
  const steps: Step[] = [];
  const int8Pair = rng.pick([[-128, -128], [127, 127], [-128, 127], [127, -128]]);
  const int4Pair = rng.pick([[-128, -8], [127, 7], [-128, 7], [127, -8]]);
  for (let k = 0; k < len; k++) {
    if (!w4) {
      const x = kind === 0 ? int8Pair[0] : kind === 1 ? (k % 2 ? -128 : 127) : rng.int8();
      const w = kind === 0 ? int8Pair[1] : kind === 1 ? -128 : rng.int8();
      steps.push(int8Step(x, w, rng, dual));
    } else if (kind === 0) {
      steps.push(pairStep(int4Pair[0], int4Pair[0], int4Pair[1], int4Pair[1]));
    } else if (kind === 1) {
      steps.push(k % 2 ? pairStep(-128, -128, -8, -8) : pairStep(127, 127, -8, -8));
    } else {
      steps.push(pairStep(rng.int8(), rng.int8(), int4(rng), int4(rng)));
    }
  }
  return steps;
}

async function checkPe(accBits: number, dual: boolean): Promise<void> {
  const unit = renderUnit({ unit: "mac_pe", accBits, w4: dual });
  const rng = new StimulusRng(300 + accBits + (dual ? 1000 : 0));
  const { lo, hi } = signedRange(accBits);
  // the longest dot products that cannot overflow, whatever their products (docs/arithmetic.md)
  const bound = (weightBits: number, macsPerStep: number) => {
    const steps = Math.floor(hi / (macsPerStep * maxProductMagnitude(8, weightBits)));
    expect(accumulatorFits(steps * macsPerStep, 0, accBits, 8, weightBits)).toBe(true);
    return Math.min(steps, 400);
  };
  const kMax = { int8: bound(8, 1), w4: bound(4, 2) };
  const cycles: Cycle[] = [{ en: 0, first: 1 }]; // en low: `first` alone must not clear anything
  const notes: string[] = ["idle"];
  const expected: Expected[] = [];
  let acc: number | null = null;
  const expectNow = () => {
    if (acc !== null) expected.push({ cycle: cycles.length - 1 + MAC_PE_LATENCY, vector: cycles.length - 1, values: { acc } });
  };
  let dots = 0;
  while (cycles.length < 6000) {
    const kind = dots % 4;
    const w4 = dual && dots % 3 !== 0;
    dots++;
    const max = w4 ? kMax.w4 : kMax.int8;
    const steps = dotProduct(kind, kind === 0 ? max : rng.int(1, Math.min(max, 40)), w4, dual, rng);
    for (const [k, step] of steps.entries()) {
      while (rng.chance(0.15)) {
        const mode: Cycle = dual ? { w4: rng.int(0, 1), x_hi: rng.int8() } : {};
        cycles.push({ en: 0, first: rng.int(0, 1), ...mode, x: rng.int8(), w: rng.int8() });
        notes.push("en low");
        expectNow();
      }
      acc = (k === 0 ? 0 : acc!) + step.sum;
      expect(acc >= lo && acc <= hi).toBe(true);
      cycles.push({ en: 1, first: k === 0 ? 1 : 0, ...step.inputs });
      notes.push(`dot product ${dots - 1}, step ${k}, ${step.note}`);
      expectNow();
    }
  }
  for (let i = 0; i < MAC_PE_LATENCY; i++) cycles.push({});
  const { mismatch } = await checkUnit(unit, cycles, expected, (i) => notes[i]);
  expect(mismatch, mismatch?.message).toBeNull();
}

describe("mac_pe (Verilator) against exact sums", () => {
  it.each([20, 32, 40])("is bit-exact at ACC %i (int8 only)", async (accBits) => {
    await checkPe(accBits, false);
  });

  it.each([20, 32, 40])("is bit-exact at ACC %i (dual mode: int8 and int4 pairs)", async (accBits) => {
    await checkPe(accBits, true);
  });
});
