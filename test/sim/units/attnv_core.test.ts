/**
 * attnv_core against attentionValuesInt with log2 codes (src/sim/golden/attention.ts). Heads wider than
 * the core run in column groups, each group's beats compared with the kernel's columns. Code rows: real
 * log-int softmax rows of random int8 scores, random rows with Σ 2^−code ≤ √2 (the spec's bound) or ≤ 2
 * (the accumulator's exact limit, reached with V = −128), all codes 15, all codes 0, and unbounded random
 * rows whose partial sums overflow the accumulator while their final sums fit. N = 1, 2 and MAXN; shifts
 * −8, 0, 31 and in between. Loads overlap the previous group's last row as tightly as the core allows,
 * or come with gaps, as do the codes; the shift port and every input outside its cycles carry garbage.
 */
import { describe, expect, it } from "vitest";
import { SHIFT_MAX, SHIFT_MIN } from "../../../src/arith.js";
import { attnvGroups } from "../../../src/generator/attnv-core.js";
import { RenderedUnit, renderUnit } from "../../../src/generator/units.js";
import { quantizeSoftmax } from "../../../src/quant/ops/attention.js";
import {
  LOG2_ACC_BITS, LOG2_FRAC_BITS, LOG2_ZERO_CODE, attentionValuesInt, logIntSoftmax,
} from "../../../src/sim/golden/attention.js";
import { Cycle, Expected, StimulusRng, checkUnit, packLanes } from "../../../src/sim/verilator/unit.js";

/** One head: N × N codes, N × headDim V, its shift, the rows to stream and the kernel's output. */
interface Head {
  name: string;
  tokens: number;
  headDim: number;
  codes: Uint8Array;
  v: Int8Array;
  shift: number;
  rows: number[];
  out: Int8Array;
}

const ACC_LIMIT = 2 ** (LOG2_ACC_BITS - 1);
const weight = (code: number) => (code === LOG2_ZERO_CODE ? 0 : 2 ** (LOG2_FRAC_BITS - code));

/** Whether every column's exact sum of code row `row` fits the accumulator (what the kernel accepts). */
function rowFits(row: ArrayLike<number>, v: Int8Array, headDim: number): boolean {
  for (let d = 0; d < headDim; d++) {
    let acc = 0;
    for (let j = 0; j < row.length; j++) acc += weight(row[j]) * v[j * headDim + d];
    if (acc < -ACC_LIMIT || acc >= ACC_LIMIT) return false;
  }
  return true;
}

/** The codes of a real softmax row: logIntSoftmax of random int8 scores, narrow or wide, at a random αs. */
function softmaxRow(rng: StimulusRng, n: number): Uint8Array {
  const center = rng.int(-128, 127);
  const spread = rng.pick([0, 2, 16, 64, 255]);
  const scores = Int8Array.from({ length: n }, () => Math.max(-128, Math.min(127, center + rng.int(-spread, spread))));
  const p = quantizeSoftmax({ name: "attnv test", attnBits: 4, scoreExponent: rng.int(-6, -1), scoreResidual: rng.pick([1, Math.SQRT1_2]) });
  return logIntSoftmax(scores, 1, n, p);
}

/** `xs` in a random order (Fisher–Yates). */
function shuffled<T>(rng: StimulusRng, xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const k = rng.int(0, i);
    [out[i], out[k]] = [out[k], out[i]];
  }
  return out;
}

/** Random codes, small ones often, each raised until Σ 2^−code stays within `budget`, in random order. */
function boundedRow(rng: StimulusRng, n: number, budget: number): Uint8Array {
  const row = new Uint8Array(n).fill(LOG2_ZERO_CODE);
  let sum = 0;
  for (const j of shuffled(rng, Array.from({ length: n }, (_, j) => j))) {
    let code = rng.chance(0.5) ? rng.int(0, 3) : rng.int(0, LOG2_ZERO_CODE);
    while (code < LOG2_ZERO_CODE && sum + 2 ** -code > budget) code++;
    row[j] = code;
    if (code < LOG2_ZERO_CODE) sum += 2 ** -code;
  }
  return row;
}

type RowKind = "softmax" | "sqrt2" | "two" | "zero" | "ones" | "wrap";

/** One code row of `kind`; a "wrap" row (any codes) that does not fit becomes a softmax row. */
function codeRow(rng: StimulusRng, kind: RowKind, v: Int8Array, n: number, headDim: number): Uint8Array {
  switch (kind) {
    case "softmax":
      return softmaxRow(rng, n);
    case "sqrt2":
      return boundedRow(rng, n, Math.SQRT2);
    case "two":
      return boundedRow(rng, n, 2);
    case "zero":
      return new Uint8Array(n).fill(LOG2_ZERO_CODE);
    case "ones":
      return new Uint8Array(n); // every code 0: probability 1 each
    case "wrap":
      for (let attempt = 0; attempt < 20; attempt++) {
        const row = Uint8Array.from({ length: n }, () => rng.int(0, LOG2_ZERO_CODE));
        if (rowFits(row, v, headDim)) return row;
      }
      return softmaxRow(rng, n);
  }
}

