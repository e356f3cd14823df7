/**
 * QGraph + accelerator config → program: the instruction stream, the memory image's constant part
 * (weights, parameters, tables, constant rows) and where every tensor lives.
 *
 * Passes: place tensors (layout.ts), emit each op's instructions in graph order (matmul.ts for the
 * MatMul chunk, one streaming instruction per row block for the other chunks), derive the waits and
 * signals between chunks from what each instruction touches (deps.ts), then relocate the memory
 * addresses behind the instruction stream.
 */
import { SHIFT_MAX, SHIFT_MIN, accumulatorFits } from "../arith.js";
import { AcceleratorConfig, PARAM_PLANES, deriveHw } from "../hw/config.js";
import { ADD_PARAM_PLANES, LN_PARAM_PLANES, LUT_ENTRIES, MEMORY_FIELDS, vectorsFor } from "../hw/footprint.js";
import { Instruction, MATMUL_FLAGS } from "../hw/isa.js";
import type { QGraph, QLinear, QOp, QTensor } from "../quant/qgraph.js";
import { EXP_BITS, LOG2_FRAC_BITS } from "../sim/golden/attention.js";
import { MAX_LN_DIM } from "../sim/golden/layernorm.js";
import { P2vitError } from "../util/errors.js";
import { addDependencies } from "./deps.js";
import { Placement, physicalColumn, planTensors, resolvePlacements } from "./layout.js";
import { Emitted, MatmulBuffers, emitMatmul, matmulBuffers, tileEntries } from "./matmul.js";

export interface CompileOptions {
  /** Double buffering and concurrent chunks (default). Off: every instruction waits for the one before. */
  overlap?: boolean;
}

export interface GraphProgram {
  config: AcceleratorConfig;
  model: string;
  overlap: boolean;
  instructions: Emitted[];
  /** First memory word after the instructions: where the data area starts. */
  dataWord: number;
  /** Total memory words. */
  words: number;
  /** The data area's constant contents (weights, parameters, tables, constant rows), from dataWord on. */
  constants: Uint8Array;
  /** Every tensor's place in memory (absolute words). */
  tensors: Map<string, Placement>;
  /** The tensor the host writes for each run (a ViT's patch rows), and the one it reads back. */
  input: string;
  output: string;
  /** How an image becomes the input's patch rows (C×H×W, patch size); null for a graph that takes its input tensor as is. */
  patchify: { channels: number; imgSize: number; patch: number } | null;
  /** Named constant blocks, for the listing. */
  blocks: { name: string; word: number; vectors: number }[];
  /** Multiply-accumulates of each layer (useful work, excluding padding). */
  macs: Map<string, number>;
}

/** Vector words of data, appended in order; word addresses relative to the data area. */
class DataArea {
  private readonly chunks: { word: number; bytes: Uint8Array }[] = [];
  readonly blocks: { name: string; word: number; vectors: number }[] = [];
  private next = 0;
  constructor(
    private readonly cols: number,
    private readonly wordsPerVector: number,
    private readonly busBytes: number,
  ) {}
  /** Reserves `vectors` vector words; `fill(v, out)` writes vector word v's `cols` bytes. */
  add(name: string, vectors: number, fill?: (v: number, out: Uint8Array) => void): number {
    const word = this.next;
    this.next += vectors * this.wordsPerVector;
    this.blocks.push({ name, word, vectors });
    if (fill) {
      const bytes = new Uint8Array(vectors * this.wordsPerVector * this.busBytes);
      for (let v = 0; v < vectors; v++) fill(v, bytes.subarray(v * this.wordsPerVector * this.busBytes, v * this.wordsPerVector * this.busBytes + this.cols));
      this.chunks.push({ word, bytes });
    }
    return word;
  }
  get words(): number {
    return this.next;
  }
  image(): Uint8Array {
    const out = new Uint8Array(this.next * this.busBytes);
    for (const c of this.chunks) out.set(c.bytes, c.word * this.busBytes);
    return out;
  }
}

/** Planes of `values` (one per channel), each ceil(n / cols) vector words: plane p, channel c at byte (c mod cols) of vector p·V + ⌊c / cols⌋. */
function planeFill(planes: ((c: number) => number)[], n: number, cols: number) {
  const per = vectorsFor(n, cols);
  return (v: number, out: Uint8Array) => {
    const plane = planes[Math.floor(v / per)];
    const c0 = (v % per) * cols;
    for (let i = 0; i < cols && c0 + i < n; i++) out[i] = plane(c0 + i) & 0xff;
  };
}

