/**
 * x · Wᵀ on WebAssembly SIMD: four float32 lanes per instruction, several times the speed of scalar
 * JavaScript (whose every number is a double). The module is tiny, so it is assembled here from its
 * instructions rather than shipped as an opaque binary: one function,
 *   mm(x, w, out, rows, k, outF)
 * over float32 matrices in the module's memory, x rows × k, W outF × k (both row-major), out rows × outF,
 * with rows a multiple of 2, k and outF multiples of 4. The caller pads to those multiples with zeros,
 * which add nothing to any sum. Each 2 × 4 block of outputs is held in eight 4-lane accumulators
 * (8 + 2 + 4 vector registers: no spills on x86-64's sixteen), summed across lanes at the end.
 */
import { WasmMemory, ensureMemory, get, i32, instantiate, set, simd, singleFunctionModule, tee, uleb, zeroV128 } from "../../util/wasm.js";

// --- WebAssembly binary encoding: the few opcodes the kernel needs -----------------------------------
const EMPTY_BLOCK = 0x40;
const OP = {
  block: 0x02,
  loop: 0x03,
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Mul: 0x6c,
  i32Shl: 0x74,
  f32Add: 0x92,
  f32Store: 0x38,
} as const;
const SIMD = { v128Load: 0x00, f32x4ExtractLane: 0x1f, f32x4Add: 0xe4, f32x4Mul: 0xe6 } as const;
/** log2 of the alignment promised to loads and stores: floats are 4-byte aligned. */
const ALIGN_4 = 2;

const v128Load = (offset = 0) => [...simd(SIMD.v128Load), ALIGN_4, ...uleb(offset)];
const f32Store = (offset: number) => [OP.f32Store, ALIGN_4, ...uleb(offset)];

/** for (counter = 0; counter < limit; counter += step) body — `limit` and `step` are instruction lists. */
function forUp(counter: number, limit: number[], step: number[], body: number[]): number[] {
  return [
    ...i32(0), ...set(counter),
    OP.block, EMPTY_BLOCK, OP.loop, EMPTY_BLOCK,
    ...get(counter), ...limit, OP.i32GeU, OP.brIf, 1,
    ...body,
    ...get(counter), ...step, OP.i32Add, ...set(counter),
    OP.br, 0,
    OP.end, OP.end,
  ];
}

// --- The kernel ----------------------------------------------------------------------------------------
// Parameters 0–5, then i32 locals, then v128 locals.
const [X, W, OUT, ROWS, K, OUTF] = [0, 1, 2, 3, 4, 5];
const [R, O, KB, ROW_BYTES, PA0, PA1, PB0, PB1, PB2, PB3, POUT, OUT_ROW_BYTES] = [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17];
const I32_LOCALS = 12;
const ACC = 18; // acc[i][j] is local ACC + 4·i + j, i < 2 rows, j < 4 outputs
const A = ACC + 8; // a[i]: four consecutive floats of x row r + i
const B = A + 2; // b[j]: four consecutive floats of W row o + j
const V128_LOCALS = 8 + 2 + 4;

const acc = (i: number, j: number) => ACC + 4 * i + j;

/** Σ of the four lanes of a v128 local, as (l0 + l1) + (l2 + l3). */
function laneSum(local: number): number[] {
  const lane = (n: number) => [...get(local), ...simd(SIMD.f32x4ExtractLane), n];
  return [...lane(0), ...lane(1), OP.f32Add, ...lane(2), ...lane(3), OP.f32Add, OP.f32Add];
}

