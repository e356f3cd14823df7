/**
 * The whole RTL top (Verilator) running ATTNV programs, against the ISA simulator on the whole memory
 * image, byte for byte. The image is random bytes everywhere (so a stray write or a byte past `cols` not
 * written as zero shows) with codes rows (0 … 15, every row's Σ 2^−code within the accumulator's
 * limit of 2, rows all 15, rows with codes 0), int8 V with the extremes, random shifts, strides wider
 * than the rows. Configs: lanes = C; lanes > C with WPV 2 and carried groups; lanes > C with
 * groups that do not start on a vector word; lanes < C. And the chunk's busy time is attnvChunkCycles,
 * the cycle model's figure, exactly.
 */
import { describe, expect, it } from "vitest";
import { SHIFT_MAX, SHIFT_MIN } from "../../src/arith.js";
import { ATTNV_MODEL_LATENCY, ATTNV_READ_LATENCY_MAX, attnvChunkCycles } from "../../src/generator/attnv-chunk.js";
import { AcceleratorConfig, deriveHw, parseAcceleratorConfig } from "../../src/hw/config.js";
import { vectorsFor } from "../../src/hw/footprint.js";
import { LOG2_FRAC_BITS, LOG2_ZERO_CODE } from "../../src/sim/golden/attention.js";
import { DEFAULT_MEMORY, MemoryModel, runSimulator } from "../../src/sim/verilator/run.js";
import { TINY_CORES } from "../configs.js";
import { StimulusRng } from "../../src/sim/verilator/unit.js";
import { MemoryImage, firstDifference, runRtlAndIsa, topSimulator } from "./memory-image.js";

const small = { xDepth: 64, wDepth: 256, oDepth: 32, paramDepth: 16 };
// hand-written programs carry no dependency fields: the in-order top runs them in program order
const config = (name: string, cols: number, busBits: number, attnvLanes: number): AcceleratorConfig =>
  parseAcceleratorConfig({ name, array: { rows: 4, cols }, busBits, buffers: small, cores: { ...TINY_CORES, attnvLanes, maxTokens: 64 }, dispatch: "inorder" });

/** One ATTNV to place: tokens, head dimension, and how many spare memory words each row's stride has. */
interface Head {
  tokens: number;
  headDim: number;
  pad: number;
}

/** A codes row: small codes often, each raised until Σ 2^−code ≤ 2 (so |Σ| ≤ 2^22 for any V), or all 15. */
function codesRow(rng: StimulusRng, n: number): number[] {
  const kind = rng.int(0, 9);
  if (kind === 0) return new Array<number>(n).fill(LOG2_ZERO_CODE);
  let budget = 2;
  return Array.from({ length: n }, () => {
    let code = kind === 1 ? 0 : rng.int(0, 3) === 0 ? rng.int(0, 3) : rng.int(0, LOG2_ZERO_CODE);
    while (code < LOG2_ZERO_CODE && 2 ** -code > budget) code++;
    if (code < LOG2_ZERO_CODE) budget -= 2 ** -code;
    return code;
  });
}

/** A shift: the range's ends, 0, or near F = 14 where outputs are not all saturated. */
function pickShift(rng: StimulusRng): number {
  return rng.int(0, 3) === 0 ? rng.pick([SHIFT_MIN, 0, SHIFT_MAX]) : rng.int(LOG2_FRAC_BITS - 6, LOG2_FRAC_BITS + 6);
}

/** A program of one ATTNV per head, then HALT, and its data, in an image of random bytes. */
function makeImage(cfg: AcceleratorConfig, heads: Head[], seed: number): Uint8Array {
  const hw = deriveHw(cfg);
  const rowWords = (n: number) => vectorsFor(n, cfg.array.cols) * hw.wordsPerVector;
  const strides = heads.map((h) => ({ s: rowWords(h.tokens) + h.pad, v: rowWords(h.headDim) + h.pad, d: rowWords(h.headDim) + h.pad + 1 }));
  const dataWords = heads.reduce((n, h, i) => n + Math.max(1, h.tokens) * (strides[i].s + strides[i].v + strides[i].d), 0);
  const programSlots = heads.length + 1;
  const rng = new StimulusRng(seed);
  const image = new MemoryImage(cfg, { programSlots, words: programSlots * hw.wordsPerInstruction + dataWords + 4, rng });
  const placed = heads.map((h, i) => {
    const { s: sstride, v: vstride, d: dstride } = strides[i];
    return { h, sstride, vstride, dstride, src: image.alloc(h.tokens, sstride), v: image.alloc(h.tokens, vstride), dst: image.alloc(h.tokens, dstride) };
  });
  image.program(placed.map((p) => ({
    op: "ATTNV", rows: p.h.tokens, cols: p.h.headDim, src: p.src, dst: p.dst, sstride: p.sstride, dstride: p.dstride,
    v: p.v, vstride: p.vstride, shift: pickShift(rng),
  })));
  for (const p of placed) {
    const n = p.h.tokens;
    for (let t = 0; t < n; t++) image.putRow(p.src + t * p.sstride, codesRow(rng, n));
    // V bytes are the image's random bytes, with rows of extremes now and then
    for (let j = 0; j < n; j++) {
      const extreme = rng.int(0, 4);
      if (extreme < 2) image.putRow(p.v + j * p.vstride, new Array<number>(p.h.headDim).fill(extreme === 0 ? 0x80 : 0x7f));
    }
  }
  return image.bytes;
}