export function compileGraph(graph: QGraph, cfg: AcceleratorConfig, options: CompileOptions = {}): GraphProgram {
  const overlap = options.overlap ?? true;
  const hw = deriveHw(cfg);
  const { rows: R, cols: C } = cfg.array;
  const info = new Map(graph.tensors.map((t) => [t.name, t]));
  const data = new DataArea(C, hw.wordsPerVector, hw.busBytes);
  const plan = planTensors(graph, cfg);

  // Constant rows that live inside a tensor (the class token row) are filled when the tensor is placed.
  const rootWords = new Map<string, number>();
  const patchOp = graph.ops.find((o): o is Extract<QOp, { kind: "patchify" }> => o.kind === "patchify");
  const prefill = new Map<string, { row: number; data: Int8Array }>();
  for (const op of graph.ops) if (op.kind === "prepend_row") prefill.set(op.output, { row: 0, data: constData(info, op.inputs[0], op) });
  for (const root of plan.roots) {
    const fillRow = prefill.get(root.name);
    rootWords.set(root.name, data.add(`tensor ${root.name}`, root.rows * root.vectors, fillRow ? (v, out) => {
      if (Math.floor(v / root.vectors) !== fillRow.row) return;
      const c0 = (v % root.vectors) * C;
      for (let i = 0; i < C && c0 + i < fillRow.data.length; i++) out[i] = fillRow.data[c0 + i] & 0xff;
    } : undefined));
  }
  const tensors = resolvePlacements(plan, rootWords, graph.tensors, cfg);
  const at = (name: string) => {
    const p = tensors.get(name);
    if (!p) throw new Error(`tensor ${name} has no placement`);
    return p;
  };
  const constants = new Map<string, number>();
  const constRows = (name: string, op: QOp): Placement => {
    const t = info.get(name)!;
    const d = constData(info, name, op);
    const vectors = vectorsFor(t.cols, C);
    let word = constants.get(name);
    if (word === undefined) {
      word = data.add(`constant ${name}`, t.rows * vectors, (v, out) => {
        const r = Math.floor(v / vectors);
        const c0 = (v % vectors) * C;
        for (let i = 0; i < C && c0 + i < t.cols; i++) out[i] = d[r * t.cols + c0 + i] & 0xff;
      });
      constants.set(name, word);
    }
    return { word, rows: t.rows, rowStride: vectors * hw.wordsPerVector, vectors, width: t.cols, wide: false };
  };

  const out: Emitted[] = [];
  const buffers = matmulBuffers(cfg, overlap);
  const macs = new Map<string, number>();
  const ctx: EmitContext = { cfg, data, at, constRows, out, buffers, macs, info };
  for (const op of graph.ops) emitOp(ctx, op);

  const withDeps = addDependencies(out, cfg, { overlap });
  withDeps.push({ insn: { op: "HALT" }, comment: "end of program: wait for every chunk", layer: "" });
  const dataWord = withDeps.length * hw.wordsPerInstruction;
  for (const e of withDeps) relocate(e.insn, dataWord);
  const placed = new Map([...tensors].map(([n, p]) => [n, { ...p, word: p.word + dataWord }]));
  return {
    config: cfg,
    model: graph.model.name,
    overlap,
    instructions: withDeps,
    dataWord,
    words: dataWord + data.words,
    constants: data.image(),
    tensors: placed,
    input: patchOp?.output ?? graph.input.name,
    output: graph.output,
    patchify: patchOp ? { channels: patchOp.channels, imgSize: patchOp.imgSize, patch: patchOp.patch } : null,
    blocks: data.blocks.map((b) => ({ ...b, word: b.word + dataWord })),
    macs,
  };
}

function relocate(insn: Instruction, base: number): void {
  for (const f of MEMORY_FIELDS[insn.op] ?? []) (insn as unknown as Record<string, number>)[f] += base;
}

function constData(info: Map<string, QTensor>, name: string, op: QOp): Int8Array {
  const d = info.get(name)?.data;
  if (!d) throw new P2vitError(`op ${op.name}: ${name} must be a constant tensor`);
  return d;
}

interface EmitContext {
  cfg: AcceleratorConfig;
  data: DataArea;
  at: (name: string) => Placement;
  constRows: (name: string, op: QOp) => Placement;
  out: Emitted[];
  buffers: MatmulBuffers;
  macs: Map<string, number>;
  info: Map<string, QTensor>;
}

