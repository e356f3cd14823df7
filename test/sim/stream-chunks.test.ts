/**
 * The streaming chunks in the whole top (Verilator) against the ISA simulator, byte for byte on the whole
 * memory image: a program of LAYERNORM, SOFTMAX, LUT or ADD instructions and HALT, on random int8 rows
 * (with -128/127) and random legal parameters, random bytes everywhere else (garbage past `cols` in the
 * source rows, and around the destination rows, must not matter or change). Three shapes: C = 16 on a
 * 128-bit bus, C = 5 on a 32-bit bus (two memory words per vector word, 16 lanes), C = 12 on a 64-bit bus
 * with 8 lanes; rows that are and are not multiples of the lanes, strides other than the row width.
 * Rows overlap (read, in the core and written at once): enough rows to wrap the output ring and keep
 * several in the core, on a memory that refuses requests; the rows cost the core's row spacing or the
 * port's words each, not a row's whole latency; the ring is deep enough not to slow them.
 */
import { describe, expect, it } from "vitest";
import { REGRESS_CONFIGS } from "../../src/cli/regress.js";
import { ALIGN_MAX } from "../../src/generator/elementwise.js";
import { layerNormRowTiming } from "../../src/generator/layernorm-core.js";
import { softmaxRowSpacing } from "../../src/generator/softmax.js";
import { streamChunkCycles } from "../../src/generator/stream-chunks.js";
import { AcceleratorConfig, DEFAULT_CONFIG, parseAcceleratorConfig } from "../../src/hw/config.js";
import { LN_PARAM_PLANES, LUT_ENTRIES } from "../../src/hw/footprint.js";
import { Instruction } from "../../src/hw/isa.js";
import { quantizeSoftmax } from "../../src/quant/ops/attention.js";
import { runIsa } from "../../src/sim/isa-sim.js";
import { MAX_LN_EPS_TERM, MAX_LN_MULTIPLIER, MAX_LN_SHIFT, MAX_PTF_K } from "../../src/sim/golden/layernorm.js";
import { runSimulator } from "../../src/sim/verilator/run.js";
import { StimulusRng } from "../../src/sim/verilator/unit.js";
import { MemoryImage, firstDifference, runRtlAndIsa, topSimulator } from "./memory-image.js";

const SMALL = { xDepth: 64, wDepth: 256, oDepth: 32, paramDepth: 16 };
// hand-written programs carry no dependency fields: the in-order top runs them in program order
const CONFIGS = {
  c16: parseAcceleratorConfig({ name: "s16", array: { rows: 4, cols: 16 }, busBits: 128, buffers: SMALL, cores: { layernormLanes: 16, softmaxLanes: 16, attnvLanes: 1, eltwiseLanes: 16, maxTokens: 64, maxDim: 128 }, dispatch: "inorder" }),
  c5: parseAcceleratorConfig({ name: "s5", array: { rows: 2, cols: 5 }, busBits: 32, buffers: SMALL, cores: { layernormLanes: 16, softmaxLanes: 16, attnvLanes: 1, eltwiseLanes: 16, maxTokens: 40, maxDim: 64 }, dispatch: "inorder" }),
  c12: parseAcceleratorConfig({ name: "s12", array: { rows: 2, cols: 12 }, busBits: 64, buffers: SMALL, cores: { layernormLanes: 8, softmaxLanes: 8, attnvLanes: 1, eltwiseLanes: 8, maxTokens: 48, maxDim: 96 }, dispatch: "inorder" }),
};

/** A memory image of random bytes with the program in its first 16 slots; `rng` also draws the data. */
class Image extends MemoryImage {
  constructor(cfg: AcceleratorConfig, readonly rng: StimulusRng, words: number) {
    super(cfg, { programSlots: 16, words, rng, gap: 3 });
  }
  /** A block of planes of `cols` values each, every plane ceil(cols / C) vector words, as the compiler lays them out. */
  planes(planes: number[][]): number {
    const cols = planes[0].length;
    const per = this.rowWords(cols);
    const at = this.alloc(planes.length, per);
    this.put(at, per, planes);
    return at;
  }
}

