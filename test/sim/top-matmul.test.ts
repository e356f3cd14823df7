/**
 * The RTL top against the ISA simulator on hand-written programs for what the graph compiler's
 * Linear programs do not use: LOAD WT (Kᵀ into W for Q·Kᵀ) and MATMUL WIDE (int32 logits), with
 * random data. Both run on the same memory image; every byte of memory must match at HALT.
 */
import { describe, expect, it } from "vitest";
import { renderRtl } from "../../src/generator/rtl.js";
import { AcceleratorConfig, deriveHw, parseAcceleratorConfig } from "../../src/hw/config.js";
import { Instruction, MATMUL_FLAGS, encodeInstruction } from "../../src/hw/isa.js";
import { runIsa } from "../../src/sim/isa-sim.js";
import { buildSimulator } from "../../src/sim/verilator/build.js";
import { MemoryModel, runSimulator } from "../../src/sim/verilator/run.js";
import { seededRandom } from "../../src/util/random.js";
import { TINY_CORES } from "../configs.js";

const BUFFERS = { xDepth: 16, wDepth: 64, oDepth: 8, paramDepth: 4 };
const CONFIGS: AcceleratorConfig[] = [
  parseAcceleratorConfig({ name: "wt-odd", array: { rows: 3, cols: 5 }, busBits: 32, buffers: BUFFERS, cores: TINY_CORES }),
  parseAcceleratorConfig({ name: "wt-16", array: { rows: 4, cols: 16 }, busBits: 128, buffers: BUFFERS, cores: TINY_CORES }),
];

/** A memory image: the program from word 0, then data areas placed by `alloc`. */
class Image {
  readonly hw;
  bytes = new Uint8Array(0);
  private next: number;
  constructor(
    readonly cfg: AcceleratorConfig,
    programLength: number,
  ) {
    this.hw = deriveHw(cfg);
    this.next = programLength * this.hw.wordsPerInstruction;
  }
  /** Reserves `rows` rows of `vectors` vector words; returns the first memory word and the row stride. */
  alloc(rows: number, vectors: number): { word: number; stride: number } {
    const stride = vectors * this.hw.wordsPerVector;
    const word = this.next;
    this.next += rows * stride;
    return { word, stride };
  }
  finish(program: Instruction[], fill: (image: Image) => void): Uint8Array {
    this.bytes = new Uint8Array(this.next * this.hw.busBytes);
    program.forEach((insn, i) => this.bytes.set(encodeInstruction(insn), i * this.hw.wordsPerInstruction * this.hw.busBytes));
    fill(this);
    return this.bytes;
  }
  /** Writes bytes into vector word v of the row at `word`. */
  setVector(word: number, v: number, values: number[]): void {
    const at = (word + v * this.hw.wordsPerVector) * this.hw.busBytes;
    values.forEach((b, i) => (this.bytes[at + i] = b & 0xff));
  }
}

