/**
 * The ISA-level simulator: fetches and decodes the program from the memory image, and executes it
 * on the memory and the on-chip buffers exactly as docs/isa.md defines each instruction, the
 * nonlinear chunks through the golden kernels (their arithmetic is the spec).
 *
 * Instructions go to their chunk's queue in program order. The scheduler then runs, one instruction
 * at a time, the head of a chunk whose waits are met: the one earliest in program order, or, with a seed, a random
 * ready chunk each step. The random order explores interleavings the hardware may take, so a
 * missing dependency shows up as a wrong result or a wait that is never met.
 */
import { requantize, signedRange } from "../arith.js";
import { AcceleratorConfig, PARAM_PLANES, deriveHw } from "../hw/config.js";
import { ADD_PARAM_PLANES, LN_PARAM_PLANES, LUT_ENTRIES, vectorsFor, weightEntries } from "../hw/footprint.js";
import { CHUNKS, CHUNK_NAMES, Chunk, INSTRUCTION_BYTES, Instruction, InstructionOf, MATMUL_FLAGS, chunkOf, decodeInstruction } from "../hw/isa.js";
import { EXP_BITS, attentionValuesInt, logIntSoftmax, uniformIntSoftmax } from "./golden/attention.js";
import { addInt, lutInt } from "./golden/elementwise.js";
import { layerNormInt } from "./golden/layernorm.js";
import { P2vitError } from "../util/errors.js";
import { seededRandom } from "../util/random.js";

export interface IsaOptions {
  /** null: the ready instruction earliest in program order each step. A number: a random ready chunk each step, from this seed. */
  seed?: number | null;
  /** Stop with an error after this many instructions (a runaway program). */
  maxInstructions?: number;
}

export interface IsaResult {
  /** Instructions executed (HALT included). */
  executed: number;
  /** Program index of each executed instruction, in execution order. */
  order: number[];
}

class Machine {
  readonly hw;
  readonly R: number;
  readonly C: number;
  readonly x: Int8Array;
  readonly w: Int8Array;
  readonly p: Uint8Array;
  readonly o: Uint8Array;
  constructor(
    readonly cfg: AcceleratorConfig,
    readonly mem: Uint8Array,
  ) {
    this.hw = deriveHw(cfg);
    this.R = cfg.array.rows;
    this.C = cfg.array.cols;
    const b = cfg.buffers;
    this.x = new Int8Array(this.R * b.xDepth * this.C);
    this.w = new Int8Array(b.wDepth * this.C);
    this.p = new Uint8Array(PARAM_PLANES * b.paramDepth * this.C);
    this.o = new Uint8Array(this.R * b.oDepth * this.C);
  }

  /** Byte offset of vector word v from memory word `word` on (vectors are wordsPerVector memory words apart). */
  private vec(word: number, v: number): number {
    const off = (word + v * this.hw.wordsPerVector) * this.hw.busBytes;
    if (off + this.C > this.mem.length) throw new P2vitError(`memory access at word ${word + v * this.hw.wordsPerVector} is past the end of memory (${this.mem.length / this.hw.busBytes} words)`);
    return off;
  }

  /** `rows` rows of `n` bytes each (vector words from word + r·stride) as one row-major array. */
  readRows(word: number, rows: number, stride: number, n: number): Int8Array {
    const out = new Int8Array(rows * n);
    const vectors = vectorsFor(n, this.C);
    for (let r = 0; r < rows; r++) {
      for (let v = 0; v < vectors; v++) {
        const off = this.vec(word + r * stride, v);
        const len = Math.min(this.C, n - v * this.C);
        out.set(new Int8Array(this.mem.buffer, this.mem.byteOffset + off, len), r * n + v * this.C);
      }
    }
    return out;
  }

  /** Writes rows of `n` bytes, each padded with zeros to whole vector words, and those to whole memory words (as STORE). */
  writeRows(word: number, rows: number, stride: number, n: number, data: Int8Array | Uint8Array): void {
    const vectors = vectorsFor(n, this.C);
    for (let r = 0; r < rows; r++) {
      for (let v = 0; v < vectors; v++) {
        const off = this.vec(word + r * stride, v);
        // whole memory words, as STORE writes them: the bytes past C are padding, zero
        for (let i = 0; i < this.hw.wordsPerVector * this.hw.busBytes; i++) {
          const c = v * this.C + i;
          this.mem[off + i] = i < this.C && c < n ? data[r * n + c] & 0xff : 0;
        }
        this.mem.fill(0, off + this.C, off + this.hw.wordsPerVector * this.hw.busBytes);
      }
    }
  }

