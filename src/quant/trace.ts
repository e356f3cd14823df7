/**
 * Tracing: run the float forward pass once with ops that record, besides computing, which op made
 * each tensor and which ops read it. The result is the model's float graph: the structure the
 * quantization passes (quantize-graph.ts) walk to assign exponents and derive integer parameters.
 */
import { Act, VitOps } from "./ops.js";
import { floatOps } from "./float/float-ops.js";

export interface FloatTensor {
  name: string;
  rows: number;
  cols: number;
  /** Constants (class token, position embedding) keep their values. */
  constant?: Float32Array;
}

interface FloatOpBase {
  name: string;
  inputs: string[];
  output: string;
}

export type FloatOp =
  | (FloatOpBase & { kind: "linear"; rows: number; inF: number; outF: number; weight: Float32Array; bias: Float32Array | null })
  | (FloatOpBase & { kind: "layernorm"; rows: number; dim: number; gamma: Float32Array; beta: Float32Array; eps: number })
  | (FloatOpBase & { kind: "attn_scores"; tokens: number; headDim: number; scale: number })
  | (FloatOpBase & { kind: "softmax"; rows: number; cols: number })
  | (FloatOpBase & { kind: "attn_values"; tokens: number; headDim: number })
  | (FloatOpBase & { kind: "activation"; act: Act })
  | (FloatOpBase & { kind: "add" })
  | (FloatOpBase & { kind: "slice_cols"; rows: number; cols: number; start: number; width: number })
  | (FloatOpBase & { kind: "concat_cols"; rows: number; widths: number[] })
  | (FloatOpBase & { kind: "prepend_row"; rows: number; cols: number })
  | (FloatOpBase & { kind: "select_row"; rows: number; cols: number; row: number });

export interface FloatGraph {
  /** The first Linear's input: the image's patch rows. */
  input: string;
  tensors: Map<string, FloatTensor>;
  ops: FloatOp[];
  output: string;
}

/**
 * Ops that compute with `inner` (the float model unless given) and record the graph; call `finish`
 * with the logits. `values` gives every traced tensor's value by name.
 */
