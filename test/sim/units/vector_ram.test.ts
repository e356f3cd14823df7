/**
 * vector_ram: read data one cycle after its address; a read of the address written in the same cycle
 * returns the old word, a read one cycle later the new one. Widths 8, 40 and 128, depths that are and
 * are not powers of two.
 */
import { describe, expect, it } from "vitest";
import { renderUnit } from "../../../src/generator/units.js";
import { Cycle, Expected, StimulusRng, checkUnit } from "../../../src/sim/verilator/unit.js";

describe("vector_ram (Verilator)", () => {
  it.each([
    [8, 16],
    [40, 5],
    [128, 64],
  ])("has read-after-write timing at width %i, depth %i", async (width, depth) => {
    const unit = renderUnit({ unit: "vector_ram", width, depth });
    const rng = new StimulusRng(400 + width);
    const word = () => (rng.chance(0.2) ? rng.pick([0n, (1n << BigInt(width)) - 1n, 1n << BigInt(width - 1)]) : BigInt.asUintN(width, rng.signedBits(width)));
    const mem: (bigint | undefined)[] = new Array(depth).fill(undefined);
    const cycles: Cycle[] = [];
    const expected: Expected[] = [];
    const notes: string[] = [];
    let lastWrite = 0;
    for (let i = 0; i < 4000; i++) {
      // first fill every entry once, then random traffic
      const we = i < depth ? 1 : rng.chance(0.5) ? 1 : 0;
      const waddr = i < depth ? i : rng.int(0, depth - 1);
      const wdata = word();
      const r = rng.int(0, 2);
      const raddr = r === 0 ? waddr : r === 1 ? lastWrite : rng.int(0, depth - 1);
      cycles.push({ we, waddr, wdata, raddr });
      notes.push(`we=${we} waddr=${waddr} wdata=0x${wdata.toString(16)} raddr=${raddr}`);
      const old = mem[raddr]; // read first: this cycle's write is not seen
      if (old !== undefined) expected.push({ cycle: i + 1, vector: i, values: { rdata: old } });
      if (we) {
        mem[waddr] = wdata;
        lastWrite = waddr;
      }
    }
    cycles.push({});
    expect(expected.length).toBeGreaterThan(3000);
    const { mismatch } = await checkUnit(unit, cycles, expected, (i) => notes[i]);
    expect(mismatch, mismatch?.message).toBeNull();
  });
});
