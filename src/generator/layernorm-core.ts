/**
 * The LayerNorm core (templates/rtl/layernorm_core.v.hbs): every width and constant it prints, and its
 * row schedule, which a controller and the cycle model need because the core has no ready output.
 *
 * The core follows docs/arithmetic.md, "Integer LayerNorm with PTF input", bit for bit (golden kernel
 * layerNormInt). A row of D int8 values enters as ceil(D / LANES) beats; per beat the lanes are aligned
 * (a = x << k), summed and squared into S1 and S2 and stored in a row buffer of three row slots. After
 * the last beat a fixed sequence per row computes V + E, σ = max(1, isqrt(V + E)) one result bit per
 * cycle, L and R = floor(2^(L+15) / σ) one quotient bit per cycle; then the row is read back out of the
 * buffer through a per-lane pipeline (D·a − S1, ·R, rounding shift, ·M, + B, rounding shift, saturation).
 */
import {
  MAX_LN_DIM, MAX_LN_EPS_TERM, MAX_LN_MULTIPLIER, MAX_LN_SHIFT, MAX_PTF_K, NORM_FRAC_BITS, RECIP_BITS,
} from "../sim/golden/layernorm.js";
import { P2vitError } from "../util/errors.js";
import { indexBits } from "./params.js";

/** Widest lane count a core may have (as the elementwise core). */
export const LN_MAX_LANES = 128;

/**
 * Row slots in the row buffer: a row's aligned values stay there from its first beat until they are
 * read out, some 45 cycles after its last beat, so three rows share the buffer: one being read, one
 * waiting for its σ, one arriving. Three slots cost at most 2 cycles of interval, for rows of 17 to 23
 * beats only; every other row comes at max(beats, 21) cycles (a fourth slot would save those cycles).
 */
export const LN_ROW_SLOTS = 3;

/** Per beat before the adder tree: the k read, the alignment (with its lane mask), the square. */
const INGEST_STAGES = 3;
/** Beat stage at which the aligned values are written into the row buffer (cycle of the port beat + 2). */
const BUFFER_WRITE_STAGE = 2;
/** After the tree: the accumulator takes the last beat, then D·S2 and S1², then V + E. */
const STATS_STAGES = 3;
/** Between the square root and the division: σ = max(1, root), its length L and 2^(L−1). */
const SIGMA_STAGES = 1;
/**
 * The per-lane output pipeline, from the buffer read to out_y: D·a, − S1, ·R, + 2^(L+2), >> (L+3),
 * ·M with B + 2^(N−1) beside it, + , >> N, saturation, and the output register.
 */
export const LN_OUT_STAGES = 10;
/** Quotient bits of R = floor(2^(L+15) / σ), one division step each. */
const RECIP_STEPS = RECIP_BITS + 1;

/** Bits of an unsigned integer v ≥ 0 (at least 1). */
function unsignedBits(v: number): number {
  return Math.max(1, Math.ceil(Math.log2(v + 1)));
}

/** Bits of a two's-complement integer holding every value in [lo, hi] (lo ≤ 0 ≤ hi). */
function signedBits(lo: number, hi: number): number {
  let bits = 1;
  while (-(2 ** (bits - 1)) > lo || 2 ** (bits - 1) - 1 < hi) bits++;
  return bits;
}

/** Adder-tree levels that sum `lanes` values of one beat, one register per level. */
function treeLevels(lanes: number): number {
  return Math.ceil(Math.log2(lanes));
}

/** Bits of the integer square root's radicand V + E, rounded up to whole 2-bit digits. */
function radicandBits(maxDim: number): number {
  // V = Σ_{i<j} (a_i − a_j)² is largest with half the row at each end of the aligned range (±1024, 1016)
  const maxV = Math.floor((maxDim * maxDim) / 4) * 2040 ** 2;
  const bits = unsignedBits(maxV + MAX_LN_EPS_TERM);
  return bits + (bits % 2);
}

function checkCore(lanes: number, maxDim: number): void {
  if (!Number.isInteger(lanes) || lanes < 1 || lanes > LN_MAX_LANES) {
    throw new P2vitError(`layernorm_core: lanes: expected an integer from 1 to ${LN_MAX_LANES}, got ${lanes}`);
  }
  if (!Number.isInteger(maxDim) || maxDim < 1 || maxDim > MAX_LN_DIM) {
    throw new P2vitError(`layernorm_core: maxDim: expected an integer from 1 to ${MAX_LN_DIM}, got ${maxDim}`);
  }
}

