import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { P2vitError } from "../../src/util/errors.js";
import { readSafetensors, writeSafetensors, type Tensor } from "../../src/quant/safetensors.js";

/** A safetensors file built by hand: header object as given, then `data` verbatim. */
function rawSafetensors(header: unknown, data: Uint8Array, headerLength?: bigint): Buffer {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  return Buffer.concat([length, json, data]);
}

function u16le(values: number[]): Uint8Array {
  const b = Buffer.alloc(2 * values.length);
  values.forEach((v, i) => b.writeUInt16LE(v, 2 * i));
  return b;
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "p2vit-safetensors-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("writeSafetensors / readSafetensors", () => {
  test("round-trips names, shapes and float32 values exactly", () => {
    const tensors: Tensor[] = [
      { name: "a.weight", shape: [2, 3], data: Float32Array.from([1, -2.5, 3e-8, 1e30, -0, Math.PI]) },
      { name: "b", shape: [1, 1, 1], data: Float32Array.from([0.1]) },
      { name: "empty", shape: [0, 4], data: new Float32Array(0) },
      { name: "scalar", shape: [], data: Float32Array.from([7]) },
    ];
    const file = join(dir, "t.safetensors");
    writeSafetensors(file, tensors);
    const read = readSafetensors(file);
    expect([...read.keys()]).toEqual(tensors.map((t) => t.name));
    for (const t of tensors) {
      expect(read.get(t.name)!.shape).toEqual(t.shape);
      expect(read.get(t.name)!.data).toEqual(t.data);
    }
  });

  test("pads the header so the data section is 8-byte aligned", () => {
    const file = join(dir, "t.safetensors");
    writeSafetensors(file, [{ name: "x", shape: [1], data: Float32Array.from([1]) }]);
    const bytes = readFileSync(file);
    expect(Number(bytes.readBigUInt64LE(0)) % 8).toBe(0);
  });

  test("refuses data whose length does not match the shape, and duplicate names", () => {
    const file = join(dir, "t.safetensors");
    expect(() => writeSafetensors(file, [{ name: "x", shape: [2, 2], data: new Float32Array(3) }])).toThrow(
      /tensor 'x' has 3 values but shape \[2,2\] needs 4/,
    );
    const x = { name: "x", shape: [1], data: new Float32Array(1) };
    expect(() => writeSafetensors(file, [x, x])).toThrow(/tensor name 'x' given twice/);
  });
});

describe("readSafetensors decoding", () => {
  test("decodes F16, including subnormals, infinities and negative zero", () => {
    // 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal), +inf, -0, 0.333251953125
    const bits = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x8000, 0x3555];
    const file = join(dir, "h.safetensors");
    writeFileSync(file, rawSafetensors({ h: { dtype: "F16", shape: [7], data_offsets: [0, 14] } }, u16le(bits)));
    const data = readSafetensors(file).get("h")!.data;
    expect([...data]).toEqual([1, -2, 65504, 2 ** -24, Infinity, -0, 0.333251953125]);
    expect(Object.is(data[5], -0)).toBe(true);
  });

  test("decodes F16 NaN", () => {
    const file = join(dir, "h.safetensors");
    writeFileSync(file, rawSafetensors({ h: { dtype: "F16", shape: [1], data_offsets: [0, 2] } }, u16le([0x7e00])));
    expect(readSafetensors(file).get("h")!.data[0]).toBeNaN();
  });

  test("decodes BF16 as the top half of a float32", () => {
    // 1.0, -2.0, 3.140625, and 0x0001, which widens to the float32 subnormal 2^-133
    const bits = [0x3f80, 0xc000, 0x4049, 0x0001];
    const file = join(dir, "b.safetensors");
    writeFileSync(file, rawSafetensors({ b: { dtype: "BF16", shape: [2, 2], data_offsets: [0, 8] } }, u16le(bits)));
    const t = readSafetensors(file).get("b")!;
    expect(t.shape).toEqual([2, 2]);
    expect([...t.data]).toEqual([1, -2, 3.140625, 2 ** -133]);
  });

  test("reads F32 at an unaligned offset and ignores __metadata__", () => {
    const data = Buffer.alloc(6);
    data.writeFloatLE(-1.5, 2);
    const header = { __metadata__: { format: "pt" }, pad: { dtype: "F16", shape: [1], data_offsets: [0, 2] }, f: { dtype: "F32", shape: [1], data_offsets: [2, 6] } };
    const file = join(dir, "u.safetensors");
    writeFileSync(file, rawSafetensors(header, data));
    const read = readSafetensors(file);
    expect([...read.keys()]).toEqual(["pad", "f"]);
    expect(read.get("f")!.data[0]).toBe(-1.5);
  });
});

describe("readSafetensors errors", () => {
  function write(name: string, bytes: Uint8Array): string {
    const file = join(dir, name);
    writeFileSync(file, bytes);
    return file;
  }

  test("missing file names the path", () => {
    const file = join(dir, "nope.safetensors");
    expect(() => readSafetensors(file)).toThrow(P2vitError);
    expect(() => readSafetensors(file)).toThrow(new RegExp(`${escape(file)}: file not found`));
  });

  test("file shorter than the length field", () => {
    const file = write("short.safetensors", Buffer.from([1, 2, 3]));
    expect(() => readSafetensors(file)).toThrow(/short\.safetensors: not a safetensors file: it has 3 bytes, fewer than the 8-byte header length field/);
  });

  test("header length beyond the end of the file", () => {
    const file = write("len.safetensors", rawSafetensors({}, new Uint8Array(0), 1n << 40n));
    expect(() => readSafetensors(file)).toThrow(/len\.safetensors: bad header length 1099511627776: only 2 bytes follow/);
  });

  test("header that is not JSON", () => {
    const bad = Buffer.concat([Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("{oops")]);
    const file = write("json.safetensors", bad);
    expect(() => readSafetensors(file)).toThrow(/json\.safetensors: header is not valid JSON/);
  });

  test("unknown dtype names the tensor and the dtype", () => {
    const file = write("dtype.safetensors", rawSafetensors({ "blocks.0.x": { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)));
    expect(() => readSafetensors(file)).toThrow(/dtype\.safetensors: tensor 'blocks\.0\.x': unsupported dtype "I64"; supported: F32, F16, BF16/);
  });

  test("bad shape", () => {
    const file = write("shape.safetensors", rawSafetensors({ w: { dtype: "F32", shape: [2, -1], data_offsets: [0, 8] } }, new Uint8Array(8)));
    expect(() => readSafetensors(file)).toThrow(/tensor 'w': shape must be an array of non-negative integers, got \[2,-1\]/);
  });

  test("offsets inconsistent with shape × dtype size", () => {
    const file = write("span.safetensors", rawSafetensors({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, new Uint8Array(12)));
    expect(() => readSafetensors(file)).toThrow(/tensor 'w': data_offsets \[0, 8\] span 8 bytes but shape \[3\] of F32 needs 12/);
  });

  test("truncated file names the tensor, the byte range and what is there", () => {
    const full = join(dir, "full.safetensors");
    writeSafetensors(full, [
      { name: "a", shape: [4], data: new Float32Array(4) },
      { name: "blocks.0.attn.qkv.weight", shape: [6, 2], data: new Float32Array(12) },
    ]);
    const bytes = readFileSync(full);
    const file = write("cut.safetensors", bytes.subarray(0, bytes.length - 10));
    expect(() => readSafetensors(file)).toThrow(
      /cut\.safetensors: truncated: tensor 'blocks\.0\.attn\.qkv\.weight' needs bytes 16\.\.64 of the data section but the file has only 54/,
    );
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
