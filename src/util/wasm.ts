/**
 * Encoding helpers for the small WebAssembly modules this project assembles in TypeScript (the float
 * and the integer SIMD matrix kernels): LEB128 numbers, names, sections, vectors and the few
 * instruction encodings both use. Byte assembly only: no arithmetic of the kernels themselves.
 */

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a small non-negative constant (below 2^31). */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if (n === 0 && (byte & 0x40) === 0) return [...out, byte];
    out.push(byte | 0x80);
  }
}

/** An export name: ASCII only, so one byte per character. */
export function name(s: string): number[] {
  return [...uleb(s.length), ...Array.from(s, (ch) => ch.charCodeAt(0))];
}

export function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

export function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

/** The instructions both kernels use for locals, constants and the SIMD prefix. */
export const get = (local: number): number[] => [0x20, ...uleb(local)];
export const set = (local: number): number[] => [0x21, ...uleb(local)];
export const tee = (local: number): number[] => [0x22, ...uleb(local)];
export const i32 = (value: number): number[] => [0x41, ...sleb(value)];
export const simd = (op: number): number[] => [0xfd, ...uleb(op)];
/** v128.const of sixteen zero bytes. */
export const zeroV128: readonly number[] = [...simd(0x0c), ...new Array<number>(16).fill(0)];

export const I32 = 0x7f;
export const V128 = 0x7b;
const FUNC_TYPE = 0x60;
const PAGE_BYTES = 65536;

/**
 * A module of one exported function, `params` i32 parameters and no result, with `i32Locals` and
 * `v128Locals` locals and the given body (without its final `end`), and an exported growable memory.
 */
export function singleFunctionModule(exportName: string, params: number, i32Locals: number, v128Locals: number, body: number[]): Uint8Array {
  const code = [...vec([[...uleb(i32Locals), I32], [...uleb(v128Locals), V128]]), ...body, 0x0b];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, vec([[FUNC_TYPE, ...vec(new Array(params).fill([I32])), ...vec([])]])), // type: (i32 × params) → ()
    ...section(3, vec([uleb(0)])), // function 0 has type 0
    ...section(5, vec([[0x00, ...uleb(1)]])), // one memory, at least one page, growable
    ...section(7, vec([[...name(exportName), 0x00, ...uleb(0)], [...name("memory"), 0x02, ...uleb(0)]])),
    ...section(10, vec([[...uleb(code.length), ...code]])),
  ]);
}

// The project compiles against the ES2022 library, which has no WebAssembly types: these are the few
// members used, on the global object that Node provides.
export interface WasmMemory {
  buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}

/** The module's exports, or null where the engine has no WebAssembly or rejects the module (no SIMD). */
export function instantiate(bytes: Uint8Array): Record<string, unknown> | null {
  const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  if (wasm === undefined || !wasm.validate(bytes)) return null;
  return new wasm.Instance(new wasm.Module(bytes)).exports;
}

/** Grows `memory` until it holds at least `bytes` bytes (growing detaches views of the old buffer). */
export function ensureMemory(memory: WasmMemory, bytes: number): void {
  const missing = bytes - memory.buffer.byteLength;
  if (missing > 0) memory.grow(Math.ceil(missing / PAGE_BYTES));
}
