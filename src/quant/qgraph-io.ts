/** Saving and loading QGraph files (docs/qgraph.md), validated on load. */
import { P2vitError } from "../util/errors.js";
import { QGRAPH_FORMAT, QGRAPH_VERSION, QGraph, QMixedPrecision, QOp, QOpKind } from "./qgraph.js";
import { readWithArrays, writeWithArrays } from "./qgraph-file.js";

export function saveQGraph(file: string, graph: QGraph): void {
  writeWithArrays(file, graph);
}

const OP_KINDS: QOpKind[] = [
  "patchify", "linear", "layernorm", "attn_scores", "softmax", "attn_values", "lut", "add", "slice_cols", "concat_cols", "prepend_row", "select_row",
];

export function loadQGraph(file: string): QGraph {
  const raw = readWithArrays(file);
  validateQGraph(raw, file);
  return raw;
}

/** Structural validation: format and version, known ops, every input produced before it is read, array sizes. */
export function validateQGraph(raw: unknown, file: string): asserts raw is QGraph {
  const fail = (what: string): never => {
    throw new P2vitError(`${file}: ${what}`);
  };
  if (raw === null || typeof raw !== "object") fail("not a QGraph: the header is not an object");
  const g = raw as Partial<QGraph>;
  if (g.format !== QGRAPH_FORMAT) fail(`format: expected "${QGRAPH_FORMAT}", got ${JSON.stringify(g.format)}`);
  if (g.version !== QGRAPH_VERSION) fail(`version: this p2vit reads version ${QGRAPH_VERSION}, the file is version ${JSON.stringify(g.version)}`);
  if (!g.model || typeof g.model.name !== "string") fail("model.name: expected a string");
  if (!g.input || ![g.input.channels, g.input.height, g.input.width].every((v) => Number.isInteger(v) && v > 0)) {
    fail("input: expected { name, channels, height, width } with positive integer sizes");
  }
  if (!Array.isArray(g.tensors) || !Array.isArray(g.ops) || g.ops.length === 0) fail("tensors and ops: expected arrays, with at least one op");
  const tensors = new Map(g.tensors!.map((t) => [t.name, t]));
  for (const t of g.tensors!) {
    if (!(t.exponents instanceof Int32Array) || t.exponents.length !== t.cols) fail(`tensor ${t.name}: exponents: expected ${t.cols} int32 values`);
    if (t.data && t.data.length !== t.rows * t.cols) fail(`tensor ${t.name}: data: expected ${t.rows}×${t.cols} values, got ${t.data.length}`);
  }
  const available = new Set<string>([g.input!.name, ...g.tensors!.filter((t) => t.data).map((t) => t.name)]);
  g.ops!.forEach((op, i) => {
    const where = `ops[${i}] (${(op as QOp).name ?? "?"})`;
    if (!OP_KINDS.includes(op.kind)) fail(`${where}: unknown op kind ${JSON.stringify(op.kind)} (expected one of ${OP_KINDS.join(", ")})`);
    for (const input of op.inputs) if (!available.has(input)) fail(`${where}: reads tensor ${input} before any op produces it`);
    if (!tensors.has(op.output)) fail(`${where}: output ${op.output} is not in the tensor list`);
    if (op.kind === "linear") validateLinear(op, where, fail);
    available.add(op.output);
  });
  if (!available.has(g.output!)) fail(`output: tensor ${g.output} is never produced`);
  if (g.mixedPrecision !== undefined) validateMixedPrecision(g.mixedPrecision, g.ops!, fail);
}

/** The bit map must name exactly the Linear layers, each with the bits its weights have. */
function validateMixedPrecision(m: QMixedPrecision, ops: QOp[], fail: (what: string) => never): void {
  if (m === null || typeof m !== "object" || typeof m.bits !== "object" || m.bits === null) fail("mixedPrecision: expected { budget, seed, bits }");
  if (typeof m.budget !== "number" || !Number.isFinite(m.budget) || !Number.isInteger(m.seed)) fail("mixedPrecision: budget must be a number and seed an integer");
  const linears = ops.filter((op): op is Extract<QOp, { kind: "linear" }> => op.kind === "linear");
  for (const op of linears) {
    const bits = m.bits[op.name];
    if (bits !== op.layer.weightBits) fail(`mixedPrecision.bits["${op.name}"]: expected ${op.layer.weightBits} (the layer's weightBits), got ${JSON.stringify(bits)}`);
  }
  const names = new Set(linears.map((op) => op.name));
  for (const name of Object.keys(m.bits)) if (!names.has(name)) fail(`mixedPrecision.bits: "${name}" is not a Linear layer of the graph`);
}

function validateLinear(op: Extract<QOp, { kind: "linear" }>, where: string, fail: (what: string) => never): void {
  const l = op.layer;
  const { inFeatures: k, outFeatures: n } = l;
  if (!(l.weight instanceof Int8Array) || l.weight.length !== n * k) fail(`${where}: weight: expected ${n}×${k} int8 values`);
  for (const [name, arr] of [["bias", l.bias], ["shift", l.shift], ["weightExponents", l.weightExponents]] as const) {
    if (!(arr instanceof Int32Array) || arr.length !== n) fail(`${where}: ${name}: expected ${n} int32 values`);
  }
}
