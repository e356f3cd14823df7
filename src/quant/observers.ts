/**
 * Calibration observers (DESIGN.md): each turns the values a tensor took on the calibration images
 * into the magnitude its symmetric int8 range must cover. Adaptive PoT rounding (pot.ts) then picks
 * the exponent. Batches are observed in order, as FQ-ViT's observers see calibration iterations.
 */
import { P2vitError } from "../util/errors.js";
import { floatScale } from "./pot.js";
import { roundHalfUp, saturate } from "../arith.js";

export const OBSERVERS = ["minmax", "ema", "percentile", "omse"] as const;
export type ObserverMethod = (typeof OBSERVERS)[number];

export function parseObserver(v: string): ObserverMethod {
  if (!(OBSERVERS as readonly string[]).includes(v)) throw new P2vitError(`--quant-method: expected one of ${OBSERVERS.join(", ")}, got "${v}"`);
  return v as ObserverMethod;
}

const EMA_SMOOTHING = 0.01;
const PERCENTILE_HI = 0.99999;
const PERCENTILE_LO = 0.00001;
const OMSE_STEPS = 90;

/** The magnitude to cover for symmetric quantization, from one or more calibration batches. */
export function observeRange(batches: Float32Array[], method: ObserverMethod, bits = 8): number {
  if (batches.length === 0 || batches.every((b) => b.length === 0)) throw new Error("observeRange: no calibration values");
  switch (method) {
    case "minmax":
      return Math.max(...batches.map(maxAbsOf));
    case "ema":
      return emaRange(batches.map(minMaxOf));
    case "percentile":
      return emaRange(batches.map(percentilesOf));
    case "omse":
      return omseRange(batches, bits);
  }
}

function maxAbsOf(x: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]);
    if (a > m) m = a;
  }
  return m;
}

function minMaxOf(x: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < x.length; i++) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
  }
  return [lo, hi];
}

function percentilesOf(x: Float32Array): [number, number] {
  const sorted = Float32Array.from(x).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
  return [at(PERCENTILE_LO), at(PERCENTILE_HI)];
}

/** EMA of per-batch (min, max) with FQ-ViT's smoothing; the first batch initialises it. */
function emaRange(ranges: [number, number][]): number {
  let [lo, hi] = ranges[0];
  for (const [l, h] of ranges.slice(1)) {
    lo = lo * (1 - EMA_SMOOTHING) + l * EMA_SMOOTHING;
    hi = hi * (1 - EMA_SMOOTHING) + h * EMA_SMOOTHING;
  }
  return Math.max(Math.abs(lo), Math.abs(hi));
}

/** OMSE: shrink the min-max range by 1 − 0.01·i, i = 0…89, and keep the one of least L2 error. */
function omseRange(batches: Float32Array[], bits: number): number {
  const full = Math.max(...batches.map(maxAbsOf));
  if (full === 0) return 0;
  let best = full;
  let bestErr = Infinity;
  for (let i = 0; i < OMSE_STEPS; i++) {
    const range = full * (1 - 0.01 * i);
    const s = floatScale(range, bits);
    let err = 0;
    for (const b of batches) {
      for (let j = 0; j < b.length; j++) {
        const d = b[j] - quantizeFloatScale(b[j], s, bits);
        err += d * d;
      }
    }
    if (err < bestErr) {
      bestErr = err;
      best = range;
    }
  }
  return best;
}

function quantizeFloatScale(x: number, scale: number, bits: number): number {
  return saturate(roundHalfUp(x / scale), bits) * scale;
}
