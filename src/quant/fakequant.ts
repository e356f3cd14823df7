/**
 * The fake-quantized model: VitOps that simulate, in float, the quantized network FQ-ViT and P2-ViT
 * evaluate. The scales come from calibration, and are powers of two (`pot`) or free floats (`float`,
 * the counterpart the paper compares against). What gets quantized and where:
 *   - Linear: input per tensor, weights per output channel, output per tensor;
 *   - LayerNorm: input with PTF (one base scale per tensor, 2^k per channel), then LayerNorm in float;
 *   - attention: scores per tensor, probabilities as 4-bit log2 codes (P = 2^-q) or uniform uint8;
 *   - activations and residual adds: at the input of the op that consumes them.
 */
import { roundHalfUp, saturate } from "../arith.js";
import { LOG2_ZERO_CODE } from "../sim/golden/attention.js";
import { Calibration, TapRecord } from "./calibration.js";
import { floatOps } from "./float/float-ops.js";
import { quantizeLinear } from "./linear.js";
import { denormalizeRows, foldNormalization } from "./quantize-graph.js";
import { ObserverMethod } from "./observers.js";
import { VitOps } from "./ops.js";
import { FloatGraph, FloatOp, consumers, ptfNormOf } from "./trace.js";
import { QuantizedLayerNorm, fakeQuantLayerNorm, quantizeLayerNorm } from "./ops/layernorm.js";
import { fakeQuantAttentionScores, fakeQuantSoftmax, quantizeAttentionScores, quantizeSoftmax } from "./ops/attention.js";
import type { AttentionScoresParams } from "../sim/golden/attention.js";
import { floatScale } from "./pot.js";

export type ScaleMode = "pot" | "float";

/** How the model normalizes its input, so a PoT model's first Linear can fold it in (quantize-graph.ts). */
export interface InputNormalization {
  patchArea: number;
  mean: number[];
  std: number[];
}

export interface QuantSettings {
  method: ObserverMethod;
  scale: ScaleMode;
  wBits: 4 | 8;
  aBits: 8;
  attnBits: 4 | 8;
}

export const DEFAULT_SETTINGS: QuantSettings = { method: "minmax", scale: "pot", wBits: 8, aBits: 8, attnBits: 4 };


/** Quantize-dequantize with a scale: clamp(round(x / s)) · s. */
export function fakeQuantize(x: Float32Array, scale: number, bits: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = saturate(roundHalfUp(x[i] / scale), bits) * scale;
  return y;
}

/** The activation scale of a tap: the observer's range, then PoT adaptive rounding or the float scale. */
function activationScale(tap: TapRecord, s: QuantSettings): number {
  return s.scale === "float" ? floatScale(tap.range(s.method), s.aBits) : 2 ** tap.exponent(s.method, s.aBits);
}

/** Per-output-channel weight scales: PoT by the adaptive rounding of quantizeLinear, or minmax floats. */
function weightScales(name: string, w: Float32Array, bias: Float32Array | null, inF: number, outF: number, tap: TapRecord, s: QuantSettings): Float32Array {
  if (s.scale === "pot") {
    const q = quantizeLinear({
      name, weight: w, bias: bias ?? new Float32Array(outF), inFeatures: inF, outFeatures: outF,
      calibration: tap.sample().data, weightBits: s.wBits, accBits: 48,
    });
    return Float32Array.from(q.weightExponents, (e) => 2 ** e);
  }
  const scales = new Float32Array(outF);
  for (let c = 0; c < outF; c++) {
    let m = 0;
    for (let i = 0; i < inF; i++) m = Math.max(m, Math.abs(w[c * inF + i]));
    scales[c] = floatScale(m, s.wBits);
  }
  return scales;
}

function fakeQuantizeRows(w: Float32Array, inF: number, scales: Float32Array, bits: number): Float32Array {
  const y = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const sc = scales[Math.floor(i / inF)];
    y[i] = saturate(roundHalfUp(w[i] / sc), bits) * sc;
  }
  return y;
}

