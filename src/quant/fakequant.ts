/**
 * The fake-quantized models: VitOps that simulate, in float, the quantized network FQ-ViT and P2-ViT
 * evaluate.
 *   - PoT scales (`potFakeQuantOps`): every scale and integer parameter is the QGraph's, and LayerNorm
 *     and softmax use the integer algorithms as FQ-ViT's IntLayerNorm and log-int softmax simulate
 *     them; tensors stay float between ops, on the integer model's grids.
 *   - Float scales (`floatScaleFakeQuantOps`), the counterpart the paper compares against: scales from
 *     calibration, no power-of-two constraint. Linear inputs and outputs per tensor, weights per output
 *     channel, LayerNorm input with PTF (a float base scale, 2^k per channel) and LayerNorm in float,
 *     scores per tensor, probabilities as 4-bit log2 codes (P = 2^-q) or uniform uint8.
 */

import { pow2, roundHalfUp, saturate } from "../arith.js";
import { LOG2_ZERO_CODE } from "../sim/golden/attention.js";
import { Calibration, TapRecord } from "./calibration.js";
import { floatOps } from "./float/float-ops.js";
import { ObserverMethod } from "./observers.js";
import { VitOps } from "./ops.js";
import { fakeQuantAttentionScores, fakeQuantSoftmax } from "./ops/attention.js";
import { fakeQuantLayerNorm } from "./ops/layernorm.js";
import { floatScale } from "./pot.js";
import { QGraph, QLinear, QOp } from "./qgraph.js";
import { denormalizeRows } from "./quantize-graph.js";

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
  /**
   * Mixed precision (src/quant/mixed.ts): weight bits per Linear layer by name, overriding `wBits` for
   * the layers it names. PoT scales only.
   */
  layerBits?: Readonly<Record<string, 4 | 8>>;
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

/** Float-scale fake-quant: every scale from calibration, without the power-of-two constraint. */
export function floatScaleFakeQuantOps(cal: Calibration, s: QuantSettings): VitOps {
  const cache = new Map<string, unknown>();
  const once = <T>(key: string, make: () => T): T => {
    if (!cache.has(key)) cache.set(key, make());
    return cache.get(key) as T;
  };
  const actScale = (name: string, kind: "input" | "output") => once(`${name}:${kind}`, () => floatScale(cal.tap(name, kind).range(s.method), s.aBits));
  const ptfQuantize = (norm: string, x: Float32Array, dim: number): Float32Array => {
    const scales = once(`${norm}:ptf`, () => floatPtfScales(cal.tap(norm, "input"), dim, s));
    return Float32Array.from(x, (v, i) => saturate(roundHalfUp(v / scales[i % dim]), s.aBits) * scales[i % dim]);
  };
  return {
    ...floatOps,
    linear(name, x, rows, w, b, inF, outF) {
      const wq = once(`${name}:weight`, () => fakeQuantizeRows(w, inF, minmaxWeightScales(w, inF, outF, s.wBits), s.wBits));
      const y = floatOps.linear(name, fakeQuantize(x, actScale(name, "input"), s.aBits), rows, wq, b, inF, outF);
      return fakeQuantize(y, actScale(name, "output"), s.aBits);
    },
    layerNorm: (name, x, rows, dim, gamma, beta, eps) => floatOps.layerNorm(name, ptfQuantize(name, x, dim), rows, dim, gamma, beta, eps),
    attentionScores: (name, q, k, tokens, headDim, scale) =>
      fakeQuantize(floatOps.attentionScores(name, q, k, tokens, headDim, scale), actScale(name, "output"), s.aBits),
    softmax(name, scores, rows, cols) {
      const p = floatOps.softmax(name, scores, rows, cols);
      return s.attnBits === 4 ? log2Probabilities(p) : fakeQuantize(p, 1 / 255, 9); // unsigned 8-bit: 0..255 within int9
    },
  };
}

