/**
 * Golden kernel of the LayerNorm core (docs/arithmetic.md, "Integer LayerNorm with PTF input"): int8
 * input with a power-of-two factor per channel (PTF), exact integer row statistics, a floor integer
 * square root, one reciprocal per row, then per channel an 8-bit multiplier, an int32 bias and a
 * rounding shift to int8. Integers only: every value below is an integer under 2^53, and the only
 * divisions are shifts (division or multiplication by a power of two, exact in doubles, as in
 * arith.shiftRound); σ is divided into a power of two by restoring division, bit by bit.
 */
import { check } from "../../util/errors.js";

/** Widest row the core normalizes; every bit width in docs/arithmetic.md is stated for it. */
export const MAX_LN_DIM = 1024;
/** Largest PTF factor: channel c's integers are shifted left by k[c] ≤ 3 to the common exponent α − 3. */
export const MAX_PTF_K = 3;
/** Fractional bits of the normalized value z = (x − μ) / σ · 2^F that the multiplier sees. */
export const NORM_FRAC_BITS = 12;
/** The row reciprocal R = floor(2^(L + RECIP_BITS − 1) / σ) lies in [2^(RECIP_BITS−1), 2^RECIP_BITS]. */
export const RECIP_BITS = 16;
/** |M[c]| ≤ 255: an 8-bit magnitude with its sign, as in FQ-ViT. */
export const MAX_LN_MULTIPLIER = 255;
/** Output shifts N[c] are 0..MAX_LN_SHIFT. */
export const MAX_LN_SHIFT = 22;
/** ε folded into the variance is at most 2^40, the same width as the variance term itself. */
export const MAX_LN_EPS_TERM = 2 ** 40;

/**
 * Everything the LayerNorm core needs, all integers; a plain object of typed arrays and numbers so it
 * serializes into the QGraph. Channel c of the input is int8 at exponent α − 3 + k[c]; the output is
 * int8 at the op's output exponent. The exponents themselves are not needed by the integer kernel.
 */
export interface IntLayerNormParams {
  /** PTF factor per channel, 0..3. */
  k: Uint8Array;
  /** ε · D² at the aligned scale 2^(α−3), rounded: added to D·Σa² − (Σa)². 0..2^40. */
  epsTerm: number;
  /** Per-channel multiplier M[c], |M[c]| ≤ 255: γ[c] / 2^αy · 2^(N[c] − F). */
  multiplier: Int16Array;
  /** Per-channel bias B[c] at scale 2^−N[c] of the output step: β[c] / 2^αy · 2^N[c], int32. */
  bias: Int32Array;
  /** Per-channel rounding right shift N[c], 0..22. */
  shift: Uint8Array;
}

/** The per-row quantities of the core, in the order the hardware computes them. */
export interface LnRowStats {
  /** S1 = Σ a[c], with a[c] = x[c] · 2^k[c]. */
  sum: number;
  /** S2 = Σ a[c]². */
  sumSq: number;
  /** V = D·S2 − S1² = D² · variance, exact and ≥ 0. */
  variance: number;
  /** σ = max(1, isqrt(V + E)) ≈ D · std. */
  sigma: number;
  /** L = bit length of σ: 2^(L−1) ≤ σ < 2^L. */
  sigmaBits: number;
  /** R = floor(2^(L + 15) / σ). */
  recip: number;
}

/** floor(v / 2^s) for an integer v ≥ 0 and s ≥ 0: a right shift, exact in doubles below 2^53. */
function shiftDown(v: number, s: number): number {
  return Math.floor(v / 2 ** s);
}

/**
 * floor(√n) for an integer 0 ≤ n ≤ 2^52, by the bitwise (digit-by-digit) method: one result bit per
 * step, from the top, with only compare, subtract and shifts — the same steps a sequential hardware
 * square root takes, so the golden model and the RTL agree on every input, rounding included.
 */
export function isqrt(n: number): number {
  // a lazy message: isqrt runs once per row, and formatting it every time would cost more than the root
  check(Number.isSafeInteger(n) && n >= 0 && n <= 2 ** 52, () => `isqrt: expected an integer from 0 to 2^52, got ${n}`);
  let bit = 1;
  while (bit * 4 <= n) bit *= 4;
  let rem = n;
  let root = 0;
  for (; bit >= 1; bit = shiftDown(bit, 2)) {
    if (rem >= root + bit) {
      rem -= root + bit;
      root = shiftDown(root, 1) + bit;
    } else {
      root = shiftDown(root, 1);
    }
  }
  return root;
}

/** Bit length of a positive integer: the L with 2^(L−1) ≤ v < 2^L. */
export function bitLength(v: number): number {
  if (v < 2 ** 32) return 32 - Math.clz32(v); // the leading-one detector, for every σ (< 2^27)
  let bits = 0;
  for (let p = 1; p <= v; p *= 2) bits++;
  return bits;
}

/**
 * R = floor(2^(L + RECIP_BITS − 1) / σ) for σ of bit length L, by restoring division: RECIP_BITS + 1
 * quotient bits, MSB first, each a compare and subtract. The remainder starts at 2^(L−1) ≤ σ, which is
 * where the first possibly non-zero quotient bit lies, so no step is wasted on leading zeros.
 */
