/**
 * Float graph + calibration → QGraph. The passes, in op order:
 *   - fold the input normalization into the patch embedding, so the graph takes int8 pixels − 128;
 *   - give every tensor its exponent(s) where it is produced: per tensor, or PTF per channel for a
 *     residual stream read only by LayerNorms and adds;
 *   - derive each op's integer parameters with the op's own quantizer (src/quant/ops/, linear.ts).
 */
import { quantizeReal } from "../arith.js";
import { P2vitError } from "../util/errors.js";
import { Calibration } from "./calibration.js";
import { Checkpoint, numPatches } from "./checkpoint.js";
import { QuantSettings } from "./fakequant.js";
import { gelu } from "./float/kernels.js";
import { quantizeLinear } from "./linear.js";
import { buildLut, addParams, perChannel } from "./ops/elementwise.js";
import { quantizeAttentionScores, quantizeAttentionValues, quantizeSoftmax } from "./ops/attention.js";
import { QuantizedLayerNorm, quantizeLayerNorm } from "./ops/layernorm.js";
import { activationExponent } from "./pot.js";
import { QGRAPH_FORMAT, QGRAPH_VERSION, QGraph, QOp, QTensor } from "./qgraph.js";
import { FloatGraph, FloatOp, FloatTensor, consumers, ptfNormOf } from "./trace.js";

const ACT_BITS = 8;
export const INPUT_NAME = "image";

/** The patch embedding as a Linear on (pixel − 128) instead of on normalized pixels. */
export function foldNormalization(
  weight: Float32Array,
  bias: Float32Array | null,
  inF: number,
  outF: number,
  patchArea: number,
  mean: number[],
  std: number[],
): { weight: Float32Array; bias: Float32Array } {
  // (p/255 − m)/s = (p − 128)/(255 s) + (128/255 − m)/s
  const w = new Float32Array(weight.length);
  const b = Float32Array.from({ length: outF }, (_, n) => bias?.[n] ?? 0);
  for (let n = 0; n < outF; n++) {
    let shift = 0;
    for (let k = 0; k < inF; k++) {
      const c = Math.floor(k / patchArea);
      w[n * inF + k] = weight[n * inF + k] / (255 * std[c]);
      shift += weight[n * inF + k] * ((128 / 255 - mean[c]) / std[c]);
    }
    b[n] += shift;
  }
  return { weight: w, bias: b };
}

/** Normalized patch rows → the (pixel − 128) integers they came from. */
export function denormalizeRows(x: Float32Array, inF: number, patchArea: number, mean: number[], std: number[]): Float32Array {
  return Float32Array.from(x, (v, i) => {
    const c = Math.floor((i % inF) / patchArea);
    return Math.round((v * std[c] + mean[c]) * 255) - 128;
  });
}

/**
 * The results of the per-op quantizers for one calibration, keyed by op and by every value and
 * setting that can vary between two quantizations of it. Mixed precision quantizes the same model under many weight
 * bit maps: only the layers whose bits (or whose input exponents) differ are quantized again, and
 * the graph assembled from the cache is exactly the one a fresh quantization would give.
 */
export class QuantizeCache {
  private readonly entries = new Map<string, unknown>();
  constructor(readonly calibration: Calibration) {}

  get<T>(key: string, make: () => T): T {
    if (!this.entries.has(key)) this.entries.set(key, make());
    return this.entries.get(key) as T;
  }
}

/** The weight bits of Linear layer `name` under settings `s`: the per-layer map when there is one. */
export function weightBitsOf(s: QuantSettings, name: string): 4 | 8 {
  return s.layerBits?.[name] ?? s.wBits;
}

