/**
 * `p2vit run <qgraph> <image-or-data-dir>`: integer inference with the golden model, on one image
 * (top-k classes) or on a dataset's evaluation split (accuracy), with optional per-tensor dumps.
 */
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_CALIB, loadDataset } from "../quant/data/dataset.js";
import { InputSpec, decodeImage } from "../quant/data/decode.js";
import { loadQGraph } from "../quant/qgraph-io.js";
import { QGraph } from "../quant/qgraph.js";
import { IntTensor, runGolden } from "../sim/golden/model.js";
import { writeDirAtomic } from "../util/atomic.js";
import { P2vitError } from "../util/errors.js";

export interface RunArgs {
  qgraph: string;
  target: string;
  top: number;
  dump?: string;
  calib?: number;
  limit?: number;
}

function inputSpec(g: QGraph): InputSpec {
  if (g.input.height !== g.input.width) throw new P2vitError(`${g.model.name}: only square inputs are supported, the graph takes ${g.input.height}×${g.input.width}`);
  const resize = g.input.resize ? { shortSide: g.input.resize.shortSide, interpolation: g.input.resize.interpolation as "bicubic" } : null;
  return { channels: g.input.channels, size: g.input.height, resize };
}

/**
 * The dump format (docs/qgraph.md, "Tensor dumps"): one `<tensor>.bin` per tensor, raw little-endian
 * integers, and `index.json` listing each tensor's file, dtype, shape and per-column exponents.
 */
export async function writeDump(dir: string, g: QGraph, tensors: Map<string, IntTensor>): Promise<void> {
  const info = new Map(g.tensors.map((t) => [t.name, t]));
  await writeDirAtomic(dir, (tmp) => {
    const index = [...tensors.entries()].map(([name, data]) => {
      const t = info.get(name);
      const file = `${name}.bin`;
      writeFileSync(join(tmp, file), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      return {
        name,
        file,
        dtype: data instanceof Int8Array ? "int8" : data instanceof Uint8Array ? "uint8" : "int32",
        shape: t ? [t.rows, t.cols] : [data.length],
        exponents: t ? Array.from(t.exponents) : null,
      };
    });
    writeFileSync(join(tmp, "index.json"), JSON.stringify({ graph: g.model.name, tensors: index }, null, 2) + "\n");
  });
}

export interface RunImageResult {
  kind: "image";
  top: { class: number; logit: number }[];
  logitExponent: number;
}

export interface RunDatasetResult {
  kind: "dataset";
  n: number;
  correct: number;
  top1: number;
}

export async function runCommand(a: RunArgs): Promise<RunImageResult | RunDatasetResult> {
  const g = loadQGraph(a.qgraph);
  const spec = inputSpec(g);
  const isDir = statSafe(a.target)?.isDirectory();
  if (isDir === undefined) throw new P2vitError(`${a.target}: no such image file or data folder`);
  if (!isDir) {
    const pixels = await decodeImage(a.target, spec);
    const run = runGolden(g, pixels, a.dump !== undefined);
    if (a.dump) await writeDump(a.dump, g, run.tensors);
    const order = Array.from(run.logits.keys()).sort((x, y) => run.logits[y] - run.logits[x]);
    return {
      kind: "image",
      top: order.slice(0, a.top).map((c) => ({ class: c, logit: run.logits[c] })),
      logitExponent: g.tensors.find((t) => t.name === g.output)!.exponents[0],
    };
  }
  const dataset = loadDataset(a.target, { input: spec, calib: a.calib ?? DEFAULT_CALIB, limit: a.limit });
  const source = dataset.evaluation;
  const per = spec.channels * spec.size * spec.size;
  let correct = 0;
  for (let start = 0; start < source.count; start += 64) {
    const n = Math.min(64, source.count - start);
    const set = await source.read(start, n);
    for (let i = 0; i < n; i++) {
      const run = runGolden(g, set.images.subarray(i * per, (i + 1) * per), a.dump !== undefined && start + i === 0);
      if (a.dump && start + i === 0) await writeDump(a.dump, g, run.tensors);
      let best = 0;
      for (let c = 1; c < run.logits.length; c++) if (run.logits[c] > run.logits[best]) best = c;
      if (best === source.labels[start + i]) correct++;
    }
  }
  return { kind: "dataset", n: source.count, correct, top1: (100 * correct) / source.count };
}

function statSafe(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