  /** Planes of a parameter block: plane `p`, channel c. */
  planes(word: number, count: number, n: number): Uint8Array[] {
    const per = vectorsFor(n, this.C);
    return Array.from({ length: count }, (_, p) => Uint8Array.from(this.readRows(word + p * per * this.hw.wordsPerVector, 1, 0, n)));
  }

  execute(insn: Instruction, at: string): void {
    switch (insn.op) {
      case "HALT":
      case "SYNC":
        return;
      case "LOAD":
        return this.load(insn, at);
      case "STORE":
        return this.store(insn, at);
      case "MATMUL":
        return this.matmul(insn, at);
      case "LAYERNORM":
        return this.layernorm(insn);
      case "SOFTMAX":
        return this.softmax(insn);
      case "ATTNV":
        return this.attnv(insn);
      case "LUT":
        return this.lut(insn);
      case "ADD":
        return this.add(insn);
    }
  }

  private bounds(ok: boolean, at: string, what: string): void {
    if (!ok) throw new P2vitError(`${at}: ${what}`);
  }

  private load(i: InstructionOf<"LOAD">, at: string): void {
    const { C } = this;
    const b = this.cfg.buffers;
    for (let j = 0; j < i.rows; j++) {
      for (let v = 0; v < i.count; v++) {
        const src = this.vec(i.maddr + j * i.mstride, v);
        const word = this.mem.subarray(src, src + C);
        if (i.target === "X") {
          this.bounds(j < this.R && i.addr + v < b.xDepth, at, `LOAD X row ${j} entry ${i.addr + v} is outside ${this.R} banks × ${b.xDepth}`);
          this.x.set(new Int8Array(word.buffer, word.byteOffset, C), (j * b.xDepth + i.addr + v) * C);
        } else if (i.target === "W") {
          const e = i.addr + j * i.count + v;
          this.bounds(e < b.wDepth, at, `LOAD W entry ${e} is outside wDepth ${b.wDepth}`);
          this.w.set(new Int8Array(word.buffer, word.byteOffset, C), e * C);
        } else if (i.target === "WT") {
          this.bounds(j < C && i.addr + (v + 1) * C <= b.wDepth, at, `LOAD WT row ${j}, entries ${i.addr + v * C}.. are outside ${C} columns × ${b.wDepth}`);
          for (let e = 0; e < C; e++) this.w[(i.addr + v * C + e) * C + j] = (word[e] << 24) >> 24;
        } else {
          const n = j * i.count + v;
          const tile = i.addr + Math.floor(n / PARAM_PLANES);
          this.bounds(tile < b.paramDepth, at, `LOAD P entry ${tile} is outside paramDepth ${b.paramDepth}`);
          this.p.set(word, ((n % PARAM_PLANES) * b.paramDepth + tile) * C);
        }
      }
    }
  }

  private store(i: InstructionOf<"STORE">, at: string): void {
    const { C } = this;
    const oDepth = this.cfg.buffers.oDepth;
    for (let j = 0; j < i.rows; j++) {
      for (let v = 0; v < i.count; v++) {
        this.bounds(j < this.R && i.addr + v < oDepth, at, `STORE bank ${j} entry ${i.addr + v} is outside ${this.R} banks × ${oDepth}`);
        const dst = this.vec(i.maddr + j * i.mstride, v);
        this.mem.set(this.o.subarray((j * oDepth + i.addr + v) * C, (j * oDepth + i.addr + v + 1) * C), dst);
        this.mem.fill(0, dst + C, dst + this.hw.wordsPerVector * this.hw.busBytes);
      }
    }
  }

