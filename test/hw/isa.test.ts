import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FIELDS, Instruction, decodeInstruction, encodeInstruction } from "../../src/hw/isa.js";

describe("instruction encoding", () => {
  it("round-trips every opcode", () => {
    const u16 = fc.integer({ min: 0, max: 0xffff });
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const insn: fc.Arbitrary<Instruction> = fc.oneof(
      fc.constant({ op: "HALT" } as Instruction),
      fc.record({ op: fc.constant("LOAD" as const), target: fc.constantFrom("X" as const, "W" as const, "P" as const), rows: u16, count: u16, addr: u16, maddr: u32, mstride: u32 }),
      fc.record({ op: fc.constant("STORE" as const), rows: u16, count: u16, addr: u16, maddr: u32, mstride: u32 }),
      fc.record({ op: fc.constant("MATMUL" as const), k: u16, xaddr: u16, waddr: u16, paddr: u16, oaddr: u16 }),
    );
    fc.assert(
      fc.property(insn, (i) => {
        expect(decodeInstruction(encodeInstruction(i))).toEqual(i);
      }),
    );
  });

  it("puts the opcode in the low bits, little-endian", () => {
    const bytes = encodeInstruction({ op: "MATMUL", k: 0x1234, xaddr: 0, waddr: 0, paddr: 0, oaddr: 0 });
    expect(bytes[0]).toBe(3);
    expect(bytes[1]).toBe(0x34);
    expect(bytes[2]).toBe(0x12);
  });

  it("keeps each opcode's fields apart", () => {
    for (const fields of Object.values(FIELDS)) {
      const used = new Set<number>();
      for (const f of Object.values(fields)) {
        for (let b = f.lsb; b < f.lsb + f.width; b++) {
          expect(used.has(b)).toBe(false);
          used.add(b);
        }
        expect(f.lsb + f.width).toBeLessThanOrEqual(128);
      }
    }
  });

  it("refuses a field that does not fit", () => {
    expect(() => encodeInstruction({ op: "MATMUL", k: 70000, xaddr: 0, waddr: 0, paddr: 0, oaddr: 0 })).toThrow(/MATMUL\.k = 70000 does not fit a 16-bit field/);
    expect(() => decodeInstruction(new Uint8Array(16).fill(0).map((_, i) => (i === 0 ? 9 : 0)))).toThrow(/unknown opcode 9/);
  });
});