export function tracingOps(inner: VitOps = floatOps): {
  ops: VitOps;
  finish: (logits: Float32Array) => FloatGraph;
  values: () => Map<string, Float32Array>;
} {
  const names = new WeakMap<Float32Array, string>();
  const values = new Map<string, Float32Array>();
  const tensors = new Map<string, FloatTensor>();
  const ops: FloatOp[] = [];
  let input: string | null = null;

  const define = (name: string, value: Float32Array, rows: number, cols: number, constant = false): string => {
    if (tensors.has(name)) throw new Error(`trace: tensor ${name} defined twice`);
    tensors.set(name, { name, rows, cols, ...(constant ? { constant: value.slice() } : {}) });
    names.set(value, name);
    values.set(name, value);
    return name;
  };
  /** The tensor an op reads; it must come from an earlier op. */
  const produced = (value: Float32Array, reader: string): string => {
    const known = names.get(value);
    if (!known) throw new Error(`trace: ${reader} reads a tensor no traced op produced (computed outside VitOps?)`);
    return known;
  };
  /** A tensor an op reads that may be a constant of the model (class token, position embedding). */
  const producedOrConstant = (value: Float32Array, name: string, rows: number, cols: number): string =>
    names.get(value) ?? define(name, value, rows, cols, true);
  /** The first Linear's input is the model's input (the patch rows); any other must be produced. */
  const linearInput = (value: Float32Array, reader: string, rows: number, cols: number): string => {
    if (input === null && !names.has(value)) {
      input = define("patches", value, rows, cols);
      return input;
    }
    return produced(value, reader);
  };
  const emit = <T extends FloatOp>(op: T, value: Float32Array, rows: number, cols: number): Float32Array => {
    define(op.output, value, rows, cols);
    ops.push(op);
    return value;
  };

  const traced: VitOps = {
    linear(name, x, rows, weight, bias, inF, outF) {
      const src = linearInput(x, name, rows, inF);
      const y = inner.linear(name, x, rows, weight, bias, inF, outF);
      return emit({ kind: "linear", name, inputs: [src], output: name, rows, inF, outF, weight, bias }, y, rows, outF);
    },
    layerNorm(name, x, rows, dim, gamma, beta, eps) {
      const y = inner.layerNorm(name, x, rows, dim, gamma, beta, eps);
      return emit({ kind: "layernorm", name, inputs: [produced(x, name)], output: name, rows, dim, gamma, beta, eps }, y, rows, dim);
    },
    attentionScores(name, q, k, tokens, headDim, scale) {
      const y = inner.attentionScores(name, q, k, tokens, headDim, scale);
      const inputs = [produced(q, name), produced(k, name)];
      return emit({ kind: "attn_scores", name: `${name}.scores`, inputs, output: `${name}.scores`, tokens, headDim, scale }, y, tokens, tokens);
    },
    softmax(name, scores, rows, cols) {
      const y = inner.softmax(name, scores, rows, cols);
      return emit({ kind: "softmax", name: `${name}.softmax`, inputs: [produced(scores, name)], output: `${name}.softmax`, rows, cols }, y, rows, cols);
    },
    attentionValues(name, p, v, tokens, headDim) {
      const y = inner.attentionValues(name, p, v, tokens, headDim);
      const inputs = [produced(p, name), produced(v, name)];
      return emit({ kind: "attn_values", name: `${name}.values`, inputs, output: `${name}.values`, tokens, headDim }, y, tokens, headDim);
    },
    activation(name, act, x) {
      const src = produced(x, name);
      const t = tensors.get(src)!;
      return emit({ kind: "activation", name, inputs: [src], output: name, act }, inner.activation(name, act, x), t.rows, t.cols);
    },
    add(name, a, b) {
      const src = produced(a, name);
      const t = tensors.get(src)!;
      const other = producedOrConstant(b, `${name}.const`, b.length === a.length ? t.rows : 1, t.cols);
      return emit({ kind: "add", name, inputs: [src, other], output: name }, inner.add(name, a, b), t.rows, t.cols);
    },
    sliceCols(name, x, rows, cols, start, width) {
      const y = inner.sliceCols(name, x, rows, cols, start, width);
      return emit({ kind: "slice_cols", name, inputs: [produced(x, name)], output: name, rows, cols, start, width }, y, rows, width);
    },
    concatCols(name, parts, rows, widths) {
      const y = inner.concatCols(name, parts, rows, widths);
      const inputs = parts.map((p) => produced(p, name));
      return emit({ kind: "concat_cols", name, inputs, output: name, rows, widths }, y, rows, widths.reduce((s, w) => s + w, 0));
    },
    prependRow(name, row, x, rows, cols) {
      const y = inner.prependRow(name, row, x, rows, cols);
      const inputs = [producedOrConstant(row, `${name}.row`, 1, cols), produced(x, name)];
      return emit({ kind: "prepend_row", name, inputs, output: name, rows, cols }, y, rows + 1, cols);
    },
    selectRow(name, x, rows, cols, row) {
      const y = inner.selectRow(name, x, rows, cols, row);
      return emit({ kind: "select_row", name, inputs: [produced(x, name)], output: name, rows, cols, row }, y, 1, cols);
    },
  };

  return {
    ops: traced,
    values: () => values,
    finish(logits) {
      const output = names.get(logits);
      if (!output || input === null) throw new Error("trace: the forward pass produced no traced logits");
      return { input, tensors, ops, output };
    },
  };
}

/** The ops that read each tensor, in order. */
export function consumers(graph: FloatGraph): Map<string, FloatOp[]> {
  const out = new Map<string, FloatOp[]>();
  for (const op of graph.ops) for (const name of op.inputs) out.set(name, [...(out.get(name) ?? []), op]);
  return out;
}

/**
 * The LayerNorm whose PTF grid a tensor takes: a residual add's output read only by LayerNorms and
 * adds is held per channel (PTF) for the first LayerNorm reading it; anything else has one exponent.
 */
export function ptfNormOf(graph: FloatGraph, tensor: string, readers = consumers(graph)): Extract<FloatOp, { kind: "layernorm" }> | null {
  const producer = graph.ops.find((o) => o.output === tensor);
  const rs = readers.get(tensor) ?? [];
  const ln = rs.find((r) => r.kind === "layernorm");
  if (producer?.kind !== "add" || !ln || ln.kind !== "layernorm" || !rs.every((r) => r.kind === "layernorm" || r.kind === "add")) return null;
  return ln;
}