export function quantizeGraph(
  ckpt: Checkpoint,
  graph: FloatGraph,
  cal: Calibration,
  s: QuantSettings,
  resize: QGraph["input"]["resize"] = null,
  cache = new QuantizeCache(cal),
): QGraph {
  if (s.scale !== "pot") throw new P2vitError("the integer QGraph needs power-of-two scales (--scale pot); --scale float is evaluated as fake-quant only");
  if (cache.calibration !== cal) throw new Error("quantizeGraph: the cache belongs to another calibration");
  const arch = ckpt.config.architecture;
  const readers = consumers(graph);
  const exps = new Map<string, Int32Array>();
  const tensors: QTensor[] = [];
  const ops: QOp[] = [];
  const layerNorms = new Map<string, QuantizedLayerNorm>();
  const patchArea = arch.patch_size * arch.patch_size;
  const { mean, std } = ckpt.config.preprocess;

  const tensorOf = (name: string): FloatTensor => graph.tensors.get(name)!;
  const uniform = (name: string): number => {
    const e = exps.get(name);
    if (!e) throw new Error(`quantize: tensor ${name} has no exponent yet`);
    if (e.some((v) => v !== e[0])) throw new P2vitError(`${name}: a per-channel (PTF) tensor feeds an op that needs one exponent`);
    return e[0];
  };
  const produce = (name: string, exponents: Int32Array, bits = ACT_BITS, signed = true, data?: Int8Array): void => {
    const t = tensorOf(name) ?? { rows: 1, cols: exponents.length };
    exps.set(name, exponents);
    tensors.push({ name, rows: t.rows, cols: t.cols, bits, signed, exponents, ...(data ? { data } : {}) });
  };
  /** The input tap of the first Linear reading a tensor (possibly through row selection). */
  const linearReaderTap = (name: string): string | null => {
    for (const op of readers.get(name) ?? []) {
      if (op.kind === "linear") return op.name;
      if (op.kind === "select_row" || op.kind === "concat_cols") {
        const deeper = linearReaderTap(op.output);
        if (deeper) return deeper;
      }
    }
    return null;
  };
  const perTensorExponent = (name: string, fallbackTap: string | null): number => {
    const tap = linearReaderTap(name) ?? fallbackTap;
    if (!tap) throw new Error(`quantize: no calibration data observed tensor ${name}`);
    return cache.get(`exponent:${s.method}:${tap}`, () => cal.tap(tap, "input").exponent(s.method, ACT_BITS));
  };
  /** `inputExponent`: the input's producer already fixed one exponent (it is not a PTF residual add). */
  const layerNormOf = (op: Extract<FloatOp, { kind: "layernorm" }>, inputExponent?: number): QuantizedLayerNorm => {
    let q = layerNorms.get(op.name);
    if (!q) {
      q = cache.get(`layernorm:${op.name}:${inputExponent ?? "ptf"}`, () => {
        const { data, rows } = cal.tap(op.name, "input").sample();
        return quantizeLayerNorm({ name: op.name, gamma: op.gamma, beta: op.beta, eps: op.eps, calibrationInput: data, rows, dim: op.dim, inputExponent });
      });
      layerNorms.set(op.name, q);
    }
    return q;
  };
  /** Exponents of an add's output: PTF of the LayerNorm reading it when only LayerNorms and adds do. */
  const addOutputExponents = (op: FloatOp, cols: number): Int32Array => {
    const ln = ptfNormOf(graph, op.output, readers);
    if (ln) {
      const q = layerNormOf(ln);
      return Int32Array.from(q.params.k, (k) => q.inputExponent - 3 + k);
    }
    return perChannel(perTensorExponent(op.output, null), cols);
  };

  // the image, and its patches as the first Linear reads them
  const { in_chans: channels, img_size: imgSize, patch_size: patch } = arch;
  tensors.push({ name: INPUT_NAME, rows: channels * imgSize, cols: imgSize, bits: ACT_BITS, signed: true, exponents: perChannel(0, imgSize) });
  produce(graph.input, perChannel(0, tensorOf(graph.input).cols));
  ops.push({ kind: "patchify", name: "patch_embed.patchify", inputs: [INPUT_NAME], output: graph.input, channels, imgSize, patch });

  for (const op of graph.ops) {
    const out = tensorOf(op.output);
    switch (op.kind) {
      case "linear": {
        const isInput = op.inputs[0] === graph.input;
        const weightBits = weightBitsOf(s, op.name);
        const inputExponent = uniform(op.inputs[0]);
        const layer = cache.get(`linear:${op.name}:${weightBits}:${inputExponent}`, () => {
          const folded = isInput ? foldNormalization(op.weight, op.bias, op.inF, op.outF, patchArea, mean, std) : null;
          const sample = cal.tap(op.name, "input").sample().data;
          return quantizeLinear({
            name: op.name,
            weight: folded?.weight ?? op.weight,
            bias: folded?.bias ?? op.bias ?? new Float32Array(op.outF),
            inFeatures: op.inF,
            outFeatures: op.outF,
            calibration: isInput ? denormalizeRows(sample, op.inF, patchArea, mean, std) : sample,
            weightBits,
            inputExponent,
            outputBits: op.output === graph.output ? 32 : 8,
          });
        });
        produce(op.output, perChannel(layer.output.exponent, op.outF), layer.output.bits);
        ops.push({ kind: "linear", name: op.name, inputs: op.inputs, output: op.output, rows: op.rows, layer });
        break;
      }
      case "layernorm": {
        const have = exps.get(op.inputs[0])!;
        const q = layerNormOf(op, ptfNormOf(graph, op.inputs[0], readers) === op ? undefined : uniform(op.inputs[0]));
        const want = Int32Array.from(q.params.k, (k) => q.inputExponent - 3 + k);
        if (want.some((e, c) => e !== have[c])) throw new Error(`quantize: ${op.name} input exponents differ from its producer's`);
        produce(op.output, perChannel(q.outputExponent, op.dim));
        ops.push({ kind: "layernorm", name: op.name, inputs: op.inputs, output: op.output, rows: op.rows, dim: op.dim, params: q.params });
        break;
      }
      case "attn_scores": {
        const head = op.name.replace(/\.scores$/, "");
        const qExponent = uniform(op.inputs[0]);
        const kExponent = uniform(op.inputs[1]);
        const params = cache.get(`scores:${op.name}:${qExponent}:${kExponent}`, () =>
          quantizeAttentionScores({
            name: op.name, tokens: op.tokens, headDim: op.headDim, qExponent, kExponent, scale: op.scale, calibration: cal.tap(head, "output").sample().data,
          }),
        );
        produce(op.output, perChannel(params.scoreExponent, op.tokens));
        ops.push({ kind: "attn_scores", name: op.name, inputs: op.inputs, output: op.output, tokens: op.tokens, params });
        break;
      }
      case "softmax": {
        const scores = ops.find((o) => o.output === op.inputs[0]);
        if (scores?.kind !== "attn_scores") throw new Error(`quantize: ${op.name} does not read attention scores`);
        const { scoreExponent, scaleResidual } = scores.params;
        const params = cache.get(`softmax:${op.name}:${s.attnBits}:${scoreExponent}:${scaleResidual}`, () =>
          quantizeSoftmax({ name: op.name, attnBits: s.attnBits, scoreExponent, scoreResidual: scaleResidual }),
        );
        produce(op.output, perChannel(0, op.cols), s.attnBits, false);
        ops.push({ kind: "softmax", name: op.name, inputs: op.inputs, output: op.output, rows: op.rows, cols: op.cols, params });
        break;
      }
      case "attn_values": {
        const head = op.name.replace(/\.values$/, "");
        // every head of a layer shares the exponent of the concatenation the projection reads
        const outputExponent = perTensorExponent(op.output, null);
        const vExponent = uniform(op.inputs[1]);
        const params = cache.get(`values:${op.name}:${s.attnBits}:${vExponent}:${outputExponent}`, () =>
          quantizeAttentionValues({
            name: op.name, attnBits: s.attnBits, headDim: op.headDim, vExponent, calibration: cal.tap(`${head}.values`, "output").sample().data, outputExponent,
          }),
        );
        produce(op.output, perChannel(outputExponent, op.headDim));
        ops.push({ kind: "attn_values", name: op.name, inputs: op.inputs, output: op.output, tokens: op.tokens, params });
        break;
      }
      case "activation": {
        const inExp = uniform(op.inputs[0]);
        const outExp = perTensorExponent(op.output, null);
        const f = op.act === "gelu" ? gelu : (x: number) => Math.max(0, x);
        produce(op.output, perChannel(outExp, out.cols));
        ops.push({ kind: "lut", name: op.name, inputs: op.inputs, output: op.output, params: buildLut(f, inExp, outExp) });
        break;
      }
      case "add": {
        const [a, b] = op.inputs;
        if (!exps.has(b)) quantizeConstant(b, tensorOf(b), out.cols);
        const yExp = addOutputExponents(op, out.cols);
        produce(op.output, yExp);
        const params = addParams(op.name, exps.get(a)!, exps.get(b)!, yExp);
        ops.push({ kind: "add", name: op.name, inputs: op.inputs, output: op.output, rows: out.rows, cols: out.cols, params });
        break;
      }
      case "slice_cols":
        produce(op.output, exps.get(op.inputs[0])!.slice(op.start, op.start + op.width));
        ops.push({ ...sliceOp(op) });
        break;
      case "concat_cols": {
        const all = op.inputs.flatMap((n) => Array.from(exps.get(n)!));
        produce(op.output, Int32Array.from(all));
        ops.push({ kind: "concat_cols", name: op.name, inputs: op.inputs, output: op.output, rows: op.rows, widths: op.widths });
        break;
      }
      case "prepend_row": {
        const [row, x] = op.inputs;
        // the class token joins the patch tokens' exponent
        quantizeConstantAt(row, tensorOf(row), uniform(x));
        produce(op.output, exps.get(x)!.slice());
        ops.push({ kind: "prepend_row", name: op.name, inputs: op.inputs, output: op.output, rows: op.rows, cols: op.cols });
        break;
      }
      case "select_row":
        produce(op.output, exps.get(op.inputs[0])!.slice());
        ops.push({ kind: "select_row", name: op.name, inputs: op.inputs, output: op.output, rows: op.rows, cols: op.cols, row: op.row });
        break;
    }
  }

  function quantizeConstant(name: string, t: FloatTensor, cols: number): void {
    quantizeConstantAt(name, t, cache.get(`constant:${name}`, () => activationExponent(t.constant!, ACT_BITS)), cols);
  }
  function quantizeConstantAt(name: string, t: FloatTensor, exponent: number, cols = t.cols): void {
    const data = Int8Array.from(t.constant!, (v) => quantizeReal(v, exponent, ACT_BITS));
    produce(name, perChannel(exponent, cols), ACT_BITS, true, data);
  }

  return {
    format: QGRAPH_FORMAT,
    version: QGRAPH_VERSION,
    model: { name: ckpt.config.name, source: ckpt.config.source ?? ckpt.dir, numClasses: arch.num_classes },
    settings: { method: s.method, scale: s.scale, wBits: s.layerBits ? "mixed" : s.wBits, aBits: s.aBits, attnBits: s.attnBits, patches: numPatches(arch) },
    input: { name: INPUT_NAME, channels, height: imgSize, width: imgSize, resize },
    tensors,
    ops,
    output: graph.output,
  };
}

function sliceOp(op: Extract<FloatOp, { kind: "slice_cols" }>): QOp {
  return { kind: "slice_cols", name: op.name, inputs: op.inputs, output: op.output, rows: op.rows, cols: op.cols, start: op.start, width: op.width };
}
