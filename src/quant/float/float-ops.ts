/**
 * The float reference implementation of the op contract: every op computes exactly what the trained
 * network computes, in float32 storage with double-precision sums. Names are ignored: the float model
 * treats every layer alike.
 */
import type { Act, VitOps } from "../ops.js";
import { concatColumns, prependRow, selectRow, sliceColumns } from "../../util/matrix.js";
import { addArrays, geluArray, layerNorm, matmulTransposed, reluArray, softmaxRows, transpose } from "./kernels.js";

/** One head's scale · Q · Kᵀ: both operands tokens × headDim, so it is Q times Kᵀ in the Linear layout. */
function attentionScores(q: Float32Array, k: Float32Array, tokens: number, headDim: number, scale: number): Float32Array {
  const scores = matmulTransposed(q, tokens, k, headDim, tokens);
  for (let i = 0; i < scores.length; i++) scores[i] *= scale;
  return scores;
}

function activation(kind: Act, x: Float32Array): Float32Array {
  switch (kind) {
    case "gelu":
      return geluArray(x);
    case "relu":
      return reluArray(x);
  }
}

export const floatOps: VitOps = {
  linear: (_name, x, rows, weight, bias, inF, outF) => matmulTransposed(x, rows, weight, inF, outF, bias),
  layerNorm: (_name, x, rows, dim, gamma, beta, eps) => layerNorm(x, rows, dim, gamma, beta, eps),
  attentionScores: (_name, q, k, tokens, headDim, scale) => attentionScores(q, k, tokens, headDim, scale),
  softmax: (_name, scores, rows, cols) => softmaxRows(scores, rows, cols),
  // P · V is P times the transpose of Vᵀ: the Linear layout again, on the same fast kernel.
  attentionValues: (_name, probs, v, tokens, headDim) => matmulTransposed(probs, tokens, transpose(v, tokens, headDim), tokens, headDim),
  activation: (_name, kind, x) => activation(kind, x),
  add: (_name, a, b) => addArrays(a, b),
  sliceCols: (_name, x, rows, cols, start, width) => sliceColumns(x, rows, cols, start, width),
  concatCols: (_name, parts, rows, widths) => concatColumns(parts, rows, widths),
  prependRow: (_name, row, x) => prependRow(row, x),
  selectRow: (_name, x, _rows, cols, row) => selectRow(x, cols, row),
};
