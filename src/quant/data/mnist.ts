/**
 * Reader for the MNIST test set in LeCun's IDX format (big-endian headers), gzipped or not.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { check, P2vitError } from "../../util/errors.js";

/**
 * Images of `channels` × `rows` × `cols` bytes each (CHW, row-major), `count` of them back to back,
 * with one class label per image.
 */
export interface ImageSet {
  images: Uint8Array;
  /** Uint16Array where class indices exceed 255 (ImageNet's 1000 classes). */
  labels: Uint8Array | Uint16Array;
  count: number;
  rows: number;
  cols: number;
  /** Channels per image; absent means 1 (grayscale), as MNIST. */
  channels?: number;
}

export const MNIST_IMAGES_FILE = "t10k-images-idx3-ubyte";
export const MNIST_LABELS_FILE = "t10k-labels-idx1-ubyte";

const IDX_IMAGES_MAGIC = 2051;
const IDX_LABELS_MAGIC = 2049;
const IMAGES_HEADER_BYTES = 16;
const LABELS_HEADER_BYTES = 8;
const NUM_CLASSES = 10;

/** Loads the MNIST t10k images and labels from `dir`; `limit` keeps only the first N. */
export function loadMnist(dir: string, opts: { limit?: number } = {}): ImageSet {
  check(statSync(dir, { throwIfNoEntry: false })?.isDirectory(), `${dir}: MNIST folder not found`);
  const images = parseImages(...readIdx(dir, MNIST_IMAGES_FILE));
  const labels = parseLabels(...readIdx(dir, MNIST_LABELS_FILE));
  check(
    images.count === labels.count,
    `${dir}: ${images.count} images in ${MNIST_IMAGES_FILE} but ${labels.count} labels in ${MNIST_LABELS_FILE}`,
  );
  const set: ImageSet = { images: images.pixels, labels: labels.labels, count: images.count, rows: images.rows, cols: images.cols, channels: 1 };
  return opts.limit === undefined ? set : firstImages(set, opts.limit, dir);
}

function firstImages(set: ImageSet, limit: number, dir: string): ImageSet {
  check(
    Number.isSafeInteger(limit) && limit >= 1 && limit <= set.count,
    `limit: expected an integer from 1 to ${set.count} (the images in ${dir}), got ${limit}`,
  );
  const pixelsPerImage = set.rows * set.cols;
  return {
    images: set.images.slice(0, limit * pixelsPerImage),
    labels: set.labels.slice(0, limit),
    count: limit,
    rows: set.rows,
    cols: set.cols,
    channels: 1,
  };
}

/** The file's bytes, decompressed: `<name>.gz` if present, else the uncompressed `<name>`. */
function readIdx(dir: string, name: string): [file: string, bytes: Buffer] {
  const gzipped = join(dir, `${name}.gz`);
  const plain = join(dir, name);
  if (existsSync(gzipped)) return [gzipped, gunzipOrFail(gzipped, readBytes(gzipped))];
  if (existsSync(plain)) return [plain, readBytes(plain)];
  throw new P2vitError(`${dir}: MNIST file not found: expected ${name}.gz or ${name}`);
}

function readBytes(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new P2vitError(`${file}: cannot read: ${(err as Error).message}`);
  }
}

function gunzipOrFail(file: string, bytes: Buffer): Buffer {
  try {
    return gunzipSync(bytes);
  } catch (err) {
    throw new P2vitError(`${file}: cannot decompress (expected a gzip file): ${(err as Error).message}`);
  }
}

function parseImages(file: string, bytes: Buffer): { pixels: Uint8Array; count: number; rows: number; cols: number } {
  checkHeader(file, bytes, IMAGES_HEADER_BYTES, IDX_IMAGES_MAGIC, "image");
  const count = bytes.readUInt32BE(4);
  const rows = bytes.readUInt32BE(8);
  const cols = bytes.readUInt32BE(12);
  check(count > 0 && rows > 0 && cols > 0, `${file}: expected non-zero dimensions, got ${count} images of ${rows}×${cols}`);
  checkLength(file, bytes, IMAGES_HEADER_BYTES + count * rows * cols, `${count} images of ${rows}×${cols}`);
  return { pixels: new Uint8Array(bytes.subarray(IMAGES_HEADER_BYTES)), count, rows, cols };
}

function parseLabels(file: string, bytes: Buffer): { labels: Uint8Array; count: number } {
  checkHeader(file, bytes, LABELS_HEADER_BYTES, IDX_LABELS_MAGIC, "label");
  const count = bytes.readUInt32BE(4);
  checkLength(file, bytes, LABELS_HEADER_BYTES + count, `${count} labels`);
  const labels = new Uint8Array(bytes.subarray(LABELS_HEADER_BYTES));
  const bad = labels.findIndex((label) => label >= NUM_CLASSES);
  check(bad < 0, () => `${file}: label ${bad} is ${labels[bad]}, expected 0..${NUM_CLASSES - 1}`);
  return { labels, count };
}

function checkHeader(file: string, bytes: Buffer, headerBytes: number, magic: number, kind: string): void {
  check(bytes.length >= headerBytes, `${file}: truncated: ${bytes.length} bytes, shorter than the ${headerBytes}-byte IDX ${kind} header`);
  const found = bytes.readUInt32BE(0);
  check(found === magic, `${file}: not an IDX ${kind} file: magic number ${found}, expected ${magic}`);
}

function checkLength(file: string, bytes: Buffer, expected: number, contents: string): void {
  check(
    bytes.length === expected,
    `${file}: ${bytes.length > expected ? "too long" : "truncated"}: the header promises ${contents} ` +
      `(${expected} bytes with the header) but the data has ${bytes.length} bytes`,
  );
}
