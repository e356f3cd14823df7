/**
 * The graph compiler on the built-in synthetic ViT: placements and views, the dependency encoding,
 * refusals that name the config field, and the ISA simulator equal to the golden model on it in
 * program order, in random orders and with the overlap off.
 */
import { describe, expect, it } from "vitest";
import { compileGraph } from "../../src/compiler/graph.js";
import { DEFAULT_CONFIG, parseAcceleratorConfig } from "../../src/hw/config.js";
import { WAITS_PER_INSTRUCTION } from "../../src/hw/isa.js";
import { READ_LATENCY } from "../../src/hw/timing.js";
import { DEFAULT_SETTINGS } from "../../src/quant/fakequant.js";
import { ModelImage, quantizeModel } from "../../src/quant/pipeline.js";
import { syntheticCheckpoint, syntheticImages } from "../../src/quant/synthetic.js";
import { checkImage } from "../../src/sim/isa-check.js";
import { runCycleModel } from "../../src/sim/cycle-model.js";
import { formatMismatch } from "../../src/sim/compare.js";

function images(n: number, seed: number): ModelImage[] {
  const set = syntheticImages(n, seed, 16);
  return Array.from({ length: n }, (_, i) => ({ pixels: set.images.slice(i * 256, (i + 1) * 256), label: set.labels[i] }));
}

const graph = quantizeModel(syntheticCheckpoint(3), images(16, 5), DEFAULT_SETTINGS).qgraph!;
const test = images(3, 9);
const small = parseAcceleratorConfig({ name: "s4x8", array: { rows: 4, cols: 8 }, busBits: 32 });

describe("graph compiler", () => {
  it("places head slices and head outputs on vector boundaries, as views", () => {
    const p = compileGraph(graph, small); // 8 columns, 2 memory words per vector word
    const info = (n: string) => graph.tensors.find((t) => t.name === n)!;
    const headDim = info("blocks.0.attn.head0.q").cols;
    const heads = info("blocks.0.attn.heads").cols / headDim;
    const perSlice = Math.ceil(headDim / 8); // vector words each slice takes
    const qkv = p.tensors.get("blocks.0.attn.qkv")!;
    for (let h = 0; h < heads; h++) {
      // slices are placed in column order: q of every head, then k, then v
      const k = p.tensors.get(`blocks.0.attn.head${h}.k`)!;
      expect(k.word - qkv.word).toBe((heads + h) * perSlice * 2);
      expect(k.rowStride).toBe(qkv.rowStride);
    }
    expect(qkv.vectors).toBe(3 * heads * perSlice);
    const concat = p.tensors.get("blocks.0.attn.heads")!;
    expect(p.tensors.get("blocks.0.attn.head1.values")!.word - concat.word).toBe(perSlice * 2);
    const cls = p.tensors.get("cls_token")!;
    expect(p.tensors.get("patch_embed.proj")!.word).toBe(cls.word + cls.rowStride); // the class token row sits above the patch rows
  });

  it("encodes at most two waits per instruction, each for one signal, and sends every signal someone waits for", () => {
    const p = compileGraph(graph, small);
    const sent = new Map<string, number>();
    const used = new Map<string, number>();
    for (const { insn } of p.instructions) {
      expect((insn.dep?.wait ?? []).length).toBeLessThanOrEqual(WAITS_PER_INSTRUCTION);
      for (const w of insn.dep?.wait ?? []) expect(w.count).toBe(1);
    }
    p.instructions.forEach(({ insn }) => {
      for (const s of insn.dep?.signal ?? []) sent.set(s, (sent.get(s) ?? 0) + 1);
      for (const w of insn.dep?.wait ?? []) used.set(w.chunk, (used.get(w.chunk) ?? 0) + 1);
    });
    const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    expect(total(sent)).toBe(total(used));
    expect(total(sent)).toBeGreaterThan(10);
  });

  it.each([
    ["default", DEFAULT_CONFIG, null],
    ["4×8, random orders", small, 7],
    ["3×5, tiny buffers", parseAcceleratorConfig({ name: "t3x5", array: { rows: 3, cols: 5 }, busBits: 32, buffers: { xDepth: 16, wDepth: 100, oDepth: 16, paramDepth: 16 } }), 11],
  ] as const)("runs bit-exact on the ISA simulator: %s", (_, cfg, seed) => {
    for (const overlap of [true, false]) {
      const p = compileGraph(graph, cfg, { overlap });
      for (const [i, img] of test.entries()) {
        const r = checkImage(graph, p, img.pixels, { seed: seed === null ? null : seed + i });
        expect(r.mismatch, r.mismatch ? formatMismatch(r.mismatch) : "").toBeNull();
      }
    }
  });

  it("refuses what the accelerator cannot hold, naming the config field", () => {
    const tiny = (buffers: object) => parseAcceleratorConfig({ name: "tiny", array: { rows: 4, cols: 8 }, busBits: 32, buffers });
    expect(() => compileGraph(graph, tiny({ xDepth: 1 }))).toThrow(/does not fit accelerator "tiny": buffers\.xDepth = 1 cannot hold one input row/);
    expect(() => compileGraph(graph, tiny({ wDepth: 4 }))).toThrow(/buffers\.wDepth = 4/);
    expect(() => compileGraph(graph, parseAcceleratorConfig({ accBits: 20, buffers: { xDepth: 2, wDepth: 16 } }))).toThrow(/accBits = 20 can overflow/);
    const tokens = graph.tensors.find((t) => t.name === "blocks.0.attn.head0.q")!.rows;
    const cores = (maxTokens: number) => parseAcceleratorConfig({ name: "tiny", array: { rows: 4, cols: 8 }, busBits: 32, cores: { maxTokens } });
    expect(() => compileGraph(graph, cores(tokens - 1))).toThrow(new RegExp(`op \\S+: rows of ${tokens} do not fit accelerator "tiny": cores\\.maxTokens = ${tokens - 1}`));
    expect(() => compileGraph(graph, cores(tokens))).not.toThrow();
  });

  it("refuses rows longer than the streaming chunks hold, naming cores.maxDim or cores.maxTokens", () => {
    const dim = graph.ops.find((op) => op.kind === "layernorm")!;
    const tokens = graph.ops.find((op) => op.kind === "softmax")!;
    const cores = (c: object) => parseAcceleratorConfig({ name: "cores", cores: { ...DEFAULT_CONFIG.cores, ...c } });
    const d = dim.kind === "layernorm" ? dim.dim : 0;
    const n = tokens.kind === "softmax" ? tokens.cols : 0;
    expect(() => compileGraph(graph, cores({ maxDim: d - 1 }))).toThrow(new RegExp(`rows of ${d} do not fit accelerator "cores": cores\\.maxDim = ${d - 1}`));
    expect(() => compileGraph(graph, cores({ maxTokens: n - 1 }))).toThrow(new RegExp(`rows of ${n} do not fit accelerator "cores": cores\\.maxTokens = ${n - 1}`));
    expect(() => compileGraph(graph, cores({ maxDim: d, maxTokens: n }))).not.toThrow();
  });

  it("refuses 8-bit attention probabilities and 4-bit weights on an int8-only array", () => {
    const uniform = quantizeModel(syntheticCheckpoint(3), images(4, 5), { ...DEFAULT_SETTINGS, attnBits: 8 }).qgraph!;
    expect(() => compileGraph(uniform, small)).toThrow(/shift-accumulates 4-bit log2 probabilities; this graph has attnBits 8/);
    const w4 = quantizeModel(syntheticCheckpoint(3), images(4, 5), { ...DEFAULT_SETTINGS, wBits: 4 }).qgraph!;
    expect(() => compileGraph(w4, small)).toThrow(/4-bit weights; accelerator "s4x8" has weightBits 8/);
  });
});