function randomRows(rng: StimulusRng, rows: number, cols: number): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => rng.int8()));
}

/** Source and destination rows with strides of the row width plus 0..2 words. */
function stream(img: Image, rows: number, cols: number) {
  const sstride = img.rowWords(cols) + img.rng.int(0, 2);
  const dstride = img.rowWords(cols) + img.rng.int(0, 2);
  const src = img.alloc(rows, sstride);
  img.put(src, sstride, randomRows(img.rng, rows, cols));
  const dst = img.alloc(rows, dstride);
  return { rows, cols, src, dst, sstride, dstride };
}

function lut(img: Image, rows: number, cols: number): Instruction {
  const s = stream(img, rows, cols);
  const table = img.planes([Array.from({ length: LUT_ENTRIES }, () => img.rng.int(-128, 127))]);
  return { op: "LUT", ...s, table };
}

function add(img: Image, rows: number, cols: number, broadcast: boolean): Instruction {
  const { rng } = img;
  const s = stream(img, rows, cols);
  const bstride = broadcast ? 0 : img.rowWords(cols) + rng.int(0, 1);
  const b = img.alloc(broadcast ? 1 : rows, img.rowWords(cols) + 1);
  img.put(b, bstride, randomRows(rng, broadcast ? 1 : rows, cols));
  const alignA = Array.from({ length: cols }, () => rng.pick([0, ALIGN_MAX, rng.int(0, ALIGN_MAX)]));
  const alignB = Array.from({ length: cols }, () => rng.pick([0, ALIGN_MAX, rng.int(0, ALIGN_MAX)]));
  // mostly near the aligned sum's scale, so outputs are not all saturated; sometimes anything in int8
  const outShift = alignA.map((a, c) => (rng.int(0, 3) === 0 ? rng.int(-128, 127) : Math.max(a, alignB[c]) + rng.int(-2, 2)));
  return { op: "ADD", ...s, b, bstride, paddr: img.planes([alignA, alignB, outShift]) };
}

function softmax(img: Image, rows: number, cols: number, mode: "LOG2" | "UNIFORM"): Instruction {
  const { rng } = img;
  const s = stream(img, rows, cols);
  const p = quantizeSoftmax({ name: "t", attnBits: mode === "LOG2" ? 4 : 8, scoreExponent: rng.pick([-47, -20, -16, -12, -8, 15, rng.int(-24, -4)]), scoreResidual: rng.pick([1, 0.7071067811865475, 1.99, 0.5 + rng.int(0, 1499) / 1000]) });
  return { op: "SOFTMAX", ...s, mode, inputShift: p.inputShift, ln2: p.ln2, polyB: p.polyB, polyShift: p.polyShift, polyC: p.polyC };
}

function layernorm(img: Image, rows: number, cols: number): Instruction {
  const { rng } = img;
  const s = stream(img, rows, cols);
  const k = Array.from({ length: cols }, () => rng.int(0, MAX_PTF_K));
  const m = Array.from({ length: cols }, () => rng.pick([-MAX_LN_MULTIPLIER, MAX_LN_MULTIPLIER, rng.int(-MAX_LN_MULTIPLIER, MAX_LN_MULTIPLIER)]));
  const n = Array.from({ length: cols }, () => rng.pick([0, MAX_LN_SHIFT, rng.int(8, MAX_LN_SHIFT)]));
  // a bias within 2^6 output steps, so most outputs land inside int8; the int32 extremes sometimes
  const bias = n.map((sh) => (rng.int(0, 5) === 0 ? rng.pick([-(2 ** 31), 2 ** 31 - 1]) : rng.int(-(2 ** (sh + 6)), 2 ** (sh + 6))));
  const planes = [k, m, m.map((v) => v >> 8), ...[0, 8, 16, 24].map((sh) => bias.map((v) => v >> sh)), n];
  expect(planes.length).toBe(LN_PARAM_PLANES);
  const eps = rng.pick([0, 1, MAX_LN_EPS_TERM, Math.floor(2 ** rng.int(0, 40))]);
  return { op: "LAYERNORM", ...s, paddr: img.planes(planes), eps };
}

