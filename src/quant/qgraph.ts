/**
 * QGraph: the quantized layer graph, the one artifact that the golden model, the compiler and the
 * reports all read (docs/qgraph.md). Every tensor holds integers with power-of-two exponents: the
 * real value of integer q in column c is q · 2^exponents[c]. Ops run in list order; each names its
 * input tensors and its one output tensor.
 */
import type { AddParams, LutParams } from "../sim/golden/elementwise.js";
import type { AttentionScoresParams, AttentionValuesParams, SoftmaxParams } from "../sim/golden/attention.js";
import type { IntLayerNormParams } from "../sim/golden/layernorm.js";

export const QGRAPH_FORMAT = "p2vit.qgraph";
export const QGRAPH_VERSION = 1;

/** An activation tensor's integer type: signed `bits`-bit integers at scale 2^exponent. */
export interface QTensorType {
  bits: number;
  exponent: number;
}

/**
 * A Linear layer y = x · Wᵀ + b, all integer: int8 x (M×K), int8 W (N×K, per-output-channel
 * exponents), int32 bias at the accumulator's exponent (inputExponent + weightExponents[c]), and a
 * requantization right shift per output channel: shift[c] = output.exponent − input.exponent − weightExponents[c].
 */
export interface QLinear {
  kind: "linear";
  name: string;
  inFeatures: number; // K
  outFeatures: number; // N
  input: QTensorType;
  output: QTensorType;
  weightBits: number;
  weight: Int8Array; // N×K, row-major (output channel major)
  weightExponents: Int32Array; // N
  bias: Int32Array; // N
  shift: Int32Array; // N
}

/** A tensor of the graph: rows × cols integers; `exponents` holds one exponent per column (PTF). */
export interface QTensor {
  name: string;
  rows: number;
  cols: number;
  /** 8 for int8 activations, 4 / 8 for attention probability codes (unsigned), 32 for logits. */
  bits: number;
  signed: boolean;
  exponents: Int32Array;
  /** Constants (class token, position embedding) carry their integers. */
  data?: Int8Array;
}

interface OpBase {
  name: string;
  inputs: string[];
  output: string;
}

export type QOp =
  /** The image (C×H×W int8, pixel − 128) as patch rows: a reshape, no arithmetic. */
  | (OpBase & { kind: "patchify"; channels: number; imgSize: number; patch: number })
  | (OpBase & { kind: "linear"; rows: number; layer: QLinear })
  | (OpBase & { kind: "layernorm"; rows: number; dim: number; params: IntLayerNormParams })
  | (OpBase & { kind: "attn_scores"; tokens: number; params: AttentionScoresParams })
  | (OpBase & { kind: "softmax"; rows: number; cols: number; params: SoftmaxParams })
  | (OpBase & { kind: "attn_values"; tokens: number; params: AttentionValuesParams })
  | (OpBase & { kind: "lut"; params: LutParams })
  | (OpBase & { kind: "add"; rows: number; cols: number; params: AddParams })
  | (OpBase & { kind: "slice_cols"; rows: number; cols: number; start: number; width: number })
  | (OpBase & { kind: "concat_cols"; rows: number; widths: number[] })
  | (OpBase & { kind: "prepend_row"; rows: number; cols: number })
  | (OpBase & { kind: "select_row"; rows: number; cols: number; row: number });

export type QOpKind = QOp["kind"];

/** How a mixed-precision graph's weight bits were chosen (src/quant/mixed.ts). */
export interface QMixedPrecision {
  /** β of the budget Σ FLOPs_i · b_i ≤ β · Σ FLOPs_i · 4 over the searched layers. */
  budget: number;
  seed: number;
  /** Weight bits of every Linear layer by name; each equals that layer's `weightBits`. */
  bits: Record<string, 4 | 8>;
}

export interface QGraph {
  format: typeof QGRAPH_FORMAT;
  version: typeof QGRAPH_VERSION;
  /** Model name, where its weights came from, and the settings it was quantized with. */
  model: { name: string; source: string; numClasses: number };
  settings: Record<string, string | number>;
  /**
   * The image the graph takes: C × H × W int8 values, pixel − 128; `resize` says how an image file is
   * brought to that size (null: files must already have it).
   */
  input: { name: string; channels: number; height: number; width: number; resize: { shortSide: number; interpolation: string } | null };
  tensors: QTensor[];
  ops: QOp[];
  /** The logits tensor: int32 at one exponent. */
  output: string;
  /** Present when the weight bits come from the mixed-precision search; older files lack it. */
  mixedPrecision?: QMixedPrecision;
}
