/**
 * The softmax core against the golden kernels logIntSoftmax and uniformIntSoftmax
 * (src/sim/golden/attention.ts): rows of every length from 1 to the core's maximum (lane multiples and
 * one off them), both output formats and fresh constants on every row (score exponents over the whole
 * range |G| ≤ 31, residuals ½ … 1.99), scores from flat to one-hot with the int8 extremes, beats with and
 * without gaps, and rows as close as softmaxRowSpacing allows, with junk on every input the core must
 * ignore. Output cycles come from softmaxOutputDelay, so a timing change shows as a mismatch too.
 *
 * A code or a probability hides small errors of E, S or R unless its row sits on a rounding boundary,
 * which random rows almost never do. So rows are also built to sit on one: log2 rows whose
 * R = floor(√2·S) is exactly E_max·2^j or one below it, uniform rows whose division is exact (a tie),
 * uniform rows within one E step of a boundary at a large E, and log2 rows of N ≈ √2·2^k scores, where
 * S/E ≈ N puts many codes next to their half-way point √2·2^k whatever the constants: with G < 0, where
 * every E lies within 0.4% of E_max, those are the rows that show an input-shift rounding error.
 */
import { describe, expect, it } from "vitest";
import {
  SOFTMAX_CONST_BITS, SOFTMAX_MODES, SoftmaxCoreShape, softmaxBeats, softmaxCycles, softmaxOutputDelay, softmaxRowSpacing,
} from "../../../src/generator/softmax.js";
import { renderUnit } from "../../../src/generator/units.js";
import { quantizeSoftmax } from "../../../src/quant/ops/attention.js";
import {
  LOG2_ZERO_CODE, SoftmaxParams, UNIFORM_PROB_BITS, floorSqrt2Times, intExp, log2Code, logIntSoftmax, uniformIntSoftmax,
} from "../../../src/sim/golden/attention.js";
import { Cycle, Expected, StimulusRng, checkUnit, packLanes } from "../../../src/sim/verilator/unit.js";

type Mode = (typeof SOFTMAX_MODES)[keyof typeof SOFTMAX_MODES];

interface Row {
  kind: string;
  scores: Int8Array;
  mode: Mode;
  params: SoftmaxParams;
}

/** G = αs + 16 must stay within ±31 (quantizeSoftmax); −16 is G = 0, −25 the first G whose shift empties every distance. */
const SCORE_EXPONENTS = { lo: -47, hi: 15, edges: [-47, -25, -24, -16, -15, 5, 6, 15] };
const RESIDUALS = [1, 0.7071067811865475, 0.5, 1.99];

function rowLength(rng: StimulusRng, { lanes, maxTokens }: SoftmaxCoreShape): number {
  const edges = [1, lanes - 1, lanes, lanes + 1, 2 * lanes, maxTokens - 1, maxTokens].filter((n) => n >= 1 && n <= maxTokens);
  return rng.chance(0.4) ? rng.pick(edges) : rng.int(1, maxTokens);
}

/** Scores from flat to peaked, with the int8 extremes: where the max, the cutoff and the sums are tested. */
function scoreRow(rng: StimulusRng, n: number): { kind: string; scores: Int8Array } {
  const kind = rng.pick(["spread", "uniform", "flat", "one-hot", "extremes", "near-max"] as const);
  const clamp = (v: number) => Math.max(-128, Math.min(127, Math.round(v)));
  const scores = new Int8Array(n);
  if (kind === "spread") {
    const centre = rng.int(-128, 127);
    const spread = rng.pick([1, 4, 16, 64, 200]);
    scores.forEach((_, i) => (scores[i] = clamp(centre + (rng.int(-1000, 1000) / 1000) * spread)));
  } else if (kind === "uniform") {
    scores.forEach((_, i) => (scores[i] = rng.int8(0)));
  } else if (kind === "flat") {
    scores.fill(rng.int8(0.6));
  } else if (kind === "one-hot") {
    scores.fill(-128);
    scores[rng.int(0, n - 1)] = 127;
  } else if (kind === "extremes") {
    scores.forEach((_, i) => (scores[i] = rng.pick([-128, 127, -127, 126, 0])));
  } else {
    // every score within a few steps of the max: distances of a few working steps, many equal codes
    const top = rng.int8(0.3);
    scores.forEach((_, i) => (scores[i] = Math.max(-128, top - rng.int(0, 3))));
  }
  return { kind, scores };
}

