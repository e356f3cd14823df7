/**
 * Power-of-two (PoT) scales with adaptive rounding (DESIGN.md, "PoT scale, adaptive rounding"): a
 * tensor's float scale s is replaced by 2^α, where α is the candidate near log2 s whose quantization
 * error — measured on whatever the caller says matters — is lowest.
 */
import { quantizeReal } from "../arith.js";
import { P2vitError, check } from "../util/errors.js";

/** Widest integer a quantized tensor may use here: weights and activations are int8 or int4. */
const MAX_TENSOR_BITS = 8;

/**
 * Scale returned for an all-zero tensor. Such a tensor is exact at every scale, but log2 of the scale
 * must stay finite for the exponent search to run. 2^-24 (float32's relative precision) is below any
 * signal a tensor can carry, yet 2^-α stays an exact, finite double for every candidate.
 */
const ZERO_TENSOR_SCALE = 2 ** -24;

function checkBits(bits: number, max: number): void {
  check(Number.isInteger(bits) && bits >= 2 && bits <= max, `bits: expected an integer from 2 to ${max}, got ${bits}`);
}

/** Largest |x|, the minmax observer's range; refuses NaN and infinities, which have no scale. */
export function maxAbs(x: Float32Array, what = "tensor"): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]);
    // Written so that NaN (for which every comparison is false) also fails.
    if (!(a <= Number.MAX_VALUE)) throw new P2vitError(`${what}[${i}]: expected a finite number, got ${x[i]}`);
    if (a > m) m = a;
  }
  return m;
}

/**
 * The float scale of symmetric `bits`-bit quantization: max|x| / (2^(bits-1) − 0.5), the FQ-ViT /
 * P2-ViT convention that spreads [−max, max] over the 2^bits − 1 steps of the integer range.
 */
export function floatScale(maxAbsValue: number, bits: number): number {
  check(Number.isFinite(maxAbsValue) && maxAbsValue >= 0, `maxAbs: expected a finite number >= 0, got ${maxAbsValue}`);
  checkBits(bits, 32);
  if (maxAbsValue === 0) return ZERO_TENSOR_SCALE;
  return maxAbsValue / (2 ** (bits - 1) - 0.5);
}

/** The exponents adaptive rounding tries for float scale `scale`: a−1 … a+2 with a = floor(log2 scale). */
export function candidateExponents(scale: number): number[] {
  check(Number.isFinite(scale) && scale > 0, `scale: expected a finite number > 0, got ${scale}`);
  const a = Math.floor(Math.log2(scale));
  return [a - 1, a, a + 1, a + 2];
}

/** The candidate with the lowest `error`; on a tie the earlier one, so the choice is deterministic. */
export function chooseExponent(candidates: number[], error: (exponent: number) => number): number {
  check(candidates.length > 0, "candidates: expected at least one exponent, got none");
  let best = candidates[0];
  let bestError = error(best);
  for (let i = 1; i < candidates.length; i++) {
    const e = error(candidates[i]);
    if (e < bestError) {
      best = candidates[i];
      bestError = e;
    }
  }
  return best;
}

/** Quantizes every element to a signed `bits`-bit integer (2 ≤ bits ≤ 8) at scale 2^exponent. */
export function quantizeTensor(x: Float32Array, exponent: number, bits: number): Int8Array {
  check(Number.isInteger(exponent), `exponent: expected an integer, got ${exponent}`);
  checkBits(bits, MAX_TENSOR_BITS);
  const q = new Int8Array(x.length);
  for (let i = 0; i < x.length; i++) q[i] = quantizeReal(x[i], exponent, bits);
  return q;
}

/** Mean squared difference between `x` and its fake-quantized value q · 2^exponent. */
export function fakeQuantMse(x: Float32Array, exponent: number, bits: number): number {
  check(x.length > 0, "x: expected at least one value, got an empty tensor");
  const step = 2 ** exponent;
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - quantizeReal(x[i], exponent, bits) * step;
    sum += d * d;
  }
  return sum / x.length;
}

/**
 * The PoT exponent of an activation tensor: minmax observer, then adaptive rounding that keeps the
 * candidate with the lowest MSE between the samples and their fake-quantized values.
 */
export function activationExponent(samples: Float32Array, bits: number): number {
  check(samples.length > 0, "samples: expected at least one calibration value, got none");
  checkBits(bits, MAX_TENSOR_BITS);
  const scale = floatScale(maxAbs(samples, "samples"), bits);
  return chooseExponent(candidateExponents(scale), (e) => fakeQuantMse(samples, e, bits));
}
