/**
 * Float32 kernels of the reference forward pass: matrix products, LayerNorm, softmax and the MLP
 * activations. Tensors are row-major Float32Array. Products of any size run on the WebAssembly SIMD
 * kernel (simd.ts, float32 lane sums as in a float32 framework); tiny ones, where copying into its
 * memory costs more than it saves, run on the scalar kernel here, which sums in double precision.
 */
import { check } from "../../util/errors.js";
import { erf, erfc } from "./erf.js";
import { simdMatmulTransposed } from "./simd.js";

/** Multiply-adds from which the SIMD kernel beats the scalar one (measured: 2 µs against 3 at 17 × 8 × 17). */
const SIMD_MIN_MACS = 4096;
/** Rows of the left operand kept hot in cache while every 4-row block of the right operand streams past. */
const ROW_PANEL = 64;

/** out = x · Wᵀ (+ bias): x is rows × inF, W is outF × inF (timm's Linear layout), out rows × outF. */
export function matmulTransposed(
  x: Float32Array,
  rows: number,
  w: Float32Array,
  inF: number,
  outF: number,
  bias: Float32Array | null = null,
): Float32Array {
  const out = new Float32Array(rows * outF);
  if (rows * inF * outF >= SIMD_MIN_MACS) simdMatmulTransposed(x, rows, w, inF, outF, out);
  else scalarMatmulTransposed(x, rows, w, inF, outF, out);
  if (bias !== null) addRowVector(out, rows, outF, bias);
  return out;
}

/**
 * x · Wᵀ in scalar JavaScript. Both operands are read along contiguous rows. The work is tiled into
 * 4 × 4 output tiles held in sixteen accumulators, so each loaded element of x or W feeds four
 * products, and the sixteen independent sums keep the floating-point pipeline full.
 */
export function scalarMatmulTransposed(x: Float32Array, rows: number, w: Float32Array, inF: number, outF: number, out: Float32Array): void {
  const oTiled = outF - (outF % 4);
  for (let r0 = 0; r0 < rows; r0 += ROW_PANEL) {
    const r1 = Math.min(rows, r0 + ROW_PANEL);
    for (let o = 0; o < oTiled; o += 4) {
      const rTiled = r0 + ((r1 - r0) & ~3);
      for (let r = r0; r < rTiled; r += 4) tile4x4(x, r, w, inF, outF, o, out);
      for (let r = rTiled; r < r1; r++) tile1x4(x, r, w, inF, outF, o, out);
    }
    for (let o = oTiled; o < outF; o++) {
      for (let r = r0; r < r1; r++) out[r * outF + o] = dot(x, r * inF, w, o * inF, inF);
    }
  }
}

/** Outputs (r..r+3) × (o..o+3). */
function tile4x4(x: Float32Array, r: number, w: Float32Array, inF: number, outF: number, o: number, out: Float32Array): void {
  const x0 = r * inF, x1 = x0 + inF, x2 = x1 + inF, x3 = x2 + inF;
  const w0 = o * inF, w1 = w0 + inF, w2 = w1 + inF, w3 = w2 + inF;
  let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
  let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
  for (let k = 0; k < inF; k++) {
    const b0 = w[w0 + k], b1 = w[w1 + k], b2 = w[w2 + k], b3 = w[w3 + k];
    let a = x[x0 + k];
    s00 += a * b0; s01 += a * b1; s02 += a * b2; s03 += a * b3;
    a = x[x1 + k];
    s10 += a * b0; s11 += a * b1; s12 += a * b2; s13 += a * b3;
    a = x[x2 + k];
    s20 += a * b0; s21 += a * b1; s22 += a * b2; s23 += a * b3;
    a = x[x3 + k];
    s30 += a * b0; s31 += a * b1; s32 += a * b2; s33 += a * b3;
  }
  let y = r * outF + o;
  out[y] = s00; out[y + 1] = s01; out[y + 2] = s02; out[y + 3] = s03;
  y += outF;
  out[y] = s10; out[y + 1] = s11; out[y + 2] = s12; out[y + 3] = s13;
  y += outF;
  out[y] = s20; out[y + 1] = s21; out[y + 2] = s22; out[y + 3] = s23;
  y += outF;
  out[y] = s30; out[y + 1] = s31; out[y + 2] = s32; out[y + 3] = s33;
}

/** Outputs r × (o..o+3), for the rows left over after the 4-row tiles. */
function tile1x4(x: Float32Array, r: number, w: Float32Array, inF: number, outF: number, o: number, out: Float32Array): void {
  const x0 = r * inF;
  const w0 = o * inF, w1 = w0 + inF, w2 = w1 + inF, w3 = w2 + inF;
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (let k = 0; k < inF; k++) {
    const a = x[x0 + k];
    s0 += a * w[w0 + k]; s1 += a * w[w1 + k]; s2 += a * w[w2 + k]; s3 += a * w[w3 + k];
  }
  const y = r * outF + o;
  out[y] = s0; out[y + 1] = s1; out[y + 2] = s2; out[y + 3] = s3;
}

/** Σ a[ia + k] · b[ib + k] over k < n, in four interleaved partial sums. */
function dot(a: Float32Array, ia: number, b: Float32Array, ib: number, n: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const n4 = n - (n % 4);
  let k = 0;
  for (; k < n4; k += 4) {
    s0 += a[ia + k] * b[ib + k];
    s1 += a[ia + k + 1] * b[ib + k + 1];
    s2 += a[ia + k + 2] * b[ib + k + 2];
    s3 += a[ia + k + 3] * b[ib + k + 3];
  }
  for (; k < n; k++) s0 += a[ia + k] * b[ib + k];
  return s0 + s1 + s2 + s3;
}

