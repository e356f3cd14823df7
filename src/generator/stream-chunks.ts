/**
 * The streaming chunk controllers (templates/rtl/eltwise_chunk, softmax_chunk, layernorm_chunk) and the
 * datapath they share (stream_datapath): every size their templates print.
 *
 * A chunk works one row (segment) at a time: the row's vector words are read into plane RAMs, fed
 * through byte_gearboxes into the core's lanes, the core's beats are collected in an output RAM, then
 * regrouped into vector words and written out. Parameters (the LUT table, the ADD and LayerNorm planes)
 * are read once per instruction first.
 */
import { AcceleratorConfig, deriveHw } from "../hw/config.js";
import { ADD_PARAM_PLANES, LN_PARAM_PLANES, LUT_ENTRIES } from "../hw/footprint.js";
import { Instruction } from "../hw/isa.js";
import { P2vitError } from "../util/errors.js";
import { ALIGN_MAX, ELEMENTWISE_LATENCY, ELEMENTWISE_MODES } from "./elementwise.js";
import { layerNormCoreContext, layerNormDelays } from "./layernorm-core.js";
import { indexBits } from "./params.js";
import { softmaxOutputDelay } from "./softmax.js";

export type StreamChunk = "eltwise" | "softmax" | "layernorm";

/** Plane RAMs per chunk: the row (a; b for ADD), then the parameter planes. */
export const CHUNK_PLANES: Record<StreamChunk, number> = {
  eltwise: 2 + ADD_PARAM_PLANES,
  softmax: 1,
  layernorm: 1 + LN_PARAM_PLANES,
};

/** Bits of an unsigned value v ≥ 0 (at least 1). */
function valueBits(v: number): number {
  return indexBits(v + 1);
}

/** The lanes of a chunk's core and the longest row segment it holds, in bytes. */
function chunkShape(kind: StreamChunk, cfg: AcceleratorConfig): { lanes: number; segBytes: number } {
  const C = cfg.array.cols;
  const { layernormLanes, softmaxLanes, eltwiseLanes, maxTokens, maxDim } = cfg.cores;
  switch (kind) {
    case "eltwise":
      // ADD rows are at most maxDim (the compiler checks); the LUT table is read into the same planes
      return { lanes: eltwiseLanes, segBytes: Math.max(Math.ceil(maxDim / C), Math.ceil(LUT_ENTRIES / C)) * C };
    case "softmax":
      return { lanes: softmaxLanes, segBytes: Math.ceil(maxTokens / C) * C };
    case "layernorm":
      return { lanes: layernormLanes, segBytes: Math.ceil(maxDim / C) * C };
  }
}

/** The values every chunk template prints for its stream_datapath. */
function datapathContext(kind: StreamChunk, cfg: AcceleratorConfig) {
  const C = cfg.array.cols;
  const wpv = deriveHw(cfg).wordsPerVector;
  const { lanes, segBytes } = chunkShape(kind, cfg);
  const planes = CHUNK_PLANES[kind];
  const depth = segBytes / C;
  const outDepth = Math.ceil(segBytes / lanes);
  return {
    lanes,
    planes,
    depth,
    addrBits: indexBits(depth),
    outDepth,
    outAddrBits: indexBits(outDepth),
    // plane indices run one past the last plane when a read ends
    planeBits: valueBits(planes),
    partBits: indexBits(wpv),
    // byte_gearbox counts up to IN + OUT (units.ts gearboxParameters)
    inCountBits: valueBits(C + lanes),
    outCountBits: valueBits(C + lanes),
    segWords: depth,
    segBytes,
    segStride: depth * wpv,
  };
}

export function eltwiseChunkContext(cfg: AcceleratorConfig) {
  return {
    ...datapathContext("eltwise", cfg),
    lutEntries: LUT_ENTRIES,
    addParamPlanes: ADD_PARAM_PLANES,
    byteIndexBits: indexBits(cfg.array.cols),
    lastByte: cfg.array.cols - 1,
    alignBits: indexBits(ALIGN_MAX + 1),
    alignMax: ALIGN_MAX,
    modeLut: ELEMENTWISE_MODES.LUT,
    modeAdd: ELEMENTWISE_MODES.ADD,
  };
}

export function softmaxChunkContext(cfg: AcceleratorConfig) {
  return { ...datapathContext("softmax", cfg), maxTokens: cfg.cores.maxTokens, tokenBits: indexBits(cfg.cores.maxTokens + 1) };
}

export function layerNormChunkContext(cfg: AcceleratorConfig) {
  const core = layerNormCoreContext(cfg.cores.layernormLanes, cfg.cores.maxDim);
  return {
    ...datapathContext("layernorm", cfg),
    maxDim: cfg.cores.maxDim,
    lnPlanes: LN_PARAM_PLANES,
    beatBits: core.beatBits,
    dimBits: core.dimBits,
    epsBits: core.epsBits,
    kBits: core.kBits,
    multBits: core.multBits,
    shiftBits: core.shiftBits,
  };
}

// ---- cycles -------------------------------------------------------------------------------------------
// Exact for a memory that accepts every request and answers reads `latency` cycles later. Each phase is
// counted from the cycle its one-cycle start register is high to the cycle the next phase's is: the
// controller sees the phase end one cycle after it happens and starts the next one the cycle after.

/** A read of `words` memory words: one request per cycle, the last answer `latency` cycles later. */
function readCycles(words: number, latency: number): number {
  return words + latency + 2;
}