/** Float-scale PTF: a float base scale per tensor and the 2^k per channel of least L2 error. */
function floatPtfScales(tap: TapRecord, dim: number, s: QuantSettings): Float32Array {
  const { data, rows } = tap.sample();
  const base = floatScale(tap.range(s.method), s.aBits);
  const scales = new Float32Array(dim);
  for (let c = 0; c < dim; c++) {
    let best = Infinity;
    for (let k = 0; k <= 3; k++) {
      const sc = (base / 8) * 2 ** k;
      let err = 0;
      for (let r = 0; r < rows; r++) {
        const v = data[r * dim + c];
        const d = v - saturate(roundHalfUp(v / sc), s.aBits) * sc;
        err += d * d;
      }
      if (err < best) {
        best = err;
        scales[c] = sc;
      }
    }
  }
  return scales;
}

/**
 * Attention probabilities as 4-bit log2 codes (docs/arithmetic.md): q = round(-log2 p) ≥ 0, P = 2^-q,
 * and the top code LOG2_ZERO_CODE stands for P = 0.
 */
function log2Probabilities(p: Float32Array): Float32Array {
  const y = new Float32Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const q = p[i] > 0 ? Math.max(0, roundHalfUp(-Math.log2(p[i]))) : LOG2_ZERO_CODE;
    y[i] = q >= LOG2_ZERO_CODE ? 0 : 2 ** -q;
  }
  return y;
}

/**
 * The fake-quantized ops for a calibration and settings. Scales are derived once per layer, lazily.
 * With the traced graph, a residual add whose output only LayerNorms and adds read is quantized
 * there, with the LayerNorm's PTF scales, as the integer model holds its residual stream.
 */