async function runBoth(cfg: AcceleratorConfig, heads: Head[], seed: number, memory: MemoryModel) {
  const image = makeImage(cfg, heads, seed);
  const { rtl, isa } = await runRtlAndIsa(cfg, image, memory, 5_000_000);
  const busBytes = deriveHw(cfg).busBytes;
  return { diff: firstDifference(rtl, isa, busBytes), changed: firstDifference(image, isa, busBytes) !== null };
}

const CASES: { cfg: AcceleratorConfig; heads: Head[]; memory: MemoryModel }[] = [
  // lanes = C, whole vector words per group; 40 columns: three groups
  { cfg: config("av16", 16, 128, 16), heads: [{ tokens: 1, headDim: 40, pad: 1 }, { tokens: 17, headDim: 16, pad: 2 }, { tokens: 50, headDim: 40, pad: 1 }],
    memory: { latency: 1, stallPercent: 0, seed: 1 } },
  // lanes 8 > C = 5, WPV 2: groups start 3 bytes into a vector word; 13 columns: two groups
  { cfg: config("av5", 5, 32, 8), heads: [{ tokens: 1, headDim: 13, pad: 0 }, { tokens: 17, headDim: 13, pad: 1 }, { tokens: 50, headDim: 21, pad: 3 }],
    memory: { latency: 3, stallPercent: 20, seed: 7 } },
  // lanes 64 > C = 12, WPV 2: one group up to 64 columns, then groups 4 bytes into a vector word
  { cfg: config("av12", 12, 64, 64), heads: [{ tokens: 1, headDim: 12, pad: 1 }, { tokens: 17, headDim: 150, pad: 0 }, { tokens: 50, headDim: 64, pad: 2 }],
    memory: { latency: 2, stallPercent: 0, seed: 1 } },
  // lanes 3 < C = 8: several groups in one vector word
  { cfg: config("av8", 8, 32, 3), heads: [{ tokens: 1, headDim: 3, pad: 0 }, { tokens: 17, headDim: 20, pad: 1 }, { tokens: 50, headDim: 9, pad: 2 }],
    memory: { latency: 1, stallPercent: 0, seed: 1 } },
];

describe("p2vit_top runs ATTNV (Verilator) as the ISA simulator does", () => {
  it.each(CASES.map((c) => [c.cfg.name, c] as const))("%s: whole memory byte for byte", async (_name, { cfg, heads, memory }) => {
    const r = await runBoth(cfg, heads, 11, memory);
    expect(r.changed).toBe(true);
    expect(r.diff).toBeNull();
    // the seeded stalling memory as well
    const stalled = await runBoth(cfg, heads, 12, { latency: 5, stallPercent: 20, seed: 3 });
    expect(stalled.diff).toBeNull();
  });
});

describe("the ATTNV chunk's busy time (Verilator)", () => {
  it("is modelled at the harness's default memory latency", () => {
    expect(ATTNV_MODEL_LATENCY).toBe(DEFAULT_MEMORY.latency);
  });

  // a program with one ATTNV, less the same program with an ATTNV of 0 rows (fetch, decode and HALT alike)
  it.each(CASES.map((c) => [c.cfg.name, c] as const))("%s: is attnvChunkCycles at memory latencies 1 … max", async (_name, { cfg, heads }) => {
    const binary = await topSimulator(cfg);
    for (let latency = 1; latency <= ATTNV_READ_LATENCY_MAX; latency++) {
      const memory = { latency, stallPercent: 0, seed: 1 };
      for (const h of heads.slice(1)) {
        const cycles = async (tokens: number) => (await runSimulator(binary, makeImage(cfg, [{ ...h, tokens }], 5), memory)).cycles;
        const busy = (await cycles(h.tokens)) - (await cycles(0));
        expect(busy, `${h.tokens} tokens, head dimension ${h.headDim}, latency ${latency}`).toBe(attnvChunkCycles(h.tokens, h.headDim, cfg, latency));
      }
    }
  });
});
