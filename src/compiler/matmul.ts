/**
 * Tiling of one matrix product on the MatMul chunk: M rows of X against `tiles` column tiles of
 * weights, row-stationary. Rows are grouped as many row tiles as fit half of X, column tiles as
 * many as fit half of W (and of O and P); the loop order that moves fewer bytes goes outside. Each
 * load fills the half its previous user is not reading, so loads overlap MATMULs (double buffering);
 * the dependency pass (deps.ts) turns the buffer reuse into waits.
 */
import { AcceleratorConfig, PARAM_PLANES, deriveHw } from "../hw/config.js";
import { WIDE_PLANES, vectorsFor } from "../hw/footprint.js";
import { Instruction, MATMUL_FLAGS } from "../hw/isa.js";
import { P2vitError } from "../util/errors.js";

export interface Emitted {
  insn: Instruction;
  comment: string;
  /** The QGraph op it belongs to. */
  layer: string;
}

/**
 * A buffer used in two halves in turn when what one load needs fits half of it (double buffering),
 * else whole (a load then waits until the previous user is done).
 */
export class PingPong {
  private next = 0;
  constructor(
    readonly depth: number,
    private readonly doubled: boolean,
  ) {}
  /** Entries one load may use: half the buffer if `need` entries fit in it, else all of it. */
  capacity(need: number): number {
    const half = Math.floor(this.depth / 2);
    return this.doubled && need <= half ? half : this.depth;
  }
  /** First entry of the space for a load of up to capacity(need) entries. */
  take(need: number): number {
    const cap = this.capacity(need);
    if (cap === this.depth) return 0;
    const base = this.next * cap;
    this.next ^= 1;
    return base;
  }
}

export interface MatmulBuffers {
  x: PingPong;
  w: PingPong;
  p: PingPong;
  o: PingPong;
}

export function matmulBuffers(cfg: AcceleratorConfig, overlap: boolean): MatmulBuffers {
  const b = cfg.buffers;
  return {
    x: new PingPong(b.xDepth, overlap),
    w: new PingPong(b.wDepth, overlap),
    p: new PingPong(b.paramDepth, overlap),
    o: new PingPong(b.oDepth, overlap),
  };
}

export type WeightSource =
  /** Tile-major weights in memory: tile t's `entries` vector words from word + t · entries · WPV. */
  | { kind: "memory"; word: number }
  /** The rows of a tensor (tokens × k), transposed into W by LOAD WT: one column tile = C rows. */
  | { kind: "transpose"; word: number; rowStride: number; rows: number; vectors: number };

export interface MatmulJob {
  layer: string;
  /** Input rows. */
  m: number;
  /** The MATMUL k field: logical inner dimension. */
  k: number;
  flags: number;
  /** X rows: row r's `vectors` vector words start at word + r · rowStride. */
  x: { word: number; rowStride: number; vectors: number };
  tiles: number;
  weights: WeightSource;
  /** Bias and shift records: `perTile` (five vector words per tile) or one record for every tile. */
  params: { word: number; perTile: boolean };
  out: { word: number; rowStride: number };
  /** Names the output channel range of a tile in listings. */
  describeTile?: (t: number) => string;
}

/** W entries one column tile occupies. */
export function tileEntries(job: MatmulJob, cols: number): number {
  if (job.weights.kind === "transpose") return job.weights.vectors * cols;
  return job.flags & MATMUL_FLAGS.W4 ? Math.ceil(job.k / 2) : job.k;
}

