/**
 * The decisions behind the MAC PE and the int4-weight mode (docs/isa.md, MATMUL flag W4): whether a
 * config builds the dual-mode PE, how the PE packs two int8 × int4 products into one multiplier, and
 * which MATMUL flags the generated controller accepts.
 */
import { maxProductMagnitude } from "../arith.js";
import { AcceleratorConfig } from "../hw/config.js";
import { MATMUL_FLAGS } from "../hw/isa.js";

/** Cycles from a PE's operands to the accumulator that includes them: the product is registered first. */
export const MAC_PE_LATENCY = 2;

const ACT_BITS = 8;
const W4_BITS = 4;

/** A config with weightBits 4 builds dual-mode PEs: int8 weights, and int4 weights with flag W4. */
export function buildsW4(cfg: AcceleratorConfig): boolean {
  return cfg.weightBits === 4;
}

/** The MATMUL flags the generated controller executes; any other flag traps. */
export function matmulFlagsBuilt(cfg: AcceleratorConfig): number {
  return MATMUL_FLAGS.WIDE | (buildsW4(cfg) ? MATMUL_FLAGS.W4 : 0);
}

/** Bits of a signed integer holding every value in -m … m. */
function signedBitsFor(m: number): number {
  return Math.ceil(Math.log2(m + 1)) + 1;
}

/**
 * The packing of the dual-mode PE. Its one multiplier takes a = x_hi·2^S + x and b = w_lo·2^S + w_hi:
 *   a·b = x_hi·w_lo·2^(2S) + (x·w_lo + x_hi·w_hi)·2^S + x·w_hi,
 * so with 2^(S-1) added, bits 2S-1 … S hold exactly the pair's sum when S bits hold that sum with its
 * sign and the low term plus 2^(S-1) lies in 0 … 2^S - 1. 22 × 18 bits: one DSP48E1 (25 × 18).
 */
export function w4Packing() {
  const product = maxProductMagnitude(ACT_BITS, W4_BITS); // |x·w| ≤ 2^7 · 2^3
  const shift = signedBitsFor(2 * product); // the pair's sum
  if (product >= 2 ** (shift - 1)) throw new Error("the low product of the packing would reach the middle field");
  return {
    /** S: the offset of the middle field and its width. */
    shift,
    /** a: x_hi shifted by S plus the sign-extended x (one more bit for that sum's carry). */
    aBits: ACT_BITS + shift + 1,
    /** b: w_lo shifted by S plus the sign-extended w_hi. */
    bBits: W4_BITS + shift + 1,
    /** The product bits the PE keeps: through the middle field (the int8 product needs only 16). */
    productBits: Math.max(2 * shift, 2 * ACT_BITS),
  };
}

/** Template values of mac_pe (and of the engine's PE instances). */
export function macPeContext(w4: boolean) {
  const p = w4Packing();
  return {
    w4Built: w4,
    packShift: p.shift,
    packABits: p.aBits,
    packBBits: p.bBits,
    packProductBits: p.productBits,
    int4Bits: W4_BITS,
  };
}

/** Template values of the controller's MATMUL flag handling. */
export function matmulFlagsContext(cfg: AcceleratorConfig) {
  return {
    matmulFlagsBuilt: matmulFlagsBuilt(cfg),
    matmulW4Bit: Math.log2(MATMUL_FLAGS.W4),
    matmulWideBit: Math.log2(MATMUL_FLAGS.WIDE),
  };
}