export function fakeQuantOps(cal: Calibration, s: QuantSettings, graph?: FloatGraph, input?: InputNormalization): VitOps {
  const readers = graph ? consumers(graph) : new Map<string, FloatOp[]>();
  /** The Linear reading a tensor first (through row selection), whose input grid the integer model gives it. */
  const linearReader = (tensor: string): string | null => {
    for (const op of readers.get(tensor) ?? []) {
      if (op.kind === "linear") return op.name;
      if (op.kind === "select_row") return linearReader(op.output);
    }
    return null;
  };
  const cache = new Map<string, unknown>();
  const once = <T>(key: string, make: () => T): T => {
    if (!cache.has(key)) cache.set(key, make());
    return cache.get(key) as T;
  };
  const actScale = (name: string, kind: "input" | "output") => once(`${name}:${kind}`, () => activationScale(cal.tap(name, kind), s));
  const probBits = s.attnBits;
  /**
   * The first Linear of a PoT model as the integer model runs it: the input normalization folded into
   * its weights, so its input is the exact (pixel − 128) integers, not a quantized normalized image.
   */
  const foldedInputLinear = (name: string, x: Float32Array, rows: number, w: Float32Array, b: Float32Array | null, inF: number, outF: number) => {
    const { patchArea, mean, std } = input!;
    const folded = once(`${name}:folded`, () => {
      const f = foldNormalization(w, b, inF, outF, patchArea, mean, std);
      const layer = quantizeLinear({
        name, weight: f.weight, bias: f.bias, inFeatures: inF, outFeatures: outF, weightBits: s.wBits, inputExponent: 0,
        calibration: denormalizeRows(cal.tap(name, "input").sample().data, inF, patchArea, mean, std),
      });
      return { weight: fakeQuantizeRows(f.weight, inF, Float32Array.from(layer.weightExponents, (e) => 2 ** e), s.wBits), bias: f.bias };
    });
    const y = floatOps.linear(name, denormalizeRows(x, inF, patchArea, mean, std), rows, folded.weight, folded.bias, inF, outF);
    return fakeQuantize(y, actScale(name, "output"), s.aBits);
  };
  /** The integer LayerNorm of a PoT model, from the same calibration data as the QGraph's. */
  const intLayerNorm = (name: string, gamma: Float32Array, beta: Float32Array, eps: number, dim: number): QuantizedLayerNorm =>
    once(`${name}:int`, () => {
      const { data, rows } = cal.tap(name, "input").sample();
      return quantizeLayerNorm({ name, gamma, beta, eps, calibrationInput: data, rows, dim, inputExponent: producerNormExponent(name) });
    });
  /** A LayerNorm reading another LayerNorm's output takes that output's one exponent, as in the QGraph. */
  const producerNormExponent = (name: string): number | undefined => {
    const op = graph?.ops.find((o) => o.kind === "layernorm" && o.name === name);
    const producer = op && graph!.ops.find((o) => o.output === op.inputs[0]);
    if (producer?.kind !== "layernorm") return undefined;
    return intLayerNorm(producer.name, producer.gamma, producer.beta, producer.eps, producer.dim).outputExponent;
  };
  const ptfScales = (norm: string, dim: number): Float32Array =>
    once(`${norm}:ptf`, () => {
      if (s.scale === "float") return floatPtfScales(cal.tap(norm, "input"), dim, s);
      const op = graph?.ops.find((o) => o.kind === "layernorm" && o.name === norm);
      if (op?.kind !== "layernorm") throw new Error(`fake-quant: no LayerNorm ${norm} in the traced graph`);
      const q = intLayerNorm(norm, op.gamma, op.beta, op.eps, dim);
      return Float32Array.from(q.params.k, (k) => 2 ** (q.inputExponent - 3 + k));
    });
  const ptfQuantize = (norm: string, x: Float32Array, dim: number): Float32Array => {
    const scales = ptfScales(norm, dim);
    const xq = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const sc = scales[i % dim];
      xq[i] = saturate(roundHalfUp(x[i] / sc), s.aBits) * sc;
    }
    return xq;
  };

  return {
    linear(name, x, rows, w, b, inF, outF) {
      if (input && graph && s.scale === "pot" && graph.ops[0]?.name === name) return foldedInputLinear(name, x, rows, w, b, inF, outF);
      const wq = once(`${name}:weight`, () => fakeQuantizeRows(w, inF, weightScales(name, w, b, inF, outF, cal.tap(name, "input"), s), s.wBits));
      const y = floatOps.linear(name, fakeQuantize(x, actScale(name, "input"), s.aBits), rows, wq, b, inF, outF);
      return fakeQuantize(y, actScale(name, "output"), s.aBits);
    },
    layerNorm(name, x, rows, dim, gamma, beta, eps) {
      if (s.scale === "float") return floatOps.layerNorm(name, ptfQuantize(name, x, dim), rows, dim, gamma, beta, eps);
      // PoT: the integer LayerNorm core on the PTF integers, as FQ-ViT's IntLayerNorm simulates it
      return fakeQuantLayerNorm(intLayerNorm(name, gamma, beta, eps, dim), x, rows);
    },
    attentionScores(name, q, k, tokens, headDim, scale) {
      if (s.scale === "float") return fakeQuantize(floatOps.attentionScores(name, q, k, tokens, headDim, scale), actScale(name, "output"), s.aBits);
      // PoT: Q and K are slices of the qkv Linear's output, at its exponent
      const qkvExponent = Math.log2(actScale(name.replace(/\.head\d+$/, ".qkv"), "output"));
      const p = once(`${name}:scores`, () =>
        quantizeAttentionScores({
          name, tokens, headDim, qExponent: qkvExponent, kExponent: qkvExponent, scale, calibration: cal.tap(name, "output").sample().data,
        }),
      );
      return fakeQuantAttentionScores(p, q, k, tokens);
    },
    softmax(name, scores, rows, cols) {
      if (s.scale === "pot") {
        // the log-int softmax of FQ-ViT: integer exp and log2 on the score integers
        const sp = once(`${name}:softmax`, () => {
          const sc = cache.get(`${name}:scores`) as AttentionScoresParams;
          return quantizeSoftmax({ name, attnBits: s.attnBits, scoreExponent: sc.scoreExponent, scoreResidual: sc.scaleResidual });
        });
        return fakeQuantSoftmax(sp, scores, rows, cols);
      }
      const p = floatOps.softmax(name, scores, rows, cols);
      return probBits === 4 ? log2Probabilities(p) : fakeQuantize(p, 1 / 255, 9); // unsigned 8-bit: 0..255 within int9
    },
    attentionValues: (name, p, v, tokens, headDim) => floatOps.attentionValues(name, p, v, tokens, headDim),
    activation: (name, kind, x) => floatOps.activation(name, kind, x),
    add(name, a, b) {
      const y = floatOps.add(name, a, b);
      if (!graph || s.scale === "float") return y;
      // the integer model holds every add's output: per channel for a LayerNorm, else on the next Linear's grid
      const norm = ptfNormOf(graph, name, readers);
      if (norm) return ptfQuantize(norm.name, y, norm.dim);
      const linear = linearReader(name);
      return linear ? fakeQuantize(y, actScale(linear, "input"), s.aBits) : y;
    },
    sliceCols: floatOps.sliceCols,
    concatCols: floatOps.concatCols,
    prependRow: floatOps.prependRow,
    selectRow: floatOps.selectRow,
  };
}
