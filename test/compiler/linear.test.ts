import { describe, expect, it } from "vitest";
import { formatListing } from "../../src/compiler/image.js";
import { REGIONS, compileLinear, linearImage, packInt4Pair, readLinearOutput } from "../../src/compiler/linear.js";
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

describe("linear compiler", () => {
  it("emits resident weights, then per row tile: load, one MATMUL per column tile, store", () => {
    const p = compileLinear(CFG, layer(10, 6), 9);
    const ops = p.instructions.map((i) => i.insn.op);
    // weights + params, then 3 row tiles × (LOAD X, 2 MATMUL, STORE), then HALT
    expect(ops).toEqual(["LOAD", "LOAD", ...Array(3).fill(["LOAD", "MATMUL", "MATMUL", "STORE"]).flat(), "HALT"]);
    expect(p.shape).toMatchObject({ m: 9, k: 10, n: 6, inVectors: 3, outVectors: 2, tiles: 2, rowTiles: 3 });
    const last = p.instructions.at(-2)!.insn;
    expect(last).toMatchObject({ op: "STORE", rows: 1, count: 2 });
    expect(formatListing(p)).toMatch(/MATMUL +k=10 xaddr=0 waddr=10 paddr=1 oaddr=1 flags=0 .*; fc: rows 0\.\.3 × channels 4\.\.5/);
  });

  it("lays out weights by column tile, biases as byte planes, and reads outputs back", () => {
    const l = layer(3, 5);
    const p = compileLinear(CFG, l, 2);
    const x = Int8Array.from([1, -2, 3, -4, 5, -6]);
    const image = linearImage(p, l, x);
    const bus = CFG.busBits / 8;
    const w = p.regions.find((r) => r.name === REGIONS.weights)!;
    // vector word (tile 1, k 2) holds w[4][2] then zero padding for channels 5..7
    const word = image.subarray((w.word + (1 * 3 + 2)) * bus, (w.word + (1 * 3 + 2)) * bus + 4);
    expect(Array.from(word)).toEqual([l.weight[4 * 3 + 2] & 0xff, 0, 0, 0]);
    const params = p.regions.find((r) => r.name === REGIONS.params)!;
    const plane = (t: number, pl: number) => Array.from(image.subarray((params.word + t * 5 + pl) * bus, (params.word + t * 5 + pl) * bus + 4));
    const bias0 = l.bias[0] >>> 0;
    expect(plane(0, 0)[0]).toBe(bias0 & 0xff);
    expect(plane(0, 3)[0]).toBe(bias0 >>> 24);
    expect(plane(0, 4)).toEqual([6, 6, 6, 6]);
    // the output region reads back as written
    const out = p.regions.find((r) => r.name === REGIONS.output)!;
    image[out.word * bus + 1] = 0xfe;
    expect(readLinearOutput(p, image)[1]).toBe(-2);
  });

  it.each([
    [layer(400, 4), 1, /buffers\.xDepth = 80 holds 80 vector words per row, the input rows need 100/],
    [layer(300, 4), 1, /buffers\.wDepth = 256 is less than one column tile of weights \(K = 300 entries\)/],
    [layer(4, 40), 1, /buffers\.oDepth = 8 holds 8 vector words per row, the output rows need 10/],
    [layer(4, 4, { shift: Int32Array.from([0, 32, 0, 0]) }), 1, /channel 1 needs shift 32, outside -8\.\.31/],
    [layer(4, 4, { bias: Int32Array.from([2 ** 31 - 100, 0, 0, 0]) }), 1, /accBits = 32 can overflow/],
    [layer(4, 4), 0, /no input rows/],
  ])("refuses a layer that does not fit: %#", (l, m, message) => {
    expect(() => compileLinear(CFG, l, m)).toThrow(message);
    expect(() => compileLinear(CFG, l, m)).toThrow(/^layer fc \(K=\d+, N=\d+\) does not fit accelerator "c"/);
  });

  describe("int4 weights", () => {
    it("packs two weights per byte, k even in bits 3:0, and flags every MATMUL W4", () => {
      const l = int4Layer(7, 6);
      const p = compileLinear(CFG_W4, l, 5);
      expect(p.shape).toMatchObject({ w4: true, wEntries: 4, tiles: 2 });
      const matmuls = p.instructions.map((i) => i.insn).filter((i) => i.op === "MATMUL");
      expect(matmuls.map((i) => [i.k, i.waddr, i.flags])).toEqual([[7, 0, 1], [7, 4, 1], [7, 0, 1], [7, 4, 1]]);
      expect(p.instructions[0].insn).toMatchObject({ op: "LOAD", target: "W", count: 2 * 4 });
      expect(p.regions.find((r) => r.name === REGIONS.weights)!.vectors).toBe(2 * 4);
      const image = linearImage(p, l, new Int8Array(5 * 7));
      const w = p.regions.find((r) => r.name === REGIONS.weights)!;
      const entry = (v: number) => Array.from(image.subarray((w.word + v) * 8, (w.word + v) * 8 + 4));
      const wt = (c: number, k: number) => l.weight[c * 7 + k];
      // tile 0, pair 1: k = 2, 3 of channels 0..3
      expect(entry(1)).toEqual([0, 1, 2, 3].map((c) => packInt4Pair(wt(c, 2), wt(c, 3))));
      expect(packInt4Pair(-8, 7)).toBe(0x78);
      expect(packInt4Pair(-1, -8)).toBe(0x8f);
      // tile 1, pair 3: k = 6 and, past K, a zero high nibble; channels 6, 7 do not exist
      expect(entry(4 + 3)).toEqual([wt(4, 6) & 0xf, wt(5, 6) & 0xf, 0, 0]);
    });

    it("leaves int8 layers in the int8 mode on a dual-mode build", () => {
      const p = compileLinear(CFG_W4, layer(7, 6), 5);
      expect(p.instructions.filter((i) => i.insn.op === "MATMUL").every((i) => i.insn.op === "MATMUL" && i.insn.flags === 0)).toBe(true);
      expect(p.shape).toMatchObject({ w4: false, wEntries: 7 });
    });

    it.each([
      [CFG, int4Layer(8, 4), /the layer has int4 weights and the accelerator is built with weightBits = 8: set weightBits to 4/],
      [CFG_W4, layer(8, 4, { weightBits: 4 }), /channel 0, k 0: weight -125 is outside the int4 range -8\.\.7/],
      [
        parseAcceleratorConfig({ ...CFG_W4, buffers: { ...CFG.buffers, wDepth: 100 } }),
        int4Layer(201, 4),
        /buffers\.wDepth = 100 is less than one column tile of weights \(ceil\(K\/2\) = 101 entries of int4 pairs\)/,
      ],
    ])("refuses what the int4-weight mode cannot run: %#", (cfg, l, message) => {
      expect(() => compileLinear(cfg, l, 1)).toThrow(message);
    });
  });
});
