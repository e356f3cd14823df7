/**
 * The elementwise core against the golden kernels lutInt and addInt (src/sim/golden/elementwise.ts):
 * LUT and ADD vectors interleaved with gaps, per-lane alignment shifts 0…16 and output shifts −8…31
 * with their extremes and beyond (the core is exact for any shift), and the table rewritten while vectors stream.
 */
import { describe, expect, it } from "vitest";
import { SHIFT_MAX, SHIFT_MIN } from "../../../src/arith.js";
import { ALIGN_MAX, ELEMENTWISE_MODES, LUT_ENTRIES, renderUnit } from "../../../src/generator/units.js";
import { addInt, lutInt } from "../../../src/sim/golden/elementwise.js";
import { Cycle, Expected, StimulusRng, checkUnit, packLanes } from "../../../src/sim/verilator/unit.js";

describe("elementwise_core (Verilator) against lutInt and addInt", () => {
  it.each([4, 8, 16])("is bit-exact with %i lanes", async (lanes) => {
    const unit = renderUnit({ unit: "elementwise_core", lanes });
    const alignBits = unit.inputs.find((p) => p.name === "align_a")!.width / lanes;
    const rng = new StimulusRng(500 + lanes);
    const table = Int8Array.from({ length: LUT_ENTRIES }, () => rng.int8(0.1));
    const cycles: Cycle[] = [{ rst: 1 }, { rst: 1 }];
    for (let i = 0; i < LUT_ENTRIES; i++) cycles.push({ lut_we: 1, lut_waddr: i, lut_wdata: table[i] });
    const expected: Expected[] = [];
    const notes: string[] = cycles.map(() => "");
    let vectors = 0;
    let probe: number | null = null; // an entry just rewritten: look it up in this cycle and the next
    while (vectors < 1500) {
      const cyc: Cycle = {};
      // now and then rewrite one entry while vectors stream: seen from the next cycle on
      const write = rng.chance(0.05) ? { index: rng.int(0, LUT_ENTRIES - 1), value: rng.int8() } : null;
      if (write) Object.assign(cyc, { lut_we: 1, lut_waddr: write.index, lut_wdata: write.value });
      const look = write ? write.index : probe;
      probe = write ? write.index : null;
      let note = "";
      if (look !== null || rng.chance(0.85)) {
        const add = look === null && rng.chance(0.5);
        const a = Int8Array.from({ length: lanes }, () => rng.int8());
        if (look !== null) a[0] = look - 128;
        const b = Int8Array.from({ length: lanes }, () => rng.int8());
        const alignA = Int32Array.from({ length: lanes }, () => rng.edgy(0, ALIGN_MAX, 0.4, [0, ALIGN_MAX]));
        const alignB = Int32Array.from({ length: lanes }, () => rng.edgy(0, ALIGN_MAX, 0.4, [0, ALIGN_MAX]));
        const outShift = Int32Array.from({ length: lanes }, (_, c) => {
          // often near the scale of the aligned sum, so outputs are not all saturated
          const near = Math.max(alignA[c], alignB[c]) + rng.int(-2, 2);
          // outside requant_lane's range too, which the core clamps exactly (up to ±63, where src/arith.ts's
          // shiftRound stops: its power-of-two tables end there)
          return rng.chance(0.3) ? rng.pick([SHIFT_MIN, 0, SHIFT_MAX, -63, SHIFT_MIN - 1, SHIFT_MAX + 1, 63]) : Math.max(SHIFT_MIN, Math.min(SHIFT_MAX, near));
        });
        const y = add ? addInt(a, b, 1, lanes, { alignA, alignB, outShift }) : lutInt(a, { table });
        Object.assign(cyc, {
          in_valid: 1,
          in_mode: add ? ELEMENTWISE_MODES.ADD : ELEMENTWISE_MODES.LUT,
          in_a: packLanes(a, 8),
          in_b: packLanes(b, 8),
          align_a: packLanes(alignA, alignBits),
          align_b: packLanes(alignB, alignBits),
          out_shift: packLanes(outShift, 8),
        });
        note = add
          ? `ADD a=[${a}] b=[${b}] alignA=[${alignA}] alignB=[${alignB}] outShift=[${outShift}] → [${y}]`
          : `LUT x=[${a}] → [${y}]`;
        expected.push({ cycle: cycles.length + unit.latency, vector: cycles.length, values: { out_valid: 1, out_y: packLanes(y, 8) } });
        vectors++;
      } else if (rng.chance(0.5)) {
        // not valid: whatever else is on the inputs must not come out
        Object.assign(cyc, { in_mode: rng.int(0, 1), in_a: packLanes(Int8Array.from({ length: lanes }, () => rng.int8()), 8) });
      }
      if (write) table[write.index] = write.value;
      cycles.push(cyc);
      notes.push(note);
    }
    for (let i = 0; i < unit.latency + 2; i++) cycles.push({});
    const { mismatch } = await checkUnit(unit, cycles, expected, (i) => notes[i]);
    expect(mismatch, mismatch?.message).toBeNull();
  });
});