function constants(mode: Mode, scoreExponent: number, scoreResidual: number): SoftmaxParams {
  return quantizeSoftmax({ name: "test", attnBits: mode === SOFTMAX_MODES.LOG2 ? 4 : 8, scoreExponent, scoreResidual });
}

function randomResidual(rng: StimulusRng): number {
  return rng.chance(0.7) ? rng.pick(RESIDUALS) : 0.5 + rng.int(0, 1499) / 1000;
}

function rowConstants(rng: StimulusRng, mode: Mode): SoftmaxParams {
  const scoreExponent = rng.chance(0.5)
    ? rng.int(-8, 0) // the usual range
    : rng.edgy(SCORE_EXPONENTS.lo, SCORE_EXPONENTS.hi, 0.5, SCORE_EXPONENTS.edges);
  return constants(mode, scoreExponent, randomResidual(rng));
}

// ---- rows on a rounding boundary ---------------------------------------------------------------------

/** E of every int8 distance below the row max. */
function expTable(p: SoftmaxParams): number[] {
  return Array.from({ length: 256 }, (_, d) => intExp(-d, p));
}

/**
 * Distances (from the max) of a row whose E values sum to exactly `sum`, the max itself included: the
 * largest E that still fits, as often as it fits, down to the smallest; null when that leaves a rest or
 * takes more than `maxTokens` scores.
 */
function distancesForSum(exps: number[], sum: number, maxTokens: number): number[] | null {
  const levels = [...new Set(exps.filter((e) => e > 0))].sort((a, b) => b - a);
  if (sum < exps[0]) return null;
  const out = [0];
  let rest = sum - exps[0];
  for (const e of levels) {
    const count = Math.floor(rest / e);
    if (out.length + count > maxTokens) return null;
    for (let i = 0; i < count; i++) out.push(exps.indexOf(e));
    rest -= count * e;
  }
  return rest === 0 ? out : null;
}

/** Scores at these distances below a random max, in random order. */
function scoresAt(rng: StimulusRng, distances: number[]): Int8Array {
  const top = rng.int(Math.max(...distances) - 128, 127);
  const scores = Int8Array.from(distances, (d) => top - d);
  for (let i = scores.length - 1; i > 0; i--) {
    const k = rng.int(0, i);
    [scores[i], scores[k]] = [scores[k], scores[i]];
  }
  return scores;
}

/** A log2 row whose R is exactly E_max·2^j (code j) or one below it (code j − 1): an R off by one flips a code. */
function rootBoundaryRow(rng: StimulusRng, maxTokens: number): Row | null {
  const params = constants(SOFTMAX_MODES.LOG2, rng.int(-5, -1), randomResidual(rng));
  const exps = expTable(params);
  const j = rng.int(1, Math.max(1, Math.min(4, Math.floor(Math.log2(maxTokens)))));
  const root = exps[0] * 2 ** j - rng.int(0, 1);
  const sum = Math.ceil(root / Math.SQRT2);
  if (floorSqrt2Times(sum) !== root) return null;
  const distances = distancesForSum(exps, sum, maxTokens);
  if (!distances) return null;
  expect(log2Code(exps[0], root)).toBe(root === exps[0] * 2 ** j ? j : j - 1);
  return { kind: `R = E_max·2^${j}${root === exps[0] * 2 ** j ? "" : " − 1"}`, scores: scoresAt(rng, distances), mode: SOFTMAX_MODES.LOG2, params };
}

