/** What every full-model co-simulation test asks of an image's result. */
import { expect } from "vitest";
import { worstLayer } from "../../src/cli/cosim.js";
import { ImageCosim, formatDivergence } from "../../src/sim/cosim-model.js";

/** Every layer's measured cycles within this fraction of the in-order cycle model's (an in-order top). */
export const LAYER_TOLERANCE = 0.05;
/** The whole run's cycles within this fraction of the concurrent cycle model's (a queued top, whose layers overlap). */
export const QUEUED_TOLERANCE = 0.05;

/**
 * Bit-exact on every tensor, RTL top-1 = golden top-1; on an in-order top every layer within
 * LAYER_TOLERANCE of its model, on a queued top the whole run within QUEUED_TOLERANCE of its model.
 */
export function expectClean(results: ImageCosim[], label: string): void {
  for (const r of results) {
    expect(r.divergence, r.divergence ? `${label} image ${r.index}: ${formatDivergence(r.divergence)}` : "").toBeNull();
    expect(r.rtlTop1).toBe(r.goldenTop1);
    if (r.layers.length === 0) {
      expect(Math.abs(r.cycles - r.predictedCycles) / r.cycles, `${label} image ${r.index}: ${r.cycles} cycles, model ${r.predictedCycles}`).toBeLessThanOrEqual(QUEUED_TOLERANCE);
      continue;
    }
    const worst = worstLayer(r.layers);
    expect(worst!.error, `${label} image ${r.index}: layer ${worst!.layer}`).toBeLessThanOrEqual(LAYER_TOLERANCE);
  }
}
