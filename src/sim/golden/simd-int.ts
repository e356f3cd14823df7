/**
 * The int8 GEMM of the golden Linear on WebAssembly SIMD: acc[m][c] = bias[c] + Σ_k x[m][k] · w[c][k],
 * in int32, for x rows × K and w N × K (both row-major int8). Integers only: the module uses i16/i32
 * vector ops and i32 scalars, nothing else. It is assembled here from its instructions (as
 * src/quant/float/simd.ts does for the float kernel) rather than shipped as an opaque binary.
 *
 * Both operands are widened to int16 outside the kernel (the weights once per layer, cached), so the
 * inner loop is loads, `i32x4.dot_i16x8_s` (eight int8 × int8 products summed pairwise into four int32
 * lanes) and `i32x4.add`. Lane sums wrap modulo 2^32, which is harmless: the caller guarantees
 * (arith.accumulatorFits) that the exact sum fits int32, and a sum that fits is its own residue.
 *
 * Shapes are padded: K to a multiple of 8 (one vector), rows to a multiple of TILE_ROWS and channels
 * to a multiple of TILE_CHANNELS. Only the weights' K padding must be zero (whatever x holds there
 * meets a zero weight and adds nothing); padded rows and channels give outputs nobody reads, so x's
 * padding and the bias's are left as the memory holds them.
 */
import { WasmMemory, ensureMemory, get, i32, instantiate, set, simd, singleFunctionModule, tee, uleb, zeroV128 } from "../../util/wasm.js";

// --- WebAssembly binary encoding: the few opcodes the kernel needs -----------------------------------
const EMPTY_BLOCK = 0x40;
const OP = {
  loop: 0x03,
  brIf: 0x0d,
  end: 0x0b,
  i32Load: 0x28,
  i32Store: 0x36,
  i32LtU: 0x49,
  i32Add: 0x6a,
  i32Mul: 0x6c,
  i32Shl: 0x74,
} as const;
const SIMD = { v128Load: 0x00, i32x4ExtractLane: 0x1b, i32x4Add: 0xae, i32x4DotI16x8S: 0xba } as const;
/** log2 of the alignment promised to loads and stores: every region below starts 16-byte aligned. */
const ALIGN_16 = 4;
const ALIGN_4 = 2;

const v128Load = (offset = 0) => [...simd(SIMD.v128Load), ALIGN_16, ...uleb(offset)];
const i32Load = (offset: number) => [OP.i32Load, ALIGN_4, ...uleb(offset)];
const i32Store = (offset: number) => [OP.i32Store, ALIGN_4, ...uleb(offset)];

/**
 * counter = 0; do { body; counter += step } while (counter < limit): one branch per iteration. Every
 * loop here runs at least once, as every padded dimension is at least one step.
 */
function doWhile(counter: number, limit: number[], step: number[], body: number[]): number[] {
  return [
    ...i32(0), ...set(counter),
    OP.loop, EMPTY_BLOCK,
    ...body,
    ...get(counter), ...step, OP.i32Add, ...tee(counter), ...limit, OP.i32LtU, OP.brIf, 0,
    OP.end,
  ];
}

// --- The kernel ----------------------------------------------------------------------------------------
/**
 * Outputs per tile. Registers: 2 × 4 accumulators + 2 x vectors + 1 w vector = 11 of x86-64's 16.
 * Measured on deit_tiny's shapes, 2 × 4 and 4 × 2 ran alike and 2 × 2, 3 × 4, 2 × 6 and 1 × 8 slower;
 * two rows waste less padding on one-row layers (the classifier head).
 */
const TILE_ROWS = 2;
const TILE_CHANNELS = 4;
/** int16 values per vector, so K is padded to a multiple of it. */
const LANES = 8;
const VECTOR_BYTES = 16;

// gemm(x, w, bias, out, rows, rowBytes, channels): parameters 0–6, then i32 locals, then v128 locals.
const [X, W, BIAS, OUT, ROWS, ROW_BYTES, CHANNELS] = [0, 1, 2, 3, 4, 5, 6];
const [O, R, KB, PW, WTILE, PBIAS, POUT, OUT_ROW_BYTES] = [7, 8, 9, 10, 11, 12, 13, 14];
const PX = 15; // px[i]: start of x row r + i
const I32_LOCALS = 8 + TILE_ROWS;
const ACC = PX + TILE_ROWS; // acc[i][j]: four int32 partial sums of row r + i, channel o + j
const A = ACC + TILE_ROWS * TILE_CHANNELS; // a[i]: eight int16 of x row r + i
const B = A + TILE_ROWS; // eight int16 of one weight row
const V128_LOCALS = TILE_ROWS * TILE_CHANNELS + TILE_ROWS + 1;

const acc = (i: number, j: number) => ACC + TILE_CHANNELS * i + j;

