import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { loadMnist } from "../../src/quant/data/mnist.js";
import { P2vitError } from "../../src/util/errors.js";

const dataDir = resolve(dirname(fileURLToPath(import.meta.url)), "../../../shared/data");
const mnistDir = join(dataDir, "mnist");

function idxImages(count: number, rows: number, cols: number, magic = 2051, pixels?: Uint8Array): Buffer {
  const header = Buffer.alloc(16);
  [magic, count, rows, cols].forEach((v, i) => header.writeUInt32BE(v, 4 * i));
  const body = pixels ?? Uint8Array.from({ length: count * rows * cols }, (_, i) => i % 256);
  return Buffer.concat([header, body]);
}

function idxLabels(labels: number[], magic = 2049): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(magic, 0);
  header.writeUInt32BE(labels.length, 4);
  return Buffer.concat([header, Uint8Array.from(labels)]);
}

describe.skipIf(!existsSync(mnistDir))("the real MNIST test set", () => {
  test("has 10000 images of 28×28 with labels in 0..9, the first being 7", () => {
    const set = loadMnist(mnistDir);
    expect(set).toMatchObject({ count: 10000, rows: 28, cols: 28 });
    expect(set.images).toHaveLength(10000 * 28 * 28);
    expect(set.labels).toHaveLength(10000);
    expect(Math.max(...set.labels)).toBe(9);
    expect(Math.min(...set.labels)).toBe(0);
    expect(set.labels[0]).toBe(7);
    expect(Math.max(...set.images.subarray(0, 784))).toBe(255);
  });

  test("limit keeps the first N images", () => {
    const all = loadMnist(mnistDir);
    const some = loadMnist(mnistDir, { limit: 100 });
    expect(some.count).toBe(100);
    // Buffer comparison: vitest's deep equality is slow on arrays this long.
    const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    expect(bytes(some.images).equals(bytes(all.images.subarray(0, 100 * 784)))).toBe(true);
    expect(bytes(some.labels).equals(bytes(all.labels.subarray(0, 100)))).toBe(true);
  });

  test("limit out of range", () => {
    expect(() => loadMnist(mnistDir, { limit: 0 })).toThrow(/limit: expected an integer from 1 to 10000 .*got 0/);
    expect(() => loadMnist(mnistDir, { limit: 10001 })).toThrow(/limit: expected an integer from 1 to 10000 .*got 10001/);
  });
});

describe("loadMnist on hand-made IDX files", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "p2vit-mnist-"));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const imagesGz = () => join(dir, "t10k-images-idx3-ubyte.gz");
  const labelsGz = () => join(dir, "t10k-labels-idx1-ubyte.gz");

  test("reads gzipped files", () => {
    writeFileSync(imagesGz(), gzipSync(idxImages(3, 2, 4)));
    writeFileSync(labelsGz(), gzipSync(idxLabels([1, 2, 3])));
    const set = loadMnist(dir);
    expect(set).toMatchObject({ count: 3, rows: 2, cols: 4 });
    expect([...set.images.subarray(8, 12)]).toEqual([8, 9, 10, 11]);
    expect([...set.labels]).toEqual([1, 2, 3]);
  });

  test("reads uncompressed files", () => {
    writeFileSync(join(dir, "t10k-images-idx3-ubyte"), idxImages(2, 3, 3));
    writeFileSync(join(dir, "t10k-labels-idx1-ubyte"), idxLabels([0, 9]));
    expect(loadMnist(dir, { limit: 1 })).toMatchObject({ count: 1, rows: 3, cols: 3 });
  });

  test("corrupted magic number names the file", () => {
    writeFileSync(imagesGz(), gzipSync(idxImages(1, 2, 2, 2049)));
    writeFileSync(labelsGz(), gzipSync(idxLabels([1])));
    expect(() => loadMnist(dir)).toThrow(P2vitError);
    expect(() => loadMnist(dir)).toThrow(/t10k-images-idx3-ubyte\.gz: not an IDX image file: magic number 2049, expected 2051/);
    writeFileSync(imagesGz(), gzipSync(idxImages(1, 2, 2)));
    writeFileSync(labelsGz(), gzipSync(idxLabels([1], 7)));
    expect(() => loadMnist(dir)).toThrow(/t10k-labels-idx1-ubyte\.gz: not an IDX label file: magic number 7, expected 2049/);
  });

  test("length that disagrees with the header", () => {
    writeFileSync(imagesGz(), gzipSync(idxImages(2, 2, 2).subarray(0, 20)));
    writeFileSync(labelsGz(), gzipSync(idxLabels([1, 2])));
    expect(() => loadMnist(dir)).toThrow(/images-idx3-ubyte\.gz: truncated: the header promises 2 images of 2×2 \(24 bytes with the header\) but the data has 20 bytes/);
  });

  test("image and label counts must agree", () => {
    writeFileSync(imagesGz(), gzipSync(idxImages(2, 2, 2)));
    writeFileSync(labelsGz(), gzipSync(idxLabels([1, 2, 3])));
    expect(() => loadMnist(dir)).toThrow(/2 images in t10k-images-idx3-ubyte but 3 labels in t10k-labels-idx1-ubyte/);
  });

  test("labels beyond 9", () => {
    writeFileSync(imagesGz(), gzipSync(idxImages(2, 2, 2)));
    writeFileSync(labelsGz(), gzipSync(idxLabels([1, 12])));
    expect(() => loadMnist(dir)).toThrow(/labels-idx1-ubyte\.gz: label 1 is 12, expected 0\.\.9/);
  });

  test("not gzip, missing files, missing folder", () => {
    expect(() => loadMnist(join(dir, "nope"))).toThrow(/nope: MNIST folder not found/);
    expect(() => loadMnist(dir)).toThrow(/MNIST file not found: expected t10k-images-idx3-ubyte\.gz or t10k-images-idx3-ubyte/);
    writeFileSync(imagesGz(), idxImages(1, 1, 1));
    expect(() => loadMnist(dir)).toThrow(/images-idx3-ubyte\.gz: cannot decompress \(expected a gzip file\)/);
  });
});
