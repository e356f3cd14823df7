/**
 * The streaming chunk controllers (templates/rtl/eltwise_chunk, softmax_chunk, layernorm_chunk) and the
 * datapath they share (stream_datapath): every size their templates print, and their exact cycles.
 *
 * Parameters (the LUT table, the ADD and LayerNorm planes) are read once per instruction first. Then the
 * rows go through as units (a row, or a segment of a long LUT row), overlapped: a unit is read into one
 * bank of the row planes while the unit before is fed from the other bank through byte_gearboxes into the
 * core; the core's beats go into an output ring, and each unit whose beats are all there is regrouped
 * into vector words and written out while later units are still in the core. Reader and writer share
 * the chunk's memory port.
 */
import { AcceleratorConfig, deriveHw } from "../hw/config.js";
import { ADD_PARAM_PLANES, LN_PARAM_PLANES, LUT_ENTRIES } from "../hw/footprint.js";
import { Instruction } from "../hw/isa.js";
import { P2vitError } from "../util/errors.js";
import { ALIGN_MAX, ELEMENTWISE_LATENCY, ELEMENTWISE_MODES } from "./elementwise.js";
import { LN_ROW_SLOTS, layerNormCoreContext, layerNormDelays, layerNormRowTiming } from "./layernorm-core.js";
import { indexBits } from "./params.js";
import { softmaxBeats, softmaxOutputDelay, softmaxRowSpacing } from "./softmax.js";

export type StreamChunk = "eltwise" | "softmax" | "layernorm";

/** Plane RAMs per chunk: the row (a; b for ADD), then the parameter planes. */
export const CHUNK_PLANES: Record<StreamChunk, number> = {
  eltwise: 2 + ADD_PARAM_PLANES,
  softmax: 1,
  layernorm: 1 + LN_PARAM_PLANES,
};

/** Of those, the planes that hold rows: two banks each, so the next unit is read while one is fed. */
export const ROW_PLANES: Record<StreamChunk, number> = { eltwise: 2, softmax: 1, layernorm: 1 };

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

// ---- the cores' rules ---------------------------------------------------------------------------------

/**
 * The least cycles between the last beats of consecutive softmax rows that the beats themselves do not
 * already give: the rows of one instruction are equally long, and a row's beats come one per cycle at
 * most after the last beat of the row before, so its last beat is `beats` cycles later anyway. The
 * rest of softmaxRowSpacing does not depend on the row length (the square root, the max tree).
 */
export function softmaxRowGap(cfg: AcceleratorConfig): number {
  const shape = { lanes: cfg.cores.softmaxLanes, maxTokens: cfg.cores.maxTokens };
  let gap = 1;
  for (let t = 1; t <= shape.maxTokens; t++) {
    const spacing = softmaxRowSpacing(t, t, shape);
    if (spacing > softmaxBeats(t, shape.lanes)) gap = Math.max(gap, spacing);
  }
  for (let t = 1; t <= shape.maxTokens; t++) {
    if (Math.max(gap, softmaxBeats(t, shape.lanes)) < softmaxRowSpacing(t, t, shape)) throw new P2vitError(`softmax chunk: no row gap fits rows of ${t} tokens`);
  }
  // the gate's counter starts full for an instruction's first row: every earlier row left the core
  // (its last output beat, softmaxOutputDelay after its last input beat) before the chunk went idle
  if (softmaxOutputDelay(1, shape) < gap) throw new P2vitError("softmax chunk: the row gap outlasts the core's delay");
  return gap;
}

/** How a chunk's core limits its beats (stream_datapath's core_ready, decided in each chunk). */
type CoreRules =
  | { kind: "pipeline"; latency: number }
  | { kind: "softmax"; gap: number; delay: (bytes: number) => number }
  | { kind: "layernorm"; rowGap: number; slotReuse: number; delay: number };

function coreRules(kind: StreamChunk, cfg: AcceleratorConfig): CoreRules {
  switch (kind) {
    case "eltwise":
      return { kind: "pipeline", latency: ELEMENTWISE_LATENCY };
    case "softmax": {
      const shape = { lanes: cfg.cores.softmaxLanes, maxTokens: cfg.cores.maxTokens };
      return { kind: "softmax", gap: softmaxRowGap(cfg), delay: (bytes) => softmaxOutputDelay(bytes, shape) };
    }
    case "layernorm": {
      const d = layerNormDelays(cfg.cores.layernormLanes);
      // as softmaxRowGap: the counters start full for an instruction's rows
      if (d.output < Math.max(d.rowGap, d.slotReuse)) throw new P2vitError("layernorm chunk: a row rule outlasts the core's delay");
      return { kind: "layernorm", rowGap: d.rowGap, slotReuse: d.slotReuse, delay: d.output };
    }
  }
}