/** A uniform row in which 2^9·E_max + S is an exact multiple of 2·S: a rounding tie, which goes up. */
function tieRow(rng: StimulusRng, maxTokens: number): Row | null {
  const params = constants(SOFTMAX_MODES.UNIFORM, rng.int(-5, -1), randomResidual(rng));
  const exps = expTable(params);
  const scale = 2 ** (UNIFORM_PROB_BITS + 1);
  // S·(2q − 1) = 2^9·E_max: an odd divisor k = 2q − 1 of E_max gives S = 2^9·E_max / k
  const divisors = [];
  for (let k = 1; k < scale; k += 2) if (exps[0] % k === 0 && scale / k <= maxTokens) divisors.push(k);
  if (divisors.length === 0) return null;
  const k = rng.pick(divisors);
  const distances = distancesForSum(exps, (scale * exps[0]) / k, maxTokens);
  if (!distances) return null;
  return { kind: `uniform tie at q = ${(k + 1) / 2}`, scores: scoresAt(rng, distances), mode: SOFTMAX_MODES.UNIFORM, params };
}

/**
 * A short uniform row in which some E ≥ 2^18 is within one step of changing its probability: an E off
 * by one there shows. Score exponents down to G = −10, where the input shift rounds.
 */
function nearTieRow(rng: StimulusRng, maxTokens: number): Row | null {
  const params = constants(SOFTMAX_MODES.UNIFORM, rng.int(-26, -12), randomResidual(rng));
  const exps = expTable(params);
  const n = rng.int(2, Math.min(maxTokens, 6));
  const distances = Array.from({ length: n }, (_, i) => (i === 0 ? 0 : rng.int(0, 255)));
  const sum = distances.reduce((a, d) => a + exps[d], 0);
  const scale = 2 ** (UNIFORM_PROB_BITS + 1);
  // the numerator 2^9·E + S moves by 2^9 per step of E; a boundary is a multiple of 2·S
  const near = distances.some((d) => {
    const e = exps[d];
    const r = (scale * e + sum) % (2 * sum);
    return e >= 2 ** 18 && Math.min(r, 2 * sum - r) < scale;
  });
  return near ? { kind: "uniform near tie", scores: scoresAt(rng, distances), mode: SOFTMAX_MODES.UNIFORM, params } : null;
}

/** Row lengths within 0.5% of √2·2^k. */
const CRITICAL_LENGTHS = [45, 91, 181, 362, 724];

/** A log2 row of a critical length, most often with G < 0 (score exponents −24 … −17). */
function criticalRow(rng: StimulusRng, maxTokens: number): Row | null {
  const lengths = CRITICAL_LENGTHS.filter((n) => n <= maxTokens);
  if (lengths.length === 0) return null;
  const params = rng.chance(0.7) ? constants(SOFTMAX_MODES.LOG2, rng.int(-24, -17), randomResidual(rng)) : rowConstants(rng, SOFTMAX_MODES.LOG2);
  const n = rng.chance(0.7) ? lengths[lengths.length - 1] : rng.pick(lengths);
  return { kind: `critical length ${n}`, scores: Int8Array.from({ length: n }, () => rng.int8(0.1)), mode: SOFTMAX_MODES.LOG2, params };
}

/** `count` rows from `make`, which may fail: at most `tries` attempts. */
function found(make: () => Row | null, count: number, tries: number): Row[] {
  const rows: Row[] = [];
  for (let t = 0; t < tries && rows.length < count; t++) {
    const row = make();
    if (row) rows.push(row);
  }
  return rows;
}

/** What the core must give for a row: the golden kernel, then the padding lanes of the last beat as probability 0. */
function expectedLanes(row: Row, lanes: number): number[] {
  const n = row.scores.length;
  const golden = row.mode === SOFTMAX_MODES.LOG2 ? logIntSoftmax(row.scores, 1, n, row.params) : uniformIntSoftmax(row.scores, 1, n, row.params);
  const padded = Array.from(golden);
  while (padded.length < softmaxBeats(n, lanes) * lanes) padded.push(row.mode === SOFTMAX_MODES.LOG2 ? LOG2_ZERO_CODE : 0);
  return padded;
}

function configInputs(row: Row): Cycle {
  const p = row.params;
  return { cfg_mode: row.mode, cfg_tokens: row.scores.length, cfg_shift: p.inputShift, cfg_ln2: p.ln2, cfg_b: p.polyB, cfg_c: p.polyC, cfg_d: p.polyShift };
}