type Case = [string, keyof typeof CONFIGS, (img: Image) => Instruction[]];
const CASES: Case[] = [
  ["LUT 3×37 and a row of 300 (two segments)", "c16", (img) => [lut(img, 3, 37), lut(img, 1, 300)]],
  ["ADD 4×40 and 3×16 with b broadcast (bstride 0)", "c16", (img) => [add(img, 4, 40, false), add(img, 3, 16, true)]],
  ["SOFTMAX 3×64 log2 and 4×17 uint8", "c16", (img) => [softmax(img, 3, 64, "LOG2"), softmax(img, 4, 17, "UNIFORM")]],
  ["LAYERNORM 3×128 and 2×20", "c16", (img) => [layernorm(img, 3, 128), layernorm(img, 2, 20)]],
  ["LUT, ADD (bstride 0 and not), SOFTMAX both modes, LAYERNORM", "c5", (img) => [
    lut(img, 2, 23), add(img, 3, 21, true), add(img, 2, 16, false), softmax(img, 3, 40, "LOG2"), softmax(img, 2, 7, "UNIFORM"), layernorm(img, 3, 64), layernorm(img, 2, 3),
  ]],
  ["LUT, ADD, SOFTMAX both modes, LAYERNORM", "c12", (img) => [
    lut(img, 2, 30), add(img, 2, 24, false), add(img, 3, 13, true), softmax(img, 2, 48, "UNIFORM"), softmax(img, 3, 9, "LOG2"), layernorm(img, 3, 96), layernorm(img, 2, 12),
  ]],
];

