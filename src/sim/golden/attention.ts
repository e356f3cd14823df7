/**
 * Golden kernels of one attention head (docs/arithmetic.md, "Attention: Q·Kᵀ, log-int softmax,
 * attention·V"): int8 Q·Kᵀ requantized to int8 scores; the softmax core's integer exp, row sum and
 * either 4-bit log2 codes (default) or uint8 uniform probabilities; and attention·V as a
 * shift-accumulate (log2 codes) or a multiply-accumulate (uint8). Integers only: every value is an
 * integer held exactly in a double (the one per-row square root takes its 61-bit radicand in two
 * halves), and the only divisions are by powers of two or are written out as restoring divisions, as
 * the hardware does them.
 */
import { pow2, requantize, shiftRound } from "../../arith.js";
import { P2vitError, check } from "../../util/errors.js";

/** Longest row the softmax core takes; every width below is stated for it. */
export const MAX_TOKENS = 1024;
/** P: the integer exp E is below 2^20, so a row sum of up to 1024 of them is below 2^30. */
export const EXP_BITS = 20;
/** The 4-bit log2 code that means probability 0; codes 0..14 mean 2^−code. */
export const LOG2_ZERO_CODE = 15;
/** F: attention·V accumulates V·2^(F − code) exactly; F = 14 is the smallest that keeps code 14 exact. */
export const LOG2_FRAC_BITS = 14;
/** Uniform probabilities are uint8 at exponent −8: real value p / 256. */
export const UNIFORM_PROB_BITS = 8;
const UNIFORM_PROB_MAX = 2 ** UNIFORM_PROB_BITS - 1;
/**
 * Accumulator widths of attention·V, signed. Log2: |Σ v·2^(14−q)| ≤ 128·√2·2^14 < 2^22, because
 * rounding log2 makes Σ 2^−q ≤ √2·Σ E/S = √2. Uniform: Σ p ≤ 256 + tokens/2 ≤ 768, so |acc| < 2^17.
 */
export const LOG2_ACC_BITS = 23;
export const UNIFORM_ACC_BITS = 18;

/** Q·Kᵀ of one head: int8 Q (tokens × headDim, exponent αq) and K (αk) → int8 scores at αs. */
export interface AttentionScoresParams {
  headDim: number;
  qExponent: number;
  kExponent: number;
  /** The attention scale is scaleResidual · 2^scaleExponent; the residual (1 for PoT scales) goes to the softmax. */
  scaleExponent: number;
  scaleResidual: number;
  /** αs: score integer s means s · scaleResidual · 2^αs. */
  scoreExponent: number;
  /** Requantization shift αs − αq − αk − scaleExponent. */
  shift: number;
}

/** The softmax core: int8 scores → 4-bit log2 codes (attnBits 4) or uint8 probabilities (attnBits 8). */
export interface SoftmaxParams {
  attnBits: 4 | 8;
  /** The input's real step is scoreResidual · 2^scoreExponent (not needed by the integer kernel). */
  scoreExponent: number;
  scoreResidual: number;
  /** G: the score difference d is moved to the exp's working step by shiftRound(d, −G). */
  inputShift: number;
  /** L ≈ ln 2 in working steps. */
  ln2: number;
  /** B and C of E = ((r + B)² + C) >> (z + D), in working steps and working steps squared. */
  polyB: number;
  polyC: number;
  /** D: drops the polynomial to EXP_BITS bits. */
  polyShift: number;
  /** EXP_BITS · L: a distance t ≥ this has z ≥ EXP_BITS, so E = 0 without a division. */
  expCutoff: number;
}

/** Attention·V of one head: probabilities (tokens × tokens) times int8 V (exponent αv) → int8 at αo. */
export interface AttentionValuesParams {
  attnBits: 4 | 8;
  headDim: number;
  vExponent: number;
  outputExponent: number;
  /** Requantization shift αo − αv + F, F = LOG2_FRAC_BITS (attnBits 4) or UNIFORM_PROB_BITS (attnBits 8). */
  shift: number;
}

function checkShape(length: number, rows: number, cols: number, what: string): void {
  check(Number.isInteger(rows) && rows >= 1, `${what}: rows: expected a positive integer, got ${rows}`);
  check(Number.isInteger(cols) && cols >= 1, `${what}: columns: expected a positive integer, got ${cols}`);
  check(length === rows * cols, () => `${what}: expected ${rows}×${cols} = ${rows * cols} values, got ${length}`);
}