/** Values the core must ignore: on cycles without a beat, and the constants on a row's later beats. */
function junk(rng: StimulusRng, lanes: number, maxTokens: number): Cycle {
  const bits = (b: number) => rng.int(0, 2 ** Math.min(b, 30) - 1);
  return {
    in_s: packLanes(Int8Array.from({ length: lanes }, () => rng.int8()), 8),
    cfg_mode: rng.int(0, 1), cfg_tokens: rng.int(0, maxTokens), cfg_shift: rng.int(-32, 31),
    cfg_ln2: bits(SOFTMAX_CONST_BITS.ln2), cfg_b: bits(SOFTMAX_CONST_BITS.polyB), cfg_c: bits(SOFTMAX_CONST_BITS.polyC), cfg_d: bits(SOFTMAX_CONST_BITS.polyShift),
  };
}

const SHAPES: SoftmaxCoreShape[] = [
  { lanes: 1, maxTokens: 20 },
  { lanes: 5, maxTokens: 197 },
  { lanes: 16, maxTokens: 1024 },
];

function randomRow(rng: StimulusRng, shape: SoftmaxCoreShape, tokens = rowLength(rng, shape)): Row {
  const mode = rng.chance(0.5) ? SOFTMAX_MODES.LOG2 : SOFTMAX_MODES.UNIFORM;
  const { kind, scores } = scoreRow(rng, tokens);
  return { kind, scores, mode, params: rowConstants(rng, mode) };
}

/** Cycle by cycle stimulus and the outputs it must give, built row by row. */
class Schedule {
  readonly cycles: Cycle[] = [{ rst: 1 }, { rst: 1 }];
  readonly expected: Expected[] = [];
  readonly rows: Row[] = [];
  /** The row whose beat each cycle carries, for the failure message. */
  readonly rowOfCycle: number[] = [-1, -1];
  private lastBeat = 1;
  private lastTokens = 1;

  constructor(
    private readonly rng: StimulusRng,
    private readonly shape: SoftmaxCoreShape,
  ) {}

  /** The earliest cycle the next row's last beat may take. */
  earliestLast(tokens: number): number {
    return this.rows.length === 0 ? this.cycles.length : this.lastBeat + softmaxRowSpacing(this.lastTokens, tokens, this.shape);
  }

  /**
   * Sends a row with its last beat in cycle `lastAt` or later (the spacing allows no earlier) and its
   * other beats after the previous row's last beat: as `early` as that allows (with `gaps` of up to two
   * cycles), or back to back before the last. Returns the cycle of the row's last output beat.
   */
  send(row: Row, lastAt: number, beatsAt: "early" | "gaps" | "back to back"): number {
    const { lanes } = this.shape;
    const n = row.scores.length;
    const beats = softmaxBeats(n, lanes);
    const r = this.rows.push(row) - 1;
    let at = Math.max(this.cycles.length, this.lastBeat + 1);
    for (let b = 0; b < beats; b++) {
      if (beatsAt === "gaps") at += this.rng.int(0, 2);
      if (beatsAt === "back to back" || b === beats - 1) at = Math.max(at, lastAt - (beats - 1 - b));
      const lane = Int8Array.from({ length: lanes }, (_, c) => (b * lanes + c < n ? row.scores[b * lanes + c] : this.rng.int8()));
      const config = b === 0 ? configInputs(row) : {};
      this.place(at, { ...this.junk(), ...config, in_valid: 1, in_s: packLanes(lane, 8) }, r);
      at++;
    }
    const last = this.cycles.length - 1;
    const want = expectedLanes(row, lanes);
    const first = last + softmaxOutputDelay(n, this.shape);
    for (let b = 0; b < beats; b++) {
      const values = { out_valid: 1, out_last: b === beats - 1 ? 1 : 0, out_p: packLanes(want.slice(b * lanes, (b + 1) * lanes), 8) };
      this.expected.push({ cycle: first + b, vector: last, values });
    }
    this.lastBeat = last;
    this.lastTokens = n;
    return first + beats - 1;
  }

  /** Idle cycles until every row has come out. */
  drain(): void {
    const { lanes, maxTokens } = this.shape;
    for (let i = 0; i < softmaxOutputDelay(maxTokens, this.shape) + softmaxBeats(maxTokens, lanes) + 2; i++) this.cycles.push({});
  }

