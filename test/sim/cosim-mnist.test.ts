/**
 * vit4mnist on the generated RTL: 100 real MNIST images bit-exact on every tensor on a 16×16 array
 * with the queued dispatcher, RTL top-1 equal to golden top-1 on every image, the cycles within 5% of
 * the concurrent cycle model; 10 images on the in-order top, every layer within 5% of its model; and a
 * mixed-precision vit4mnist (int4 and int8 layers) on a 16×16 dual-mode array.
 */
import { describe, expect, it } from "vitest";
import { loadSubject, runCosim } from "../../src/cli/cosim.js";
import { REGRESS_CONFIGS } from "../../src/cli/regress.js";
import { expectClean } from "./cosim-expect.js";
import { parseAcceleratorConfig } from "../../src/hw/config.js";
import { realSet } from "../images.js";
import { HAS_SHARED_DATA, MNIST_DIR, VIT4MNIST_DIR } from "../paths.js";

const [A16, , , , A16_INORDER] = REGRESS_CONFIGS;

describe.skipIf(!HAS_SHARED_DATA)("vit4mnist on the RTL (Verilator)", () => {
  it("runs vit4mnist on 100 MNIST images bit-exact on 16×16, top-1 equal on every image", async () => {
    const subject = await loadSubject({ target: VIT4MNIST_DIR, data: MNIST_DIR, images: 100, calib: 100 });
    const { summary, results } = await runCosim(subject, A16);
    expectClean(results, "vit4mnist");
    expect(summary.images).toBe(100);
    expect(summary.correct).toBeGreaterThanOrEqual(95);
  }, 1_800_000);

  it("runs vit4mnist on 10 MNIST images bit-exact on the in-order 16×16 top, every layer within 5% of its model", async () => {
    const subject = await loadSubject({ target: VIT4MNIST_DIR, data: MNIST_DIR, images: 10, calib: 100 });
    const { results } = await runCosim(subject, A16_INORDER);
    expectClean(results, "vit4mnist in order");
    expect(results[0].layers.length).toBeGreaterThan(10);
  }, 1_800_000);

  it("runs a mixed-precision vit4mnist (int4 and int8 layers) bit-exact on a 16×16 dual-mode array", async () => {
    // a quick search (population 10, 3 iterations) at β = 1.25: some blocks int8, the rest int4
    const set = await realSet(VIT4MNIST_DIR, MNIST_DIR, 5, 40, 8, { budget: 1.25, seed: 1, population: 10, iterations: 3 });
    const bits = new Set(set.graph.ops.flatMap((op) => (op.kind === "linear" ? [op.layer.weightBits] : [])));
    expect(bits).toEqual(new Set([4, 8]));
    const dual = parseAcceleratorConfig({ ...A16, name: "r16x16w4", weightBits: 4 });
    const { results } = await runCosim({ name: "vit4mnist-mixed", graph: set.graph, images: set.images, labels: set.labels }, dual);
    expectClean(results, "vit4mnist mixed");
  }, 900_000);

});
