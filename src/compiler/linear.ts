/**
 * QLinear + accelerator config → program: the instruction stream and memory image that run one
 * Linear layer over M input rows on the MatMul chunk (row-stationary: R input rows are loaded once
 * and every column tile of weights streams past them). A layer with int4 weights runs in the
 * int4-weight mode (MATMUL flag W4): its weights are packed two per byte, k even in the low nibble.
 */
import { SHIFT_MAX, SHIFT_MIN, accumulatorFits, signedRange } from "../arith.js";
import { AcceleratorConfig, PARAM_PLANES, deriveHw } from "../hw/config.js";
import { Instruction, MATMUL_FLAGS } from "../hw/isa.js";
import { QLinear } from "../quant/qgraph.js";
import { P2vitError } from "../util/errors.js";
import { ListedInstruction, Program, buildImage, layoutRegions, region, vectorOffset } from "./image.js";

export const REGIONS = { weights: "weights", params: "params", input: "input", output: "output" } as const;

export interface LinearShape {
  /** Input rows (tokens × images). */
  m: number;
  k: number;
  n: number;
  /** Vector words per input row and per output row. */
  inVectors: number;
  outVectors: number;
  /** Column tiles (output channels in groups of `cols`). */
  tiles: number;
  /** Row tiles (input rows in groups of `rows`). */
  rowTiles: number;
  /** Runs in the int4-weight mode (the layer's weights are int4). */
  w4: boolean;
  /** W entries (vector words) per column tile: K, or ceil(K/2) pairs of int4 weights. */
  wEntries: number;
}

export interface LinearProgram extends Program {
  layer: string;
  shape: LinearShape;
  /** Useful multiply-accumulates: m · n · k. */
  macs: number;
}

export function linearShape(cfg: AcceleratorConfig, layer: QLinear, m: number): LinearShape {
  const { rows, cols } = cfg.array;
  const w4 = layer.weightBits === 4;
  return {
    m,
    k: layer.inFeatures,
    n: layer.outFeatures,
    inVectors: Math.ceil(layer.inFeatures / cols),
    outVectors: Math.ceil(layer.outFeatures / cols),
    tiles: Math.ceil(layer.outFeatures / cols),
    rowTiles: Math.ceil(m / rows),
    w4,
    wEntries: w4 ? Math.ceil(layer.inFeatures / 2) : layer.inFeatures,
  };
}

/** Refuses, with the config field to change, a layer this accelerator cannot run. */
export function checkLinearFits(cfg: AcceleratorConfig, layer: QLinear, s: LinearShape): void {
  const b = cfg.buffers;
  const need = (ok: boolean, what: string) => {
    if (!ok) throw new P2vitError(`layer ${layer.name} (K=${s.k}, N=${s.n}) does not fit accelerator "${cfg.name}": ${what}`);
  };
  need(s.m >= 1, `no input rows`);
  need(layer.weightBits === 8 || layer.weightBits === 4, `weightBits = ${layer.weightBits}: the MatMul engine runs int8 or int4 weights`);
  need(
    !s.w4 || cfg.weightBits === 4,
    `the layer has int4 weights and the accelerator is built with weightBits = ${cfg.weightBits}: set weightBits to 4 to build the dual-mode PEs that run them`,
  );
  const { lo, hi } = signedRange(layer.weightBits);
  const outside = layer.weight.findIndex((w) => w < lo || w > hi);
  need(
    outside < 0,
    `channel ${Math.floor(outside / s.k)}, k ${outside % s.k}: weight ${layer.weight[outside]} is outside the int${layer.weightBits} range ${lo}..${hi}`,
  );
  need(s.k < 2 ** 16, `K=${s.k} exceeds the 16-bit k field of MATMUL`);
  need(s.inVectors <= b.xDepth, `buffers.xDepth = ${b.xDepth} holds ${b.xDepth} vector words per row, the input rows need ${s.inVectors}`);
  need(
    s.wEntries <= b.wDepth,
    `buffers.wDepth = ${b.wDepth} is less than one column tile of weights (${s.w4 ? `ceil(K/2) = ${s.wEntries} entries of int4 pairs` : `K = ${s.k} entries`})`,
  );
  need(s.tiles <= b.oDepth, `buffers.oDepth = ${b.oDepth} holds ${b.oDepth} vector words per row, the output rows need ${s.tiles}`);
  need(s.tiles <= b.paramDepth, `buffers.paramDepth = ${b.paramDepth} holds ${b.paramDepth} column tiles of bias and shift, the layer has ${s.tiles}`);
  const maxBias = layer.bias.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  need(
    accumulatorFits(s.k, maxBias, cfg.accBits, cfg.actBits, layer.weightBits),
    `accBits = ${cfg.accBits} can overflow: K·128·${2 ** (layer.weightBits - 1)} + max|bias| = ${s.k * 128 * 2 ** (layer.weightBits - 1) + maxBias} needs more bits`,
  );
  layer.shift.forEach((sh, c) => need(sh >= SHIFT_MIN && sh <= SHIFT_MAX, `channel ${c} needs shift ${sh}, outside ${SHIFT_MIN}..${SHIFT_MAX}`));
}

