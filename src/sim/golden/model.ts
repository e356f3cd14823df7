/**
 * The golden integer model: executes a QGraph on one image with the integer kernels only. No
 * floating point anywhere on this path (test/sim/golden-model.test.ts checks the imports).
 */
import type { QGraph, QOp, QTensor } from "../../quant/qgraph.js";
import { attentionScoresInt, attentionValuesInt, logIntSoftmax, uniformIntSoftmax } from "./attention.js";
import { addInt, lutInt } from "./elementwise.js";
import { layerNormInt } from "./layernorm.js";
import { linearGolden, linearGoldenWide } from "./linear.js";
import { concatColumns, prependRow, selectRow, sliceColumns } from "../../util/matrix.js";

/** The accumulator width the golden model checks every Linear against (docs/arithmetic.md). */
const ACC_BITS = 32;

export type IntTensor = Int8Array | Uint8Array | Int32Array;

export interface GoldenRun {
  /** Logits of the image, int32 at the output tensor's exponent. */
  logits: Int32Array;
  /** Every tensor the run produced, by name (for dumps and per-layer comparison). */
  tensors: Map<string, IntTensor>;
}

/** The image as the graph takes it: C×H×W pixels (0..255) → int8 pixel − 128. */
export function imageToInput(pixels: Uint8Array): Int8Array {
  return Int8Array.from(pixels, (p) => p - 128);
}

export function runGolden(graph: QGraph, pixels: Uint8Array, keep = false): GoldenRun {
  const { channels, height, width } = graph.input;
  if (pixels.length !== channels * height * width) {
    throw new Error(`image has ${pixels.length} values, graph ${graph.model.name} takes ${channels}×${height}×${width}`);
  }
  const info = new Map(graph.tensors.map((t) => [t.name, t]));
  const tensors = new Map<string, IntTensor>();
  tensors.set(graph.input.name, imageToInput(pixels));
  for (const t of graph.tensors) if (t.data) tensors.set(t.name, t.data);
  const get = (name: string): IntTensor => {
    const t = tensors.get(name);
    if (!t) throw new Error(`tensor ${name} is used before it is produced`);
    return t;
  };
  const lastUse = new Map<string, number>();
  graph.ops.forEach((op, i) => op.inputs.forEach((name) => lastUse.set(name, i)));
  graph.ops.forEach((op, i) => {
    tensors.set(op.output, execute(op, op.inputs.map(get), info));
    // free what no later op reads, unless the caller keeps every tensor for dumps
    if (!keep) for (const name of op.inputs) if (lastUse.get(name) === i && !info.get(name)?.data) tensors.delete(name);
  });
  const logits = get(graph.output);
  if (!(logits instanceof Int32Array)) throw new Error(`output ${graph.output} is not an int32 tensor`);
  return { logits, tensors };
}

function execute(op: QOp, inputs: IntTensor[], info: Map<string, QTensor>): IntTensor {
  switch (op.kind) {
    case "patchify":
      return patchifyInt(inputs[0] as Int8Array, op.channels, op.imgSize, op.patch);
    case "linear":
      return op.layer.output.bits === 32
        ? linearGoldenWide(op.layer, inputs[0] as Int8Array, op.rows, { accBits: ACC_BITS })
        : linearGolden(op.layer, inputs[0] as Int8Array, op.rows, { accBits: ACC_BITS });
    case "layernorm":
      return layerNormInt(inputs[0] as Int8Array, op.rows, op.dim, op.params);
    case "attn_scores":
      return attentionScoresInt(inputs[0] as Int8Array, inputs[1] as Int8Array, op.tokens, op.params.headDim, op.params);
    case "softmax":
      return op.params.attnBits === 4
        ? logIntSoftmax(inputs[0] as Int8Array, op.rows, op.cols, op.params)
        : uniformIntSoftmax(inputs[0] as Int8Array, op.rows, op.cols, op.params);
    case "attn_values":
      return attentionValuesInt(inputs[0] as Uint8Array, inputs[1] as Int8Array, op.tokens, op.params.headDim, op.params);
    case "lut":
      return lutInt(inputs[0] as Int8Array, op.params);
    case "add":
      return addInt(inputs[0] as Int8Array, inputs[1] as Int8Array, op.rows, op.cols, op.params);
    case "slice_cols":
      return sliceColumns(inputs[0] as Int8Array, op.rows, op.cols, op.start, op.width);
    case "concat_cols":
      return concatColumns(inputs as Int8Array[], op.rows, op.widths);
    case "prepend_row":
      return prependRow(inputs[0] as Int8Array, inputs[1] as Int8Array);
    case "select_row":
      return selectRow(inputs[0] as Int8Array, op.cols, op.row);
  }
  const never: never = op;
  throw new Error(`unknown op ${JSON.stringify(never)} in ${info.size}-tensor graph`);
}

/** C×H×W → patches × (C·p·p), patches in raster order, columns (channel, row, col): a pure reshape. */
export function patchifyInt(image: Int8Array, channels: number, size: number, patch: number): Int8Array {
  const grid = size / patch;
  const k = channels * patch * patch;
  const out = new Int8Array(grid * grid * k);
  for (let py = 0; py < grid; py++) {
    for (let px = 0; px < grid; px++) {
      const row = (py * grid + px) * k;
      for (let c = 0; c < channels; c++) {
        for (let y = 0; y < patch; y++) {
          for (let x = 0; x < patch; x++) {
            out[row + (c * patch + y) * patch + x] = image[(c * size + py * patch + y) * size + px * patch + x];
          }
        }
      }
    }
  }
  return out;
}