/** m[r, :] += v for every row of a rows × cols matrix. */
function addRowVector(m: Float32Array, rows: number, cols: number, v: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) m[base + c] += v[c];
  }
}

/** The transpose of a rows × cols matrix. */
export function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c];
  }
  return out;
}

/**
 * LayerNorm of each row of a rows × dim matrix: (x − mean) / sqrt(var + eps) · gamma + beta, with the
 * biased variance (as torch). Two passes over the row: subtracting the mean before squaring avoids
 * the cancellation of E[x²] − E[x]².
 */
export function layerNorm(x: Float32Array, rows: number, dim: number, gamma: Float32Array, beta: Float32Array, eps: number): Float32Array {
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    let sum = 0;
    for (let c = 0; c < dim; c++) sum += x[base + c];
    const mean = sum / dim;
    let squares = 0;
    for (let c = 0; c < dim; c++) {
      const d = x[base + c] - mean;
      squares += d * d;
    }
    const invStd = 1 / Math.sqrt(squares / dim + eps);
    for (let c = 0; c < dim; c++) out[base + c] = (x[base + c] - mean) * invStd * gamma[c] + beta[c];
  }
  return out;
}

/**
 * Softmax of each row. The row maximum is subtracted first, so every exponent is ≤ 0: no overflow,
 * and the fast exp below applies.
 */
export function softmaxRows(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const e = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) if (x[base + c] > max) max = x[base + c];
    let sum = 0;
    for (let c = 0; c < cols; c++) {
      e[c] = expNonPositive(x[base + c] - max);
      sum += e[c];
    }
    const inv = 1 / sum;
    for (let c = 0; c < cols; c++) out[base + c] = e[c] * inv;
  }
  return out;
}

// exp(x) for x ≤ 0, a few times faster than Math.exp, which dominated the softmax: with k the nearest
// integer to 64·x/ln 2, exp(x) = 2^(k >> 6) · 2^((k & 63)/64) · exp(r), where r = x − k·ln2/64 lies in
// ±ln2/128 and exp(r) is its Taylor polynomial to r⁵ (error below r⁶/720 < 4e-17). ln2/64 is split in a
// short head (exact in k·head) and a tail, so r carries no rounding error from the reduction.
const STEPS_PER_OCTAVE = 64;
const LN2_STEP_HEAD = 0.010830424696905538; // ln2/64 rounded to 32 significant bits: k · head is exact
const LN2_STEP_TAIL = -6.563929801064195e-13; // ln2/64 − head, from 50-digit ln 2 (Math.LN2 / 64 − head would lose digits)
/** Below this, exp(x) < 2^-1074, the smallest double. */
const EXP_UNDERFLOW = -745.2;
const FRACTION_POWERS = Float64Array.from({ length: STEPS_PER_OCTAVE }, (_, j) => 2 ** (j / STEPS_PER_OCTAVE));
const OCTAVES = 1076;
/** 2^−n for n = 0 … 1075 (2^−1075 rounds to 0, the limit of a double). */
const NEGATIVE_POWERS = Float64Array.from({ length: OCTAVES }, (_, n) => 2 ** -n);

/** exp(x) for x ≤ 0, within a few ulp of the exact value. */
export function expNonPositive(x: number): number {
  if (x < EXP_UNDERFLOW) return 0;
  const k = Math.round(x * (STEPS_PER_OCTAVE / Math.LN2));
  const r = x - k * LN2_STEP_HEAD - k * LN2_STEP_TAIL;
  const p = 1 + r * (1 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120)))));
  // k ≤ 0: the octave −(k >> 6) ≥ 0 and the step k & 63 come from its two's complement.
  const power = NEGATIVE_POWERS[-(k >> 6)] * FRACTION_POWERS[k & 63];
  return power * p;
}

/**
 * Where GELU of a negative input switches from 1 − erf(a) to erfc(a), a = −x/√2: below it the table's
 * absolute error of 1e-16 is still a relative error under 1e-8 (erfc(4) = 1.5e-8), far inside float32's
 * 6e-8; beyond it only the continued fraction keeps the tiny result relatively accurate.
 */
const GELU_TAIL = 4;

/**
 * The exact GELU, x · Φ(x) = x/2 · (1 + erf(x/√2)) (torch's default, not the tanh approximation).
 * For negative x, 1 + erf(x/√2) = erfc(|x|/√2), taken from the continued fraction in the far tail.
 */
export function gelu(x: number): number {
  if (x >= 0) return 0.5 * x * (1 + erf(x * Math.SQRT1_2));
  const a = -x * Math.SQRT1_2;
  return 0.5 * x * (a < GELU_TAIL ? 1 - erf(a) : erfc(a));
}

/** GELU of every element. */
export function geluArray(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = gelu(x[i]);
  return out;
}

/** ReLU of every element. */
export function reluArray(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] > 0 ? x[i] : 0;
  return out;
}

/** a + b, elementwise when the shapes match, else with b a single row broadcast over every row of a. */
export function addArrays(a: Float32Array, b: Float32Array): Float32Array {
  check(
    b.length > 0 && a.length % b.length === 0,
    `add: the second operand (${b.length} values) is neither a's shape nor one row of it (a has ${a.length} values)`,
  );
  const out = new Float32Array(a.length);
  const cols = b.length;
  for (let base = 0; base < a.length; base += cols) {
    for (let c = 0; c < cols; c++) out[base + c] = a[base + c] + b[c];
  }
  return out;
}