function checkTokens(tokens: number, what: string): void {
  check(
    Number.isInteger(tokens) && tokens >= 1 && tokens <= MAX_TOKENS,
    `${what}: expected 1 to ${MAX_TOKENS} tokens per row, got ${tokens}`,
  );
}

/** s[i][j] = sat8(shiftRound(Σ_d q[i][d] · k[j][d], shift)). |Σ| ≤ headDim · 2^14: int32 for headDim < 2^17. */
export function attentionScoresInt(
  q: Int8Array,
  k: Int8Array,
  tokens: number,
  headDim: number,
  p: AttentionScoresParams,
): Int8Array {
  check(headDim === p.headDim, `attention scores: headDim ${headDim} does not match the parameters' ${p.headDim}`);
  checkShape(q.length, tokens, headDim, "attention scores: Q");
  checkShape(k.length, tokens, headDim, "attention scores: K");
  const s = new Int8Array(tokens * tokens);
  for (let i = 0; i < tokens; i++) {
    const qo = i * headDim;
    const so = i * tokens;
    let j = 0;
    // Four keys per pass over the query row: each q value is loaded once for four products.
    for (; j + 4 <= tokens; j += 4) {
      const k0 = j * headDim;
      const k1 = k0 + headDim;
      const k2 = k1 + headDim;
      const k3 = k2 + headDim;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      for (let d = 0; d < headDim; d++) {
        const x = q[qo + d];
        a0 += x * k[k0 + d];
        a1 += x * k[k1 + d];
        a2 += x * k[k2 + d];
        a3 += x * k[k3 + d];
      }
      s[so + j] = requantize(a0, p.shift, 8);
      s[so + j + 1] = requantize(a1, p.shift, 8);
      s[so + j + 2] = requantize(a2, p.shift, 8);
      s[so + j + 3] = requantize(a3, p.shift, 8);
    }
    for (; j < tokens; j++) {
      let acc = 0;
      for (let d = 0; d < headDim; d++) acc += q[qo + d] * k[j * headDim + d];
      s[so + j] = requantize(acc, p.shift, 8);
    }
  }
  return s;
}

/** Bit length of an integer 0 ≤ v < 2^32: the hardware's leading-one detector. */
function bitLength(v: number): number {
  return 32 - Math.clz32(v);
}

/**
 * The integer exp of a score difference d ≤ 0 (docs/arithmetic.md): t = −shiftRound(d, −G) working
 * steps below the row maximum; t = z·L + rem by a 5-bit restoring division (z < EXP_BITS ≤ 31);
 * r = −rem ∈ (−L, 0]; E = floor(((r + B)² + C) / 2^(z + D)). E < 2^EXP_BITS.
 */
export function intExp(d: number, p: SoftmaxParams): number {
  const t = -shiftRound(d, -p.inputShift);
  if (t >= p.expCutoff) return 0;
  let rem = t;
  let z = 0;
  for (let bit = 16; bit >= 1; bit >>= 1) {
    if (rem >= p.ln2 * bit) {
      rem -= p.ln2 * bit;
      z += bit;
    }
  }
  const base = p.polyB - rem;
  return Math.floor((base * base + p.polyC) / pow2(z + p.polyShift)); // pow2: a table, not a call to pow
}

/** Int8 scores lie 0..255 below their row maximum. */
const SCORE_DISTANCES = 256;

/**
 * intExp(−t) for every distance t = 0..255 below the row maximum: an int8 difference has only 256
 * values, so one table per softmax call replaces an exp per element (a row of 197 has 197 of them).
 */
function expTable(p: SoftmaxParams): Int32Array {
  const table = new Int32Array(SCORE_DISTANCES);
  for (let t = 0; t < SCORE_DISTANCES; t++) table[t] = intExp(-t, p);
  return table;
}

/** E for every column of row `row` into `e`, from expTable; returns the row sum S (< 2^30 for ≤ 1024 tokens). */
function rowExp(scores: Int8Array, row: number, cols: number, expOf: Int32Array, e: Int32Array): number {
  const offset = row * cols;
  let max = -128;
  for (let j = 0; j < cols; j++) if (scores[offset + j] > max) max = scores[offset + j];
  let sum = 0;
  for (let j = 0; j < cols; j++) {
    const x = expOf[max - scores[offset + j]];
    e[j] = x;
    sum += x;
  }
  return sum;
}

/** floorSqrt2Times takes S < 2^31 (a softmax row sum is below 2^30): 2·S² < 2^63, 32 base-4 digits. */
const SQRT_MAX_SUM = 2 ** 31;
const SQRT_DIGITS = 32;