// ---- sizes ----------------------------------------------------------------------------------------------

/** Cycles from a unit's last beat into the core to its first beat out. */
function coreDelay(rules: CoreRules, bytes: number): number {
  switch (rules.kind) {
    case "pipeline":
      return rules.latency;
    case "softmax":
      return rules.delay(bytes);
    case "layernorm":
      return rules.delay;
  }
}

/**
 * Beats of the output ring. A unit's beats hold their slots from the cycle they go into the core until
 * the drain has read them: about the core's delay, the beats in and out, and the drain. Units follow
 * each other no faster than their beats, the core's spacing and the memory port (every vector word is
 * read and written through it) allow, so about hold / spacing units are in flight, plus the one
 * arriving. The largest over every unit length; at least one whole unit, which the drain waits for.
 * The ring only has to be large enough for speed: a beat never goes into the core without its slot.
 */
function ringDepth(kind: StreamChunk, cfg: AcceleratorConfig): number {
  const C = cfg.array.cols;
  const wpv = deriveHw(cfg).wordsPerVector;
  const { lanes, segBytes } = chunkShape(kind, cfg);
  const rules = coreRules(kind, cfg);
  const maxBeats = Math.ceil(segBytes / lanes);
  let depth = maxBeats;
  for (let beats = 1; beats <= maxBeats; beats++) {
    const bytes = Math.min(beats * lanes, segBytes);
    const vectors = Math.ceil(bytes / C);
    let core = 1;
    if (rules.kind === "softmax") core = rules.gap;
    if (rules.kind === "layernorm") core = layerNormRowTiming(bytes, lanes).interval;
    // one input (LUT, SOFTMAX, LAYERNORM) read and the output written: the fastest a unit can follow
    const spacing = Math.max(beats, core, 2 * vectors * wpv);
    const hold = coreDelay(rules, bytes) + 2 * beats + drainCycles(C, lanes, wpv, bytes);
    depth = Math.max(depth, beats * (Math.ceil(hold / spacing) + 1));
  }
  return depth;
}

/** The values every chunk template prints for its stream_datapath. */
function datapathContext(kind: StreamChunk, cfg: AcceleratorConfig) {
  const C = cfg.array.cols;
  const wpv = deriveHw(cfg).wordsPerVector;
  const { lanes, segBytes } = chunkShape(kind, cfg);
  const planes = CHUNK_PLANES[kind];
  const depth = segBytes / C;
  const addrBits = indexBits(depth);
  const outDepth = ringDepth(kind, cfg);
  return {
    lanes,
    planes,
    rowPlanes: ROW_PLANES[kind],
    depth,
    addrBits,
    // a row plane's bank 1 starts at 2^addrBits: its address is {bank, entry}
    rowDepth: 2 ** addrBits + depth,
    outDepth,
    outAddrBits: indexBits(outDepth),
    freeBits: valueBits(outDepth),
    // plane indices run one past the last plane when a read ends; a row read is up to two planes
    planeBits: valueBits(Math.max(planes, 2)),
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
  const rowGap = softmaxRowGap(cfg);
  return {
    ...datapathContext("softmax", cfg),
    maxTokens: cfg.cores.maxTokens,
    tokenBits: indexBits(cfg.cores.maxTokens + 1),
    rowGap,
    gapBits: valueBits(rowGap),
  };
}

export function layerNormChunkContext(cfg: AcceleratorConfig) {
  const core = layerNormCoreContext(cfg.cores.layernormLanes, cfg.cores.maxDim);
  const { rowGap, slotReuse } = layerNormDelays(cfg.cores.layernormLanes);
  const gapMax = Math.max(rowGap, slotReuse);
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
    rowSlots: LN_ROW_SLOTS,
    rowGap,
    slotReuse,
    gapMax,
    gapBits: valueBits(gapMax),
  };
}