/** Σ of the four int32 lanes of a v128 local. */
function laneSum(local: number): number[] {
  const lane = (n: number) => [...get(local), ...simd(SIMD.i32x4ExtractLane), n];
  return [...lane(0), ...lane(1), OP.i32Add, ...lane(2), OP.i32Add, ...lane(3), OP.i32Add];
}

/**
 * One step of K: eight values of each tile row against eight of each tile channel. The packed weights
 * of a channel tile are interleaved (see packWeights), so the step reads TILE_CHANNELS consecutive
 * vectors at pw and moves pw on by as many.
 */
function kStep(): number[] {
  const code: number[] = [];
  for (let i = 0; i < TILE_ROWS; i++) code.push(...get(PX + i), ...get(KB), OP.i32Add, ...v128Load(), ...set(A + i));
  for (let j = 0; j < TILE_CHANNELS; j++) {
    code.push(...get(PW), ...v128Load(VECTOR_BYTES * j), ...set(B));
    for (let i = 0; i < TILE_ROWS; i++) {
      code.push(...get(acc(i, j)), ...get(A + i), ...get(B), ...simd(SIMD.i32x4DotI16x8S), ...simd(SIMD.i32x4Add), ...set(acc(i, j)));
    }
  }
  code.push(...get(PW), ...i32(VECTOR_BYTES * TILE_CHANNELS), OP.i32Add, ...set(PW));
  return code;
}

/** One tile: rows r.. × channels o.., summed over all of K, bias added, stored as int32. */
function tile(): number[] {
  // px[0] = x + r · rowBytes, px[i] = px[i − 1] + rowBytes
  const code: number[] = [...get(X), ...get(R), ...get(ROW_BYTES), OP.i32Mul, OP.i32Add, ...set(PX)];
  for (let i = 1; i < TILE_ROWS; i++) code.push(...get(PX + i - 1), ...get(ROW_BYTES), OP.i32Add, ...set(PX + i));
  code.push(...get(WTILE), ...set(PW));
  for (let a = 0; a < TILE_ROWS * TILE_CHANNELS; a++) code.push(...zeroV128, ...set(ACC + a));
  code.push(...doWhile(KB, get(ROW_BYTES), i32(VECTOR_BYTES), kStep()));
  // pout = out + (r · channels + o) · 4; row r + i lies i · outRowBytes further on.
  code.push(...get(OUT), ...get(R), ...get(CHANNELS), OP.i32Mul, ...get(O), OP.i32Add, ...i32(2), OP.i32Shl, OP.i32Add, ...set(POUT));
  for (let i = 0; i < TILE_ROWS; i++) {
    for (let j = 0; j < TILE_CHANNELS; j++) {
      code.push(
        ...get(POUT), ...get(OUT_ROW_BYTES), ...i32(i), OP.i32Mul, OP.i32Add,
        ...laneSum(acc(i, j)), ...get(PBIAS), ...i32Load(4 * j), OP.i32Add,
        ...i32Store(4 * j),
      );
    }
  }
  return code;
}

/**
 * Channel tiles outside, row tiles inside: one tile's weights (TILE_CHANNELS · K int16, at most 24 kB
 * for K = 3072) stay in L1 while the rows stream past them.
 */
function kernelBody(): number[] {
  const perChannelTile = [
    // the tile's weights start o · rowBytes into w: TILE_CHANNELS rows of rowBytes per tile
    ...get(W), ...get(O), ...get(ROW_BYTES), OP.i32Mul, OP.i32Add, ...set(WTILE),
    ...get(BIAS), ...get(O), ...i32(2), OP.i32Shl, OP.i32Add, ...set(PBIAS),
    ...doWhile(R, get(ROWS), i32(TILE_ROWS), tile()),
  ];
  return [
    ...get(CHANNELS), ...i32(2), OP.i32Shl, ...set(OUT_ROW_BYTES),
    ...doWhile(O, get(CHANNELS), i32(TILE_CHANNELS), perChannelTile),
  ];
}

function kernelModule(): Uint8Array {
  return singleFunctionModule("gemm", 7, I32_LOCALS, V128_LOCALS, kernelBody());
}

// --- The JavaScript side ----------------------------------------------------------------------------------

interface Kernel {
  gemm: (x: number, w: number, bias: number, out: number, rows: number, rowBytes: number, channels: number) => void;
  memory: WasmMemory;
}

/** undefined: not tried yet; null: no WebAssembly SIMD here. */
let kernel: Kernel | null | undefined;

function instance(): Kernel | null {
  if (kernel === undefined) {
    // null where the engine lacks SIMD: the caller then keeps its JavaScript kernel
    const exports = instantiate(kernelModule());
    kernel = exports === null ? null : { gemm: exports.gemm as Kernel["gemm"], memory: exports.memory as WasmMemory };
  }
  return kernel;
}

/** Whether gemmInt8Simd can run here (compiles the module on the first call, well under a millisecond). */
export function hasInt8Simd(): boolean {
  return instance() !== null;
}

