/**
 * The instruction set, as data: the chunks, the opcodes, and the bit fields of the 256-bit instruction
 * word. The compiler encodes with it, the ISA simulator decodes with it, and the RTL generator passes the
 * same numbers to the controller template, so the three cannot disagree. docs/isa.md describes the
 * semantics.
 */
import { INSTRUCTION_BITS } from "./config.js";

/**
 * The chunks: units with their own in-order instruction queue that run concurrently. Ids are 1..7
 * because 0 means "no chunk" in a wait field and bit c of a signal mask names chunk c.
 */
export const CHUNKS = { LD: 1, MM: 2, ST: 3, LN: 4, SM: 5, AV: 6, EW: 7 } as const;
export type Chunk = keyof typeof CHUNKS;
export const CHUNK_NAMES = Object.keys(CHUNKS) as Chunk[];
/** Instructions each chunk's queue holds beyond the one the chunk is running (the queued dispatcher's). */
export const QUEUE_DEPTH = 8;

export const OPCODES = {
  HALT: 0, LOAD: 1, STORE: 2, MATMUL: 3, SYNC: 4, LAYERNORM: 5, SOFTMAX: 6, ATTNV: 7, LUT: 8, ADD: 9,
} as const;
export type Opcode = keyof typeof OPCODES;

/** The chunk whose queue executes each opcode (SYNC names its chunk; HALT belongs to the dispatcher). */
export const OPCODE_CHUNK: Record<Exclude<Opcode, "HALT" | "SYNC">, Chunk> = {
  LOAD: "LD", MATMUL: "MM", STORE: "ST", LAYERNORM: "LN", SOFTMAX: "SM", ATTNV: "AV", LUT: "EW", ADD: "EW",
};

/** Destination buffers of LOAD. WT writes the words of each memory row down one byte column of W (a transpose). */
export const LOAD_TARGETS = { X: 0, W: 1, P: 2, WT: 3 } as const;
export type LoadTarget = keyof typeof LOAD_TARGETS;

/** SOFTMAX output formats: 4-bit log2 codes (attnBits 4) or uint8 probabilities (attnBits 8). */
export const SOFTMAX_MODES = { LOG2: 0, UNIFORM: 1 } as const;
export type SoftmaxMode = keyof typeof SOFTMAX_MODES;

/** MATMUL flag bits. */
export const MATMUL_FLAGS = {
  /** int4-weight mode: each W byte holds two weights (k even in bits 3:0, k + 1 in bits 7:4), two MACs per PE per cycle. */
  W4: 1,
  /** Requantize to int32 instead of int8 (sat_32 of the rounding shift), written as four byte planes in O entries oaddr … oaddr + 3: logits. */
  WIDE: 2,
} as const;

export interface Field {
  lsb: number;
  width: number;
  signed?: boolean;
}

const OP: Field = { lsb: 0, width: 4 };

/** The dependency fields every instruction carries, in the top 32 bits of the word. */
export const DEP_FIELDS = {
  wait0Chunk: { lsb: 224, width: 4 },
  wait0Count: { lsb: 228, width: 8 },
  wait1Chunk: { lsb: 236, width: 4 },
  wait1Count: { lsb: 240, width: 8 },
  signal: { lsb: 248, width: 8 },
} as const satisfies Record<string, Field>;

/** Largest count of one wait field; the compiler adds SYNC instructions for more. */
export const MAX_WAIT_COUNT = 2 ** DEP_FIELDS.wait0Count.width - 1;
/** Waits one instruction word holds. */
export const WAITS_PER_INSTRUCTION = 2;

/** A transfer between memory and a buffer: `rows` memory rows `mstride` words apart, `count` vector words each. */
const TRANSFER = {
  rows: { lsb: 8, width: 16 },
  count: { lsb: 24, width: 16 },
  addr: { lsb: 40, width: 16 },
  maddr: { lsb: 56, width: 32 },
  mstride: { lsb: 88, width: 32 },
} as const;

const STREAM = {
  rows: { lsb: 8, width: 16 },
  cols: { lsb: 24, width: 16 },
  src: { lsb: 40, width: 32 },
  dst: { lsb: 72, width: 32 },
  sstride: { lsb: 104, width: 16 },
  dstride: { lsb: 120, width: 16 },
} as const;