/**
 * A head whose streamed rows have the given kinds (cycled); rows not streamed are all 15. `v` defaults to
 * random int8 with extremes.
 */
function makeHead(
  rng: StimulusRng, name: string, tokens: number, headDim: number, shift: number, rows: number[], kinds: RowKind[],
  v = Int8Array.from({ length: tokens * headDim }, () => rng.int8()),
): Head {
  const codes = new Uint8Array(tokens * tokens).fill(LOG2_ZERO_CODE);
  rows.forEach((t, i) => {
    let row = codeRow(rng, kinds[i % kinds.length], v, tokens, headDim);
    if (!rowFits(row, v, headDim)) row = softmaxRow(rng, tokens); // every code 0 fits only short rows or small V
    codes.set(row, t * tokens);
  });
  const out = attentionValuesInt(codes, v, tokens, headDim, { attnBits: 4, headDim, vExponent: 0, outputExponent: 0, shift });
  return { name, tokens, headDim, codes, v, shift, rows, out };
}

/** A shift: the extremes often, else near F = 14 where outputs are not all saturated, else any. */
function pickShift(rng: StimulusRng): number {
  if (rng.chance(0.3)) return rng.pick([SHIFT_MIN, 0, SHIFT_MAX]);
  return rng.chance(0.7) ? rng.int(LOG2_FRAC_BITS - 4, LOG2_FRAC_BITS + 4) : rng.int(SHIFT_MIN, SHIFT_MAX);
}

/** Rows 0..N−1, or `count` of them (the first, the last and random ones) for a long head. */
function someRows(rng: StimulusRng, n: number, count: number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, t) => t);
  const rows = new Set([0, n - 1]);
  while (rows.size < count) rows.add(rng.int(0, n - 1));
  return [...rows];
}

const RANDOM_CODES = 30_000;

/** The heads of one parameter set: extremes, a column-grouped head of MAXN tokens, random heads. */
function heads(rng: StimulusRng, lanes: number, maxTokens: number): Head[] {
  const list: Head[] = [];
  // the accumulator's extremes: N = 2, every code 0, V = −128 (sum −2^22) or 127 (alternating columns,
  // and from head to head); a row of 15s
  if (maxTokens >= 2) {
    [SHIFT_MIN, 0, SHIFT_MAX, 22, 23, LOG2_FRAC_BITS].forEach((shift, k) => {
      const v = Int8Array.from({ length: 2 * lanes }, (_, i) => ((i % lanes) + k) % 2 === 0 ? -128 : 127);
      list.push(makeHead(rng, `extremes shift ${shift}`, 2, lanes, shift, [0, 1], ["ones", "zero"], v));
    });
  }
  // N = 1: one code
  for (const shift of [SHIFT_MIN, 0, SHIFT_MAX, LOG2_FRAC_BITS]) {
    const v = Int8Array.from({ length: lanes }, () => rng.int8(0.5));
    const kind = rng.pick<RowKind>(["ones", "zero", "wrap", "softmax"]);
    list.push(makeHead(rng, `N = 1 shift ${shift}`, 1, lanes, shift, [0], [kind], v));
  }
  // partial sums beyond the accumulator, final sums within it: with every code 0, 3 · 127 · 2^14 > 2^22
  // then −2 · 128 · 2^14 more (and the negation in odd columns)
  if (maxTokens >= 5) {
    const v = Int8Array.from({ length: 5 * lanes }, (_, i) => ((Math.floor(i / lanes) < 3) === ((i % lanes) % 2 === 0) ? 127 : -128));
    list.push(makeHead(rng, "partial sums overflow", 5, lanes, LOG2_FRAC_BITS, [0, 1, 2, 3, 4], ["ones", "wrap"], v));
  }
  // N = MAXN, three column groups; every row of a short head, 8 rows of a long one
  const wide = 2 * lanes + Math.ceil(lanes / 2);
  const kinds: RowKind[] = ["zero", "softmax", "two", "sqrt2", "softmax", "wrap"];
  list.push(makeHead(rng, `N = MAXN`, maxTokens, wide, LOG2_FRAC_BITS, someRows(rng, maxTokens, 256 >= maxTokens ? maxTokens : 8), kinds));
  // random heads, until the code port has had RANDOM_CODES codes
  let codes = 0;
  for (let h = 0; codes < RANDOM_CODES; h++) {
    const tokens = rng.pick([1, 2, 3, rng.int(1, Math.min(maxTokens, 40)), rng.int(1, maxTokens)]);
    const headDim = rng.int(1, 2 * lanes + 1);
    const rows = someRows(rng, tokens, 64 >= tokens ? tokens : 4);
    list.push(makeHead(rng, `random ${h}`, tokens, headDim, pickShift(rng), rows, shuffled(rng, kinds.slice(1))));
    codes += rows.length * tokens * attnvGroups(headDim, lanes);
  }
  return list;
}