// ---- cycles -------------------------------------------------------------------------------------------
// Exact for a memory that accepts every request and answers reads `latency` cycles later. The
// parameter phase is counted from the cycle its one-cycle start register is high to the cycle the next
// phase's is: the controller sees a phase end one cycle after it happens and starts the next one the
// cycle after. The rows are simulated cycle by cycle, register by register, as stream_datapath does.

/** A read of `words` memory words: one request per cycle, the last answer `latency` cycles later. */
function readCycles(words: number, latency: number): number {
  return words + latency + 2;
}

/** stream_feed and its byte_gearboxes, the handshakes only: IN-byte entries into OUT-byte words. */
class FeedModel {
  private running = false;
  private primed = false;
  busy = false;
  private left = 0;
  private count = 0;
  private rowEnds = false;
  constructor(
    private readonly IN: number,
    private readonly OUT: number,
  ) {}

  /** A word is on offer (out_valid). */
  get outValid(): boolean {
    return this.count >= this.OUT || (this.rowEnds && this.count !== 0);
  }
  /** It is the row's last (out_last). */
  get outLast(): boolean {
    return this.rowEnds && this.count <= this.OUT;
  }
  /** An entry goes into the gearboxes this cycle (`taken`). */
  get take(): boolean {
    return this.primed && !this.rowEnds && this.count <= this.OUT; // FULL_RATE
  }

  /** The clock edge: `give` = out_valid && out_ready this cycle; `start` = the bytes of a run starting. */
  tick(give: boolean, start: number | null): void {
    const take = this.take;
    const inLast = this.left <= this.IN;
    const lastGive = give && this.outLast;
    const remaining = give ? Math.max(this.count - this.OUT, 0) : this.count;
    this.count = take ? remaining + Math.min(this.left, this.IN) : remaining;
    if (take && inLast) this.rowEnds = true;
    else if (lastGive) this.rowEnds = false;
    if (start !== null) {
      this.running = this.busy = true;
      this.primed = false;
      this.left = start;
      return;
    }
    // the first entry is addressed in the cycle after start and read in the one after that
    if (this.running && !this.primed) this.primed = true;
    else if (take) {
      this.left -= this.IN;
      if (inLast) this.running = this.primed = false;
    }
    if (lastGive) this.busy = false;
  }
}

/** One pass of stream_feed with the consumer taking a word whenever `ready` says: the cycle after which nothing is left. */
function simulateFeed(IN: number, OUT: number, bytes: number, ready: (t: number) => boolean): number {
  const feed = new FeedModel(IN, OUT);
  feed.tick(false, bytes);
  for (let t = 1; ; t++) {
    const give = feed.outValid && ready(t);
    const last = give && feed.outLast;
    feed.tick(give, null);
    if (last) return t;
  }
}

/** Cycles of draining `bytes` through an idle port: WPV writes per vector word, to the drain's end. */
function drainCycles(C: number, lanes: number, wpv: number, bytes: number): number {
  let free = 0;
  let lastWrite = 0;
  simulateFeed(lanes, C, bytes, (t) => {
    if (t < free) return false;
    lastWrite = free = t + wpv;
    return true;
  });
  return lastWrite + 2;
}

/** stream_writer: a vector word held, written as WPV memory words. */
class WriterModel {
  held = false;
  private part = 0;
  constructor(private readonly wpv: number) {}
  /** in_ready, given whether the port takes its word this cycle. */
  inReady(accept: boolean): boolean {
    return !this.held || (accept && this.part === this.wpv - 1);
  }
  tick(take: boolean, accept: boolean): void {
    if (take) {
      this.held = true;
      this.part = 0;
    } else if (accept) {
      if (this.part === this.wpv - 1) this.held = false;
      this.part++;
    }
  }
}

/** What the rows of one instruction need of the datapath. */
interface RowsShape {
  C: number;
  lanes: number;
  wpv: number;
  ringDepth: number;
  rules: CoreRules;
  /** Row inputs read per unit: 2 for ADD (a and b). */
  inputs: number;
  latency: number;
}

/**
 * stream_datapath's rows, cycle by cycle: from the cycle rows_start is high (0) to the first cycle
 * rows_busy is low again. `units` are the bytes of each unit in order. Each line follows a register or
 * a rule of the template; the memory accepts every request and answers `latency` cycles later.
 */
