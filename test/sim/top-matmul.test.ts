/**
 * The RTL top against the ISA simulator on hand-written programs for what the graph compiler's
 * Linear programs do not use: LOAD WT (Kᵀ into W for Q·Kᵀ) and MATMUL WIDE (int32 logits), with
 * random data. Both run on the same memory image; every byte of memory must match at HALT.
 */
import { describe, expect, it } from "vitest";
import { AcceleratorConfig, deriveHw, parseAcceleratorConfig } from "../../src/hw/config.js";
import { Instruction, MATMUL_FLAGS } from "../../src/hw/isa.js";
import { seededRandom } from "../../src/util/random.js";
import { TINY_CORES } from "../configs.js";
import { MemoryImage, firstDifference, runRtlAndIsa } from "./memory-image.js";

const BUFFERS = { xDepth: 16, wDepth: 64, oDepth: 8, paramDepth: 4 };
const PROGRAM_SLOTS = 8;
// hand-written programs carry no dependency fields: the in-order top runs them in program order
const CONFIGS: AcceleratorConfig[] = [
  parseAcceleratorConfig({ name: "wt-odd", array: { rows: 3, cols: 5 }, busBits: 32, buffers: BUFFERS, cores: TINY_CORES, dispatch: "inorder" }),
  parseAcceleratorConfig({ name: "wt-16", array: { rows: 4, cols: 16 }, busBits: 128, buffers: BUFFERS, cores: TINY_CORES, dispatch: "inorder" }),
];

/** Q·Kᵀ with Kᵀ loaded by LOAD WT, requantized to int8 and, again, to int32 with WIDE. */
function qkProgram(cfg: AcceleratorConfig, d: number, seed: number): Uint8Array {
  const { rows: R, cols: C } = cfg.array;
  const rng = seededRandom(seed);
  const int8 = () => Math.floor(rng() * 256) - 128;
  const vectors = Math.ceil(d / C);
  const image = new MemoryImage(cfg, { programSlots: PROGRAM_SLOTS, words: 1024 });
  const vectorWords = (n: number) => n * image.hw.wordsPerVector;
  const k = { word: image.alloc(C, vectorWords(vectors)), stride: vectorWords(vectors) }; // C tokens of K
  const q = { word: image.alloc(R, vectorWords(vectors)), stride: vectorWords(vectors) };
  const p = { word: image.alloc(1, vectorWords(5)) }; // bias bytes 0-3, shift
  const out = { word: image.alloc(R, vectorWords(5)), stride: vectorWords(5) }; // int8 scores, then the four planes of the int32 ones
  image.program([
    { op: "LOAD", target: "WT", rows: C, count: vectors, addr: 0, maddr: k.word, mstride: k.stride },
    { op: "LOAD", target: "X", rows: R, count: vectors, addr: 0, maddr: q.word, mstride: q.stride },
    { op: "LOAD", target: "P", rows: 1, count: 5, addr: 0, maddr: p.word, mstride: 0 },
    { op: "MATMUL", k: d, xaddr: 0, waddr: 0, paddr: 0, oaddr: 0, flags: 0 },
    { op: "MATMUL", k: d, xaddr: 0, waddr: 0, paddr: 0, oaddr: 1, flags: MATMUL_FLAGS.WIDE },
    { op: "STORE", rows: R, count: 5, addr: 0, maddr: out.word, mstride: out.stride },
  ]);
  for (let j = 0; j < C; j++) image.putRow(k.word + j * k.stride, Array.from({ length: d }, () => (rng() < 0.1 ? -128 : int8())));
  for (let r = 0; r < R; r++) image.putRow(q.word + r * q.stride, Array.from({ length: d }, () => (rng() < 0.1 ? 127 : int8())));
  // biases across the int32 range and shifts from −8 (left: the int32 result saturates) to 31
  const bias = Array.from({ length: C }, (_, c) => (c === 0 ? 2 ** 31 - 1 : c === 1 ? -(2 ** 31) : Math.floor(rng() * 2 ** 32) - 2 ** 31));
  const shift = Array.from({ length: C }, (_, c) => (c % 3 === 0 ? -8 : Math.floor(rng() * 40) - 8));
  image.putRow(p.word, [0, 8, 16, 24].flatMap((sh) => bias.map((b) => b >> sh)).concat(shift));
  return image.bytes;
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
      const { rtl, isa } = await runRtlAndIsa(cfg, image, memory);
      expect(firstDifference(rtl, isa, deriveHw(cfg).busBytes), `d=${d}`).toBeNull();
      // the scores are not all zero: the test would not see a W that stayed empty
      expect(isa.some((b, i) => b !== image[i])).toBe(true);
    }
  });

  it("tells K rows apart: swapping two tokens changes the scores", async () => {
    const cfg = CONFIGS[0];
    const image = qkProgram(cfg, 13, 4);
    const hw = deriveHw(cfg);
    const { rtl, isa } = await runRtlAndIsa(cfg, image);
    expect(firstDifference(rtl, isa, hw.busBytes)).toBeNull();
    // the same program with K's rows swapped in memory for the RTL only: the scores must differ
    const swapped = image.slice();
    const kWord = PROGRAM_SLOTS * hw.wordsPerInstruction;
    const rowBytes = Math.ceil(13 / cfg.array.cols) * hw.wordsPerVector * hw.busBytes;
    const at = kWord * hw.busBytes;
    swapped.set(image.subarray(at + rowBytes, at + 2 * rowBytes), at);
    swapped.set(image.subarray(at, at + rowBytes), at + rowBytes);
    const other = await runRtlAndIsa(cfg, swapped);
    expect(firstDifference(other.rtl, other.isa, hw.busBytes)).toBeNull();
    expect(firstDifference(other.rtl, rtl, hw.busBytes)).not.toBeNull();
  });
});
