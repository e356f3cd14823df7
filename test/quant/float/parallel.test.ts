import { execa } from "execa";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadDataset } from "../../../src/quant/data/dataset.js";
import { classifyFloat, shareModel, unshareModel } from "../../../src/quant/float/parallel.js";
import { loadModel } from "../../../src/quant/presets.js";
import { MNIST_DIR, REPO, VIT4MNIST_DIR } from "../../paths.js";

const HAS_MNIST = existsSync(MNIST_DIR) && existsSync(VIT4MNIST_DIR);
// Worker threads run the compiled build; `npm test` builds dist/ before the tests.
const DIST_EVALUATE = join(REPO, "dist", "cli", "evaluate.js");

describe("parallel float classification", () => {
  it("moves a model's tensors into one shared buffer and back unchanged", () => {
    const model = loadModel("deit_tiny");
    const shared = shareModel(model);
    expect(shared.buffer).toBeInstanceOf(SharedArrayBuffer);
    const back = unshareModel(structuredClone(shared));
    expect(back.name).toBe("deit_tiny");
    expect(back.input).toEqual(model.input);
    expect([...back.ckpt.tensors.keys()]).toEqual([...model.ckpt.tensors.keys()]);
    expect(back.ckpt.tensors.get("blocks.11.mlp.fc2.weight")!.data).toEqual(model.ckpt.tensors.get("blocks.11.mlp.fc2.weight")!.data);
  });

  it("refuses a negative worker count", async () => {
    const model = loadModel("deit_tiny");
    const source = { origin: "x", count: 1, labels: new Uint16Array(1), input: model.input, describeImage: () => "x", read: async () => { throw new Error("unused"); } };
    await expect(classifyFloat(model, source, { workers: -1 })).rejects.toThrow("workers: expected a non-negative integer, got -1");
  });

  it.skipIf(!HAS_MNIST || !existsSync(DIST_EVALUATE))("gives on worker threads exactly the predictions of the calling thread", async () => {
    const model = loadModel(VIT4MNIST_DIR);
    const source = loadDataset(MNIST_DIR, { input: model.input, calib: 100, limit: 200 }).evaluation;
    const here = await classifyFloat(model, source, { workers: 0 });
    const script = `
      const { evaluateFloat } = await import(${JSON.stringify(DIST_EVALUATE)});
      const r = await evaluateFloat({ model: ${JSON.stringify(VIT4MNIST_DIR)}, dataDir: ${JSON.stringify(MNIST_DIR)}, calib: 100, limit: 200, workers: 2 });
      console.log(JSON.stringify({ correct: r.correct, workers: r.workers }));`;
    const file = join(mkdtempSync(join(tmpdir(), "p2vit-parallel-")), "run.mjs");
    writeFileSync(file, script);
    const r = await execa("node", [file]);
    let correct = 0;
    here.forEach((p, i) => (correct += p === source.labels[i] ? 1 : 0));
    expect(JSON.parse(r.stdout)).toEqual({ correct, workers: 2 });
  });
});