  private matmul(i: InstructionOf<"MATMUL">, at: string): void {
    const { R, C } = this;
    const b = this.cfg.buffers;
    const w4 = (i.flags & MATMUL_FLAGS.W4) !== 0;
    const wide = (i.flags & MATMUL_FLAGS.WIDE) !== 0;
    this.bounds((i.flags & ~(MATMUL_FLAGS.W4 | MATMUL_FLAGS.WIDE)) === 0, at, `MATMUL with unknown flags ${i.flags}`);
    this.bounds(!w4 || (this.cfg.weightBits as number) === 4, at, `MATMUL in the int4-weight mode on an accelerator with weightBits ${this.cfg.weightBits}`);
    this.bounds(i.xaddr * C + i.k <= b.xDepth * C, at, `MATMUL reads X entries ${i.xaddr}..${i.xaddr + vectorsFor(i.k, C) - 1}, past xDepth ${b.xDepth}`);
    this.bounds(i.waddr + weightEntries(i.k, i.flags) <= b.wDepth, at, `MATMUL reads W entries past wDepth ${b.wDepth}`);
    this.bounds(i.paddr < b.paramDepth && i.oaddr + (wide ? 4 : 1) <= b.oDepth, at, `MATMUL parameter entry ${i.paddr} or output entry ${i.oaddr} is outside the buffers`);
    const { lo, hi } = signedRange(this.cfg.accBits);
    const K = i.k;
    // weights as C rows of K (transposed from W's one-entry-per-k layout), then plain dot products
    const wt = new Int32Array(C * K);
    const wbuf = this.w;
    for (let k = 0; k < K; k++) {
      const e = (i.waddr + (w4 ? k >> 1 : k)) * C;
      for (let c = 0; c < C; c++) {
        const byte = wbuf[e + c];
        wt[c * K + k] = !w4 ? byte : k & 1 ? byte >> 4 : (byte << 28) >> 28;
      }
    }
    const bias = new Int32Array(C);
    const shift = new Int32Array(C);
    for (let c = 0; c < C; c++) {
      const byte = (plane: number) => this.p[(plane * b.paramDepth + i.paddr) * C + c];
      bias[c] = byte(0) | (byte(1) << 8) | (byte(2) << 16) | (byte(3) << 24); // the four bytes are one int32
      shift[c] = (byte(4) << 24) >> 24;
    }
    const xr = new Int32Array(K);
    const xbuf = this.x;
    const obuf = this.o;
    for (let r = 0; r < R; r++) {
      const x0 = (r * b.xDepth + i.xaddr) * C;
      for (let k = 0; k < K; k++) xr[k] = xbuf[x0 + k];
      for (let c = 0; c < C; c++) {
        let acc = 0;
        const w0 = c * K;
        for (let k = 0; k < K; k++) acc += xr[k] * wt[w0 + k];
        if (acc < lo || acc > hi) this.bounds(false, at, `accumulator overflow in row ${r}, column ${c}: ${acc} does not fit accBits ${this.cfg.accBits}`);
        if (wide) {
          const v = requantize(acc + bias[c], shift[c], 32);
          for (let plane = 0; plane < 4; plane++) obuf[(r * b.oDepth + i.oaddr + plane) * C + c] = (v >>> (8 * plane)) & 0xff;
        } else {
          obuf[(r * b.oDepth + i.oaddr) * C + c] = requantize(acc + bias[c], shift[c], 8) & 0xff;
        }
      }
    }
  }

  private layernorm(i: InstructionOf<"LAYERNORM">): void {
    const [k, mLo, mHi, b0, b1, b2, b3, n] = this.planes(i.paddr, LN_PARAM_PLANES, i.cols);
    const params = {
      k,
      epsTerm: i.eps,
      multiplier: Int16Array.from(mLo, (lo, c) => (((mHi[c] << 8) | lo) << 16) >> 16),
      bias: Int32Array.from(b0, (v, c) => v | (b1[c] << 8) | (b2[c] << 16) | (b3[c] << 24)),
      shift: n,
    };
    const x = this.readRows(i.src, i.rows, i.sstride, i.cols);
    this.writeRows(i.dst, i.rows, i.dstride, i.cols, layerNormInt(x, i.rows, i.cols, params));
  }

  private softmax(i: InstructionOf<"SOFTMAX">): void {
    const params = {
      attnBits: i.mode === "LOG2" ? (4 as const) : (8 as const),
      scoreExponent: 0, scoreResidual: 1, // not read by the integer kernels
      inputShift: i.inputShift, ln2: i.ln2, polyB: i.polyB, polyC: i.polyC, polyShift: i.polyShift, expCutoff: EXP_BITS * i.ln2,
    };
    const s = this.readRows(i.src, i.rows, i.sstride, i.cols);
    const kernel = i.mode === "LOG2" ? logIntSoftmax : uniformIntSoftmax;
    this.writeRows(i.dst, i.rows, i.dstride, i.cols, kernel(s, i.rows, i.cols, params));
  }

  private attnv(i: InstructionOf<"ATTNV">): void {
    const codes = Uint8Array.from(this.readRows(i.src, i.rows, i.sstride, i.rows));
    const v = this.readRows(i.v, i.rows, i.vstride, i.cols);
    const out = attentionValuesInt(codes, v, i.rows, i.cols, { attnBits: 4, headDim: i.cols, vExponent: 0, outputExponent: 0, shift: i.shift });
    this.writeRows(i.dst, i.rows, i.dstride, i.cols, out);
  }

  private lut(i: InstructionOf<"LUT">): void {
    const table = this.readRows(i.table, 1, 0, LUT_ENTRIES);
    const x = this.readRows(i.src, i.rows, i.sstride, i.cols);
    this.writeRows(i.dst, i.rows, i.dstride, i.cols, lutInt(x, { table }));
  }