describe("cycle model", () => {
  it("times a lone load and store by the memory port and the read latency", () => {
    const cfg = small;
    const run = runCycleModel([
      { op: "LOAD", target: "X", rows: 2, count: 3, addr: 0, maddr: 100, mstride: 6, dep: { wait: [], signal: ["ST"] } },
      { op: "STORE", rows: 1, count: 1, addr: 0, maddr: 200, mstride: 0, dep: { wait: [{ chunk: "LD", count: 1 }], signal: [] } },
      { op: "HALT" },
    ], cfg);
    // a 256-bit instruction is 8 words on a 32-bit bus: the load's words go by cycle 8, their answers
    // READ_LATENCY later, and the dispatcher queues it the cycle after (11). Its unit starts the next
    // cycle and takes the port first: 2 rows × 3 vectors × 2 words (12..24), 14 cycles in the loader,
    // seen done one cycle later (27). The store's fetch waits for the port (24..32) and is queued at 35.
    const [load, store] = run.timeline;
    expect(load.start).toBe(8 + READ_LATENCY + 1);
    expect(load.done).toBe(27);
    expect(store.dispatch).toBe(32 + READ_LATENCY + 1);
    expect(store.start).toBe(Math.max(load.done, store.dispatch));
    expect(run.cycles).toBe(run.timeline[2].done);
  });

  it("is slower with the overlap off, and keeps every chunk's work", () => {
    const on = runCycleModel(compileGraph(graph, DEFAULT_CONFIG).instructions.map((e) => e.insn), DEFAULT_CONFIG);
    const offProgram = compileGraph(graph, DEFAULT_CONFIG, { overlap: false });
    const off = runCycleModel(offProgram.instructions.map((e) => e.insn), DEFAULT_CONFIG, { serial: true });
    expect(off.cycles).toBeGreaterThan(on.cycles);
    expect(on.busy.MM).toBe(off.busy.MM);
    for (const t of off.timeline.slice(1)) expect(t.start).toBeGreaterThanOrEqual(0);
  });
});