/** Operand fields per opcode (the dependency fields come on top). Fields not listed are zero. */
export const FIELDS = {
  HALT: { op: OP },
  LOAD: { op: OP, target: { lsb: 4, width: 4 }, ...TRANSFER },
  STORE: { op: OP, ...TRANSFER },
  MATMUL: {
    op: OP,
    k: { lsb: 8, width: 16 },
    xaddr: { lsb: 24, width: 16 },
    waddr: { lsb: 40, width: 16 },
    paddr: { lsb: 56, width: 16 },
    oaddr: { lsb: 72, width: 16 },
    flags: { lsb: 88, width: 8 },
  },
  SYNC: { op: OP, chunk: { lsb: 4, width: 4 } },
  LAYERNORM: {
    op: OP,
    ...STREAM,
    paddr: { lsb: 136, width: 32 },
    eps: { lsb: 168, width: 44 },
  },
  SOFTMAX: {
    op: OP,
    ...STREAM,
    mode: { lsb: 136, width: 2 },
    inputShift: { lsb: 138, width: 6, signed: true },
    ln2: { lsb: 144, width: 17 },
    polyB: { lsb: 161, width: 18 },
    polyShift: { lsb: 179, width: 5 },
    polyC: { lsb: 184, width: 34 },
  },
  ATTNV: {
    op: OP,
    ...STREAM, // rows: tokens (query rows = key rows); cols: head dimension; src: the codes (rows × rows)
    v: { lsb: 136, width: 32 },
    vstride: { lsb: 168, width: 16 },
    shift: { lsb: 184, width: 8, signed: true },
  },
  LUT: {
    op: OP,
    ...STREAM,
    table: { lsb: 136, width: 32 },
  },
  ADD: {
    op: OP,
    ...STREAM, // src: operand a
    b: { lsb: 136, width: 32 },
    bstride: { lsb: 168, width: 16 }, // 0: b is one row, added to every row
    paddr: { lsb: 184, width: 32 },
  },
} as const satisfies Record<Opcode, Record<string, Field>>;

/** Which chunks an instruction waits for (and how many of their signals it consumes), and which it signals. */
export interface Dependencies {
  wait: { chunk: Chunk; count: number }[];
  signal: Chunk[];
}

interface Transfer {
  rows: number;
  count: number;
  addr: number;
  maddr: number;
  mstride: number;
}

interface Stream {
  rows: number;
  cols: number;
  src: number;
  dst: number;
  sstride: number;
  dstride: number;
}

export type Instruction = { dep?: Dependencies } & (
  | { op: "HALT" }
  | ({ op: "LOAD"; target: LoadTarget } & Transfer)
  | ({ op: "STORE" } & Transfer)
  | { op: "MATMUL"; k: number; xaddr: number; waddr: number; paddr: number; oaddr: number; flags: number }
  | { op: "SYNC"; chunk: Chunk }
  | ({ op: "LAYERNORM"; paddr: number; eps: number } & Stream)
  | ({ op: "SOFTMAX"; mode: SoftmaxMode; inputShift: number; ln2: number; polyB: number; polyShift: number; polyC: number } & Stream)
  | ({ op: "ATTNV"; v: number; vstride: number; shift: number } & Stream)
  | ({ op: "LUT"; table: number } & Stream)
  | ({ op: "ADD"; b: number; bstride: number; paddr: number } & Stream)
);

export type InstructionOf<O extends Opcode> = Extract<Instruction, { op: O }>;

export const INSTRUCTION_BYTES = INSTRUCTION_BITS / 8;

/** The chunk that executes an instruction; null for HALT. */
export function chunkOf(insn: Instruction): Chunk | null {
  if (insn.op === "HALT") return null;
  if (insn.op === "SYNC") return insn.chunk;
  return OPCODE_CHUNK[insn.op];
}

/** Encodes one instruction as INSTRUCTION_BYTES little-endian bytes. Throws when a field does not fit its width. */
export function encodeInstruction(insn: Instruction): Uint8Array {
  let word = 0n;
  const put = (name: string, field: Field, value: number) => {
    const lo = field.signed ? -(2 ** (field.width - 1)) : 0;
    const hi = field.signed ? 2 ** (field.width - 1) : 2 ** field.width;
    if (!Number.isInteger(value) || value < lo || value >= hi) {
      throw new Error(`${insn.op}.${name} = ${value} does not fit a ${field.signed ? "signed " : ""}${field.width}-bit field`);
    }
    const bits = value < 0 ? BigInt(value) + (1n << BigInt(field.width)) : BigInt(value);
    word |= bits << BigInt(field.lsb);
  };
  for (const [name, field] of Object.entries(FIELDS[insn.op] as Record<string, Field>)) put(name, field, fieldValue(insn, name));
  for (const [name, value] of Object.entries(encodeDependencies(insn))) put(name, DEP_FIELDS[name as keyof typeof DEP_FIELDS], value);
  const bytes = new Uint8Array(INSTRUCTION_BYTES);
  for (let i = 0; i < INSTRUCTION_BYTES; i++) bytes[i] = Number((word >> BigInt(8 * i)) & 0xffn);
  return bytes;
}