  private add(i: InstructionOf<"ADD">): void {
    const [alignA, alignB, outShift] = this.planes(i.paddr, ADD_PARAM_PLANES, i.cols).map((p) => Int32Array.from(p, (v) => (v << 24) >> 24));
    const a = this.readRows(i.src, i.rows, i.sstride, i.cols);
    const b = this.readRows(i.b, i.bstride === 0 ? 1 : i.rows, i.bstride, i.cols);
    this.writeRows(i.dst, i.rows, i.dstride, i.cols, addInt(a, b, i.rows, i.cols, { alignA, alignB, outShift }));
  }
}

/** Decodes the instruction stream from word 0 up to and including the first HALT. */
export function fetchProgram(cfg: AcceleratorConfig, memory: Uint8Array, limit = 1 << 22): Instruction[] {
  const hw = deriveHw(cfg);
  const slot = hw.wordsPerInstruction * hw.busBytes;
  const out: Instruction[] = [];
  for (let pc = 0; ; pc++) {
    if (pc >= limit || (pc + 1) * slot > memory.length) throw new P2vitError(`no HALT in the first ${pc} instructions`);
    const bytes = new Uint8Array(INSTRUCTION_BYTES);
    bytes.set(memory.subarray(pc * slot, pc * slot + Math.min(slot, INSTRUCTION_BYTES)));
    let insn: Instruction;
    try {
      insn = decodeInstruction(bytes);
    } catch (err) {
      throw new P2vitError(`instruction ${pc}: ${(err as Error).message}`);
    }
    out.push(insn);
    if (insn.op === "HALT") return out;
  }
}

/** Runs the program in `memory` (changed in place) to HALT. */
export function runIsa(cfg: AcceleratorConfig, memory: Uint8Array, options: IsaOptions = {}): IsaResult {
  const program = fetchProgram(cfg, memory);
  const machine = new Machine(cfg, memory);
  const queues = new Map<Chunk, number[]>(CHUNK_NAMES.map((c) => [c, []]));
  program.forEach((insn, pc) => {
    const c = chunkOf(insn);
    if (c) queues.get(c)!.push(pc);
  });
  // pending[p][c]: signals sent by chunk p to chunk c and not yet consumed
  const pending = CHUNK_NAMES.map(() => new Int32Array(CHUNK_NAMES.length + 1));
  const heads = new Map<Chunk, number>(CHUNK_NAMES.map((c) => [c, 0]));
  const ready = (c: Chunk): boolean => {
    const pc = queues.get(c)![heads.get(c)!];
    if (pc === undefined) return false;
    return (program[pc].dep?.wait ?? []).every((w) => pending[CHUNKS[w.chunk] - 1][CHUNKS[c]] >= w.count);
  };
  const random = options.seed === undefined || options.seed === null ? null : seededRandom(options.seed);
  const limit = options.maxInstructions ?? Infinity;
  const order: number[] = [];
  const total = program.length - 1;
  while (order.length < total) {
    if (order.length >= limit) throw new P2vitError(`stopped after ${limit} instructions`);
    const candidates = CHUNK_NAMES.filter(ready);
    if (candidates.length === 0) throw new P2vitError(`deadlock: ${describeStuck(program, queues, heads, pending)}`);
    const chunk = random
      ? candidates[Math.floor(random() * candidates.length)]
      : candidates.reduce((a, b) => (queues.get(a)![heads.get(a)!] < queues.get(b)![heads.get(b)!] ? a : b));
    const pc = queues.get(chunk)![heads.get(chunk)!];
    const insn = program[pc];
    for (const w of insn.dep?.wait ?? []) pending[CHUNKS[w.chunk] - 1][CHUNKS[chunk]] -= w.count;
    machine.execute(insn, `instruction ${pc} (${insn.op})`);
    for (const s of insn.dep?.signal ?? []) pending[CHUNKS[chunk] - 1][CHUNKS[s]]++;
    heads.set(chunk, heads.get(chunk)! + 1);
    order.push(pc);
  }
  order.push(program.length - 1);
  return { executed: order.length, order };
}

function describeStuck(program: Instruction[], queues: Map<Chunk, number[]>, heads: Map<Chunk, number>, pending: Int32Array[]): string {
  const lines: string[] = [];
  for (const c of CHUNK_NAMES) {
    const pc = queues.get(c)![heads.get(c)!];
    if (pc === undefined) continue;
    const waits = (program[pc].dep?.wait ?? []).map((w) => `${w.chunk}×${w.count} (has ${pending[CHUNKS[w.chunk] - 1][CHUNKS[c]]})`);
    lines.push(`${c} at instruction ${pc} (${program[pc].op}) waits for ${waits.join(", ")}`);
  }
  return lines.join("; ");
}