  describe(cycle: number): string {
    const row = this.rows[this.rowOfCycle[cycle]];
    const p = row.params;
    const mode = row.mode === SOFTMAX_MODES.LOG2 ? "log2" : "uniform";
    const scores = `${Array.from(row.scores.slice(0, 40))}${row.scores.length > 40 ? ",…" : ""}`;
    return `row ${this.rowOfCycle[cycle]} (${row.kind}, ${row.scores.length} tokens, ${mode}, αs ${p.scoreExponent}, ρ ${p.scoreResidual}, ` +
      `G ${p.inputShift} L ${p.ln2} B ${p.polyB} C ${p.polyC} D ${p.polyShift}) scores [${scores}]`;
  }

  private place(at: number, cyc: Cycle, row: number): void {
    while (this.cycles.length < at) {
      this.cycles.push(this.rng.chance(0.5) ? this.junk() : {});
      this.rowOfCycle.push(-1);
    }
    this.cycles.push(cyc);
    this.rowOfCycle.push(row);
  }

  private junk(): Cycle {
    return junk(this.rng, this.shape.lanes, this.shape.maxTokens);
  }
}

describe("softmax_core (Verilator) against logIntSoftmax and uniformIntSoftmax", () => {
  it.each(SHAPES.map((s) => [s.lanes, s.maxTokens, s] as const))("is bit-exact with %i lanes, rows up to %i", async (lanes, maxTokens, shape) => {
    const unit = renderUnit({ unit: "softmax_core", lanes, maxTokens });
    const rng = new StimulusRng(900 + lanes);
    const boundary = [
      ...found(() => rootBoundaryRow(rng, maxTokens), 12, 20000),
      ...found(() => tieRow(rng, maxTokens), 6, 20000),
      ...found(() => nearTieRow(rng, maxTokens), 12, 200000),
      ...found(() => criticalRow(rng, maxTokens), 8, 8),
    ];
    const kinds = new Set(boundary.map((r) => r.kind.replace(/[0-9].*$/, "")));
    // every shape gets rows of each boundary kind its longest row allows
    const critical = maxTokens >= CRITICAL_LENGTHS[0] ? ["critical length "] : [];
    expect([...kinds].sort()).toEqual(["R = E_max·", ...critical, "uniform near tie", "uniform tie at q = "]);

    const schedule = new Schedule(rng, shape);
    const targetBeats = 60 * softmaxBeats(maxTokens, lanes) + 400;
    let beats = 0;
    while (beats < targetBeats || boundary.length > 0) {
      const takeBoundary = boundary.length > 0 && rng.chance(0.25);
      const row = takeBoundary ? boundary.splice(rng.int(0, boundary.length - 1), 1)[0] : randomRow(rng, shape);
      // most rows come as early as allowed, some later
      const n = row.scores.length;
      schedule.send(row, schedule.earliestLast(n) + (rng.chance(0.2) ? rng.int(1, 5) : 0), rng.pick(["early", "gaps", "back to back"] as const));
      beats += softmaxBeats(n, lanes);
    }
    // then rows of the longest length exactly as softmaxCycles counts them: beats back to back, rows as
    // close as allowed. Once rows are long enough the exp pipeline then never pauses, which fills both rings.
    const burst = { rows: 6, tokens: maxTokens };
    const start = schedule.earliestLast(burst.tokens) - softmaxBeats(burst.tokens, lanes) + 1;
    let lastOutput = 0;
    for (let i = 0; i < burst.rows; i++) {
      lastOutput = schedule.send(randomRow(rng, shape, burst.tokens), schedule.earliestLast(burst.tokens), "back to back");
    }
    expect(lastOutput - start + 1).toBe(softmaxCycles(burst.rows, burst.tokens, shape));
    schedule.drain();

    const { mismatch } = await checkUnit(unit, schedule.cycles, schedule.expected, (c) => schedule.describe(c));
    expect(mismatch, mismatch?.message).toBeNull();
    console.log(`softmax_core lanes=${lanes} tokens=${maxTokens}: ${schedule.rows.length} rows, ${beats} beats, ${schedule.cycles.length} cycles`);
  });
});