export function rowReciprocal(sigma: number, sigmaBits: number): number {
  let rem = 2 ** (sigmaBits - 1);
  let q = 0;
  for (let i = 0; i <= RECIP_BITS; i++) {
    q *= 2;
    if (rem >= sigma) {
      rem -= sigma;
      q += 1;
    }
    rem *= 2;
  }
  return q;
}

/** The statistics of one row of `dim` int8 values starting at `offset`. */
export function layerNormRowStats(x: Int8Array, offset: number, dim: number, p: IntLayerNormParams): LnRowStats {
  let sum = 0;
  let sumSq = 0;
  for (let c = 0; c < dim; c++) {
    // int8 << 3 is at most 11 bits: the int32 shift is exact.
    const a = x[offset + c] << p.k[c];
    sum += a;
    sumSq += a * a;
  }
  const variance = dim * sumSq - sum * sum;
  // A row of equal values has V = 0 (and E may be 0): σ = 1 keeps the divider defined, and since
  // every centered value is then 0, the output is the bias alone, as in the float LayerNorm.
  const sigma = Math.max(1, isqrt(variance + p.epsTerm));
  const sigmaBits = bitLength(sigma);
  return { sum, sumSq, variance, sigma, sigmaBits, recip: rowReciprocal(sigma, sigmaBits) };
}

/**
 * The rounding right shift of arith.shiftRound, floor((v + 2^(s−1)) / 2^s), with its two constants
 * computed once per row or channel instead of once per element (the kernel's hot loop). Multiplying
 * by 2^−s is as exact as dividing by 2^s: both only change a double's exponent.
 */
interface RoundingShift {
  half: number;
  scale: number;
}

function roundingShift(s: number): RoundingShift {
  return { half: s > 0 ? 2 ** (s - 1) : 0, scale: 2 ** -s };
}

function checkParams(dim: number, p: IntLayerNormParams): void {
  check(Number.isInteger(dim) && dim >= 1 && dim <= MAX_LN_DIM, `layernorm: dim: expected an integer from 1 to ${MAX_LN_DIM}, got ${dim}`);
  check(
    p.k.length === dim && p.multiplier.length === dim && p.bias.length === dim && p.shift.length === dim,
    () => `layernorm: expected ${dim} values each in k, multiplier, bias and shift, got ${p.k.length}, ${p.multiplier.length}, ${p.bias.length} and ${p.shift.length}`,
  );
  check(
    Number.isSafeInteger(p.epsTerm) && p.epsTerm >= 0 && p.epsTerm <= MAX_LN_EPS_TERM,
    `layernorm: epsTerm: expected an integer from 0 to 2^40, got ${p.epsTerm}`,
  );
  for (let c = 0; c < dim; c++) {
    check(p.k[c] <= MAX_PTF_K, () => `layernorm: k[${c}]: expected 0..${MAX_PTF_K}, got ${p.k[c]}`);
    check(
      Math.abs(p.multiplier[c]) <= MAX_LN_MULTIPLIER,
      () => `layernorm: multiplier[${c}]: expected −${MAX_LN_MULTIPLIER}..${MAX_LN_MULTIPLIER}, got ${p.multiplier[c]}`,
    );
    check(p.shift[c] <= MAX_LN_SHIFT, () => `layernorm: shift[${c}]: expected 0..${MAX_LN_SHIFT}, got ${p.shift[c]}`);
  }
}

/**
 * Integer LayerNorm of `rows` rows of `dim` int8 values (row-major):
 *   a[c] = x[c]·2^k[c];  S1 = Σa;  S2 = Σa²;  V = D·S2 − S1²;  σ = max(1, isqrt(V + E));
 *   L = bitlength(σ);  R = floor(2^(L+15) / σ);  z[c] = round((D·a[c] − S1)·R / 2^(L+3));
 *   y[c] = sat8(round((M[c]·z[c] + B[c]) / 2^N[c])).
 * Rounding is half up (arith.shiftRound); σ is the only thing divided by, once per row.
 */
export function layerNormInt(x: Int8Array, rows: number, dim: number, p: IntLayerNormParams): Int8Array {
  checkParams(dim, p);
  check(Number.isInteger(rows) && rows >= 0, `layernorm: rows: expected an integer >= 0, got ${rows}`);
  check(x.length === rows * dim, () => `layernorm: input has ${x.length} values, expected ${rows}×${dim} = ${rows * dim}`);
  const { k, multiplier, bias } = p;
  // The output shift's two constants per channel in two flat arrays: the hot loop reads plain
  // numbers rather than an object per channel.
  const outHalf = new Array<number>(dim);
  const outScale = new Array<number>(dim);
  for (let c = 0; c < dim; c++) {
    const shift = roundingShift(p.shift[c]);
    outHalf[c] = shift.half;
    outScale[c] = shift.scale;
  }
  const y = new Int8Array(x.length);
  for (let r = 0; r < rows; r++) {
    const offset = r * dim;
    const { sum, recip, sigmaBits } = layerNormRowStats(x, offset, dim, p);
    const { half, scale } = roundingShift(sigmaBits + RECIP_BITS - 1 - NORM_FRAC_BITS);
    for (let c = 0; c < dim; c++) {
      const d = dim * (x[offset + c] << k[c]) - sum;
      const z = Math.floor((d * recip + half) * scale);
      const v = Math.floor((multiplier[c] * z + bias[c] + outHalf[c]) * outScale[c]);
      y[offset + c] = v < -128 ? -128 : v > 127 ? 127 : v;
    }
  }
  return y;
}