/**
 * R = floor(√2 · S) = isqrt(2·S²), by the digit-by-digit square root (compare, subtract, shift), once
 * per row: two bits of 2·S² are brought down per step, from the top. 2·S² itself is beyond a double's
 * exact integers, so it is formed as hi · 2^32 + lo from S = a · 2^16 + b:
 * 2·S² = 2a² · 2^32 + ab · 2^18 + 2b², each partial product exact. The remainder stays below
 * 2 · root + 2 and the trial 4 · root + 1 below 2^34, so the steps themselves are exact in doubles.
 */
export function floorSqrt2Times(sum: number): number {
  check(Number.isInteger(sum) && sum >= 0 && sum < SQRT_MAX_SUM, () => `floorSqrt2Times: expected an integer from 0 to 2^31 − 1, got ${sum}`);
  const a = sum >>> 16;
  const b = sum & 0xffff;
  const ab = a * b; // < 2^31
  const low = (ab & 0x3fff) * 2 ** 18 + 2 * b * b; // < 2^34
  const carry = Math.floor(low / 2 ** 32);
  const lo = low - carry * 2 ** 32;
  const hi = 2 * a * a + (ab >>> 14) + carry; // < 2^32
  let rem = 0;
  let root = 0;
  for (let i = SQRT_DIGITS - 1; i >= 0; i--) {
    const digit = i >= 16 ? (hi >>> (2 * i - 32)) & 3 : (lo >>> (2 * i)) & 3;
    rem = rem * 4 + digit;
    const trial = root * 4 + 1;
    if (rem >= trial) {
      rem -= trial;
      root = root * 2 + 1;
    } else {
      root *= 2;
    }
  }
  return root;
}

/**
 * The 4-bit code of one element: round(log2(S / E)) = floor(log2(√2·S / E)) = the largest j with
 * E·2^j ≤ R, clamped to 15; E = 0 gives 15. Two leading-one positions give j or j + 1; one compare
 * decides. √2·S/E is never a power of two (√2 is irrational), so the rounding has no ties.
 */
export function log2Code(e: number, r: number): number {
  if (e === 0) return LOG2_ZERO_CODE;
  let j = bitLength(r) - bitLength(e);
  if (e * pow2(j) > r) j--; // pow2 is a table lookup; 2 ** j would be a call to pow
  return Math.min(j, LOG2_ZERO_CODE);
}

function checkSoftmax(scores: Int8Array, rows: number, cols: number, p: SoftmaxParams, attnBits: 4 | 8): void {
  check(p.attnBits === attnBits, `softmax: parameters are for attnBits ${p.attnBits}, this kernel is for ${attnBits}`);
  checkShape(scores.length, rows, cols, "softmax: scores");
  checkTokens(cols, "softmax");
}

/** Log-int softmax: each row of int8 scores → 4-bit codes, probability 2^−code (code 15: 0). */
export function logIntSoftmax(scores: Int8Array, rows: number, cols: number, p: SoftmaxParams): Uint8Array {
  checkSoftmax(scores, rows, cols, p, 4);
  const codes = new Uint8Array(rows * cols);
  const e = new Int32Array(cols);
  const expOf = expTable(p);
  for (let i = 0; i < rows; i++) {
    const r = floorSqrt2Times(rowExp(scores, i, cols, expOf, e));
    for (let j = 0; j < cols; j++) codes[i * cols + j] = log2Code(e[j], r);
  }
  return codes;
}

/**
 * min(255, floor((2^9·E + S) / (2·S))) = round_half_up(256·E / S), by a 9-bit restoring division: the
 * quotient is at most 256, reached only when E = S.
 */
export function uniformProbability(e: number, sum: number): number {
  let rem = 2 ** (UNIFORM_PROB_BITS + 1) * e + sum;
  const den = 2 * sum;
  let q = 0;
  for (let bit = 2 ** UNIFORM_PROB_BITS; bit >= 1; bit >>= 1) {
    if (rem >= den * bit) {
      rem -= den * bit;
      q += bit;
    }
  }
  return Math.min(q, UNIFORM_PROB_MAX);
}

/** The 8-bit alternative: each row of int8 scores → uint8 probabilities at exponent −8. */
export function uniformIntSoftmax(scores: Int8Array, rows: number, cols: number, p: SoftmaxParams): Uint8Array {
  checkSoftmax(scores, rows, cols, p, 8);
  const probs = new Uint8Array(rows * cols);
  const e = new Int32Array(cols);
  const expOf = expTable(p);
  for (let i = 0; i < rows; i++) {
    const sum = rowExp(scores, i, cols, expOf, e);
    for (let j = 0; j < cols; j++) probs[i * cols + j] = uniformProbability(e[j], sum);
  }
  return probs;
}

