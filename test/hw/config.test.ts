import { describe, expect, it } from "vitest";
import { DEFAULT_CONFIG, configHash, deriveHw, parseAcceleratorConfig } from "../../src/hw/config.js";

describe("accelerator config", () => {
  it("fills defaults and keeps what is given", () => {
    const cfg = parseAcceleratorConfig({ name: "wide", array: { rows: 8 }, busBits: 64 });
    expect(cfg.array).toEqual({ rows: 8, cols: DEFAULT_CONFIG.array.cols });
    expect(cfg.busBits).toBe(64);
    expect(cfg.buffers).toEqual(DEFAULT_CONFIG.buffers);
  });

  it.each([
    [{ array: { rows: 0, cols: 4 } }, /array\.rows: expected an integer from 1 to 128, got 0/],
    [{ array: { rows: 4, cols: 2.5 } }, /array\.cols: expected an integer from 1 to 128, got 2\.5/],
    [{ array: { rows: "4", cols: 4 } }, /array\.rows: expected an integer .* got "4"/],
    [{ busBits: 48 }, /busBits: expected one of 32, 64, 128, 256, 512, got 48/],
    [{ accBits: 12 }, /accBits: expected an integer from 20 to 48, got 12/],
    [{ accBits: 24 }, /accBits: 24 bits cannot hold a sum of 8192 int8 products .* needs 29 bits/],
    [{ weightBits: 6 }, /weightBits: expected one of 8, 4, got 6 \(8: int8 weights; 4: dual-mode PEs that also run MATMULs with int4 weights \(flag W4\)\)/],
    [{ weightBits: 4, array: { rows: 4, cols: 1 } }, /weightBits: 4 needs array\.cols of at least 2, got 1/],
    [{ clockMHz: 0 }, /clockMHz: expected a positive number, got 0/],
    [{ buffers: { xDepth: -1 } }, /buffers\.xDepth: expected an integer from 1 to 32768, got -1/],
    [{ rowz: 4 }, /rowz: unknown field \(expected one of name, array/],
    [{ array: { rows: 4, cols: 4, depth: 2 } }, /array\.depth: unknown field/],
    [{ name: "has space" }, /name: expected a name of letters/],
    [[], /expected an object/],
  ])("refuses %j", (raw, message) => {
    expect(() => parseAcceleratorConfig(raw, "hw.json")).toThrow(message);
    expect(() => parseAcceleratorConfig(raw, "hw.json")).toThrow(/^hw\.json: /);
  });

  it("builds the dual-mode PEs with weightBits 4, on any array of two columns or more", () => {
    expect(parseAcceleratorConfig({ weightBits: 4 }).weightBits).toBe(4);
    expect(parseAcceleratorConfig({ weightBits: 4, array: { rows: 1, cols: 2 } }).array).toEqual({ rows: 1, cols: 2 });
    expect(configHash(parseAcceleratorConfig({ weightBits: 4 }))).not.toBe(configHash(DEFAULT_CONFIG));
  });

  it("hashes the config stably, whatever the key order", () => {
    const a = parseAcceleratorConfig({ array: { rows: 4, cols: 8 }, busBits: 64 });
    const b = parseAcceleratorConfig({ busBits: 64, array: { cols: 8, rows: 4 } });
    expect(configHash(a)).toBe(configHash(b));
    expect(configHash(a)).not.toBe(configHash(DEFAULT_CONFIG));
  });

  it("derives how vector words and instructions map onto memory words", () => {
    expect(deriveHw(parseAcceleratorConfig({ array: { rows: 4, cols: 12 }, busBits: 32 }))).toEqual({
      vectorBytes: 12, busBytes: 4, wordsPerVector: 3, wordsPerInstruction: 8,
    });
    expect(deriveHw(parseAcceleratorConfig({ array: { rows: 4, cols: 4 }, busBits: 256 })).wordsPerInstruction).toBe(1);
  });
});