export function decodeInstruction(bytes: Uint8Array): Instruction {
  let word = 0n;
  for (let i = INSTRUCTION_BYTES - 1; i >= 0; i--) word = (word << 8n) | BigInt(bytes[i] ?? 0);
  const get = (f: Field) => {
    const raw = Number((word >> BigInt(f.lsb)) & ((1n << BigInt(f.width)) - 1n));
    return f.signed && raw >= 2 ** (f.width - 1) ? raw - 2 ** f.width : raw;
  };
  const opcode = get(OP);
  const op = (Object.keys(OPCODES) as Opcode[]).find((k) => OPCODES[k] === opcode);
  if (op === undefined) throw new Error(`unknown opcode ${opcode}`);
  const out: Record<string, unknown> = { op };
  for (const [name, field] of Object.entries(FIELDS[op] as Record<string, Field>)) {
    if (name !== "op") out[name] = decodeEnum(op, name, get(field));
  }
  const dep = decodeDependencies(op, (name) => get(DEP_FIELDS[name]));
  if (dep) out.dep = dep;
  return out as Instruction;
}

const ENUMS: Record<string, Record<string, number>> = { target: LOAD_TARGETS, mode: SOFTMAX_MODES, chunk: CHUNKS };

function decodeEnum(op: Opcode, name: string, value: number): unknown {
  const table = ENUMS[name];
  if (!table) return value;
  const key = Object.keys(table).find((k) => table[k] === value);
  if (key === undefined) throw new Error(`${op} with unknown ${name} ${value}`);
  return key;
}

function fieldValue(insn: Instruction, name: string): number {
  if (name === "op") return OPCODES[insn.op];
  const v = (insn as unknown as Record<string, unknown>)[name];
  const table = ENUMS[name];
  return table ? table[v as string] : (v as number);
}

function encodeDependencies(insn: Instruction): Record<keyof typeof DEP_FIELDS, number> {
  const dep = insn.dep ?? { wait: [], signal: [] };
  if (dep.wait.length > WAITS_PER_INSTRUCTION) throw new Error(`${insn.op} waits for ${dep.wait.length} chunks, an instruction holds ${WAITS_PER_INSTRUCTION}`);
  const [w0, w1] = dep.wait;
  return {
    wait0Chunk: w0 ? CHUNKS[w0.chunk] : 0,
    wait0Count: w0 ? w0.count : 0,
    wait1Chunk: w1 ? CHUNKS[w1.chunk] : 0,
    wait1Count: w1 ? w1.count : 0,
    signal: dep.signal.reduce((mask, c) => mask | (1 << CHUNKS[c]), 0),
  };
}

function decodeDependencies(op: Opcode, get: (name: keyof typeof DEP_FIELDS) => number): Dependencies | undefined {
  const chunk = (id: number, what: string): Chunk => {
    const c = CHUNK_NAMES.find((n) => CHUNKS[n] === id);
    if (c === undefined) throw new Error(`${op} ${what} names unknown chunk ${id}`);
    return c;
  };
  const wait: Dependencies["wait"] = [];
  for (const [c, n] of [["wait0Chunk", "wait0Count"], ["wait1Chunk", "wait1Count"]] as const) {
    if (get(c) !== 0) wait.push({ chunk: chunk(get(c), c), count: get(n) });
  }
  const mask = get("signal");
  if (mask & 1) throw new Error(`${op} signals chunk 0, which does not exist`);
  const signal = CHUNK_NAMES.filter((c) => mask & (1 << CHUNKS[c]));
  return wait.length > 0 || signal.length > 0 ? { wait, signal } : undefined;
}

/** One line of the human-readable listing. */
export function formatInstruction(insn: Instruction): string {
  const { op, dep, ...rest } = insn;
  const args = Object.entries(rest).map(([k, v]) => `${k}=${v}`);
  const waits = (dep?.wait ?? []).map((w) => `wait ${w.chunk}×${w.count}`);
  const signals = dep && dep.signal.length > 0 ? [`signal ${dep.signal.join(",")}`] : [];
  return [`${op.padEnd(9)} ${args.join(" ")}`.trimEnd(), ...waits, ...signals].join("  ");
}
