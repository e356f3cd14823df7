/**
 * QGraph: the quantized layer graph, the one artifact the golden model, the compiler and the reports
 * all read. Every tensor is integers with a power-of-two exponent: real value = q · 2^exponent.
 */

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

export type QOp = QLinear;

export interface QGraph {
  format: typeof QGRAPH_FORMAT;
  version: typeof QGRAPH_VERSION;
  /** Model name and where its weights came from. */
  model: { name: string; source: string };
  ops: QOp[];
}
