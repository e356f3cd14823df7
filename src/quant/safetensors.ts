/**
 * Reader and writer for the safetensors format: an 8-byte little-endian header length N, N bytes of
 * UTF-8 JSON describing each tensor (dtype, shape, byte range), then the raw data. Every tensor is
 * returned as float32, whatever its stored floating-point dtype.
 */
import { readFileSync } from "node:fs";
import { check, P2vitError } from "../util/errors.js";
import { writeFileAtomic } from "../util/atomic.js";

export interface Tensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

const BYTES_PER_ELEMENT = { F32: 4, F16: 2, BF16: 2 } as const;
type Dtype = keyof typeof BYTES_PER_ELEMENT;
const SUPPORTED_DTYPES = Object.keys(BYTES_PER_ELEMENT) as Dtype[];

const HEADER_LENGTH_BYTES = 8;
const METADATA_KEY = "__metadata__";

interface TensorEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Number of elements of a tensor of this shape (1 for a scalar, shape []). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Reads every tensor of a safetensors file, converted to float32. */
export function readSafetensors(file: string): Map<string, Tensor> {
  const bytes = readWholeFile(file);
  const { entries, dataStart } = parseHeader(file, bytes);
  const dataLength = bytes.length - dataStart;
  const tensors = new Map<string, Tensor>();
  for (const entry of entries) {
    check(
      entry.end <= dataLength,
      () =>
        `${file}: truncated: tensor '${entry.name}' needs bytes ${entry.begin}..${entry.end} of the data section ` +
        `but the file has only ${dataLength}`,
    );
    const data = decodeFloats(bytes, dataStart + entry.begin, elementCount(entry.shape), entry.dtype);
    tensors.set(entry.name, { name: entry.name, shape: entry.shape, data });
  }
  return tensors;
}

/** Writes float32 tensors as a safetensors file, atomically. */
export function writeSafetensors(file: string, tensors: Tensor[]): void {
  const entries: [string, unknown][] = [];
  const names = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    check(t.name !== METADATA_KEY, `${file}: '${METADATA_KEY}' is reserved and cannot be a tensor name`);
    check(!names.has(t.name), `${file}: tensor name '${t.name}' given twice`);
    check(
      t.data.length === elementCount(t.shape),
      `${file}: tensor '${t.name}' has ${t.data.length} values but shape [${t.shape}] needs ${elementCount(t.shape)}`,
    );
    names.add(t.name);
    const end = offset + t.data.length * BYTES_PER_ELEMENT.F32;
    entries.push([t.name, { dtype: "F32", shape: t.shape, data_offsets: [offset, end] }]);
    offset = end;
  }
  const headerBytes = paddedHeader(JSON.stringify(Object.fromEntries(entries)));
  const out = Buffer.alloc(HEADER_LENGTH_BYTES + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, HEADER_LENGTH_BYTES);
  let pos = HEADER_LENGTH_BYTES + headerBytes.length;
  for (const t of tensors) {
    for (const v of t.data) pos = out.writeFloatLE(v, pos);
  }
  writeFileAtomic(file, out);
}

/** The header padded with spaces to a multiple of 8 bytes, so the data section starts aligned. */
function paddedHeader(json: string): Buffer {
  const raw = Buffer.from(json, "utf8");
  const padding = (8 - (raw.length % 8)) % 8;
  return Buffer.concat([raw, Buffer.alloc(padding, " ")]);
}

function readWholeFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new P2vitError(`${file}: file not found (expected a safetensors file)`);
    throw new P2vitError(`${file}: cannot read: ${(err as Error).message}`);
  }
}

function parseHeader(file: string, bytes: Buffer): { entries: TensorEntry[]; dataStart: number } {
  check(
    bytes.length >= HEADER_LENGTH_BYTES,
    `${file}: not a safetensors file: it has ${bytes.length} bytes, fewer than the 8-byte header length field`,
  );
  const headerLength = bytes.readBigUInt64LE(0);
  const available = bytes.length - HEADER_LENGTH_BYTES;
  check(
    headerLength <= BigInt(available),
    `${file}: bad header length ${headerLength}: only ${available} bytes follow the length field (corrupt or not a safetensors file)`,
  );
  const dataStart = HEADER_LENGTH_BYTES + Number(headerLength);
  const header = parseHeaderJson(file, bytes.subarray(HEADER_LENGTH_BYTES, dataStart).toString("utf8"));
  const entries = Object.entries(header)
    .filter(([name]) => name !== METADATA_KEY)
    .map(([name, value]) => parseEntry(file, name, value));
  return { entries, dataStart };
}

function parseHeaderJson(file: string, text: string): Record<string, unknown> {
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    throw new P2vitError(`${file}: header is not valid JSON: ${(err as Error).message}`);
  }
  check(isPlainObject(header), `${file}: header must be a JSON object mapping tensor names to entries`);
  return header;
}

function parseEntry(file: string, name: string, value: unknown): TensorEntry {
  const where = `${file}: tensor '${name}'`;
  check(isPlainObject(value), `${where}: expected an object {dtype, shape, data_offsets}, got ${JSON.stringify(value)}`);
  const { dtype, shape, data_offsets: offsets } = value;
  check(
    typeof dtype === "string" && (SUPPORTED_DTYPES as string[]).includes(dtype),
    () => `${where}: unsupported dtype ${JSON.stringify(dtype)}; supported: ${SUPPORTED_DTYPES.join(", ")}`,
  );
  check(
    Array.isArray(shape) && shape.every(isNonNegativeInteger),
    () => `${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`,
  );
  check(
    Array.isArray(offsets) && offsets.length === 2 && offsets.every(isNonNegativeInteger) && offsets[0] <= offsets[1],
    () => `${where}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`,
  );
  const [begin, end] = offsets as [number, number];
  const needed = elementCount(shape) * BYTES_PER_ELEMENT[dtype as Dtype];
  check(
    end - begin === needed,
    () => `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape [${shape}] of ${dtype} needs ${needed}`,
  );
  return { name, dtype: dtype as Dtype, shape: [...shape], begin, end };
}

function decodeFloats(bytes: Buffer, start: number, count: number, dtype: Dtype): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, count * BYTES_PER_ELEMENT[dtype]);
  const out = new Float32Array(count);
  switch (dtype) {
    case "F32":
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case "F16":
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      break;
    case "BF16":
      for (let i = 0; i < count; i++) out[i] = bfloat16ToFloat(view.getUint16(2 * i, true));
      break;
  }
  return out;
}

/** Value of an IEEE 754 binary16 bit pattern. */
function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

// bfloat16 is the top half of a float32, so widening it is a 16-bit shift of the bit pattern.
const bfloatWord = new Uint32Array(1);
const bfloatValue = new Float32Array(bfloatWord.buffer);

/** Value of a bfloat16 bit pattern. */
function bfloat16ToFloat(bits: number): number {
  bfloatWord[0] = bits << 16;
  return bfloatValue[0];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isNonNegativeInteger(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
