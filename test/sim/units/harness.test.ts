/**
 * The unit testbench machinery itself: a wrong golden model is caught at its first differing vector, and
 * bad stimulus is refused.
 */
import { describe, expect, it } from "vitest";
import { SHIFT_MAX, requantize } from "../../../src/arith.js";
import { renderUnit } from "../../../src/generator/units.js";
import { Cycle, Expected, buildUnit, firstUnitMismatch, packLanes, runUnit, unpackLanes } from "../../../src/sim/verilator/unit.js";

describe("unit testbench", () => {
  it("reports the first vector where a (deliberately wrong) golden model differs", async () => {
    const unit = renderUnit({ unit: "requant_lane", accBits: 20 });
    const binary = await buildUnit(unit);
    // truncation instead of round half up: first differs where the dropped bits reach one half
    const vecs = [
      { acc: 8, bias: 0, shift: 2 }, // 2 either way
      { acc: -7, bias: 0, shift: 1 }, // −3.5: −3 rounded, −4 truncated
      { acc: 6, bias: 0, shift: 2 }, // 1.5: 2 rounded, 1 truncated
      { acc: 2 ** 19 - 1, bias: 2 ** 31 - 1, shift: SHIFT_MAX },
    ];
    const cycles: Cycle[] = [...vecs, {}, {}, {}, {}];
    const out = await runUnit(binary, unit, cycles);
    expect(out.length).toBe(cycles.length); // no valid output: every cycle is sampled
    const truncating = (v: (typeof vecs)[number]) => Math.max(-128, Math.min(127, Math.floor((v.acc + v.bias) / 2 ** v.shift)));
    const wrong: Expected[] = vecs.map((v, i) => ({ cycle: i + unit.latency, vector: i, values: { y: truncating(v) } }));
    const m = firstUnitMismatch(unit, wrong, out, (i) => `acc=${vecs[i].acc}`);
    expect(m).toMatchObject({ vector: 1, cycle: 1 + unit.latency, port: "y" });
    expect(m!.message).toBe("requant_lane acc=20: vector 1, cycle 5: y expected -4, got -3; inputs acc=-7");
    const right: Expected[] = vecs.map((v, i) => ({ cycle: i + unit.latency, vector: i, values: { y: requantize(v.acc + v.bias, v.shift, 8) } }));
    expect(firstUnitMismatch(unit, right, out)).toBeNull();
    // one cycle early is a mismatch too
    expect(firstUnitMismatch(unit, right.map((e) => ({ ...e, cycle: e.cycle - 1 })), out)).not.toBeNull();
    await expect(runUnit(binary, unit, [{ accu: 1 }])).rejects.toThrow(/'accu', which is not an input/);
  });

  it("packs lanes as the engine's vector words: lane c in byte c", () => {
    expect(packLanes([1, -1, -128], 8)).toBe(0x80ff01n);
    expect(unpackLanes(0x80ff01n, 3, 8)).toEqual([1, -1, -128]);
    expect(unpackLanes(packLanes([16, 0, 5], 5), 3, 5, false)).toEqual([16, 0, 5]);
  });
});
