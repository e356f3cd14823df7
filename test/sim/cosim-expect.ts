/** What every full-model co-simulation test asks of an image's result. */
import { expect } from "vitest";
import { worstLayer } from "../../src/cli/cosim.js";
import { ImageCosim, formatDivergence } from "../../src/sim/cosim-model.js";

/** Every layer's measured cycles within this fraction of the in-order cycle model's. */
export const LAYER_TOLERANCE = 0.05;

/** Bit-exact on every tensor, RTL top-1 = golden top-1, every layer within LAYER_TOLERANCE of the model. */
export function expectClean(results: ImageCosim[], label: string): void {
  for (const r of results) {
    expect(r.divergence, r.divergence ? `${label} image ${r.index}: ${formatDivergence(r.divergence)}` : "").toBeNull();
    expect(r.rtlTop1).toBe(r.goldenTop1);
    const worst = worstLayer(r.layers);
    expect(worst!.error, `${label} image ${r.index}: layer ${worst!.layer}`).toBeLessThanOrEqual(LAYER_TOLERANCE);
  }
}
