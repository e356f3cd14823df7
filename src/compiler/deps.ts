/**
 * The dependency pass: from what each instruction reads and writes (hw/footprint.ts), the waits and
 * signals that let the chunks run concurrently and still compute what program order computes.
 *
 * An instruction needs the last writer of everything it reads (read after write) and, for on-chip
 * buffers, the last writer and the last readers of everything it writes (write after write, write
 * after read). Memory is written once per word (layout.ts), which this pass checks. Each chunk runs
 * and completes its instructions in order, so a need on an instruction of the same chunk is met, and
 * a need on instruction j of chunk p means "the signals of p up to j". Needs that another kept wait
 * already implies are dropped (vector clocks); each kept wait then consumes exactly one signal, which
 * its producer sends. More than WAITS_PER_INSTRUCTION waits go on SYNC instructions just before.
 *
 * With `overlap` off every instruction also needs the one before it: the chunks run one at a time.
 */
import { AcceleratorConfig } from "../hw/config.js";
import { SPACES, Space, footprint } from "../hw/footprint.js";
import { CHUNKS, CHUNK_NAMES, Chunk, WAITS_PER_INSTRUCTION, chunkOf } from "../hw/isa.js";
import { Emitted } from "./matmul.js";

const NONE = -1;
const CHUNK_SLOTS = CHUNK_NAMES.length + 1;

/** Last writer and last reader per chunk of every entry of one space. */
class Tracker {
  private writer: Int32Array;
  private readers: Int32Array;
  constructor(size: number, private readonly trackReaders: boolean) {
    this.writer = new Int32Array(size).fill(NONE);
    this.readers = new Int32Array(trackReaders ? size * CHUNK_SLOTS : 0).fill(NONE);
  }
  read(lo: number, hi: number, id: number, chunk: number, need: (j: number) => void): void {
    for (let e = lo; e < hi; e++) {
      const w = this.writer[e];
      if (w !== NONE) need(w);
      if (this.trackReaders) this.readers[e * CHUNK_SLOTS + chunk] = id;
    }
  }
  write(lo: number, hi: number, id: number, need: (j: number) => void, once: (e: number, previous: number) => void): void {
    for (let e = lo; e < hi; e++) {
      const w = this.writer[e];
      if (w !== NONE) {
        if (!this.trackReaders) once(e, w);
        need(w);
      }
      if (this.trackReaders) for (let c = 0; c < CHUNK_SLOTS; c++) {
        const r = this.readers[e * CHUNK_SLOTS + c];
        if (r !== NONE) need(r);
      }
      this.writer[e] = id;
    }
  }
}

export function addDependencies(program: Emitted[], cfg: AcceleratorConfig, options: { overlap: boolean }): Emitted[] {
  const chunks = program.map((e) => {
    const c = chunkOf(e.insn);
    if (c === null) throw new Error(`${e.insn.op} has no chunk: the dependency pass runs before HALT is added`);
    return c;
  });
  const prints = program.map((e) => footprint(e.insn, cfg));
  const memWords = prints.reduce((m, f) => [...f.reads, ...f.writes].reduce((a, s) => (s.space === "mem" ? Math.max(a, s.hi) : a), m), 0);
  const { rows: R } = cfg.array;
  const b = cfg.buffers;
  const sizes: Record<Space, number> = { mem: memWords, X: R * b.xDepth, W: b.wDepth, P: b.paramDepth, O: R * b.oDepth };
  const trackers = Object.fromEntries(SPACES.map((s) => [s, new Tracker(sizes[s], s !== "mem")])) as Record<Space, Tracker>;

  // needs[i][p]: the latest instruction of chunk p that instruction i must follow
  const waits: { chunk: Chunk; producer: number }[][] = [];
  const clocks: Int32Array[] = [];
  const lastOf = new Int32Array(CHUNK_SLOTS).fill(NONE);
  const signals: Set<Chunk>[] = program.map(() => new Set());
  program.forEach((e, i) => {
    const own = CHUNKS[chunks[i]];
    const latest = new Int32Array(CHUNK_SLOTS).fill(NONE);
    const need = (j: number) => {
      const p = CHUNKS[chunks[j]];
      if (p !== own && j > latest[p]) latest[p] = j;
    };
    for (const s of prints[i].reads) trackers[s.space].read(s.lo, s.hi, i, own, need);
    for (const s of prints[i].writes) {
      trackers[s.space].write(s.lo, s.hi, i, need, (word, previous) => {
        throw new Error(`${e.comment}: memory word ${word} is written again (first by instruction ${previous}: ${program[previous].comment}); the layout writes each tensor once`);
      });
    }
    if (!options.overlap && i > 0) need(i - 1);

    // drop needs that the own chunk's order or another kept wait already implies
    const prev = lastOf[own];
    const known = prev === NONE ? new Int32Array(CHUNK_SLOTS).fill(NONE) : Int32Array.from(clocks[prev]);
    if (prev !== NONE) known[own] = prev;
    const kept: { chunk: Chunk; producer: number }[] = [];
    const candidates = [...latest.entries()].filter(([, j]) => j !== NONE).sort((x, y) => y[1] - x[1]);
    for (const [p, j] of candidates) {
      if (known[p] >= j) continue;
      kept.push({ chunk: chunks[j], producer: j });
      signals[j].add(chunks[i]);
      const theirs = clocks[j];
      for (let c = 0; c < CHUNK_SLOTS; c++) if (theirs[c] > known[c]) known[c] = theirs[c];
      known[p] = Math.max(known[p], j);
    }
    clocks.push(known);
    waits.push(kept);
    lastOf[own] = i;
  });

  const out: Emitted[] = [];
  program.forEach((e, i) => {
    const kept = waits[i].map((w) => ({ chunk: w.chunk, count: 1 }));
    while (kept.length > WAITS_PER_INSTRUCTION) {
      out.push({ insn: { op: "SYNC", chunk: chunks[i], dep: { wait: kept.splice(0, WAITS_PER_INSTRUCTION), signal: [] } }, comment: `${e.comment} (more waits)`, layer: e.layer });
    }
    const signal = CHUNK_NAMES.filter((c) => signals[i].has(c));
    const dep = kept.length > 0 || signal.length > 0 ? { wait: kept, signal } : undefined;
    out.push({ ...e, insn: dep ? { ...e.insn, dep } : e.insn });
  });
  return out;
}
