import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { INSTRUCTION_BITS } from "../../src/hw/config.js";
import { CHUNK_NAMES, DEP_FIELDS, Dependencies, FIELDS, Instruction, decodeInstruction, encodeInstruction, formatInstruction } from "../../src/hw/isa.js";

const u = (bits: number) => fc.integer({ min: 0, max: 2 ** bits - 1 });
const s = (bits: number) => fc.integer({ min: -(2 ** (bits - 1)), max: 2 ** (bits - 1) - 1 });
const chunk = fc.constantFrom(...CHUNK_NAMES);
const dep = fc.option(
  fc.record({
    wait: fc.uniqueArray(fc.record({ chunk, count: u(8) }), { maxLength: 2, selector: (w) => w.chunk }),
    signal: fc.uniqueArray(chunk).map((cs) => CHUNK_NAMES.filter((c) => cs.includes(c))),
  }).filter((d) => d.wait.length > 0 || d.signal.length > 0),
  { nil: undefined },
);
const stream = { rows: u(16), cols: u(16), src: u(32), dst: u(32), sstride: u(16), dstride: u(16) };

const insn: fc.Arbitrary<Instruction> = fc.oneof(
  fc.constant({ op: "HALT" } as Instruction),
  fc.record({ op: fc.constant("LOAD" as const), target: fc.constantFrom("X" as const, "W" as const, "P" as const, "WT" as const), rows: u(16), count: u(16), addr: u(16), maddr: u(32), mstride: u(32) }),
  fc.record({ op: fc.constant("STORE" as const), rows: u(16), count: u(16), addr: u(16), maddr: u(32), mstride: u(32) }),
  fc.record({ op: fc.constant("MATMUL" as const), k: u(16), xaddr: u(16), waddr: u(16), paddr: u(16), oaddr: u(16), flags: u(8) }),
  fc.record({ op: fc.constant("SYNC" as const), chunk }),
  fc.record({ op: fc.constant("LAYERNORM" as const), ...stream, paddr: u(32), eps: fc.integer({ min: 0, max: 2 ** 44 - 1 }) }),
  fc.record({
    op: fc.constant("SOFTMAX" as const), ...stream, mode: fc.constantFrom("LOG2" as const, "UNIFORM" as const),
    inputShift: s(6), ln2: u(17), polyB: u(18), polyShift: u(5), polyC: fc.integer({ min: 0, max: 2 ** 34 - 1 }),
  }),
  fc.record({ op: fc.constant("ATTNV" as const), ...stream, v: u(32), vstride: u(16), shift: s(8) }),
  fc.record({ op: fc.constant("LUT" as const), ...stream, table: u(32) }),
  fc.record({ op: fc.constant("ADD" as const), ...stream, b: u(32), bstride: u(16), paddr: u(32) }),
).chain((i) => dep.map((d) => (d ? { ...i, dep: d } : i)));

describe("instruction encoding", () => {
  it("round-trips every opcode with its dependencies", () => {
    fc.assert(fc.property(insn, (i) => {
      expect(decodeInstruction(encodeInstruction(i))).toEqual(i);
    }), { numRuns: 2000 });
  });

  it("puts the opcode in the low bits, little-endian", () => {
    const bytes = encodeInstruction({ op: "MATMUL", k: 0x1234, xaddr: 0, waddr: 0, paddr: 0, oaddr: 0, flags: 0 });
    expect(bytes.length).toBe(INSTRUCTION_BITS / 8);
    expect(bytes[0]).toBe(3);
    expect(bytes[1]).toBe(0x34);
    expect(bytes[2]).toBe(0x12);
  });

  it("keeps each opcode's fields apart from each other and from the dependency fields", () => {
    for (const fields of Object.values(FIELDS)) {
      const used = new Set<number>();
      for (const f of [...Object.values(fields), ...Object.values(DEP_FIELDS)]) {
        for (let b = f.lsb; b < f.lsb + f.width; b++) {
          expect(used.has(b)).toBe(false);
          used.add(b);
        }
        expect(f.lsb + f.width).toBeLessThanOrEqual(INSTRUCTION_BITS);
      }
    }
  });

  it("refuses a field that does not fit, an unknown opcode and too many waits", () => {
    expect(() => encodeInstruction({ op: "MATMUL", k: 70000, xaddr: 0, waddr: 0, paddr: 0, oaddr: 0, flags: 0 })).toThrow(/MATMUL\.k = 70000 does not fit a 16-bit field/);
    expect(() => encodeInstruction({ op: "ATTNV", rows: 1, cols: 1, src: 0, dst: 0, sstride: 0, dstride: 0, v: 0, vstride: 0, shift: 200 })).toThrow(/ATTNV\.shift = 200 does not fit a signed 8-bit field/);
    expect(() => decodeInstruction(new Uint8Array(32).map((_, i) => (i === 0 ? 13 : 0)))).toThrow(/unknown opcode 13/);
    const three: Dependencies = { wait: [{ chunk: "LD", count: 1 }, { chunk: "MM", count: 1 }, { chunk: "ST", count: 1 }], signal: [] };
    expect(() => encodeInstruction({ op: "HALT", dep: three })).toThrow(/waits for 3 chunks/);
  });

  it("lists waits and signals", () => {
    expect(formatInstruction({ op: "SYNC", chunk: "EW", dep: { wait: [{ chunk: "ST", count: 2 }], signal: ["LD"] } })).toBe("SYNC      chunk=EW  wait ST×2  signal LD");
  });
});