function simulateRows(s: RowsShape, units: number[]): number {
  const { C, lanes, wpv, rules } = s;
  const reader = { reqLeft: 0, gotLeft: 0 };
  const answers: number[] = []; // cycles the reads come back, in order
  let answerHead = 0;
  const feed = new FeedModel(C, lanes);
  const drain = new FeedModel(lanes, C);
  const writer = new WriterModel(wpv);
  const outs: { t: number; last: boolean }[] = []; // the core's output beats to come, in order
  let outHead = 0;
  let rowBeats = 0;
  // the chunk's gate counters (full at the start: see coreRules)
  const gapMax = rules.kind === "softmax" ? rules.gap : rules.kind === "layernorm" ? Math.max(rules.rowGap, rules.slotReuse) : 0;
  let since = [gapMax, gapMax, gapMax];
  const bankFull = [false, false];
  const bankBytes = [0, 0];
  let rdBank = 0;
  let fdBank = 0;
  let rActive = false;
  let fActive = false;
  let dActive = false;
  let rIdx = 0;
  let dIdx = 0;
  let free = s.ringDepth;
  let unitsIn = 0;
  let inFirst = false;
  const limit = 1000 + units.reduce((a, b) => a + 50 * (b + 8) * s.inputs * wpv + 4 * coreDelay(rules, b), 0);
  for (let t = 1; t < limit; t++) {
    // ---- this cycle's signals ----
    const rdReq = reader.reqLeft > 0;
    const wrAccept = !rdReq && writer.held; // the reader first
    const rvalid = answerHead < answers.length && answers[answerHead] === t;
    const rGo = rIdx < units.length && !rActive && !bankFull[rdBank];
    const fGo = !fActive && bankFull[fdBank];
    const dDone = dActive && !drain.busy && !writer.held;
    // the drain starts the next unit in the cycle it sees the last one written
    const dGo = (!dActive || dDone) && unitsIn > 0;
    let coreReady = true;
    if (rules.kind === "softmax") coreReady = !feed.outLast || since[0] >= rules.gap;
    if (rules.kind === "layernorm") coreReady = !(inFirst && since[2] < rules.slotReuse) && !(feed.outLast && since[0] < rules.rowGap);
    const beatIn: boolean = feed.outValid && coreReady && free > 0;
    const beatLast = feed.outLast;
    const drainGive = drain.outValid && writer.inReady(wrAccept);
    const ringTaken = drain.take;
    const out = outHead < outs.length && outs[outHead].t === t ? outs[outHead++] : null;
    const rDone = rActive && reader.gotLeft === 0;
    const fDone = fActive && !feed.busy;
    // ---- the clock edge ----
    if (rdReq) {
      answers.push(t + s.latency);
      reader.reqLeft--;
    }
    if (rvalid) {
      answerHead++;
      reader.gotLeft--;
    }
    if (rGo) {
      const words = s.inputs * Math.ceil(units[rIdx] / C) * wpv;
      reader.reqLeft = reader.gotLeft = words;
      rActive = true;
      bankBytes[rdBank] = units[rIdx++];
    }
    if (rDone) {
      rActive = false;
      bankFull[rdBank] = true;
      rdBank ^= 1;
    }
    feed.tick(beatIn, fGo ? bankBytes[fdBank] : null);
    if (fGo) fActive = true;
    if (fDone) {
      fActive = false;
      bankFull[fdBank] = false;
      fdBank ^= 1;
    }
    inFirst = fGo ? true : beatIn ? false : inFirst;
    if (beatIn) {
      if (rules.kind === "pipeline") outs.push({ t: t + rules.latency, last: beatLast });
      else {
        rowBeats++;
        if (beatLast) {
          const delay = coreDelay(rules, units[0]);
          for (let k = 0; k < rowBeats; k++) outs.push({ t: t + delay + k, last: k === rowBeats - 1 });
          rowBeats = 0;
        }
      }
    }
    const rowEnd = beatIn && beatLast;
    since = rowEnd ? [1, Math.min(since[0] + 1, gapMax), Math.min(since[1] + 1, gapMax)] : since.map((v) => Math.min(v + 1, gapMax));
    drain.tick(drainGive, dGo ? units[dIdx] : null);
    writer.tick(drainGive, wrAccept);
    free += (ringTaken ? 1 : 0) - (beatIn ? 1 : 0);
    unitsIn += (out?.last ? 1 : 0) - (dGo ? 1 : 0);
    if (dDone) {
      dActive = false;
      if (dIdx === units.length) return t + 1;
    }
    if (dGo) {
      dActive = true;
      dIdx++;
    }
  }
  throw new P2vitError("stream chunk timing: the rows did not finish (a ring smaller than a unit?)");
}