function kernelBody(): number[] {
  const innerK: number[] = [];
  for (let i = 0; i < 2; i++) innerK.push(...get(i === 0 ? PA0 : PA1), ...get(KB), OP.i32Add, ...v128Load(), ...set(A + i));
  for (let j = 0; j < 4; j++) {
    innerK.push(...get(PB0 + j), ...get(KB), OP.i32Add, ...v128Load(), ...set(B + j));
    for (let i = 0; i < 2; i++) {
      innerK.push(...get(acc(i, j)), ...get(A + i), ...get(B + j), ...simd(SIMD.f32x4Mul), ...simd(SIMD.f32x4Add), ...set(acc(i, j)));
    }
  }
  const tile: number[] = [
    // pa0 = x + r · rowBytes, pa1 = pa0 + rowBytes; pb0..pb3 likewise for W rows o..o+3
    ...get(X), ...get(R), ...get(ROW_BYTES), OP.i32Mul, OP.i32Add, ...tee(PA0), ...get(ROW_BYTES), OP.i32Add, ...set(PA1),
    ...get(W), ...get(O), ...get(ROW_BYTES), OP.i32Mul, OP.i32Add, ...set(PB0),
  ];
  for (let j = 1; j < 4; j++) tile.push(...get(PB0 + j - 1), ...get(ROW_BYTES), OP.i32Add, ...set(PB0 + j));
  for (let a = 0; a < 8; a++) tile.push(...zeroV128, ...set(ACC + a));
  tile.push(...forUp(KB, get(ROW_BYTES), i32(16), innerK));
  // pout = out + (r · outF + o) · 4; row r + 1 lies outRowBytes further on.
  tile.push(...get(OUT), ...get(R), ...get(OUTF), OP.i32Mul, ...get(O), OP.i32Add, ...i32(2), OP.i32Shl, OP.i32Add, ...set(POUT));
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 4; j++) {
      tile.push(...get(POUT), ...(i === 0 ? [] : [...get(OUT_ROW_BYTES), OP.i32Add]), ...laneSum(acc(i, j)), ...f32Store(4 * j));
    }
  }
  return [
    ...get(K), ...i32(2), OP.i32Shl, ...set(ROW_BYTES),
    ...get(OUTF), ...i32(2), OP.i32Shl, ...set(OUT_ROW_BYTES),
    ...forUp(R, get(ROWS), i32(2), forUp(O, get(OUTF), i32(4), tile)),
  ];
}

function kernelModule(): Uint8Array {
  return singleFunctionModule("mm", 6, I32_LOCALS, V128_LOCALS, kernelBody());
}

// --- The JavaScript side ----------------------------------------------------------------------------------

interface Kernel {
  mm: (x: number, w: number, out: number, rows: number, k: number, outF: number) => void;
  memory: WasmMemory;
}

let kernel: Kernel | null = null;

/** The kernel, compiled on first use (well under a millisecond: the module is under 1 kB). */
function instance(): Kernel {
  if (kernel === null) {
    const exports = instantiate(kernelModule());
    if (exports === null) throw new Error("this JavaScript engine has no WebAssembly SIMD");
    kernel = { mm: exports.mm as Kernel["mm"], memory: exports.memory as WasmMemory };
  }
  return kernel;
}

const roundUp = (n: number, multiple: number) => Math.ceil(n / multiple) * multiple;

let view: Float32Array | null = null;

/** A float32 view of the kernel's memory with room for `floats` values, growing the memory if needed. */
function memoryFor(floats: number): Float32Array {
  const { memory } = instance();
  ensureMemory(memory, floats * 4);
  // Growing detaches the old buffer, so a view is taken (once) for each buffer the memory has had.
  if (view === null || view.buffer !== memory.buffer) view = new Float32Array(memory.buffer);
  return view;
}

/**
 * Copies a rows × cols matrix into `mem` at float offset `at` with rows padded to `paddedCols`
 * columns and `paddedRows` rows, the padding zeroed (the memory holds the previous call's data).
 */
function placePadded(mem: Float32Array, at: number, m: Float32Array, rows: number, cols: number, paddedRows: number, paddedCols: number): void {
  if (cols === paddedCols) {
    mem.set(m.subarray(0, rows * cols), at);
  } else {
    for (let r = 0; r < rows; r++) {
      const row = at + r * paddedCols;
      mem.set(m.subarray(r * cols, (r + 1) * cols), row);
      mem.fill(0, row + cols, row + paddedCols);
    }
  }
  mem.fill(0, at + rows * paddedCols, at + paddedRows * paddedCols);
}

/** out = x · Wᵀ on the SIMD kernel: x rows × inF, W outF × inF, out rows × outF (no bias). */
export function simdMatmulTransposed(x: Float32Array, rows: number, w: Float32Array, inF: number, outF: number, out: Float32Array): void {
  const rowsP = roundUp(rows, 2);
  const kP = roundUp(inF, 4);
  const outP = roundUp(outF, 4);
  const xAt = 0;
  const wAt = xAt + rowsP * kP;
  const outAt = wAt + outP * kP;
  const mem = memoryFor(outAt + rowsP * outP);
  placePadded(mem, xAt, x, rows, inF, rowsP, kP);
  placePadded(mem, wAt, w, outF, inF, outP, kP);
  instance().mm(xAt * 4, wAt * 4, outAt * 4, rowsP, kP, outP);
  if (outP === outF) {
    out.set(mem.subarray(outAt, outAt + rows * outF));
  } else {
    for (let r = 0; r < rows; r++) out.set(mem.subarray(outAt + r * outP, outAt + r * outP + outF), r * outF);
  }
}