/** Row blocks of the streaming chunks: one block per array row tile, so a block can follow its MATMULs at once. */
function rowBlocks(rows: number, per: number): [number, number][] {
  return Array.from({ length: Math.ceil(rows / per) }, (_, i) => [i * per, Math.min(per, rows - i * per)]);
}

function emitOp(ctx: EmitContext, op: QOp): void {
  const { cfg, out } = ctx;
  const R = cfg.array.rows;
  const push = (insn: Instruction, comment: string) => out.push({ insn, comment: `${op.name}: ${comment}`, layer: op.name });
  const stream = (src: Placement, dst: Placement, r0: number, rows: number, cols: number) => ({
    rows, cols, src: src.word + r0 * src.rowStride, dst: dst.word + r0 * dst.rowStride, sstride: src.rowStride, dstride: dst.rowStride,
  });
  const needPlain = (p: Placement, name: string) => {
    if (p.columns || p.wide) throw new P2vitError(`op ${op.name}: ${name} has a padded or wide layout, which a ${op.kind} op cannot read`);
  };
  switch (op.kind) {
    case "patchify":
    case "slice_cols":
    case "concat_cols":
    case "prepend_row":
    case "select_row":
      return; // placements, no instructions
    case "linear":
      emitLinear(ctx, op.layer, op.rows, ctx.at(op.inputs[0]), ctx.at(op.output));
      return;
    case "attn_scores":
      emitScores(ctx, op);
      return;
    case "layernorm": {
      const src = ctx.at(op.inputs[0]);
      const dst = ctx.at(op.output);
      needPlain(src, op.inputs[0]);
      if (op.dim > MAX_LN_DIM) throw new P2vitError(`op ${op.name}: dim ${op.dim} exceeds the LayerNorm core's ${MAX_LN_DIM}`);
      coreFits(cfg, op.name, op.dim, "maxDim", "the LayerNorm chunk holds rows");
      const p = op.params;
      const paddr = ctx.data.add(`${op.name} parameters`, LN_PARAM_PLANES * vectorsFor(op.dim, cfg.array.cols), planeFill([
        (c) => p.k[c], (c) => p.multiplier[c], (c) => p.multiplier[c] >> 8,
        (c) => p.bias[c], (c) => p.bias[c] >> 8, (c) => p.bias[c] >> 16, (c) => p.bias[c] >> 24, (c) => p.shift[c],
      ], op.dim, cfg.array.cols));
      for (const [r0, n] of rowBlocks(op.rows, R)) push({ op: "LAYERNORM", ...stream(src, dst, r0, n, op.dim), paddr, eps: p.epsTerm }, `rows ${r0}..${r0 + n - 1}`);
      return;
    }
    case "softmax": {
      const p = op.params;
      if (p.expCutoff !== EXP_BITS * p.ln2) throw new P2vitError(`op ${op.name}: exp cutoff ${p.expCutoff} is not ${EXP_BITS}·L = ${EXP_BITS * p.ln2}, which the softmax core computes`);
      coreFits(cfg, op.name, op.cols, "maxTokens", "the softmax chunk holds rows");
      const src = ctx.at(op.inputs[0]);
      const dst = ctx.at(op.output);
      for (const [r0, n] of rowBlocks(op.rows, R)) {
        push({
          op: "SOFTMAX", ...stream(src, dst, r0, n, op.cols), mode: p.attnBits === 4 ? "LOG2" : "UNIFORM",
          inputShift: p.inputShift, ln2: p.ln2, polyB: p.polyB, polyShift: p.polyShift, polyC: p.polyC,
        }, `rows ${r0}..${r0 + n - 1}`);
      }
      return;
    }
    case "attn_values": {
      const p = op.params;
      if (p.attnBits !== 4) throw new P2vitError(`op ${op.name}: the attention·V chunk shift-accumulates 4-bit log2 probabilities; this graph has attnBits ${p.attnBits} (quantize with --attn-bits 4)`);
      coreFits(cfg, op.name, op.tokens, "maxTokens", "the attention·V engine holds V rows and code rows");
      const codes = ctx.at(op.inputs[0]);
      const v = ctx.at(op.inputs[1]);
      const dst = ctx.at(op.output);
      push({ op: "ATTNV", ...stream(codes, dst, 0, op.tokens, p.headDim), v: v.word, vstride: v.rowStride, shift: p.shift }, `${op.tokens} tokens, head dimension ${p.headDim} (2^(${LOG2_FRAC_BITS} − code) weights)`);
      ctx.macs.set(op.name, op.tokens * op.tokens * p.headDim);
      return;
    }
    case "lut": {
      const src = ctx.at(op.inputs[0]);
      const dst = ctx.at(op.output);
      needPlain(src, op.inputs[0]);
      const t = ctx.info.get(op.output)!;
      const table = ctx.data.add(`${op.name} table`, vectorsFor(LUT_ENTRIES, cfg.array.cols), (v, o) => {
        for (let i = 0; i < cfg.array.cols && v * cfg.array.cols + i < LUT_ENTRIES; i++) o[i] = op.params.table[v * cfg.array.cols + i] & 0xff;
      });
      for (const [r0, n] of rowBlocks(t.rows, R)) push({ op: "LUT", ...stream(src, dst, r0, n, t.cols), table }, `rows ${r0}..${r0 + n - 1}`);
      return;
    }
    case "add": {
      const a = ctx.at(op.inputs[0]);
      const bName = op.inputs[1];
      const b = ctx.info.get(bName)?.data ? ctx.constRows(bName, op) : ctx.at(bName);
      const dst = ctx.at(op.output);
      needPlain(a, op.inputs[0]);
      needPlain(b, bName);
      const broadcast = b.rows === 1 && op.rows > 1;
      coreFits(cfg, op.name, op.cols, "maxDim", "the elementwise chunk holds ADD rows with their per-column parameters");
      const p = op.params;
      const paddr = ctx.data.add(`${op.name} shifts`, ADD_PARAM_PLANES * vectorsFor(op.cols, cfg.array.cols), planeFill([
        (c) => p.alignA[c], (c) => p.alignB[c], (c) => p.outShift[c],
      ], op.cols, cfg.array.cols));
      for (const [r0, n] of rowBlocks(op.rows, R)) {
        push({ op: "ADD", ...stream(a, dst, r0, n, op.cols), b: broadcast ? b.word : b.word + r0 * b.rowStride, bstride: broadcast ? 0 : b.rowStride, paddr },
          `rows ${r0}..${r0 + n - 1}`);
      }
      return;
    }
  }
}

