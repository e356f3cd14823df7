/**
 * The ISA simulator equals the golden model on every tensor of vit-cifar10 (post-norm, ReLU, 65 tokens,
 * head dimension 16) for 20 real CIFAR-10 images on three accelerator shapes.
 */
import { describe, expect, it } from "vitest";
import { compileGraph } from "../../src/compiler/graph.js";
import { encodeProgram } from "../../src/compiler/memory.js";
import { DEFAULT_CONFIG, parseAcceleratorConfig } from "../../src/hw/config.js";
import { formatMismatch } from "../../src/sim/compare.js";
import { checkImage } from "../../src/sim/isa-check.js";
import { CIFAR_DIR, CIFAR_MODEL_DIR, HAS_CIFAR } from "../paths.js";
import { realSet } from "../images.js";

const CONFIGS = [
  DEFAULT_CONFIG,
  parseAcceleratorConfig({ name: "a4x12", array: { rows: 4, cols: 12 }, busBits: 32 }),
  parseAcceleratorConfig({ name: "a32x8", array: { rows: 32, cols: 8 }, busBits: 64, cores: { attnvLanes: 8 } }),
];

describe.skipIf(!HAS_CIFAR)("ISA simulator on vit-cifar10 with 20 CIFAR-10 images", async () => {
  const set = HAS_CIFAR ? await realSet(CIFAR_MODEL_DIR, CIFAR_DIR, 20) : null;

  it.each(CONFIGS.map((c) => [c.name, c] as const))("equals the golden model on every tensor on %s", async (_, cfg) => {
    const program = compileGraph(set!.graph, cfg);
    const encoded = encodeProgram(program);
    for (const [i, pixels] of set!.images.entries()) {
      const r = checkImage(set!.graph, program, pixels, { encoded, seed: i });
      expect(r.mismatch, r.mismatch ? `image ${i}: ${r.mismatch.layer}: ${formatMismatch(r.mismatch)}` : "").toBeNull();
      expect(Array.from(r.logits)).toEqual(Array.from(r.goldenLogits));
      await new Promise((done) => setImmediate(done));
    }
  }, 300_000);
});