/**
 * The cycle-by-cycle stimulus of a sequence of (head, column group) jobs, placed as early as the core's
 * V timing allows: row j of V is written after the last code that reads its old value, and a code reads
 * a row written in an earlier cycle. With gaps, writes and codes wait a few random cycles now and then.
 */
class Schedule {
  readonly cycles: Cycle[] = [{ rst: 1 }, { rst: 1 }];
  readonly notes: string[] = ["", ""];
  readonly expected: Expected[] = [];
  private loadFree = 2;
  private codeFree = 2;
  private readonly lastRead: number[];

  constructor(private readonly unit: RenderedUnit, private readonly lanes: number, maxTokens: number, private readonly rng: StimulusRng) {
    this.lastRead = new Array<number>(maxTokens).fill(-1);
  }

  private at(cycle: number): Cycle {
    while (this.cycles.length <= cycle) {
      this.cycles.push({});
      this.notes.push("");
    }
    return this.cycles[cycle];
  }

  private gap(gaps: boolean): number {
    return gaps && this.rng.chance(0.15) ? this.rng.int(1, 3) : 0;
  }

  /** Loads column group `g` of the head's V (zeros beyond headDim) and streams its rows. */
  job(head: Head, g: number, gaps: boolean): void {
    const { tokens: n, headDim } = head;
    const columns = Array.from({ length: this.lanes }, (_, c) => g * this.lanes + c);
    const written: number[] = [];
    for (let j = 0; j < n; j++) {
      const w = Math.max(this.loadFree, this.lastRead[j] + 1) + this.gap(gaps);
      const row = columns.map((d) => (d < headDim ? head.v[j * headDim + d] : 0));
      Object.assign(this.at(w), { v_we: 1, v_waddr: j, v_wdata: packLanes(row, 8) });
      written.push(w);
      this.loadFree = w + 1;
    }
    for (const t of head.rows) {
      let c = 0;
      for (let j = 0; j < n; j++) {
        c = Math.max(this.codeFree, written[j] + 1) + this.gap(gaps);
        Object.assign(this.at(c), { in_valid: 1, in_code: head.codes[t * n + j], in_last: j === n - 1 ? 1 : 0, ...(j === 0 ? { in_shift: head.shift } : {}) });
        this.lastRead[j] = c;
        this.codeFree = c + 1;
      }
      const beat = columns.map((d) => (d < headDim ? head.out[t * headDim + d] : 0));
      const codes = Array.from(head.codes.subarray(t * n, t * n + Math.min(n, 24)));
      this.notes[c] = `${head.name}: N ${n}, row ${t}, group ${g}, shift ${head.shift}, codes [${codes}${n > 24 ? ",…" : ""}] → [${beat}]`;
      this.expected.push({ cycle: c + this.unit.latency, vector: c, values: { out_valid: 1, out_y: packLanes(beat, 8) } });
    }
  }

  /** Ends the stimulus and fills every input outside its cycles with garbage, which must not matter. */
  finish(addrBits: number): Cycle[] {
    this.at(Math.max(this.loadFree, this.codeFree) + this.unit.latency + 2);
    const garbage = () => Int8Array.from({ length: this.lanes }, () => this.rng.int8());
    for (const cyc of this.cycles.slice(2)) {
      if (!cyc.v_we) Object.assign(cyc, { v_waddr: this.rng.int(0, 2 ** addrBits - 1), v_wdata: packLanes(garbage(), 8) });
      if (!cyc.in_valid) Object.assign(cyc, { in_code: this.rng.int(0, LOG2_ZERO_CODE), in_last: this.rng.int(0, 1) });
      if (cyc.in_shift === undefined) cyc.in_shift = this.rng.int8();
    }
    return this.cycles;
  }
}

describe("attnv_core (Verilator) against attentionValuesInt, log2 codes", () => {
  it.each([
    [1, 5],
    [8, 1024],
    [16, 197],
  ])("is bit-exact with %i lanes, MAXN %i", async (lanes, maxTokens) => {
    const unit = renderUnit({ unit: "attnv_core", lanes, maxTokens });
    const rng = new StimulusRng(700 + lanes);
    const schedule = new Schedule(unit, lanes, maxTokens, rng);
    for (const head of heads(rng, lanes, maxTokens)) {
      const gaps = rng.chance(0.3);
      for (let g = 0; g < attnvGroups(head.headDim, lanes); g++) schedule.job(head, g, gaps);
    }
    const cycles = schedule.finish(unit.parameters.AW);
    const { mismatch } = await checkUnit(unit, cycles, schedule.expected, (i) => schedule.notes[i]);
    expect(mismatch, mismatch?.message).toBeNull();
  });
});
