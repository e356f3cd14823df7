/**
 * Where every tensor of a QGraph lives in memory. Each tensor is rows of vector words; a row starts
 * on a vector word. Reshapes cost nothing: a column slice, a part of a concatenation, the rows after a
 * prepended row and one selected row are *views* into another tensor's storage. For that, a tensor
 * that is sliced (qkv) or concatenated (the heads) places each part at a vector-word boundary,
 * leaving zero padding between parts when a part is not a whole number of vector words: the Linear
 * layers on either side then see a wider K or N, with zero weights on the padding.
 *
 * Memory is written once per tensor (no buffer reuse), so the only memory hazards are
 * read-after-write: the dependency pass relies on this.
 */
import { AcceleratorConfig, deriveHw } from "../hw/config.js";
import { WIDE_PLANES } from "../hw/footprint.js";
import type { QGraph, QOp, QTensor } from "../quant/qgraph.js";
import { P2vitError } from "../util/errors.js";

/** A tensor's place: `rows` rows of `vectors` vector words, row r at word + r · rowStride (memory words). */
export interface Placement {
  word: number;
  rows: number;
  rowStride: number;
  vectors: number;
  /** Physical byte column of each logical column within a row (identity when absent). */
  columns?: Int32Array;
  /** Physical width: one past the last physical column used (the K or N a Linear sees). */
  width: number;
  /** int32 tensor: four byte planes per column tile of `cols` columns. */
  wide: boolean;
}

interface View {
  parent: string;
  rowOffset: number;
  vectorOffset: number;
}

export interface TensorPlan {
  /** Root tensors that own storage, in allocation order, with their vector words per row. */
  roots: { name: string; rows: number; vectors: number; columns?: Int32Array; width: number; wide: boolean }[];
  views: Map<string, View>;
}

/** Where each part starts when `widths` are placed side by side, each on a vector-word boundary. */
function alignedStarts(widths: number[], cols: number): { starts: number[]; width: number } {
  const starts: number[] = [];
  let cursor = 0;
  for (const w of widths) {
    cursor = Math.ceil(cursor / cols) * cols;
    starts.push(cursor);
    cursor += w;
  }
  return { starts, width: cursor };
}

export function planTensors(graph: QGraph, cfg: AcceleratorConfig): TensorPlan {
  const C = cfg.array.cols;
  const info = new Map(graph.tensors.map((t) => [t.name, t]));
  const views = new Map<string, View>();
  const columns = new Map<string, { map: Int32Array; width: number }>();
  const setView = (child: string, v: View, op: QOp) => {
    if (views.has(child)) throw new P2vitError(`op ${op.name}: tensor ${child} would be stored in two places`);
    views.set(child, v);
  };

  // Sliced tensors: each slice on a vector boundary, in column order.
  const slicesOf = new Map<string, Extract<QOp, { kind: "slice_cols" }>[]>();
  for (const op of graph.ops) if (op.kind === "slice_cols") slicesOf.set(op.inputs[0], [...(slicesOf.get(op.inputs[0]) ?? []), op]);
  for (const [name, slices] of slicesOf) {
    const t = info.get(name)!;
    const sorted = [...slices].sort((a, b) => a.start - b.start);
    const map = new Int32Array(t.cols).fill(-1);
    const { starts, width } = alignedStarts(sorted.map((s) => s.width), C);
    sorted.forEach((s, i) => {
      for (let c = 0; c < s.width; c++) {
        if (map[s.start + c] !== -1) throw new P2vitError(`op ${s.name}: slices of ${name} overlap at column ${s.start + c}`);
        map[s.start + c] = starts[i] + c;
      }
      setView(s.output, { parent: name, rowOffset: 0, vectorOffset: starts[i] / C }, s);
    });
    const missing = map.indexOf(-1);
    if (missing >= 0) throw new P2vitError(`tensor ${name}: column ${missing} is in no slice; a sliced tensor must be covered by its slices`);
    columns.set(name, { map, width });
  }

  for (const op of graph.ops) {
    if (op.kind === "concat_cols") {
      const { starts, width } = alignedStarts(op.widths, C);
      const map = new Int32Array(op.widths.reduce((a, b) => a + b, 0));
      let logical = 0;
      op.inputs.forEach((part, i) => {
        for (let c = 0; c < op.widths[i]; c++) map[logical++] = starts[i] + c;
        setView(part, { parent: op.output, rowOffset: 0, vectorOffset: starts[i] / C }, op);
      });
      columns.set(op.output, { map, width });
    } else if (op.kind === "prepend_row") {
      setView(op.inputs[1], { parent: op.output, rowOffset: 1, vectorOffset: 0 }, op);
    } else if (op.kind === "select_row") {
      setView(op.output, { parent: op.inputs[0], rowOffset: op.row, vectorOffset: 0 }, op);
    }
  }

  const patchified = new Set(graph.ops.filter((op) => op.kind === "patchify").map((op) => op.inputs[0]));
  const roots: TensorPlan["roots"] = [];
  for (const t of graph.tensors) {
    if (views.has(t.name) || t.data) continue;
    if (patchified.has(t.name)) continue; // the image itself: the host writes its patch rows
    const col = columns.get(t.name);
    const wide = t.bits === 32;
    const vectors = wide ? WIDE_PLANES * Math.ceil(t.cols / C) : Math.ceil((col?.width ?? t.cols) / C);
    roots.push({ name: t.name, rows: t.rows, vectors, columns: col?.map, width: col?.width ?? t.cols, wide });
  }
  return { roots, views };
}

/** Resolves every tensor's placement once the roots have memory words. */
export function resolvePlacements(
  plan: TensorPlan,
  rootWords: Map<string, number>,
  tensors: QTensor[],
  cfg: AcceleratorConfig,
): Map<string, Placement> {
  const hw = deriveHw(cfg);
  const C = cfg.array.cols;
  const info = new Map(tensors.map((t) => [t.name, t]));
  const rootOf = new Map(plan.roots.map((r) => [r.name, r]));
  const out = new Map<string, Placement>();
  const place = (name: string): Placement => {
    const done = out.get(name);
    if (done) return done;
    const t = info.get(name);
    if (!t) throw new Error(`no tensor ${name}`);
    const view = plan.views.get(name);
    let p: Placement;
    if (view) {
      const parent = place(view.parent);
      p = {
        word: parent.word + view.rowOffset * parent.rowStride + view.vectorOffset * hw.wordsPerVector,
        rows: t.rows,
        rowStride: parent.rowStride,
        vectors: Math.ceil(t.cols / C),
        width: t.cols,
        wide: false,
      };
    } else {
      const root = rootOf.get(name);
      const word = rootWords.get(name);
      if (!root || word === undefined) throw new Error(`tensor ${name} has no storage`);
      p = { word, rows: root.rows, rowStride: root.vectors * hw.wordsPerVector, vectors: root.vectors, columns: root.columns, width: root.width, wide: root.wide };
    }
    out.set(name, p);
    return p;
  };
  for (const t of tensors) if (plan.views.has(t.name) || rootOf.has(t.name)) place(t.name);
  return out;
}

/** The physical column of logical column c. */
export function physicalColumn(p: Placement, c: number): number {
  return p.columns ? p.columns[c] : c;
}
