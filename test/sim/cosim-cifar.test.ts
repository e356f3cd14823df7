/**
 * vit-cifar10 on the generated RTL: 20 real CIFAR-10 images bit-exact on every tensor on a 16×16 array,
 * RTL top-1 equal to golden top-1 on every image, the cycles within 5% of the concurrent cycle model.
 */
import { describe, expect, it } from "vitest";
import { loadSubject, runCosim } from "../../src/cli/cosim.js";
import { REGRESS_CONFIGS } from "../../src/cli/regress.js";
import { expectClean } from "./cosim-expect.js";
import { CIFAR_DIR, CIFAR_MODEL_DIR, HAS_CIFAR } from "../paths.js";

const A16 = REGRESS_CONFIGS[0];

describe.skipIf(!HAS_CIFAR)("vit-cifar10 on the RTL (Verilator)", () => {
  it("runs vit-cifar10 on 20 CIFAR images bit-exact on 16×16, top-1 equal on every image", async () => {
    const subject = await loadSubject({ target: CIFAR_MODEL_DIR, data: CIFAR_DIR, images: 20, calib: 100 });
    const { summary, results } = await runCosim(subject, A16);
    expectClean(results, "vit-cifar10");
    expect(summary.images).toBe(20);
  }, 1_800_000);
});
