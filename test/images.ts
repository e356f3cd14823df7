/** Real evaluation images and a QGraph calibrated on the same data set's calibration split. */
import { MixedArgs, quantizeToGraph } from "../src/cli/test-quant.js";
import { loadDataset } from "../src/quant/data/dataset.js";
import { loadModel } from "../src/quant/presets.js";
import type { QGraph } from "../src/quant/qgraph.js";

export interface RealSet {
  graph: QGraph;
  /** Model-input pixels (C×H×W bytes) of the first `n` evaluation images. */
  images: Uint8Array[];
  labels: number[];
}

/** `mixed`: the weight bits come from the mixed-precision search instead of `wBits`. */
export async function realSet(modelDir: string, dataDir: string, n: number, calib = 100, wBits: 4 | 8 = 8, mixed?: MixedArgs): Promise<RealSet> {
  const graph = await quantizeToGraph({ model: modelDir, data: dataDir, calib, wBits, mixed });
  const model = loadModel(modelDir);
  const dataset = loadDataset(dataDir, { input: model.input, calib, limit: n, classes: model.classes });
  const set = await dataset.evaluation.read(0, n);
  const per = set.images.length / n;
  return {
    graph,
    images: Array.from({ length: n }, (_, i) => set.images.slice(i * per, (i + 1) * per)),
    labels: Array.from(dataset.evaluation.labels.slice(0, n)),
  };
}