/** Refuses a row longer than the streaming chunk's core and row buffers were built for (config `cores`). */
function coreFits(cfg: AcceleratorConfig, name: string, length: number, field: "maxDim" | "maxTokens", what: string): void {
  if (length > cfg.cores[field]) {
    throw new P2vitError(`op ${name}: rows of ${length} do not fit accelerator "${cfg.name}": cores.${field} = ${cfg.cores[field]} (${what} of at most that many values)`);
  }
}

/** A Linear layer on the physical layouts of its input and output (zero weights on padding). */
function emitLinear(ctx: EmitContext, layer: QLinear, m: number, x: Placement, y: Placement): void {
  const { cfg } = ctx;
  const C = cfg.array.cols;
  const w4 = layer.weightBits === 4;
  if (w4 && (cfg.weightBits as number) !== 4) {
    throw new P2vitError(`layer ${layer.name} has 4-bit weights; accelerator "${cfg.name}" has weightBits ${cfg.weightBits} (set weightBits 4 for the int4-weight PE mode)`);
  }
  if (x.wide) throw new P2vitError(`layer ${layer.name}: its input is an int32 tensor`);
  if (w4) {
    const bad = layer.weight.findIndex((v) => v < -8 || v > 7);
    if (bad >= 0) {
      throw new P2vitError(`layer ${layer.name}: channel ${Math.floor(bad / layer.inFeatures)}, k ${bad % layer.inFeatures}: weight ${layer.weight[bad]} is outside the int4 range -8..7`);
    }
  }
  const wide = layer.output.bits === 32;
  const K = x.width;
  const N = wide ? layer.outFeatures : y.width;
  const tiles = Math.ceil(N / C);
  const maxBias = layer.bias.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  if (!accumulatorFits(layer.inFeatures, maxBias, cfg.accBits, cfg.actBits, layer.weightBits)) {
    throw new P2vitError(`layer ${layer.name} (K=${layer.inFeatures}) does not fit accelerator "${cfg.name}": accBits = ${cfg.accBits} can overflow (K·2^7·2^${layer.weightBits - 1} + max|bias| = ${layer.inFeatures * 128 * 2 ** (layer.weightBits - 1) + maxBias})`);
  }
  layer.shift.forEach((s, c) => {
    if (s < SHIFT_MIN || s > SHIFT_MAX) throw new P2vitError(`layer ${layer.name}: channel ${c} needs shift ${s}, outside ${SHIFT_MIN}..${SHIFT_MAX}`);
  });
  // physical output channel → logical channel (−1: padding)
  const logicalOf = new Int32Array(tiles * C).fill(-1);
  for (let n = 0; n < layer.outFeatures; n++) logicalOf[wide ? n : physicalColumn(y, n)] = n;
  const kOf = new Int32Array(K).fill(-1);
  for (let k = 0; k < layer.inFeatures; k++) kOf[physicalColumn(x, k)] = k;
  const job = {
    layer: layer.name, m, k: K, flags: (w4 ? MATMUL_FLAGS.W4 : 0) | (wide ? MATMUL_FLAGS.WIDE : 0),
    x: { word: x.word, rowStride: x.rowStride, vectors: vectorsFor(K, C) }, tiles,
    weights: { kind: "memory" as const, word: 0 }, params: { word: 0, perTile: true }, out: { word: y.word, rowStride: y.rowStride },
  };
  const entries = tileEntries(job, C);
  const weight = (n: number, k: number) => (n < 0 || k < 0 ? 0 : layer.weight[n * layer.inFeatures + k]);
  job.weights.word = ctx.data.add(`${layer.name} weights`, tiles * entries, (v, out) => {
    const t = Math.floor(v / entries);
    const e = v % entries;
    for (let c = 0; c < C; c++) {
      const n = logicalOf[t * C + c];
      out[c] = w4 ? packInt4Pair(weight(n, kOf[2 * e] ?? -1), 2 * e + 1 < K ? weight(n, kOf[2 * e + 1]) : 0) : weight(n, kOf[e]) & 0xff;
    }
  });
  job.params.word = ctx.data.add(`${layer.name} bias and shift`, tiles * PARAM_PLANES, (v, out) => {
    const t = Math.floor(v / PARAM_PLANES);
    const plane = v % PARAM_PLANES;
    for (let c = 0; c < C; c++) {
      const n = logicalOf[t * C + c];
      if (n < 0) continue;
      out[c] = plane < 4 ? (layer.bias[n] >>> (8 * plane)) & 0xff : layer.shift[n] & 0xff;
    }
  });
  emitMatmul(cfg, job, ctx.buffers, ctx.out);
  ctx.macs.set(layer.name, m * layer.inFeatures * layer.outFeatures);
}