function minmaxWeightScales(w: Float32Array, inF: number, outF: number, bits: number): Float32Array {
  const scales = new Float32Array(outF);
  for (let c = 0; c < outF; c++) {
    let m = 0;
    for (let i = 0; i < inF; i++) m = Math.max(m, Math.abs(w[c * inF + i]));
    scales[c] = floatScale(m, bits);
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

/** Quantize-dequantize on per-column exponents (a QGraph tensor's grid), as quantizeReal rounds. */
function onGrid(x: Float32Array, exponents: Int32Array, bits: number): Float32Array {
  const cols = exponents.length;
  const step = Float64Array.from(exponents, (e) => pow2(e));
  const inverse = Float64Array.from(exponents, (e) => pow2(-e));
  const hi = pow2(bits - 1) - 1;
  const y = new Float32Array(x.length);
  for (let i = 0, c = 0; i < x.length; i++, c = c + 1 === cols ? 0 : c + 1) {
    const q = Math.floor(x[i] * inverse[c] + 0.5);
    y[i] = (q > hi ? hi : q < -hi - 1 ? -hi - 1 : q) * step[c];
  }
  return y;
}

/**
 * PoT fake-quant on the QGraph's scales: each op's output on the grid of the QGraph tensor it
 * produces, weights and biases the QGraph's integers times their scales, the first Linear on the
 * (pixel − 128) integers its folded weights take, LayerNorm and softmax by their integer algorithms.
 */
export function potFakeQuantOps(graph: QGraph, input: InputNormalization): VitOps {
  const ops = new Map(graph.ops.map((o) => [o.name, o]));
  const grids = new Map(graph.tensors.map((t) => [t.name, t]));
  const op = <K extends QOp["kind"]>(name: string, kind: K): Extract<QOp, { kind: K }> => {
    const o = ops.get(name);
    if (o?.kind !== kind) throw new Error(`fake-quant: the QGraph has no ${kind} op ${name}`);
    return o as Extract<QOp, { kind: K }>;
  };
  const grid = (tensor: string, x: Float32Array): Float32Array => {
    const t = grids.get(tensor)!;
    return t.bits > 8 ? x : onGrid(x, t.exponents, t.bits);
  };
  const weights = new Map<string, { w: Float32Array; b: Float32Array }>();
  const dequantized = (l: QLinear) => {
    let d = weights.get(l.name);
    if (!d) {
      const scale = (c: number) => 2 ** l.weightExponents[c];
      d = {
        w: Float32Array.from(l.weight, (v, i) => v * scale(Math.floor(i / l.inFeatures))),
        b: Float32Array.from(l.bias, (v, c) => v * 2 ** (l.input.exponent + l.weightExponents[c])),
      };
      weights.set(l.name, d);
    }
    return d;
  };
  const first = graph.ops.find((o) => o.kind === "linear")?.name;
  /** A constant (class token, position embedding) as the integer model holds it. */
  const constant = (tensor: string): Float32Array | null => {
    const t = grids.get(tensor);
    return t?.data ? Float32Array.from(t.data, (v, i) => v * 2 ** t.exponents[i % t.cols]) : null;
  };
  return {
    ...floatOps,
    linear(name, x, rows, _w, _b, inF, outF) {
      const q = op(name, "linear");
      const { w, b } = dequantized(q.layer);
      const xq = name === first ? denormalizeRows(x, inF, input.patchArea, input.mean, input.std) : onGrid(x, new Int32Array(inF).fill(q.layer.input.exponent), 8);
      return grid(q.output, floatOps.linear(name, xq, rows, w, b, inF, outF));
    },
    layerNorm(name, x, rows, dim) {
      const q = op(name, "layernorm");
      const inExp = grids.get(q.inputs[0])!.exponents;
      // the PTF base exponent α: channel c of the input is at α − 3 + k[c]
      const layer = { name, dim, inputExponent: inExp[0] - q.params.k[0] + 3, outputExponent: grids.get(q.output)!.exponents[0], params: q.params };
      return fakeQuantLayerNorm(layer, x, rows);
    },
    attentionScores: (name, qm, km, tokens) => fakeQuantAttentionScores(op(`${name}.scores`, "attn_scores").params, qm, km, tokens),
    softmax: (name, scores, rows, cols) => fakeQuantSoftmax(op(`${name}.softmax`, "softmax").params, scores, rows, cols),
    attentionValues(name, p, v, tokens, headDim) {
      const q = op(`${name}.values`, "attn_values");
      return grid(q.output, floatOps.attentionValues(name, p, v, tokens, headDim));
    },
    activation: (name, kind, x) => grid(op(name, "lut").output, floatOps.activation(name, kind, x)),
    add(name, a, b) {
      const q = op(name, "add");
      return grid(q.output, floatOps.add(name, a, constant(q.inputs[1]) ?? b));
    },
    prependRow(name, row, x, rows, cols) {
      const q = op(name, "prepend_row");
      return floatOps.prependRow(name, constant(q.inputs[0]) ?? row, x, rows, cols);
    },
  };
}
