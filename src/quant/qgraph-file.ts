/**
 * The QGraph file: an 8-byte little-endian header length, a JSON header, then the binary data of
 * every typed array, each referenced from the header as { "$array": dtype, offset, length }.
 * Same layout idea as safetensors, so it is easy to read from any language (docs/qgraph.md).
 */
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../util/atomic.js";
import { P2vitError } from "../util/errors.js";

type TypedArray = Int8Array | Uint8Array | Int16Array | Int32Array | Float32Array;
const DTYPES = { int8: Int8Array, uint8: Uint8Array, int16: Int16Array, int32: Int32Array, float32: Float32Array } as const;
type Dtype = keyof typeof DTYPES;

interface ArrayRef {
  $array: Dtype;
  offset: number;
  length: number;
}

function dtypeOf(a: TypedArray): Dtype {
  for (const [name, ctor] of Object.entries(DTYPES)) if (a instanceof ctor) return name as Dtype;
  throw new Error(`unsupported array type ${a.constructor.name}`);
}

function isTypedArray(v: unknown): v is TypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

/** Encodes any JSON-like value holding typed arrays. */
export function encodeWithArrays(value: unknown): Uint8Array {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const header = JSON.stringify(value, (_key, v) => {
    if (!isTypedArray(v)) return v;
    const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice();
    // align every array to 8 bytes so a reader can map it in place
    const pad = (8 - (offset % 8)) % 8;
    if (pad) chunks.push(new Uint8Array(pad));
    offset += pad;
    const ref: ArrayRef = { $array: dtypeOf(v), offset, length: v.length };
    chunks.push(bytes);
    offset += bytes.length;
    return ref;
  });
  const headerBytes = new TextEncoder().encode(header);
  const headerPad = (8 - (headerBytes.length % 8)) % 8;
  const out = new Uint8Array(8 + headerBytes.length + headerPad + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length + headerPad), true);
  out.set(headerBytes, 8);
  out.fill(0x20, 8 + headerBytes.length, 8 + headerBytes.length + headerPad);
  let at = 8 + headerBytes.length + headerPad;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export function decodeWithArrays(bytes: Uint8Array, file: string): unknown {
  if (bytes.length < 8) throw new P2vitError(`${file}: not a QGraph file: ${bytes.length} bytes, fewer than the 8-byte header length`);
  const headerLen = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + headerLen > bytes.length) throw new P2vitError(`${file}: truncated: header of ${headerLen} bytes but the file has ${bytes.length}`);
  const data = bytes.subarray(8 + headerLen);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)), (_key, v) => {
      if (v && typeof v === "object" && "$array" in v) return readArray(v as ArrayRef, data, file);
      return v;
    });
  } catch (err) {
    if (err instanceof P2vitError) throw err;
    throw new P2vitError(`${file}: the header is not valid JSON (${(err as Error).message})`);
  }
  return parsed;
}

function readArray(ref: ArrayRef, data: Uint8Array, file: string): TypedArray {
  const ctor = DTYPES[ref.$array];
  if (!ctor) throw new P2vitError(`${file}: unknown array dtype "${ref.$array}" (expected ${Object.keys(DTYPES).join(", ")})`);
  const size = ref.length * ctor.BYTES_PER_ELEMENT;
  if (!Number.isInteger(ref.offset) || !Number.isInteger(ref.length) || ref.offset < 0 || ref.offset + size > data.length) {
    throw new P2vitError(`${file}: truncated: an ${ref.$array} array needs bytes ${ref.offset}..${ref.offset + size} of the data section, which has ${data.length}`);
  }
  // copy into a fresh buffer: the file's bytes may be a view into a shared (pooled) buffer
  const copy = new Uint8Array(size);
  copy.set(data.subarray(ref.offset, ref.offset + size));
  return new ctor(copy.buffer, 0, ref.length);
}

export function writeWithArrays(file: string, value: unknown): void {
  writeFileAtomic(file, encodeWithArrays(value));
}

export function readWithArrays(file: string): unknown {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new P2vitError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  return decodeWithArrays(bytes, file);
}
