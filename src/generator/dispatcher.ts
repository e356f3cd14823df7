/**
 * The queued dispatcher (config `dispatch: "queued"`, templates/rtl/dispatcher.v.hbs) and the memory-port
 * arbiter of the top: every number their templates print, from the ISA tables (chunk ids, opcode → chunk,
 * dependency fields) and the cycle model's queue depth, so the RTL and the model agree on them.
 */
import { AcceleratorConfig } from "../hw/config.js";
import { CHUNKS, CHUNK_NAMES, DEP_FIELDS, FIELDS, LOAD_TARGETS, OPCODES, OPCODE_CHUNK, QUEUE_DEPTH } from "../hw/isa.js";
import { P2vitError } from "../util/errors.js";
import { indexBits } from "./params.js";

/**
 * Reads in flight that the arbiter can route back: it stops granting reads while this many are
 * outstanding. Beyond a memory latency of this many cycles the port no longer streams one read a cycle.
 */
export const READ_TAGS = 32;
/** MATMULs in flight in the engine at once (one accumulating, one in the shadow registers, one draining), rounded up. */
export const MATMUL_IN_FLIGHT = 4;
/** Signals a (producer, consumer) counter holds before it wraps: far more than any queue depth lets run ahead. */
export const COUNTER_BITS = 16;

function checkPowerOfTwo(n: number, what: string): void {
  if (!Number.isInteger(Math.log2(n))) throw new P2vitError(`${what} must be a power of two, got ${n}`);
}

export function dispatcherContext(cfg: AcceleratorConfig) {
  checkPowerOfTwo(QUEUE_DEPTH, "QUEUE_DEPTH");
  checkPowerOfTwo(READ_TAGS, "READ_TAGS");
  checkPowerOfTwo(MATMUL_IN_FLIGHT, "MATMUL_IN_FLIGHT");
  const chunkIdBits = indexBits(Math.max(...Object.values(CHUNKS)) + 1);
  const lastOpcode = Math.max(...Object.values(OPCODES));
  return {
    queued: cfg.dispatch === "queued",
    chunkCount: CHUNK_NAMES.length,
    chunkIdBits,
    mmChunk: CHUNKS.MM,
    // the chunks whose unit takes an instruction, runs it, and shows `busy` until it is done
    unitChunks: CHUNK_NAMES.filter((c) => c !== "MM").map((c) => ({ name: c.toLowerCase(), id: CHUNKS[c] })),
    opcodeChunks: Object.entries(OPCODE_CHUNK).map(([op, chunk]) => ({ op, chunk: CHUNKS[chunk] })),
    lastOpcode,
    syncChunkLsb: FIELDS.SYNC.chunk.lsb,
    syncChunkWidth: FIELDS.SYNC.chunk.width,
    wait0ChunkLsb: DEP_FIELDS.wait0Chunk.lsb,
    wait0CountLsb: DEP_FIELDS.wait0Count.lsb,
    wait1ChunkLsb: DEP_FIELDS.wait1Chunk.lsb,
    wait1CountLsb: DEP_FIELDS.wait1Count.lsb,
    depChunkWidth: DEP_FIELDS.wait0Chunk.width,
    depCountWidth: DEP_FIELDS.wait0Count.width,
    signalLsb: DEP_FIELDS.signal.lsb,
    signalWidth: DEP_FIELDS.signal.width,
    loadTargetLast: Math.max(...Object.values(LOAD_TARGETS)),
    queueDepth: QUEUE_DEPTH,
    queueAddrBits: indexBits(QUEUE_DEPTH),
    counterBits: COUNTER_BITS,
    matmulInFlight: MATMUL_IN_FLIGHT,
    matmulInFlightBits: indexBits(MATMUL_IN_FLIGHT),
    readTags: READ_TAGS,
    readTagBits: indexBits(READ_TAGS),
    // the arbiter's slots are indexed by chunk id (0: the fetch unit)
    portSlots: 2 ** chunkIdBits,
    portSlotBits: chunkIdBits,
  };
}
