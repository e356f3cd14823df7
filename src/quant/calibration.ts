/**
 * Calibration: run the float model on the calibration images with ops that record what each op saw,
 * then hand those records to the quantizer. What is kept per tap is bounded (a row sample plus
 * streaming per-batch ranges), so calibrating DeiT-B on 100 images fits in memory.
 */
import { VitOps } from "./ops.js";
import { ObserverMethod, observeRange } from "./observers.js";
import { candidateExponents, chooseExponent, fakeQuantMse, floatScale } from "./pot.js";

/** Rows kept per tap for searches that need data (adaptive rounding, OMSE, PTF). */
export const MAX_SAMPLE_ROWS = 4096;

/** What calibration saw of one tensor: a bounded sample of its rows and per-batch (min, max). */
export class TapRecord {
  readonly rows: Float32Array[] = [];
  private seen = 0;
  /** Min and max per calibration batch, in order: what the ema observer smooths. */
  readonly batchRanges: [number, number][] = [];
  /** Float values of the current batch, kept only for the percentile observer. */
  private batchValues: Float32Array[] = [];

  constructor(
    readonly cols: number,
    private readonly keepBatchValues: boolean,
  ) {}

  add(x: Float32Array, rows: number, batch: number, sampleRows: boolean): void {
    while (this.batchRanges.length <= batch) this.batchRanges.push([Infinity, -Infinity]);
    const range = this.batchRanges[batch];
    for (let i = 0; i < x.length; i++) {
      if (x[i] < range[0]) range[0] = x[i];
      if (x[i] > range[1]) range[1] = x[i];
    }
    if (this.keepBatchValues) this.batchValues.push(x.slice());
    if (sampleRows) for (let r = 0; r < rows; r++) this.sampleRow(x.subarray(r * this.cols, (r + 1) * this.cols));
  }

  /** Deterministic reservoir sampling: every row seen has the same chance to be kept. */
  private sampleRow(row: Float32Array): void {
    this.seen++;
    if (this.rows.length < MAX_SAMPLE_ROWS) {
      this.rows.push(row.slice());
      return;
    }
    const slot = hashIndex(this.seen) % this.seen;
    if (slot < MAX_SAMPLE_ROWS) this.rows[slot] = row.slice();
  }

  /** The sampled rows as one rows × cols matrix. */
  sample(): { data: Float32Array; rows: number } {
    const data = new Float32Array(this.rows.length * this.cols);
    this.rows.forEach((r, i) => data.set(r, i * this.cols));
    return { data, rows: this.rows.length };
  }

  /** The PoT exponent: the observer's range, then adaptive rounding by the MSE on the row sample. */
  exponent(method: ObserverMethod, bits: number): number {
    const sample = this.sample().data;
    return chooseExponent(candidateExponents(floatScale(this.range(method), bits)), (e) => fakeQuantMse(sample, e, bits));
  }

  /** The magnitude the int8 range must cover, by the chosen observer. */
  range(method: ObserverMethod): number {
    if (method === "minmax") return Math.max(...this.batchRanges.flatMap(([lo, hi]) => [Math.abs(lo), Math.abs(hi)]));
    if (method === "ema") return emaOfRanges(this.batchRanges);
    if (method === "percentile") return observeRange(this.batchValues.length ? this.batchValues : [this.sample().data], "percentile");
    return observeRange([this.sample().data], "omse");
  }
}

function emaOfRanges(ranges: [number, number][]): number {
  // the ema observer over per-batch ranges, as observers.ts defines it
  return observeRange(ranges.map(([lo, hi]) => Float32Array.of(lo, hi)), "ema");
}

function hashIndex(n: number): number {
  let h = Math.imul(n ^ 0x9e3779b9, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export type TapKind = "input" | "output";

/** All taps of a calibration run, keyed "<op name>:<input|output>". */
export class Calibration {
  readonly taps = new Map<string, TapRecord>();
  batch = 0;

  constructor(private readonly keepBatchValues: boolean) {}

  /** `cols` 0: the op does not know its tensor's shape; keep ranges only, no row sample. */
  record(name: string, kind: TapKind, x: Float32Array, rows: number, cols: number): void {
    const key = `${name}:${kind}`;
    let tap = this.taps.get(key);
    if (!tap) {
      tap = new TapRecord(cols, this.keepBatchValues);
      this.taps.set(key, tap);
    }
    tap.add(x, rows, this.batch, cols > 0);
  }

  tap(name: string, kind: TapKind): TapRecord {
    const t = this.taps.get(`${name}:${kind}`);
    if (!t) throw new Error(`calibration recorded nothing for ${name} (${kind})`);
    return t;
  }
}

/** VitOps that record every op's inputs and outputs, then compute them with `inner`. */
export function recordingOps(inner: VitOps, cal: Calibration): VitOps {
  return {
    linear(name, x, rows, w, b, inF, outF) {
      cal.record(name, "input", x, rows, inF);
      const y = inner.linear(name, x, rows, w, b, inF, outF);
      cal.record(name, "output", y, rows, outF);
      return y;
    },
    layerNorm(name, x, rows, dim, g, b, eps) {
      cal.record(name, "input", x, rows, dim);
      const y = inner.layerNorm(name, x, rows, dim, g, b, eps);
      cal.record(name, "output", y, rows, dim);
      return y;
    },
    attentionScores(name, q, k, tokens, headDim, scale) {
      const s = inner.attentionScores(name, q, k, tokens, headDim, scale);
      cal.record(name, "output", s, tokens, tokens);
      return s;
    },
    softmax(name, scores, rows, cols) {
      return inner.softmax(name, scores, rows, cols);
    },
    attentionValues(name, p, v, tokens, headDim) {
      cal.record(`${name}.v`, "input", v, tokens, headDim);
      const y = inner.attentionValues(name, p, v, tokens, headDim);
      cal.record(`${name}.values`, "output", y, tokens, headDim);
      return y;
    },
    activation(name, kind, x) {
      const y = inner.activation(name, kind, x);
      cal.record(name, "output", y, 0, 0);
      return y;
    },
    add(name, a, b) {
      const y = inner.add(name, a, b);
      cal.record(name, "output", y, 0, 0);
      return y;
    },
    sliceCols: inner.sliceCols,
    concatCols: inner.concatCols,
    prependRow: inner.prependRow,
    selectRow: inner.selectRow,
  };
}