/** Two int4 weights in one byte, as MATMUL's W4 mode reads them: k even in bits 3:0, k + 1 in bits 7:4. */
export function packInt4Pair(even: number, odd: number): number {
  return (even & 0xf) | ((odd & 0xf) << 4);
}

/** Q·Kᵀ of one head: Q rows stay in X, K's rows are transposed into W one column tile (C tokens) at a time. */
function emitScores(ctx: EmitContext, op: Extract<QOp, { kind: "attn_scores" }>): void {
  const { cfg } = ctx;
  const C = cfg.array.cols;
  const q = ctx.at(op.inputs[0]);
  const k = ctx.at(op.inputs[1]);
  const s = ctx.at(op.output);
  const p = op.params;
  if (p.shift < SHIFT_MIN || p.shift > SHIFT_MAX) throw new P2vitError(`op ${op.name}: shift ${p.shift} is outside ${SHIFT_MIN}..${SHIFT_MAX}`);
  const params = ctx.data.add(`${op.name} shift`, PARAM_PLANES, (v, out) => {
    if (v === PARAM_PLANES - 1) out.fill(p.shift & 0xff);
  });
  emitMatmul(cfg, {
    layer: op.name, m: op.tokens, k: p.headDim, flags: 0,
    x: { word: q.word, rowStride: q.rowStride, vectors: vectorsFor(p.headDim, C) },
    tiles: Math.ceil(op.tokens / C),
    weights: { kind: "transpose", word: k.word, rowStride: k.rowStride, rows: op.tokens, vectors: vectorsFor(p.headDim, C) },
    params: { word: params, perTile: false },
    out: { word: s.word, rowStride: s.rowStride },
    describeTile: (t) => `keys ${t * C}..${Math.min(op.tokens, (t + 1) * C) - 1}`,
  }, ctx.buffers, ctx.out);
  ctx.macs.set(op.name, op.tokens * op.tokens * p.headDim);
}
