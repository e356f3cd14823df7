/**
 * The acceptance bar of the float reference: the figures of ../shared/data/README.md, measured by an
 * independent numpy implementation, reproduced through the evaluation API.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { evaluateFloat } from "../../../src/cli/evaluate.js";
import { MNIST_DIR, SHARED_DATA, VIT4MNIST_DIR } from "../../paths.js";

const CIFAR_DIR = join(SHARED_DATA, "cifar10");
const CIFAR_MODEL = join(SHARED_DATA, "models", "vit-cifar10");

describe.skipIf(!existsSync(VIT4MNIST_DIR) || !existsSync(MNIST_DIR))("vit4mnist on MNIST", () => {
  it("scores 97.60% on the first 1,000 test images", async () => {
    // calib 100 holds out images 9900–9999; the first 1,000 of the rest are images 0–999.
    const r = await evaluateFloat({ model: VIT4MNIST_DIR, dataDir: MNIST_DIR, calib: 100, limit: 1000, workers: 0 });
    expect(r).toMatchObject({ n: 1000, correct: 976, layout: "mnist", randomWeights: false, calib: 100 });
    expect(r.top1).toBeCloseTo(97.6, 10);
  });
});

describe.skipIf(!existsSync(CIFAR_MODEL) || !existsSync(CIFAR_DIR))("vit-cifar10 on the 1,000 CIFAR-10 JPEGs", () => {
  it("scores 69.00% ± 0.3 with the classes in the model's order", async () => {
    const r = await evaluateFloat({ model: CIFAR_MODEL, dataDir: CIFAR_DIR, calib: 0, workers: 0 });
    expect(r.n).toBe(1000);
    expect(Math.abs(r.top1 - 69.0)).toBeLessThanOrEqual(0.3);
  });
});