describe("streaming chunks in the top (Verilator) against the ISA simulator", () => {
  it.each(CASES.map(([what, c, make], i) => [what, c, make, i] as const))("%s (%s)", async (_what, c, make, i) => {
    const cfg = CONFIGS[c];
    const img = new Image(cfg, new StimulusRng(4100 + i), 3000);
    img.program(make(img));
    const { rtl, isa } = await runRtlAndIsa(cfg, img.bytes);
    expect(firstDifference(rtl, isa, img.hw.busBytes)).toBeNull();
  });

  it("is exact with read latency 1-5 and refused requests (C = 5, two memory words per vector word)", async () => {
    const cfg = CONFIGS.c5;
    const img = new Image(cfg, new StimulusRng(4200), 3000);
    img.program([layernorm(img, 2, 30), softmax(img, 2, 33, "UNIFORM"), add(img, 2, 11, false), lut(img, 2, 9)]);
    for (const [latency, seed] of [[1, 3], [5, 4]]) {
      const { rtl, isa } = await runRtlAndIsa(cfg, img.bytes, { latency, stallPercent: 20, seed });
      expect(firstDifference(rtl, isa, img.hw.busBytes), `latency ${latency}`).toBeNull();
    }
  });

  it.each(["c5", "c12"] as const)("is exact with many rows in flight, the ring wrapping, on a refusing memory (%s)", async (c) => {
    const cfg = CONFIGS[c];
    const img = new Image(cfg, new StimulusRng(4500 + c.length), 6000);
    const { maxTokens, maxDim } = cfg.cores;
    img.program([
      softmax(img, 9, maxTokens, "LOG2"), softmax(img, 11, 3, "UNIFORM"), layernorm(img, 8, maxDim - 1), layernorm(img, 10, 2),
      add(img, 7, maxDim, false), add(img, 6, 13, true), lut(img, 12, 7), lut(img, 3, 300),
    ]);
    for (const [latency, stallPercent, seed] of [[2, 0, 1], [1, 30, 5], [4, 15, 6]]) {
      const { rtl, isa } = await runRtlAndIsa(cfg, img.bytes, { latency, stallPercent, seed });
      expect(firstDifference(rtl, isa, img.hw.busBytes), `latency ${latency}, ${stallPercent}% refused`).toBeNull();
    }
  });

  it.each(["c16", "c5", "c12"] as const)("takes streamChunkCycles exactly (%s, read latency 2)", async (c) => {
    const cfg = CONFIGS[c];
    const latency = 2;
    // an instruction's chunk time: the program with it, less the same program with a SYNC (fetch and decode) in its place
    const cyclesOf = async (make: (img: Image) => Instruction) => {
      const img = new Image(cfg, new StimulusRng(4400), 3000);
      const insn = make(img);
      img.program([insn]);
      const withInsn = (await runSimulator(await topSimulator(cfg), img.bytes, { latency, stallPercent: 0, seed: 1 })).cycles;
      img.program([{ op: "SYNC", chunk: "LN" }]);
      const withSync = (await runSimulator(await topSimulator(cfg), img.bytes, { latency, stallPercent: 0, seed: 1 })).cycles;
      return { measured: withInsn - withSync, model: streamChunkCycles(insn, cfg, latency) };
    };
    for (const make of [
      (img: Image) => lut(img, 2, 37), (img: Image) => lut(img, 1, 300), (img: Image) => add(img, 3, 40, true),
      // rows within the build's cores.maxTokens / maxDim (a longer row is refused by the compiler)
      (img: Image) => softmax(img, 2, cfg.cores.maxTokens, "LOG2"), (img: Image) => layernorm(img, 2, cfg.cores.maxDim - 3), (img: Image) => layernorm(img, 1, 7),
      // many rows: several in the core, the ring full and wrapping, long LUT rows in segments
      (img: Image) => softmax(img, 10, cfg.cores.maxTokens - 1, "UNIFORM"), (img: Image) => softmax(img, 12, 5, "LOG2"),
      (img: Image) => layernorm(img, 9, cfg.cores.maxDim), (img: Image) => lut(img, 11, 21), (img: Image) => lut(img, 3, 300),
      (img: Image) => add(img, 8, cfg.cores.maxDim - 1, false),
    ]) {
      const { measured, model } = await cyclesOf(make);
      expect(model, make.toString()).toBe(measured);
    }
  });

  it("overlaps rows: each further row costs the core's row spacing or the port's words, not a row's latency (c16)", async () => {
    // the regression config's shape (16 columns, a 128-bit bus, 16 lanes) at read latency 2
    const cfg = CONFIGS.c16;
    const latency = 2;
    const cycles = async (insn: (img: Image) => Instruction) => {
      const img = new Image(cfg, new StimulusRng(4600), 3000);
      const i = insn(img);
      img.program([i]);
      const withInsn = (await runSimulator(await topSimulator(cfg), img.bytes, { latency, stallPercent: 0, seed: 1 })).cycles;
      img.program([{ op: "SYNC", chunk: "LN" }]);
      const withSync = (await runSimulator(await topSimulator(cfg), img.bytes, { latency, stallPercent: 0, seed: 1 })).cycles;
      expect(withInsn - withSync, i.op).toBe(streamChunkCycles(i, cfg, latency));
      return withInsn - withSync;
    };
    const words = new Image(cfg, new StimulusRng(1), 100).rowWords(64);
    const softmaxShape = { lanes: cfg.cores.softmaxLanes, maxTokens: cfg.cores.maxTokens };
    const cases: [string, (img: Image, rows: number) => Instruction, number][] = [
      // the cores take a row every so many cycles (their square roots): the rows come that fast
      ["SOFTMAX 16×50", (img, rows) => softmax(img, rows, 50, "LOG2"), softmaxRowSpacing(50, 50, softmaxShape)],
      ["LAYERNORM 16×64", (img, rows) => layernorm(img, rows, 64), layerNormRowTiming(64, cfg.cores.layernormLanes).interval],
      // the elementwise core takes a beat per cycle: the port is the limit, every word read (a, and b) and
      // written once, plus the read's latency and hand-over of 2 cycles per row at most
      ["LUT 16×64", (img, rows) => lut(img, rows, 64), 2 * words + latency + 2],
      ["ADD 16×64", (img, rows) => add(img, rows, 64, false), 3 * words + latency + 2],
    ];
    for (const [what, make, perRow] of cases) {
      const one = await cycles((img) => make(img, 1));
      const sixteen = await cycles((img) => make(img, 16));
      // one row at a time, each further row would cost the first row's whole latency again
      expect(sixteen - one, what).toBeLessThanOrEqual(15 * perRow);
    }
  });

  it("has an output ring deep enough that it barely slows the rows (the model, read latency 2)", () => {
    const base = { src: 0, dst: 0, sstride: 1, dstride: 1 };
    for (const cfg of [...Object.values(CONFIGS), ...REGRESS_CONFIGS, DEFAULT_CONFIG]) {
      for (const rows of [1, 5, 12]) {
        for (const part of [0, 0.3, 0.7, 1]) {
          const tokens = Math.max(1, Math.round(cfg.cores.maxTokens * part));
          const dim = Math.max(1, Math.round(cfg.cores.maxDim * part));
          const insns: Instruction[] = [
            { op: "SOFTMAX", ...base, rows, cols: tokens, mode: "LOG2", inputShift: 0, ln2: 1, polyB: 1, polyShift: 0, polyC: 0 },
            { op: "LAYERNORM", ...base, rows, cols: dim, paddr: 0, eps: 0 },
            { op: "LUT", ...base, rows, cols: dim, table: 0 },
            { op: "LUT", ...base, rows, cols: 3 * dim + 7, table: 0 },
            { op: "ADD", ...base, rows, cols: dim, b: 0, bstride: 1, paddr: 0 },
          ];
          for (const insn of insns) {
            const sized = streamChunkCycles(insn, cfg, 2);
            const unlimited = streamChunkCycles(insn, cfg, 2, { ringDepth: 1 << 20 });
            // the port's order of reads and writes shifts a little with the ring's depth, either way
            expect(sized, `${cfg.name} ${JSON.stringify(insn)}`).toBeLessThanOrEqual(Math.ceil(unlimited * 1.03));
          }
        }
      }
    }
  });

  it("sees a changed parameter: the top byte of one LayerNorm bias and one table entry in use", async () => {
    const cfg = CONFIGS.c16;
    const img = new Image(cfg, new StimulusRng(4300), 3000);
    const ln = layernorm(img, 1, 24) as Extract<Instruction, { op: "LAYERNORM" }>;
    const lt = lut(img, 1, 16) as Extract<Instruction, { op: "LUT" }>;
    img.program([ln, lt]);
    const busBytes = img.hw.busBytes;
    const original = img.bytes.slice();
    runIsa(cfg, original);
    const lnOut = (b: Uint8Array) => Array.from(b.subarray(ln.dst * busBytes, ln.dst * busBytes + 24));
    // B byte 3 (plane 6) of the first channel whose output the flip changes (a saturated one may not change)
    const biasByte = (c: number) => (ln.paddr + 6 * img.rowWords(24)) * busBytes + c;
    const channel = Array.from({ length: 24 }, (_, c) => c).find((c) => {
      const trial = img.bytes.slice();
      trial[biasByte(c)] ^= 0x80;
      runIsa(cfg, trial);
      return lnOut(trial)[c] !== lnOut(original)[c];
    })!;
    expect(channel).toBeDefined();
    img.bytes[biasByte(channel)] ^= 0x80;
    const x = (img.bytes[lt.src * busBytes] << 24) >> 24;
    img.bytes[lt.table * busBytes + x + 128] ^= 0x01;
    const { rtl, isa } = await runRtlAndIsa(cfg, img.bytes);
    expect(firstDifference(rtl, isa, busBytes)).toBeNull();
    expect(lnOut(rtl)[channel]).not.toBe(lnOut(original)[channel]);
    expect(rtl[lt.dst * busBytes]).not.toBe(original[lt.dst * busBytes]);
  });
});