const roundUp = (n: number, multiple: number) => (n + multiple - 1 - ((n + multiple - 1) % multiple));

/** Weights widened to int16 and interleaved, with the K and N they were packed for. */
interface PackedWeights {
  k: number;
  n: number;
  data: Int16Array;
}

/**
 * Packed once per layer: the golden model runs the same weight arrays image after image, and nothing
 * writes into a QLinear's weights once it is built (a cached copy would not see the change).
 */
const packedCache = new WeakMap<Int8Array, PackedWeights>();

/**
 * N × K int8 → int16, K padded to kPadded and N to a multiple of TILE_CHANNELS (zeros), laid out tile
 * by tile; within a tile, step by step of eight K values, the TILE_CHANNELS rows' eight values one
 * after another: exactly the order in which the kernel reads them, one sequential stream.
 */
function packWeights(w: Int8Array, k: number, n: number, kPadded: number): Int16Array {
  const steps = kPadded / LANES;
  const data = new Int16Array(roundUp(n, TILE_CHANNELS) * kPadded);
  for (let c = 0; c < n; c++) {
    const tileStart = (c - (c % TILE_CHANNELS)) * kPadded;
    const lane = (c % TILE_CHANNELS) * LANES;
    for (let s = 0; s < steps; s++) {
      const to = tileStart + s * TILE_CHANNELS * LANES + lane;
      const from = c * k + s * LANES;
      const count = Math.min(LANES, k - s * LANES);
      for (let l = 0; l < count; l++) data[to + l] = w[from + l];
    }
  }
  return data;
}

function packed(w: Int8Array, k: number, n: number, kPadded: number): Int16Array {
  const hit = packedCache.get(w);
  if (hit !== undefined && hit.k === k && hit.n === n) return hit.data;
  const data = packWeights(w, k, n, kPadded);
  packedCache.set(w, { k, n, data });
  return data;
}

/** int16 and int32 views of the kernel's memory, taken again whenever growing replaces its buffer. */
let view16 = new Int16Array(0);
let view32 = new Int32Array(0);

function memoryFor(kernelMemory: WasmMemory, bytes: number): void {
  ensureMemory(kernelMemory, bytes);
  if (view16.buffer !== kernelMemory.buffer) {
    view16 = new Int16Array(kernelMemory.buffer);
    view32 = new Int32Array(kernelMemory.buffer);
  }
}

/** x (rows × k int8) into int16 memory at element `at`, rows kPadded apart. */
function placeRows(x: Int8Array, rows: number, k: number, at: number, kPadded: number): void {
  if (k === kPadded) {
    view16.set(x, at);
  } else {
    for (let m = 0; m < rows; m++) view16.set(x.subarray(m * k, (m + 1) * k), at + m * kPadded);
  }
}

/** The accumulators of an empty sum: each row is the bias. */
function biasOnly(rows: number, n: number, bias: Int32Array): Int32Array {
  const acc = new Int32Array(rows * n);
  for (let m = 0; m < rows; m++) acc.set(bias.subarray(0, n), m * n);
  return acc;
}

/**
 * acc[m · n + c] = bias[c] + Σ_i x[m · k + i] · w[c · k + i] for m < rows, c < n, exact in int32 when
 * accumulatorFits(k, max|bias|, 32) holds (the caller's check). Call only when hasInt8Simd().
 */
export function gemmInt8Simd(x: Int8Array, rows: number, k: number, w: Int8Array, n: number, bias: Int32Array): Int32Array {
  const kern = instance();
  if (kern === null) throw new Error("gemmInt8Simd: this engine has no WebAssembly SIMD");
  if (rows === 0 || k === 0 || n === 0) return biasOnly(rows, n, bias); // the kernel's loops run at least once
  const kPadded = roundUp(k, LANES);
  const rowsPadded = roundUp(rows, TILE_ROWS);
  const nPadded = roundUp(n, TILE_CHANNELS);
  const weights = packed(w, k, n, kPadded);
  // Byte offsets of the four regions; each size is a multiple of 16, so each region is 16-byte aligned.
  const xAt = 0;
  const wAt = xAt + rowsPadded * kPadded * 2;
  const biasAt = wAt + weights.length * 2;
  const outAt = biasAt + nPadded * 4;
  memoryFor(kern.memory, outAt + rowsPadded * nPadded * 4);
  placeRows(x, rows, k, xAt / 2, kPadded);
  view16.set(weights, wAt / 2);
  view32.set(bias.subarray(0, n), biasAt / 4);
  kern.gemm(xAt, wAt, biasAt, outAt, rowsPadded, kPadded * 2, nPadded);
  const out = new Int32Array(rows * n);
  for (let m = 0; m < rows; m++) {
    const from = outAt / 4 + m * nPadded;
    out.set(view32.subarray(from, from + n), m * n);
  }
  return out;
}