export function compileLinear(cfg: AcceleratorConfig, layer: QLinear, m: number): LinearProgram {
  const s = linearShape(cfg, layer, m);
  checkLinearFits(cfg, layer, s);
  const hw = deriveHw(cfg);
  const { rows } = cfg.array;
  const weightsResident = s.tiles * s.wEntries <= cfg.buffers.wDepth;
  const flags = s.w4 ? MATMUL_FLAGS.W4 : 0;

  // Region addresses depend on the instruction count, so emit with placeholders, then lay out.
  const emit = (at: (name: string) => number): ListedInstruction[] => {
    const out: ListedInstruction[] = [];
    const loadWeights = (tile: number | null): void => {
      const first = tile ?? 0;
      const count = tile === null ? s.tiles * s.wEntries : s.wEntries;
      out.push({
        insn: { op: "LOAD", target: "W", rows: 1, count, addr: 0, maddr: at(REGIONS.weights) + first * s.wEntries * hw.wordsPerVector, mstride: 0 },
        comment: tile === null ? `${layer.name}: all ${s.tiles} column tiles of weights` : `${layer.name}: weights of column tile ${tile}`,
      });
    };
    if (weightsResident) loadWeights(null);
    out.push({
      insn: { op: "LOAD", target: "P", rows: 1, count: PARAM_PLANES * s.tiles, addr: 0, maddr: at(REGIONS.params), mstride: 0 },
      comment: `${layer.name}: bias and shift of ${s.tiles} column tiles`,
    });
    for (let rt = 0; rt < s.rowTiles; rt++) {
      const m0 = rt * rows;
      const rm = Math.min(rows, s.m - m0);
      out.push({
        insn: {
          op: "LOAD", target: "X", rows: rm, count: s.inVectors, addr: 0,
          maddr: at(REGIONS.input) + m0 * s.inVectors * hw.wordsPerVector, mstride: s.inVectors * hw.wordsPerVector,
        },
        comment: `${layer.name}: input rows ${m0}..${m0 + rm - 1}`,
      });
      for (let t = 0; t < s.tiles; t++) {
        if (!weightsResident) loadWeights(t);
        out.push({
          insn: { op: "MATMUL", k: s.k, xaddr: 0, waddr: weightsResident ? t * s.wEntries : 0, paddr: t, oaddr: t, flags },
          comment: `${layer.name}: rows ${m0}..${m0 + rm - 1} × channels ${t * cfg.array.cols}..${Math.min(s.n, (t + 1) * cfg.array.cols) - 1}`,
        });
      }
      out.push({
        insn: {
          op: "STORE", rows: rm, count: s.outVectors, addr: 0,
          maddr: at(REGIONS.output) + m0 * s.outVectors * hw.wordsPerVector, mstride: s.outVectors * hw.wordsPerVector,
        },
        comment: `${layer.name}: output rows ${m0}..${m0 + rm - 1}`,
      });
    }
    out.push({ insn: { op: "HALT" } as Instruction, comment: "end of program" });
    return out;
  };

  const count = emit(() => 0).length;
  const { regions, words } = layoutRegions(cfg, count, [
    { name: REGIONS.weights, vectors: s.tiles * s.wEntries },
    { name: REGIONS.params, vectors: PARAM_PLANES * s.tiles },
    { name: REGIONS.input, vectors: s.m * s.inVectors },
    { name: REGIONS.output, vectors: s.m * s.outVectors },
  ]);
  const wordOf = (name: string) => regions.find((r) => r.name === name)!.word;
  return { config: cfg, instructions: emit(wordOf), regions, words, layer: layer.name, shape: s, macs: s.m * s.n * s.k };
}

/** The memory image of a compiled linear program for the int8 input rows `x` (m × k). */
export function linearImage(program: LinearProgram, layer: QLinear, x: Int8Array): Uint8Array {
  const { k, n, inVectors, wEntries, w4 } = program.shape;
  const cols = program.config.array.cols;
  if (x.length !== program.shape.m * k) throw new Error(`input has ${x.length} values, expected ${program.shape.m}×${k}`);
  return buildImage(program, (name, v, out) => {
    if (name === REGIONS.weights) {
      // vector word v = tile t, entry i: for each column c, w[t·cols + c][i], or with int4 weights
      // the pair w[…][2i] (bits 3:0) and w[…][2i + 1] (bits 7:4, 0 past K)
      const t = Math.floor(v / wEntries);
      const i = v % wEntries;
      for (let c = 0; c < cols; c++) {
        const ch = t * cols + c;
        if (ch >= n) continue;
        const row = layer.weight.subarray(ch * k, (ch + 1) * k);
        out[c] = w4 ? packInt4Pair(row[2 * i], 2 * i + 1 < k ? row[2 * i + 1] : 0) : row[i] & 0xff;
      }
    } else if (name === REGIONS.params) {
      const t = Math.floor(v / PARAM_PLANES);
      const plane = v % PARAM_PLANES;
      for (let c = 0; c < cols; c++) {
        const ch = t * cols + c;
        if (ch >= n) continue;
        out[c] = plane < 4 ? (layer.bias[ch] >>> (8 * plane)) & 0xff : layer.shift[ch] & 0xff;
      }
    } else if (name === REGIONS.input) {
      const row = Math.floor(v / inVectors);
      const k0 = (v % inVectors) * cols;
      for (let c = 0; c < cols && k0 + c < k; c++) out[c] = x[row * k + k0 + c] & 0xff;
    }
  });
}

/** One W byte of the int4-weight mode: the weight of k even in bits 3:0, of k + 1 in bits 7:4. */
export function packInt4Pair(even: number, odd: number): number {
  return (even & 0xf) | ((odd & 0xf) << 4);
}

/** Reads the layer's int8 output (m × n) back from a memory dump. */
export function readLinearOutput(program: LinearProgram, memory: Uint8Array): Int8Array {
  const hw = deriveHw(program.config);
  const { m, n, outVectors } = program.shape;
  const cols = program.config.array.cols;
  const r = region(program, REGIONS.output);
  const y = new Int8Array(m * n);
  for (let row = 0; row < m; row++) {
    for (let ch = 0; ch < n; ch++) {
      const off = vectorOffset(hw, r, row * outVectors + Math.floor(ch / cols)) + (ch % cols);
      y[row * n + ch] = (memory[off] << 24) >> 24;
    }
  }
  return y;
}
