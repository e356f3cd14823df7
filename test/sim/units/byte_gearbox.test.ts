/**
 * byte_gearbox: every row leaves as the bytes it came in with, regrouped into OUT-byte words, the last
 * zero-padded and marked, under random valid/ready on both sides. Narrowing, widening, equal and
 * coprime widths, and the full-rate kind (a word taken in the cycle one is given, with OUT bytes
 * waiting). What was taken and given is read from the RTL's own handshake outputs.
 */
import { describe, expect, it } from "vitest";
import { renderUnit } from "../../../src/generator/units.js";
import { Cycle, StimulusRng, buildUnit, packLanes, runUnit, unpackLanes } from "../../../src/sim/verilator/unit.js";

describe("byte_gearbox (Verilator)", () => {
  it.each([
    [16, 16, false],
    [16, 4, false],
    [5, 16, false],
    [7, 3, false],
    [16, 16, true],
    [5, 16, true],
    [7, 3, true],
  ])("regroups rows of %i-byte words into %i-byte words (full rate: %s)", async (inBytes, outBytes, fullRate) => {
    const unit = renderUnit({ unit: "byte_gearbox", inBytes, outBytes, fullRate });
    const binary = await buildUnit(unit);
    const rng = new StimulusRng(900 + inBytes * 7 + outBytes + (fullRate ? 5000 : 0));
    // rows of random length, each sent as words; a word is offered until the RTL takes it
    const rows: number[][] = [];
    for (let r = 0; r < 60; r++) {
      const n = r < 3 ? [1, inBytes, outBytes][r] : rng.int(1, 3 * Math.max(inBytes, outBytes) + 2);
      rows.push(Array.from({ length: n }, () => rng.int(-128, 127)));
    }
    const words = rows.flatMap((row) => {
      const out: { bytes: number[]; last: boolean }[] = [];
      for (let i = 0; i < row.length; i += inBytes) out.push({ bytes: row.slice(i, i + inBytes), last: i + inBytes >= row.length });
      return out;
    });
    // open-loop stimulus: each word is offered on a few cycles. The stimulus cannot see in_ready, so a
    // word may be taken more than once; the expected rows are built from every offer the RTL's sampled
    // in_ready accepted, so repeats are simply more input
    const cycles: Cycle[] = [{ rst: 1 }];
    const offered: number[] = [-1];
    for (let w = 0; w < words.length; w++) {
      const hold = rng.int(1, 4 + Math.ceil(outBytes / inBytes) * 3);
      for (let k = 0; k < hold; k++) {
        const valid = rng.chance(0.8) ? 1 : 0;
        // garbage past the valid bytes must be dropped
        const data = [...words[w].bytes, ...Array.from({ length: inBytes - words[w].bytes.length }, () => rng.int(-128, 127))];
        cycles.push({ in_valid: valid, in_data: packLanes(data, 8), in_bytes: words[w].bytes.length, in_last: words[w].last ? 1 : 0, out_ready: rng.chance(0.7) ? 1 : 0 });
        offered.push(valid ? w : -1);
      }
    }
    for (let k = 0; k < 40; k++) {
      cycles.push({ out_ready: 1 });
      offered.push(-1);
    }
    const outputs = await runUnit(binary, unit, cycles);
    expect(outputs.length).toBe(cycles.length);
    const takenBytes: number[][] = [[]];
    const givenBytes: number[][] = [[]];
    let takenWhileGiving = 0;
    for (const o of outputs) {
      const c = cycles[o.cycle];
      const taken = offered[o.cycle] >= 0 && o.values.in_ready === 1n;
      if (taken && o.values.out_valid === 1n && c.out_ready === 1) takenWhileGiving++;
      if (taken) {
        const w = words[offered[o.cycle]];
        takenBytes[takenBytes.length - 1].push(...w.bytes);
        if (w.last) takenBytes.push([]);
      }
      if (o.values.out_valid === 1n && c.out_ready === 1) {
        givenBytes[givenBytes.length - 1].push(...unpackLanes(o.values.out_data, outBytes, 8));
        if (o.values.out_last === 1n) givenBytes.push([]);
      }
    }
    takenBytes.pop();
    givenBytes.pop();
    // equal widths: a word can only come in as one goes out when OUT bytes may wait (full rate)
    if (inBytes === outBytes) expect(takenWhileGiving > 0).toBe(fullRate);
    expect(takenBytes.length).toBeGreaterThan(5);
    expect(givenBytes.length).toBe(takenBytes.length);
    for (const [r, row] of takenBytes.entries()) {
      const padded = [...row, ...Array(Math.ceil(row.length / outBytes) * outBytes - row.length).fill(0)];
      expect(givenBytes[r], `row ${r}`).toEqual(padded);
    }
  });
});
