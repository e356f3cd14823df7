/**
 * requant_lane, the shifter requantization, against `requantize` of src/arith.ts on randomized vectors:
 * accumulators across the whole ACC range, biases at the ±2^31 edges, every shift −8…31 and rounding
 * ties at the int8 saturation boundaries; the int32 output (MATMUL flag WIDE) on the same vectors.
 */
import { describe, expect, it } from "vitest";
import { requantize } from "../../../src/arith.js";
import { renderUnit } from "../../../src/generator/units.js";
import { Cycle, Expected, checkUnit, requantVectors } from "../../../src/sim/verilator/unit.js";

describe("requant_lane (Verilator) against requantize", () => {
  it.each([20, 32, 48])("is bit-exact at ACC %i", async (accBits) => {
    const unit = renderUnit({ unit: "requant_lane", accBits });
    const vecs = requantVectors(accBits, 3000, 100 + accBits);
    const cycles: Cycle[] = vecs.map((v) => ({ acc: v.acc, bias: v.bias, shift: v.shift }));
    for (let i = 0; i < unit.latency; i++) cycles.push({});
    const expected: Expected[] = vecs.map((v, i) => ({ cycle: i + unit.latency, vector: i, values: { y: requantize(v.acc + v.bias, v.shift, 8), y_wide: requantize(v.acc + v.bias, v.shift, 32) } }));
    const describeVec = (i: number) => `acc=${vecs[i].acc} bias=${vecs[i].bias} shift=${vecs[i].shift}`;
    const { mismatch } = await checkUnit(unit, cycles, expected, describeVec);
    expect(mismatch, mismatch?.message).toBeNull();
  });
});
