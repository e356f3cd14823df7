/**
 * Helpers shared by the forward passes: apply a checkpoint's Linear or LayerNorm through the ops under
 * its timm module name, and average pooling.
 */
import { check } from "../../util/errors.js";
import type { VitOps } from "../ops.js";
import type { Tensor } from "../safetensors.js";

/** Anything that holds weights by timm name: a ViT or a Swin checkpoint. */
export interface WeightSource {
  dir: string;
  tensors: Map<string, Tensor>;
}

/** Tensor data by timm name; the loaders validate names, so a miss names the checkpoint and the tensor. */
export function tensorData(src: WeightSource, name: string): Float32Array {
  const tensor = src.tensors.get(name);
  check(tensor, `${src.dir}: checkpoint has no tensor ${name}`);
  return tensor.data;
}

/** `layer` (a timm Linear) on rows × inF input; its bias is optional (qkv without bias, Swin's reduction). */
export function applyLinear(ops: VitOps, src: WeightSource, layer: string, x: Float32Array, rows: number, inF: number, outF: number): Float32Array {
  const bias = src.tensors.get(`${layer}.bias`)?.data ?? null;
  return ops.linear(layer, x, rows, tensorData(src, `${layer}.weight`), bias, inF, outF);
}

/** `layer` (a timm LayerNorm) on rows × dim input. */
export function applyLayerNorm(ops: VitOps, src: WeightSource, layer: string, x: Float32Array, rows: number, dim: number, eps: number): Float32Array {
  return ops.layerNorm(layer, x, rows, dim, tensorData(src, `${layer}.weight`), tensorData(src, `${layer}.bias`), eps);
}

/** Mean of rows [from, to) of a matrix with `cols` columns (average pooling of tokens). */
export function meanRows(x: Float32Array, from: number, to: number, cols: number): Float32Array {
  const sum = new Float64Array(cols);
  for (let r = from; r < to; r++) {
    for (let c = 0; c < cols; c++) sum[c] += x[r * cols + c];
  }
  const out = new Float32Array(cols);
  for (let c = 0; c < cols; c++) out[c] = sum[c] / (to - from);
  return out;
}
