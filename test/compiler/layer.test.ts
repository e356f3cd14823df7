/** One Linear layer through the graph compiler: memory layout of weights and parameters, int4 packing, refusals. */
import { describe, expect, it } from "vitest";
import { packInt4Pair } from "../../src/compiler/graph.js";
import { blockWord, compileLayer, readLayerOutput } from "../../src/compiler/layer.js";
import { buildMemory } from "../../src/compiler/memory.js";
import { formatProgramListing } from "../../src/cli/compile.js";
import { parseAcceleratorConfig } from "../../src/hw/config.js";
import { QLinear } from "../../src/quant/qgraph.js";

function layer(k: number, n: number, over: Partial<QLinear> = {}): QLinear {
  return {
    kind: "linear", name: "fc", inFeatures: k, outFeatures: n,
    input: { bits: 8, exponent: -4 }, output: { bits: 8, exponent: -2 }, weightBits: 8,
    weight: Int8Array.from({ length: n * k }, (_, i) => (i % 251) - 125), weightExponents: new Int32Array(n),
    bias: Int32Array.from({ length: n }, (_, i) => i * 1000 - 70000), shift: new Int32Array(n).fill(6), ...over,
  };
}

const CFG = parseAcceleratorConfig({ name: "c", array: { rows: 4, cols: 4 }, busBits: 64, buffers: { xDepth: 80, wDepth: 256, oDepth: 8, paramDepth: 8 } });
const CFG_W4 = parseAcceleratorConfig({ ...CFG, name: "c4", weightBits: 4 });

/** A layer with int4 weights: w[c][k] = ((7c + k) mod 16) − 8. */
function int4Layer(k: number, n: number): QLinear {
  return layer(k, n, { weightBits: 4, weight: Int8Array.from({ length: n * k }, (_, i) => ((7 * Math.floor(i / k) + (i % k)) % 16) - 8) });
}

describe("one layer through the graph compiler", () => {
  it("loads weights and parameters per column-tile group, then per row tile: load, one MATMUL per tile, store", () => {
    const p = compileLayer(CFG, layer(10, 6), 9);
    const ops = p.instructions.map((i) => i.insn.op);
    expect(ops.filter((o) => o === "MATMUL").length).toBe(3 * 2); // 3 row tiles × 2 column tiles
    expect(ops.filter((o) => o === "STORE").length).toBe(3);
    expect(ops.at(-1)).toBe("HALT");
    expect(formatProgramListing(p)).toMatch(/MATMUL +k=10 xaddr=\d+ waddr=\d+ paddr=\d+ oaddr=\d+ flags=0 .*; fc: rows 0\.\.3 × channels 4\.\.7/);
  });

  it("lays out weights by column tile, biases as byte planes, and reads outputs back", () => {
    const l = layer(3, 5);
    const p = compileLayer(CFG, l, 2);
    const image = buildMemory(p, Int8Array.from([1, -2, 3, -4, 5, -6]));
    const bus = CFG.busBits / 8;
    const w = blockWord(p, "fc weights");
    // vector word (tile 1, k 2) holds w[4][2] then zero padding for channels 5..7
    expect(Array.from(image.subarray((w + (1 * 3 + 2)) * bus, (w + (1 * 3 + 2)) * bus + 4))).toEqual([l.weight[4 * 3 + 2] & 0xff, 0, 0, 0]);
    const params = blockWord(p, "fc bias and shift");
    const plane = (t: number, pl: number) => Array.from(image.subarray((params + t * 5 + pl) * bus, (params + t * 5 + pl) * bus + 4));
    const bias0 = l.bias[0] >>> 0;
    expect(plane(0, 0)[0]).toBe(bias0 & 0xff);
    expect(plane(0, 3)[0]).toBe(bias0 >>> 24);
    expect(plane(0, 4)).toEqual([6, 6, 6, 6]);
    const out = p.tensors.get("y")!;
    image[out.word * bus + 1] = 0xfe;
    expect(readLayerOutput(p, l, 2, image)[1]).toBe(-2);
  });

  it.each([
    [layer(400, 4), 1, /buffers\.xDepth = 80 cannot hold one input row of 100 vector words/],
    [layer(300, 4), 1, /one column tile needs 300 W entries \(buffers\.wDepth = 256\)/],
    [layer(4, 4, { shift: Int32Array.from([0, 32, 0, 0]) }), 1, /channel 1 needs shift 32, outside -8\.\.31/],
    [layer(4, 4, { bias: Int32Array.from([2 ** 31 - 100, 0, 0, 0]) }), 1, /accBits = 32 can overflow/],
  ])("refuses a layer that does not fit: %#", (l, m, message) => {
    expect(() => compileLayer(CFG, l, m)).toThrow(message);
  });

  describe("int4 weights", () => {
    it("packs two weights per byte, k even in bits 3:0, and flags every MATMUL W4", () => {
      const l = int4Layer(7, 6);
      const p = compileLayer(CFG_W4, l, 5);
      const matmuls = p.instructions.map((i) => i.insn).filter((i) => i.op === "MATMUL");
      expect(matmuls.every((i) => i.op === "MATMUL" && i.k === 7 && i.flags === 1)).toBe(true);
      expect(p.blocks.find((b) => b.name === "fc weights")!.vectors).toBe(2 * 4); // 2 tiles × ceil(7/2) pairs
      const image = buildMemory(p, new Int8Array(5 * 7));
      const w = blockWord(p, "fc weights");
      const entry = (v: number) => Array.from(image.subarray((w + v) * 8, (w + v) * 8 + 4));
      const wt = (c: number, k: number) => l.weight[c * 7 + k];
      // tile 0, pair 1: k = 2, 3 of channels 0..3
      expect(entry(1)).toEqual([0, 1, 2, 3].map((c) => packInt4Pair(wt(c, 2), wt(c, 3))));
      expect(packInt4Pair(-8, 7)).toBe(0x78);
      expect(packInt4Pair(-1, -8)).toBe(0x8f);
      // tile 1, pair 3: k = 6 and, past K, a zero high nibble; channels 6, 7 do not exist
      expect(entry(4 + 3)).toEqual([wt(4, 6) & 0xf, wt(5, 6) & 0xf, 0, 0]);
    });

    it("leaves int8 layers in the int8 mode on a dual-mode build", () => {
      const p = compileLayer(CFG_W4, layer(7, 6), 5);
      expect(p.instructions.filter((i) => i.insn.op === "MATMUL").every((i) => i.insn.op === "MATMUL" && i.insn.flags === 0)).toBe(true);
    });

    it.each([
      [CFG, int4Layer(8, 4), /4-bit weights; accelerator "c" has weightBits 8 \(set weightBits 4/],
      [CFG_W4, layer(8, 4, { weightBits: 4 }), /channel 0, k 0: weight -125 is outside the int4 range -8\.\.7/],
      [parseAcceleratorConfig({ ...CFG_W4, buffers: { ...CFG.buffers, wDepth: 100 } }), int4Layer(201, 4), /one column tile needs 101 W entries \(buffers\.wDepth = 100\)/],
    ])("refuses what the int4-weight mode cannot run: %#", (cfg, l, message) => {
      expect(() => compileLayer(cfg, l, 1)).toThrow(message);
    });
  });
});
