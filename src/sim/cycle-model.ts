/**
 * The cycle model: when each instruction of a program starts and finishes on a given accelerator,
 * from the per-instruction timing (hw/timing.ts), the dependencies, one shared memory port and an
 * in-order dispatcher with a bounded queue per chunk.
 *
 * Events are taken in time order: at each step the earliest thing that can happen (the dispatcher
 * fetching the next instruction, or a chunk starting its head instruction) happens. The memory port
 * serves one word per cycle, first come first served: an instruction's words go through it in one
 * burst from the earliest free cycle at or after its start, and it finishes no earlier than the
 * burst. An instruction fetch is a burst of wordsPerInstruction words.
 *
 * With `serial` every instruction starts after the previous one finished: the no-overlap ablation.
 */
import { AcceleratorConfig, deriveHw } from "../hw/config.js";
import { footprint, memoryWords } from "../hw/footprint.js";
import { CHUNKS, CHUNK_NAMES, Chunk, Instruction, QUEUE_DEPTH, chunkOf } from "../hw/isa.js";
import { READ_LATENCY, instructionTiming } from "../hw/timing.js";

/** Instructions each chunk's queue holds beyond the one it runs. */

/** Cycles the queued dispatcher adds before a unit chunk's unit starts, and after it finishes, per instruction. */
const DISPATCH_HANDOFF = 1;

export interface TimedInstruction {
  chunk: Chunk | null;
  dispatch: number;
  start: number;
  done: number;
  /** Memory port words (fetch excluded). */
  words: number;
}

export interface CycleRun {
  cycles: number;
  timeline: TimedInstruction[];
  /** Cycles each chunk was busy. */
  busy: Record<Chunk, number>;
  /** Cycles the memory port moved words (data and fetch). */
  portBusy: number;
}

export function runCycleModel(program: Instruction[], cfg: AcceleratorConfig, options: { serial?: boolean } = {}): CycleRun {
  const hw = deriveHw(cfg);
  const n = program.length;
  const chunks = program.map(chunkOf);
  const timing = program.map((i) => instructionTiming(i, cfg));
  const words = program.map((i) => memoryWords(footprint(i, cfg)));
  const timeline: TimedInstruction[] = program.map((_, i) => ({ chunk: chunks[i], dispatch: -1, start: -1, done: -1, words: words[i] }));
  const queues = new Map<Chunk, number[]>(CHUNK_NAMES.map((c) => [c, []]));
  const heads = new Map<Chunk, number>(CHUNK_NAMES.map((c) => [c, 0]));
  program.forEach((_, i) => chunks[i] && queues.get(chunks[i]!)!.push(i));
  const positionInQueue = new Int32Array(n);
  for (const q of queues.values()) q.forEach((pc, k) => (positionInQueue[pc] = k));
  // finish times of the signals each chunk sent to each chunk, in order; and how many each consumer used
  const sent = CHUNK_NAMES.map(() => CHUNK_NAMES.map(() => [] as number[]));
  const used = CHUNK_NAMES.map(() => new Int32Array(CHUNK_NAMES.length));
  const free = new Map<Chunk, number>(CHUNK_NAMES.map((c) => [c, 0]));
  const busy = Object.fromEntries(CHUNK_NAMES.map((c) => [c, 0])) as Record<Chunk, number>;
  let port = 0;
  let portBusy = 0;
  const burst = (at: number, count: number): number => {
    if (count === 0) return at;
    const begin = Math.max(at, port);
    port = begin + count;
    portBusy += count;
    return port;
  };

  let fetched = 0;
  let fetchReady = 0;
  let lastDone = 0;
  let executed = 0;
  const total = n - 1; // HALT waits for the rest
  const earliestStart = (c: Chunk): number | null => {
    const pc = queues.get(c)![heads.get(c)!];
    if (pc === undefined || pc >= fetched) return null;
    let t = Math.max(free.get(c)!, timeline[pc].dispatch);
    for (const w of program[pc].dep?.wait ?? []) {
      const list = sent[CHUNKS[w.chunk] - 1][CHUNKS[c] - 1];
      const k = used[CHUNKS[w.chunk] - 1][CHUNKS[c] - 1] + w.count - 1;
      if (k >= list.length) return null;
      t = Math.max(t, list[k]);
    }
    if (options.serial && pc > 0) {
      if (timeline[pc - 1].done < 0) return null;
      t = Math.max(t, timeline[pc - 1].done);
    }
    return t;
  };
  const fetchTime = (): number | null => {
    if (fetched >= n) return null;
    const c = chunks[fetched];
    if (c) {
      // the queue has room once the instruction QUEUE_DEPTH places ahead in the same queue has started
      const ahead = positionInQueue[fetched] - QUEUE_DEPTH - 1;
      if (ahead >= 0) {
        const s = timeline[queues.get(c)![ahead]].start;
        if (s < 0) return null;
        return Math.max(fetchReady, s);
      }
    }
    return fetchReady;
  };

  while (executed < total || fetched < n) {
    let best: { t: number; chunk: Chunk | null } | null = null;
    const f = fetchTime();
    if (f !== null) best = { t: f, chunk: null };
    for (const c of CHUNK_NAMES) {
      const t = earliestStart(c);
      if (t !== null && (best === null || t < best.t)) best = { t, chunk: c };
    }
    if (best === null) throw new Error(`cycle model: no instruction can start (executed ${executed} of ${total}, fetched ${fetched}): the dependencies cannot be met`);
    if (best.chunk === null) {
      const done = burst(best.t, hw.wordsPerInstruction);
      // the dispatcher fetches one instruction at a time: its words, their answers, then the push
      timeline[fetched].dispatch = done + READ_LATENCY + 1;
      fetchReady = done + READ_LATENCY + 2;
      fetched++;
      continue;
    }
    const c = best.chunk;
    const pc = queues.get(c)![heads.get(c)!];
    const insn = program[pc];
    for (const w of insn.dep?.wait ?? []) used[CHUNKS[w.chunk] - 1][CHUNKS[c] - 1] += w.count;
    const start = best.t;
    // a unit chunk's head goes into a register first and the unit starts the next cycle; its completion
    // is seen (and signalled) in the cycle busy falls: the chunk takes its next head the cycle after
    const handoff = c !== "MM" && insn.op !== "SYNC" ? DISPATCH_HANDOFF : 0;
    const portEnd = burst(start + handoff, words[pc]);
    const done = Math.max(start + handoff + timing[pc].complete, portEnd) + handoff;
    const issueEnd = Math.max(start + handoff + timing[pc].issue, portEnd) + handoff;
    timeline[pc].start = start;
    timeline[pc].done = done;
    free.set(c, issueEnd);
    busy[c] += issueEnd - start;
    for (const s of insn.dep?.signal ?? []) sent[CHUNKS[c] - 1][CHUNKS[s] - 1].push(done);
    heads.set(c, heads.get(c)! + 1);
    lastDone = Math.max(lastDone, done);
    executed++;
  }
  const halt = timeline[n - 1];
  halt.start = Math.max(halt.dispatch, lastDone);
  halt.done = halt.start + 1;
  return { cycles: halt.done, timeline, busy, portBusy };
}