/**
 * The weight by which V[j] enters the accumulator: 2^(F − code) for a log2 code (a shift; 0 for code
 * 15), or the uint8 probability itself (a multiply).
 */
function valueWeights(attnBits: 4 | 8): Int32Array {
  if (attnBits === 8) return Int32Array.from({ length: UNIFORM_PROB_MAX + 1 }, (_, p) => p);
  return Int32Array.from({ length: LOG2_ZERO_CODE + 1 }, (_, c) => (c === LOG2_ZERO_CODE ? 0 : 2 ** (LOG2_FRAC_BITS - c)));
}

/** V (tokens × headDim) → Vᵀ (headDim × tokens), so each output's sum runs along a contiguous row. */
function transpose(v: Int8Array, tokens: number, headDim: number): Int8Array {
  const vt = new Int8Array(v.length);
  for (let j = 0; j < tokens; j++) for (let d = 0; d < headDim; d++) vt[d * tokens + j] = v[j * headDim + d];
  return vt;
}

/** w(P[t][j]) for every j of row t into `wRow`, refusing a code the weight table does not have. */
function rowWeights(probs: Uint8Array, t: number, tokens: number, weights: Int32Array, wRow: Int32Array): void {
  for (let j = 0; j < tokens; j++) {
    const code = probs[t * tokens + j];
    // an explicit test rather than check(): its message would be formatted for every element
    if (code >= weights.length) throw new P2vitError(`attention·V: probability code ${code} at row ${t} exceeds ${weights.length - 1}`);
    wRow[j] = weights[code];
  }
}

/**
 * acc[d] = Σ_j wRow[j] · Vᵀ[d][j] for every d: four columns per pass over the weights. Each sum is
 * exact in doubles and fits the Int32Array: −2^31 = 1024 · 2^14 · −128 ≤ acc ≤ 1024 · 2^14 · 127.
 */
function rowSums(wRow: Int32Array, vt: Int8Array, tokens: number, headDim: number, acc: Int32Array): void {
  let d = 0;
  for (; d + 4 <= headDim; d += 4) {
    const v0 = d * tokens;
    const v1 = v0 + tokens;
    const v2 = v1 + tokens;
    const v3 = v2 + tokens;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    for (let j = 0; j < tokens; j++) {
      const w = wRow[j];
      a0 += w * vt[v0 + j];
      a1 += w * vt[v1 + j];
      a2 += w * vt[v2 + j];
      a3 += w * vt[v3 + j];
    }
    acc[d] = a0;
    acc[d + 1] = a1;
    acc[d + 2] = a2;
    acc[d + 3] = a3;
  }
  for (; d < headDim; d++) {
    let a = 0;
    for (let j = 0; j < tokens; j++) a += wRow[j] * vt[d * tokens + j];
    acc[d] = a;
  }
}

/**
 * out[t][d] = sat8(shiftRound(Σ_j w(P[t][j]) · V[j][d], shift)), w as in valueWeights: exact sums, one
 * rounding shift at the end. A sum outside the accumulator width is an error, as for Linear layers.
 */
export function attentionValuesInt(
  probs: Uint8Array,
  v: Int8Array,
  tokens: number,
  headDim: number,
  p: AttentionValuesParams,
): Int8Array {
  check(headDim === p.headDim, `attention·V: headDim ${headDim} does not match the parameters' ${p.headDim}`);
  checkShape(probs.length, tokens, tokens, "attention·V: probabilities");
  checkShape(v.length, tokens, headDim, "attention·V: V");
  checkTokens(tokens, "attention·V");
  const weights = valueWeights(p.attnBits);
  const accBits = p.attnBits === 4 ? LOG2_ACC_BITS : UNIFORM_ACC_BITS;
  const limit = 2 ** (accBits - 1);
  const vt = transpose(v, tokens, headDim);
  const out = new Int8Array(tokens * headDim);
  const wRow = new Int32Array(tokens);
  const acc = new Int32Array(headDim);
  for (let t = 0; t < tokens; t++) {
    rowWeights(probs, t, tokens, weights, wRow);
    rowSums(wRow, vt, tokens, headDim, acc);
    for (let d = 0; d < headDim; d++) {
      if (acc[d] < -limit || acc[d] >= limit) {
        throw new P2vitError(`attention·V: accumulator ${acc[d]} at row ${t}, column ${d} overflows its ${accBits} bits`);
      }
      out[t * headDim + d] = requantize(acc[d], p.shift, 8);
    }
  }
  return out;
}
