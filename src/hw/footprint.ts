/**
 * What each instruction reads and writes: memory words and on-chip buffer entries (docs/isa.md,
 * "Semantics"). The compiler derives the dependencies between chunks from these footprints, and the
 * cycle model counts memory traffic with them, so both follow the one definition here.
 */
import { AcceleratorConfig, PARAM_PLANES, deriveHw } from "./config.js";
import { Instruction, MATMUL_FLAGS } from "./isa.js";

/**
 * The places an instruction touches. X and O are linearized as bank · depth + entry; P counts one
 * entry per column tile (all five planes); memory counts memory words.
 */
export type Space = "mem" | "X" | "W" | "P" | "O";
export const SPACES: Space[] = ["mem", "X", "W", "P", "O"];

/** Half-open range [lo, hi) of one space. */
export interface Span {
  space: Space;
  lo: number;
  hi: number;
}

export interface Footprint {
  reads: Span[];
  writes: Span[];
}

/** Planes of a LayerNorm parameter block: k, M low byte, M high byte, B bytes 0–3, N. */
export const LN_PARAM_PLANES = 8;
/** Planes of an ADD parameter block: alignA, alignB, outShift. */
export const ADD_PARAM_PLANES = 3;
/** Entries of a lookup table. */
export const LUT_ENTRIES = 256;
/** O entries one WIDE MATMUL writes: the four byte planes of the int32 result. */
export const WIDE_PLANES = 4;

export function vectorsFor(elements: number, cols: number): number {
  return Math.ceil(elements / cols);
}

/** W entries a MATMUL reads: one per k, or one per pair of k in the int4-weight mode. */
export function weightEntries(k: number, flags: number): number {
  return flags & MATMUL_FLAGS.W4 ? Math.ceil(k / 2) : k;
}

export function footprint(insn: Instruction, cfg: AcceleratorConfig): Footprint {
  const hw = deriveHw(cfg);
  const { rows: R, cols: C } = cfg.array;
  const { xDepth, oDepth } = cfg.buffers;
  const reads: Span[] = [];
  const writes: Span[] = [];
  /** `rows` memory rows of `vectors` vector words each, `stride` memory words apart. */
  const memRows = (to: Span[], word: number, rows: number, stride: number, vectors: number) => {
    for (let j = 0; j < rows; j++) to.push({ space: "mem", lo: word + j * stride, hi: word + j * stride + vectors * hw.wordsPerVector });
  };
  const banks = (to: Span[], space: "X" | "O", depth: number, banksUsed: number, lo: number, n: number) => {
    for (let b = 0; b < banksUsed; b++) to.push({ space, lo: b * depth + lo, hi: b * depth + lo + n });
  };
  switch (insn.op) {
    case "HALT":
    case "SYNC":
      break;
    case "LOAD":
      memRows(reads, insn.maddr, insn.rows, insn.mstride, insn.count);
      if (insn.target === "X") banks(writes, "X", xDepth, insn.rows, insn.addr, insn.count);
      else if (insn.target === "W") writes.push({ space: "W", lo: insn.addr, hi: insn.addr + insn.rows * insn.count });
      else if (insn.target === "WT") writes.push({ space: "W", lo: insn.addr, hi: insn.addr + insn.count * C });
      else writes.push({ space: "P", lo: insn.addr, hi: insn.addr + Math.ceil((insn.rows * insn.count) / PARAM_PLANES) });
      break;
    case "STORE":
      banks(reads, "O", oDepth, insn.rows, insn.addr, insn.count);
      memRows(writes, insn.maddr, insn.rows, insn.mstride, insn.count);
      break;
    case "MATMUL":
      banks(reads, "X", xDepth, R, insn.xaddr, vectorsFor(insn.k, C));
      reads.push({ space: "W", lo: insn.waddr, hi: insn.waddr + weightEntries(insn.k, insn.flags) });
      reads.push({ space: "P", lo: insn.paddr, hi: insn.paddr + 1 });
      banks(writes, "O", oDepth, R, insn.oaddr, insn.flags & MATMUL_FLAGS.WIDE ? WIDE_PLANES : 1);
      break;
    case "LAYERNORM":
      memRows(reads, insn.src, insn.rows, insn.sstride, vectorsFor(insn.cols, C));
      memRows(reads, insn.paddr, 1, 0, LN_PARAM_PLANES * vectorsFor(insn.cols, C));
      memRows(writes, insn.dst, insn.rows, insn.dstride, vectorsFor(insn.cols, C));
      break;
    case "SOFTMAX":
      memRows(reads, insn.src, insn.rows, insn.sstride, vectorsFor(insn.cols, C));
      memRows(writes, insn.dst, insn.rows, insn.dstride, vectorsFor(insn.cols, C));
      break;
    case "ATTNV":
      memRows(reads, insn.src, insn.rows, insn.sstride, vectorsFor(insn.rows, C));
      memRows(reads, insn.v, insn.rows, insn.vstride, vectorsFor(insn.cols, C));
      memRows(writes, insn.dst, insn.rows, insn.dstride, vectorsFor(insn.cols, C));
      break;
    case "LUT":
      memRows(reads, insn.src, insn.rows, insn.sstride, vectorsFor(insn.cols, C));
      memRows(reads, insn.table, 1, 0, vectorsFor(LUT_ENTRIES, C));
      memRows(writes, insn.dst, insn.rows, insn.dstride, vectorsFor(insn.cols, C));
      break;
    case "ADD":
      memRows(reads, insn.src, insn.rows, insn.sstride, vectorsFor(insn.cols, C));
      memRows(reads, insn.b, insn.bstride === 0 ? 1 : insn.rows, insn.bstride, vectorsFor(insn.cols, C));
      memRows(reads, insn.paddr, 1, 0, ADD_PARAM_PLANES * vectorsFor(insn.cols, C));
      memRows(writes, insn.dst, insn.rows, insn.dstride, vectorsFor(insn.cols, C));
      break;
  }
  return { reads, writes };
}

/** The fields of each opcode that hold memory word addresses (the compiler relocates them). */
export const MEMORY_FIELDS: Partial<Record<Instruction["op"], string[]>> = {
  LOAD: ["maddr"],
  STORE: ["maddr"],
  LAYERNORM: ["src", "dst", "paddr"],
  SOFTMAX: ["src", "dst"],
  ATTNV: ["src", "dst", "v"],
  LUT: ["src", "dst", "table"],
  ADD: ["src", "dst", "b", "paddr"],
};

/** Memory words an instruction moves over the memory port (reads and writes). */
export function memoryWords(f: Footprint): number {
  let n = 0;
  for (const s of [...f.reads, ...f.writes]) if (s.space === "mem") n += s.hi - s.lo;
  return n;
}