/**
 * One pass of stream_feed: `bytes` bytes from IN-byte entries through byte_gearbox into OUT-byte words,
 * the consumer taking a word whenever `ready` says so. Cycle by cycle as the RTL does it, from the start
 * cycle (0); calls `give` with each cycle a word is taken. Returns the cycle after which nothing is left.
 */
function simulateFeed(IN: number, OUT: number, bytes: number, ready: (t: number) => boolean, give: (t: number) => void): number {
  let left = bytes;
  let count = 0;
  let rowEnds = false;
  let primed = false;
  let running = true;
  for (let t = 1; ; t++) {
    const inReady = !rowEnds && count < OUT;
    const inLast = left <= IN;
    const take = primed && inReady;
    const outValid = count >= OUT || (rowEnds && count !== 0);
    const outLast = rowEnds && count <= OUT;
    const taken = outValid && ready(t);
    if (taken) give(t);
    if (taken && outLast) return t;
    const remaining = taken ? Math.max(count - OUT, 0) : count;
    count = take ? remaining + Math.min(left, IN) : remaining;
    if (take && inLast) rowEnds = true;
    else if (taken && outLast) rowEnds = false;
    // entry 0 is addressed in the cycle after start and read in the one after that
    if (running && !primed) primed = true;
    else if (take) {
      left -= IN;
      if (inLast) running = primed = false;
    }
  }
}

/** Cycles of one row through the core: feed, the core's last output beat collected. */
function feedCycles(C: number, lanes: number, bytes: number, coreTail: (lastIn: number, beats: number) => number): number {
  let last = 0;
  let beats = 0;
  simulateFeed(C, lanes, bytes, () => true, (t) => {
    last = t;
    beats++;
  });
  // `collected` rises the cycle after the last output beat is written
  return coreTail(last, beats) + 2;
}

/** Cycles of draining a row of `bytes` from the output RAM into memory: WPV writes per vector word. */
function drainCycles(C: number, lanes: number, wpv: number, bytes: number): number {
  let free = 0; // first cycle the writer takes a new vector word (it takes one in its last write's cycle)
  let lastWrite = 0;
  simulateFeed(lanes, C, bytes, (t) => t >= free, (t) => {
    lastWrite = t + wpv;
    free = t + wpv;
  });
  // `full` falls the cycle after the last write, the controller sees it the cycle after
  return lastWrite + 2;
}

interface StreamTimingShape {
  cfg: AcceleratorConfig;
  latency: number;
}

function rowCycles(kind: StreamChunk, { cfg, latency }: StreamTimingShape, cols: number, coreTail: (lastIn: number, beats: number) => number, reads: number): number {
  const C = cfg.array.cols;
  const wpv = deriveHw(cfg).wordsPerVector;
  const { lanes } = chunkShape(kind, cfg);
  const words = Math.ceil(cols / C) * wpv;
  return reads * readCycles(words, latency) + feedCycles(C, lanes, cols, coreTail) + drainCycles(C, lanes, wpv, cols);
}

/**
 * Cycles a streaming instruction keeps its chunk busy: from the cycle the top starts it to the first
 * cycle `busy` is low, on a memory that accepts every request and answers reads `latency` cycles later.
 * Rows one after another: read (a, and b for ADD), fed through the core, drained and written.
 */
export function streamChunkCycles(insn: Instruction, cfg: AcceleratorConfig, latency: number): number {
  if (insn.op !== "LAYERNORM" && insn.op !== "SOFTMAX" && insn.op !== "LUT" && insn.op !== "ADD") throw new P2vitError(`${insn.op} is not a streaming instruction`);
  if (insn.rows === 0 || insn.cols === 0) return 1;
  const C = cfg.array.cols;
  const wpv = deriveHw(cfg).wordsPerVector;
  const shape = { cfg, latency };
  const vectorWords = (bytes: number) => Math.ceil(bytes / C) * wpv;
  const { cols, rows } = insn;
  switch (insn.op) {
    case "LUT": {
      // the table, one entry per cycle into the core; then each row in segments
      const { segBytes } = chunkShape("eltwise", cfg);
      let row = 0;
      for (let left = cols; left > 0; left -= segBytes) row += rowCycles("eltwise", shape, Math.min(left, segBytes), (t) => t + ELEMENTWISE_LATENCY, 1);
      return 1 + readCycles(vectorWords(LUT_ENTRIES), latency) + LUT_ENTRIES + 1 + rows * row;
    }
    case "ADD":
      return 1 + readCycles(ADD_PARAM_PLANES * vectorWords(cols), latency) + rows * rowCycles("eltwise", shape, cols, (t) => t + ELEMENTWISE_LATENCY, 2);
    case "SOFTMAX": {
      const core = { lanes: cfg.cores.softmaxLanes, maxTokens: cfg.cores.maxTokens };
      return 1 + rows * rowCycles("softmax", shape, cols, (t, beats) => t + softmaxOutputDelay(cols, core) + beats - 1, 1);
    }
    case "LAYERNORM": {
      const lanes = cfg.cores.layernormLanes;
      const output = layerNormDelays(lanes).output;
      const params = simulateFeed(C, lanes, cols, () => true, () => {}) + 2;
      return 1 + readCycles(LN_PARAM_PLANES * vectorWords(cols), latency) + params + rows * rowCycles("layernorm", shape, cols, (t, beats) => t + output + beats - 1, 1);
    }
  }
}
