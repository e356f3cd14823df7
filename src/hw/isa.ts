/**
 * The instruction set, as data: opcodes and the bit fields of the 128-bit instruction word. The
 * compiler encodes with it, the ISA simulator decodes with it, and the RTL generator passes the same
 * numbers to the controller template, so the three cannot disagree. docs/isa.md describes the semantics.
 */
import { INSTRUCTION_BITS } from "./config.js";

export const OPCODES = { HALT: 0, LOAD: 1, STORE: 2, MATMUL: 3 } as const;
export type Opcode = keyof typeof OPCODES;

/** Destination buffers of LOAD. */
export const LOAD_TARGETS = { X: 0, W: 1, P: 2 } as const;
export type LoadTarget = keyof typeof LOAD_TARGETS;

export interface Field {
  lsb: number;
  width: number;
}

const OP: Field = { lsb: 0, width: 4 };

/** Field layout per opcode. Fields not listed are zero. */
export const FIELDS = {
  HALT: { op: OP },
  LOAD: {
    op: OP,
    target: { lsb: 4, width: 4 },
    rows: { lsb: 8, width: 16 },
    count: { lsb: 24, width: 16 },
    addr: { lsb: 40, width: 16 },
    maddr: { lsb: 56, width: 32 },
    mstride: { lsb: 88, width: 32 },
  },
  STORE: {
    op: OP,
    rows: { lsb: 8, width: 16 },
    count: { lsb: 24, width: 16 },
    addr: { lsb: 40, width: 16 },
    maddr: { lsb: 56, width: 32 },
    mstride: { lsb: 88, width: 32 },
  },
  MATMUL: {
    op: OP,
    k: { lsb: 8, width: 16 },
    xaddr: { lsb: 24, width: 16 },
    waddr: { lsb: 40, width: 16 },
    paddr: { lsb: 56, width: 16 },
    oaddr: { lsb: 72, width: 16 },
  },
} as const satisfies Record<Opcode, Record<string, Field>>;

export type Instruction =
  | { op: "HALT" }
  | { op: "LOAD"; target: LoadTarget; rows: number; count: number; addr: number; maddr: number; mstride: number }
  | { op: "STORE"; rows: number; count: number; addr: number; maddr: number; mstride: number }
  | { op: "MATMUL"; k: number; xaddr: number; waddr: number; paddr: number; oaddr: number };

export const INSTRUCTION_BYTES = INSTRUCTION_BITS / 8;

/** Encodes one instruction as 16 little-endian bytes. Throws when a field does not fit its width. */
export function encodeInstruction(insn: Instruction): Uint8Array {
  let word = 0n;
  const fields = FIELDS[insn.op] as Record<string, Field>;
  for (const [name, field] of Object.entries(fields)) {
    const value = fieldValue(insn, name);
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** field.width) {
      throw new Error(`${insn.op}.${name} = ${value} does not fit a ${field.width}-bit field`);
    }
    word |= BigInt(value) << BigInt(field.lsb);
  }
  const bytes = new Uint8Array(INSTRUCTION_BYTES);
  for (let i = 0; i < INSTRUCTION_BYTES; i++) bytes[i] = Number((word >> BigInt(8 * i)) & 0xffn);
  return bytes;
}

export function decodeInstruction(bytes: Uint8Array): Instruction {
  let word = 0n;
  for (let i = INSTRUCTION_BYTES - 1; i >= 0; i--) word = (word << 8n) | BigInt(bytes[i]);
  const get = (f: Field) => Number((word >> BigInt(f.lsb)) & ((1n << BigInt(f.width)) - 1n));
  const opcode = get(OP);
  const op = (Object.keys(OPCODES) as Opcode[]).find((k) => OPCODES[k] === opcode);
  if (op === undefined) throw new Error(`unknown opcode ${opcode}`);
  const out: Record<string, unknown> = { op };
  for (const [name, field] of Object.entries(FIELDS[op] as Record<string, Field>)) {
    if (name === "op") continue;
    out[name] = get(field);
  }
  if (op === "LOAD") {
    const t = out.target as number;
    const target = (Object.keys(LOAD_TARGETS) as LoadTarget[]).find((k) => LOAD_TARGETS[k] === t);
    if (target === undefined) throw new Error(`LOAD with unknown target ${t}`);
    out.target = target;
  }
  return out as Instruction;
}

function fieldValue(insn: Instruction, name: string): number {
  if (name === "op") return OPCODES[insn.op];
  const v = (insn as Record<string, unknown>)[name];
  if (name === "target") return LOAD_TARGETS[v as LoadTarget];
  return v as number;
}

/** One line of the human-readable listing. */
export function formatInstruction(insn: Instruction): string {
  const { op, ...rest } = insn;
  const args = Object.entries(rest).map(([k, v]) => `${k}=${v}`);
  return `${op.padEnd(6)} ${args.join(" ")}`.trimEnd();
}