/** The template values of a LayerNorm core of `lanes` channels per beat for rows of up to `maxDim`. */
export function layerNormCoreContext(lanes: number, maxDim: number) {
  checkCore(lanes, maxDim);
  const beats = Math.ceil(maxDim / lanes);
  const alignMax = 127 * 2 ** MAX_PTF_K;
  const alignMin = -128 * 2 ** MAX_PTF_K;
  // Each width is at least one bit wider than the value the template sign- or zero-extends into it, so
  // no extension is empty (which only matters for the smallest maxDim).
  const alignedBits = signedBits(alignMin, alignMax);
  const s1Bits = Math.max(signedBits(maxDim * alignMin, maxDim * alignMax), alignedBits + 1);
  const sqMax = alignMin ** 2;
  const s2Bits = unsignedBits(maxDim * sqMax);
  const npw = radicandBits(maxDim);
  const rootBits = npw / 2;
  const recipBits = RECIP_STEPS; // one quotient bit per step
  const maxLen = rootBits;
  // d = D·a − S1: |d| ≤ (D−1)·2040, one bit more than D·a and S1 (and their exact difference)
  const dBits = s1Bits + 1;
  const dMax = (maxDim - 1) * (alignMax - alignMin);
  const zShiftOffset = RECIP_BITS - 1 - NORM_FRAC_BITS;
  const roundMax = 2 ** (maxLen + zShiftOffset - 1);
  const pBits = Math.max(signedBits(-dMax * 2 ** RECIP_BITS, dMax * 2 ** RECIP_BITS + roundMax), dBits + 1, recipBits + 1);
  // docs/arithmetic.md, "Bound on z": |z| ≤ 2^13·√(D−1) + 1/2
  const zMax = Math.floor(2 ** (NORM_FRAC_BITS + 1) * Math.sqrt(maxDim - 1) + 0.5);
  const zBits = signedBits(-zMax, zMax);
  const multBits = signedBits(-MAX_LN_MULTIPLIER, MAX_LN_MULTIPLIER);
  const tMax = MAX_LN_MULTIPLIER * zMax;
  const tBits = Math.max(signedBits(-tMax, tMax), multBits + 1, zBits + 1);
  const uBits = signedBits(-(2 ** 31) - tMax, 2 ** 31 - 1 + tMax + 2 ** (MAX_LN_SHIFT - 1));
  const levels = treeLevels(lanes);
  const delays = layerNormDelays(lanes);
  return {
    lanes,
    maxDim,
    beats,
    beatBits: indexBits(beats),
    bufDepth: LN_ROW_SLOTS * beats,
    bufAddrBits: indexBits(LN_ROW_SLOTS * beats),
    dimBits: unsignedBits(maxDim),
    leftBits: unsignedBits(Math.max(maxDim, lanes)) + 1,
    countBits: unsignedBits(lanes),
    kBits: unsignedBits(MAX_PTF_K),
    alignedBits,
    treeLevels: levels,
    treeLeaves: 2 ** levels,
    s1Bits,
    s2Bits,
    ds2Bits: Math.max(unsignedBits(maxDim * maxDim * sqMax), s2Bits + 1),
    s1SqBits: unsignedBits((maxDim * alignMin) ** 2),
    epsBits: unsignedBits(MAX_LN_EPS_TERM),
    radicandBits: npw,
    rootBits,
    lenBits: unsignedBits(maxLen),
    isqrtSteps: rootBits,
    recipBits,
    recipSteps: RECIP_STEPS,
    stepBits: unsignedBits(Math.max(rootBits, RECIP_STEPS)),
    daBits: s1Bits,
    dBits,
    pBits,
    zBits,
    zShiftOffset,
    multBits,
    biasBits: 32,
    shiftBits: unsignedBits(MAX_LN_SHIFT),
    tBits,
    uBits,
    outStages: LN_OUT_STAGES,
    rowSlots: LN_ROW_SLOTS,
    outputDelay: delays.output,
    rowGap: delays.rowGap,
    slotReuse: delays.slotReuse,
  };
}

/** The fixed delays of a core with `lanes` lanes, in cycles. */
export interface LayerNormDelays {
  /** From a row's last input beat to the buffer read of its first output beat. */
  read: number;
  /** From a row's last input beat to its first output beat (out_valid). */
  output: number;
  /**
   * The least distance between the last input beats of consecutive rows: the square root is busy for
   * its 21 steps (the division after it for fewer).
   */
  rowGap: number;
  /**
   * The least distance from the last input beat of row r to the first input beat of row r + 3, which
   * writes the buffer slot row r is read from (a write may share its cycle with the read it follows).
   */
  slotReuse: number;
}

export function layerNormDelays(lanes: number): LayerNormDelays {
  checkCore(lanes, 1);
  // the same for every maxDim: E alone reaches 2^40, so the radicand always has 21 digits
  const isqrtSteps = radicandBits(MAX_LN_DIM) / 2;
  const read = INGEST_STAGES + treeLevels(lanes) + STATS_STAGES + isqrtSteps + SIGMA_STAGES + RECIP_STEPS;
  return { read, output: read + LN_OUT_STAGES, rowGap: isqrtSteps, slotReuse: read - BUFFER_WRITE_STAGE };
}

/** The schedule of rows of `dim` channels, each sent as consecutive beats, back to back. */
export interface LayerNormRowTiming {
  /** Beats per row, in and out: ceil(D / LANES). */
  beats: number;
  /** Cycles from a row's first input beat to its last output beat, both counted. */
  rowCycles: number;
  /** Cycles from one row's first input beat to the next row's, the least the core accepts. */
  interval: number;
}

/**
 * Cycles of one row of `dim` channels on a core of `lanes` lanes, and the initiation interval of
 * back-to-back rows (for the cycle model). The interval is the largest of the beats, the square root's
 * row gap and a third of the slot reuse distance (three rows in flight per buffer slot cycle).
 */
export function layerNormRowTiming(dim: number, lanes: number): LayerNormRowTiming {
  checkCore(lanes, dim);
  const d = layerNormDelays(lanes);
  const beats = Math.ceil(dim / lanes);
  // row r + 3 starts at 3·interval; row r's last beat is at beats − 1
  const reuse = Math.ceil((beats - 1 + d.slotReuse) / LN_ROW_SLOTS);
  return {
    beats,
    rowCycles: beats - 1 + d.output + beats,
    interval: Math.max(beats, d.rowGap, reuse),
  };
}