/** The bytes of each unit of `rows` rows of `cols`: rows longer than a segment go in segments. */
function unitsOf(rows: number, cols: number, segBytes: number): number[] {
  const row: number[] = [];
  for (let left = cols; left > 0; left -= segBytes) row.push(Math.min(left, segBytes));
  return Array.from({ length: rows }, () => row).flat();
}

/** Per config: each chunk's ring depth and core rules, and the rows already simulated. */
const cache = new WeakMap<AcceleratorConfig, { shapes: Map<StreamChunk, { ring: number; rules: CoreRules }>; rows: Map<string, number> }>();

/** The rows of an instruction on `kind`'s datapath, remembered per config (the cycle models ask for every instruction). */
function rowsCycles(kind: StreamChunk, cfg: AcceleratorConfig, rows: number, cols: number, inputs: number, latency: number, ringOverride?: number): number {
  let known = cache.get(cfg);
  if (!known) cache.set(cfg, (known = { shapes: new Map(), rows: new Map() }));
  const key = `${kind} ${rows} ${cols} ${inputs} ${latency} ${ringOverride ?? ""}`;
  const cycles = known.rows.get(key);
  if (cycles !== undefined) return cycles;
  let chunk = known.shapes.get(kind);
  if (!chunk) known.shapes.set(kind, (chunk = { ring: ringDepth(kind, cfg), rules: coreRules(kind, cfg) }));
  const { lanes, segBytes } = chunkShape(kind, cfg);
  const shape: RowsShape = {
    C: cfg.array.cols,
    lanes,
    wpv: deriveHw(cfg).wordsPerVector,
    ringDepth: ringOverride ?? chunk.ring,
    rules: chunk.rules,
    inputs,
    latency,
  };
  const simulated = simulateRows(shape, unitsOf(rows, cols, segBytes));
  known.rows.set(key, simulated);
  return simulated;
}

/**
 * Cycles a streaming instruction keeps its chunk busy: from the cycle the top starts it to the first
 * cycle `busy` is low, on a memory that accepts every request and answers reads `latency` cycles later.
 * The parameter phase, then the rows (rows_start high in cycle `P`), then one cycle for the controller to
 * see the rows end. `ringDepth` replaces the output ring's depth (to check that the ring is deep enough).
 */
export function streamChunkCycles(insn: Instruction, cfg: AcceleratorConfig, latency: number, opts: { ringDepth?: number } = {}): number {
  if (insn.op !== "LAYERNORM" && insn.op !== "SOFTMAX" && insn.op !== "LUT" && insn.op !== "ADD") throw new P2vitError(`${insn.op} is not a streaming instruction`);
  if (insn.rows === 0 || insn.cols === 0) return 1;
  const C = cfg.array.cols;
  const wpv = deriveHw(cfg).wordsPerVector;
  const vectorWords = (bytes: number) => Math.ceil(bytes / C) * wpv;
  const { cols, rows } = insn;
  const ring = opts.ringDepth;
  switch (insn.op) {
    case "LUT":
      // the table read, then into the core one entry per cycle (and the cycle that sees the end)
      return 1 + readCycles(vectorWords(LUT_ENTRIES), latency) + LUT_ENTRIES + 1 + rowsCycles("eltwise", cfg, rows, cols, 1, latency, ring) + 1;
    case "ADD":
      return 1 + readCycles(ADD_PARAM_PLANES * vectorWords(cols), latency) + rowsCycles("eltwise", cfg, rows, cols, 2, latency, ring) + 1;
    case "SOFTMAX":
      return 1 + rowsCycles("softmax", cfg, rows, cols, 1, latency, ring) + 1;
    case "LAYERNORM": {
      const lanes = cfg.cores.layernormLanes;
      // the parameter planes, then fed through the gearboxes into the core's parameter entries
      const params = simulateFeed(C, lanes, cols, () => true) + 2;
      return 1 + readCycles(LN_PARAM_PLANES * vectorWords(cols), latency) + params + rowsCycles("layernorm", cfg, rows, cols, 1, latency, ring) + 1;
    }
  }
}
