/**
 * How many cycles each instruction keeps its chunk busy, apart from waiting for the memory port
 * (docs/isa.md, "Timing"). The cycle model (src/sim/cycle-model.ts) adds the port, the dependencies
 * and the dispatcher. The MatMul figures follow the engine's RTL (row-stationary: one k per cycle,
 * a one-cycle move to the shadow registers, one row per cycle through the requantization lanes).
 * The LayerNorm, softmax, LUT and ADD figures are their chunk controllers' (src/generator/stream-chunks.ts:
 * rows read, through the core and written back overlapped, on a memory answering in READ_LATENCY cycles);
 * ATTNV is its chunk controller's exact count (attnv-chunk.ts: V loaded per column group, then one
 * row after another).
 */
import { attnvChunkCycles } from "../generator/attnv-chunk.js";
import { streamChunkCycles } from "../generator/stream-chunks.js";
import { AcceleratorConfig, deriveHw } from "./config.js";
import { weightEntries } from "./footprint.js";
import { Instruction, MATMUL_FLAGS } from "./isa.js";

/** Cycles from a MATMUL step's issue to its products in the accumulators: RAM read, operand registers, product register. */
export const MAC_PIPELINE = 3;
/** Register stages of the requantization lane (templates/rtl/requant_lane.v.hbs). */
export const REQUANT_STAGES = 4;
/** Cycles from a read request to its data when the memory answers at once (loader and core read pipelines). */
export const READ_LATENCY = 2;

export interface InstructionTiming {
  /** Cycles until the chunk can start its next instruction. */
  issue: number;
  /** Cycles until the instruction's results are written (its signals go out then). */
  complete: number;
}

export function instructionTiming(insn: Instruction, cfg: AcceleratorConfig): InstructionTiming {
  const hw = deriveHw(cfg);
  const { rows: R, cols: C } = cfg.array;
  const lanes = cfg.cores;
  const same = (n: number) => ({ issue: n, complete: n });
  switch (insn.op) {
    case "HALT":
    case "SYNC":
      return same(1);
    case "LOAD": {
      const vectors = insn.rows * insn.count;
      // the transposing load requests one vector word, waits for it, then writes its C bytes to C W
      // entries, one per cycle, before it requests the next (templates/rtl/loader.v.hbs)
      if (insn.target === "WT") return same(vectors * (hw.wordsPerVector + READ_LATENCY + C));
      return same(READ_LATENCY + vectors * hw.wordsPerVector);
    }
    case "STORE":
      // the O read pipeline, then each vector word's memory words; the storer takes the next vector
      // word from its FIFO one cycle after the last word of the one before went out (storer.v.hbs)
      return same(READ_LATENCY + 1 + insn.rows * insn.count * (hw.wordsPerVector + 1));
    case "MATMUL": {
      // docs/isa.md, "MATMUL timing": S steps, the sums reach the accumulators MAC_PIPELINE cycles after
      // the last step, move to the shadow registers, and drain one row per cycle (four rows per row for
      // WIDE) through the lanes. The next MATMUL issues after S + 1 cycles unless the drain is still busy.
      const steps = weightEntries(insn.k, insn.flags);
      const drain = R * (insn.flags & MATMUL_FLAGS.WIDE ? 4 : 1);
      return { issue: Math.max(steps + 1, drain + MAC_PIPELINE), complete: steps + MAC_PIPELINE + 1 + drain + REQUANT_STAGES };
    }
    case "LAYERNORM":
    case "SOFTMAX":
    case "LUT":
    case "ADD":
      // the chunk controllers' own schedule: rows read, through the core and written, overlapped
      return same(streamChunkCycles(insn, cfg, READ_LATENCY));
    case "ATTNV":
      return same(attnvChunkCycles(insn.rows, insn.cols, cfg));
  }
}