async function runBoth(cfg: AcceleratorConfig, image: Uint8Array, memory?: MemoryModel): Promise<{ rtl: Uint8Array; isa: Uint8Array; cycles: number }> {
  const { files, manifest } = renderRtl(cfg);
  const binary = await buildSimulator(files, manifest);
  const { memory: rtl, cycles } = await runSimulator(binary, image, memory);
  const isa = image.slice();
  runIsa(cfg, isa);
  return { rtl, isa, cycles };
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Q·Kᵀ with Kᵀ loaded by LOAD WT, requantized to int8 and, again, to int32 with WIDE. */
function qkProgram(cfg: AcceleratorConfig, d: number, seed: number): Uint8Array {
  const { rows: R, cols: C } = cfg.array;
  const rng = seededRandom(seed);
  const int8 = () => Math.floor(rng() * 256) - 128;
  const vectors = Math.ceil(d / C);
  const programLength = 8;
  const image = new Image(cfg, programLength);
  const k = image.alloc(C, vectors); // C tokens of K
  const q = image.alloc(R, vectors);
  const p = image.alloc(1, 5); // bias bytes 0-3, shift
  const out = image.alloc(R, 5); // int8 scores, then the four planes of the int32 ones
  const program: Instruction[] = [
    { op: "LOAD", target: "WT", rows: C, count: vectors, addr: 0, maddr: k.word, mstride: k.stride },
    { op: "LOAD", target: "X", rows: R, count: vectors, addr: 0, maddr: q.word, mstride: q.stride },
    { op: "LOAD", target: "P", rows: 1, count: 5, addr: 0, maddr: p.word, mstride: 0 },
    { op: "MATMUL", k: d, xaddr: 0, waddr: 0, paddr: 0, oaddr: 0, flags: 0 },
    { op: "MATMUL", k: d, xaddr: 0, waddr: 0, paddr: 0, oaddr: 1, flags: MATMUL_FLAGS.WIDE },
    { op: "STORE", rows: R, count: 5, addr: 0, maddr: out.word, mstride: out.stride },
    { op: "HALT" },
  ];
  expect(program.length).toBeLessThanOrEqual(programLength);
  return image.finish(program, (img) => {
    for (let j = 0; j < C; j++) for (let v = 0; v < vectors; v++) img.setVector(k.word + j * k.stride, v, Array.from({ length: Math.min(C, d - v * C) }, () => (rng() < 0.1 ? -128 : int8())));
    for (let r = 0; r < R; r++) for (let v = 0; v < vectors; v++) img.setVector(q.word + r * q.stride, v, Array.from({ length: Math.min(C, d - v * C) }, () => (rng() < 0.1 ? 127 : int8())));
    // biases across the int32 range and shifts from −8 (left: the int32 result saturates) to 31
    const bias = Array.from({ length: C }, (_, c) => (c === 0 ? 2 ** 31 - 1 : c === 1 ? -(2 ** 31) : Math.floor(rng() * 2 ** 32) - 2 ** 31));
    for (let plane = 0; plane < 4; plane++) img.setVector(p.word, plane, bias.map((b) => (b >> (8 * plane)) & 0xff));
    img.setVector(p.word, 4, Array.from({ length: C }, (_, c) => (c % 3 === 0 ? -8 : Math.floor(rng() * 40) - 8)));
  });
}

describe("RTL top: LOAD WT and MATMUL WIDE (Verilator) against the ISA simulator", () => {
  it.each(CONFIGS.map((c) => [c.name, c] as const))("matches on every byte of memory (%s)", async (_name, cfg) => {
    for (const [d, seed] of [
      [13, 1],
      [cfg.array.cols, 2],
      [1, 3],
    ]) {
      const image = qkProgram(cfg, d, seed);
      const memory = seed === 1 ? { latency: 4, stallPercent: 25, seed } : undefined;
      const { rtl, isa } = await runBoth(cfg, image, memory);
      expect(firstDifference(rtl, isa), `d=${d}: first differing byte`).toBe(-1);
      // the scores are not all zero: the test would not see a W that stayed empty
      expect(isa.some((b, i) => b !== image[i])).toBe(true);
    }
  });

  it("tells K rows apart: swapping two tokens changes the scores", async () => {
    const cfg = CONFIGS[0];
    const image = qkProgram(cfg, 13, 4);
    const { rtl, isa } = await runBoth(cfg, image);
    expect(firstDifference(rtl, isa)).toBe(-1);
    // the same program with K's rows swapped in memory for the RTL only: the scores must differ
    const hw = deriveHw(cfg);
    const swapped = image.slice();
    const kWord = 8 * hw.wordsPerInstruction;
    const rowBytes = Math.ceil(13 / cfg.array.cols) * hw.wordsPerVector * hw.busBytes;
    const at = kWord * hw.busBytes;
    swapped.set(image.subarray(at + rowBytes, at + 2 * rowBytes), at);
    swapped.set(image.subarray(at, at + rowBytes), at + rowBytes);
    const other = await runBoth(cfg, swapped);
    expect(firstDifference(other.rtl, other.isa)).toBe(-1);
    expect(firstDifference(other.rtl, rtl)).not.toBe(-1);
  });
});