export function emitMatmul(cfg: AcceleratorConfig, job: MatmulJob, buf: MatmulBuffers, out: Emitted[]): void {
  const hw = deriveHw(cfg);
  const { rows: R, cols: C } = cfg.array;
  const wide = (job.flags & MATMUL_FLAGS.WIDE) !== 0;
  const oPerTile = wide ? WIDE_PLANES : 1;
  const entries = tileEntries(job, C);
  const inVectors = job.x.vectors;
  const refuse = (what: string) => {
    throw new P2vitError(`layer ${job.layer} (M=${job.m}, K=${job.k}, ${job.tiles} column tiles) does not fit accelerator "${cfg.name}": ${what}`);
  };
  if (job.k >= 2 ** 16) refuse(`K=${job.k} exceeds the 16-bit k field of MATMUL`);
  if (vectorsFor(job.k, C) > inVectors) throw new Error(`layer ${job.layer}: X rows hold ${inVectors} vector words, K=${job.k} needs more`);
  const xRoom = buf.x.capacity(inVectors);
  const rowTilesPerGroup = Math.floor(xRoom / inVectors);
  if (rowTilesPerGroup < 1) refuse(`buffers.xDepth = ${cfg.buffers.xDepth} cannot hold one input row of ${inVectors} vector words`);
  const wRoom = buf.w.capacity(entries);
  const oRoom = buf.o.capacity(oPerTile);
  const pRoom = buf.p.capacity(1);
  const tilesPerGroup = Math.min(Math.floor(wRoom / entries), Math.floor(oRoom / oPerTile), pRoom);
  if (tilesPerGroup < 1) {
    refuse(`one column tile needs ${entries} W entries (buffers.wDepth = ${cfg.buffers.wDepth}), ${oPerTile} O entries (buffers.oDepth = ${cfg.buffers.oDepth}) and 1 parameter entry (buffers.paramDepth = ${cfg.buffers.paramDepth})`);
  }
  const rowTiles = Math.ceil(job.m / R);
  const rowGroups = Math.ceil(rowTiles / rowTilesPerGroup);
  const colGroups = Math.ceil(job.tiles / tilesPerGroup);
  const xBytes = job.m * inVectors;
  const wBytes = job.tiles * entries;
  const columnsOutside = wBytes + xBytes * (rowGroups === 1 ? 1 : colGroups) <= xBytes + wBytes * (colGroups === 1 ? 1 : rowGroups);

  const tile = (t: number) => job.describeTile?.(t) ?? `channels ${t * C}..${(t + 1) * C - 1}`;
  const push = (insn: Instruction, comment: string) => out.push({ insn, comment: `${job.layer}: ${comment}`, layer: job.layer });

  const loadWeights = (t0: number, n: number): { waddr: number; paddr: number } => {
    const waddr = buf.w.take(n * entries);
    const paddr = buf.p.take(n);
    const src = job.weights;
    if (src.kind === "memory") {
      push({ op: "LOAD", target: "W", rows: 1, count: n * entries, addr: waddr, maddr: src.word + t0 * entries * hw.wordsPerVector, mstride: 0 },
        `weights of column tiles ${t0}..${t0 + n - 1}`);
    } else {
      for (let i = 0; i < n; i++) {
        const r0 = (t0 + i) * C;
        const rows = Math.min(C, src.rows - r0);
        push({ op: "LOAD", target: "WT", rows, count: src.vectors, addr: waddr + i * entries, maddr: src.word + r0 * src.rowStride, mstride: src.rowStride },
          `rows ${r0}..${r0 + rows - 1} transposed into column tile ${t0 + i}`);
      }
    }
    const p = job.params;
    push(
      p.perTile
        ? { op: "LOAD", target: "P", rows: 1, count: PARAM_PLANES * n, addr: paddr, maddr: p.word + t0 * PARAM_PLANES * hw.wordsPerVector, mstride: 0 }
        : { op: "LOAD", target: "P", rows: n, count: PARAM_PLANES, addr: paddr, maddr: p.word, mstride: 0 },
      `bias and shift of column tiles ${t0}..${t0 + n - 1}`,
    );
    return { waddr, paddr };
  };

  const loadRows = (rt0: number, n: number): number => {
    const xaddr = buf.x.take(n * inVectors);
    for (let i = 0; i < n; i++) {
      const m0 = (rt0 + i) * R;
      const rows = Math.min(R, job.m - m0);
      push({ op: "LOAD", target: "X", rows, count: inVectors, addr: xaddr + i * inVectors, maddr: job.x.word + m0 * job.x.rowStride, mstride: job.x.rowStride },
        `input rows ${m0}..${m0 + rows - 1}`);
    }
    return xaddr;
  };

  const compute = (rt0: number, nRows: number, xaddr: number, t0: number, nTiles: number, w: { waddr: number; paddr: number }) => {
    for (let i = 0; i < nRows; i++) {
      const m0 = (rt0 + i) * R;
      const rows = Math.min(R, job.m - m0);
      const oaddr = buf.o.take(nTiles * oPerTile);
      for (let j = 0; j < nTiles; j++) {
        push({ op: "MATMUL", k: job.k, xaddr: xaddr + i * inVectors, waddr: w.waddr + j * entries, paddr: w.paddr + j, oaddr: oaddr + j * oPerTile, flags: job.flags },
          `rows ${m0}..${m0 + rows - 1} × ${tile(t0 + j)}`);
      }
      push({ op: "STORE", rows, count: nTiles * oPerTile, addr: oaddr, maddr: job.out.word + m0 * job.out.rowStride + t0 * oPerTile * hw.wordsPerVector, mstride: job.out.rowStride },
        `output rows ${m0}..${m0 + rows - 1}, column tiles ${t0}..${t0 + nTiles - 1}`);
    }
  };

  const groups = (count: number, per: number) => Array.from({ length: Math.ceil(count / per) }, (_, g) => [g * per, Math.min(per, count - g * per)] as const);
  if (columnsOutside) {
    let x: number | null = null;
    for (const [t0, nt] of groups(job.tiles, tilesPerGroup)) {
      const w = loadWeights(t0, nt);
      for (const [rt0, nr] of groups(rowTiles, rowTilesPerGroup)) {
        if (x === null || rowGroups > 1) x = loadRows(rt0, nr);
        compute(rt0, nr, x, t0, nt, w);
      }
    }
  } else {
    let w: { waddr: number; paddr: number } | null = null;
    for (const [rt0, nr] of groups(rowTiles, rowTilesPerGroup)) {
      const x = loadRows(rt0, nr);
      for (const [t0, nt] of groups(job.tiles, tilesPerGroup)) {
        if (w === null || colGroups > 1) w = loadWeights(t0, nt);
        compute(rt0, nr, x, t0, nt, w);
      }
    }
  }
}
