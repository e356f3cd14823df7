/**
 * The ATTNV chunk controller (attnv_chunk, templates/rtl/attnv_chunk.v.hbs): its template values and its
 * cycle count, for the RTL generator (rtl.ts) and the cycle model (src/hw/timing.ts).
 */
import { AcceleratorConfig, deriveHw } from "../hw/config.js";
import { attnvContext } from "./attnv-core.js";
import { indexBits } from "./params.js";

/** Memory words the chunk's read FIFO holds: reads go out every cycle while the memory answers within this many cycles minus one. */
export const ATTNV_READ_DEPTH = 4;

/** The template values of attnv_chunk for a config: the core's, the gearboxes' byte counts, the group steps. */
export function attnvChunkContext(cfg: AcceleratorConfig) {
  const C = cfg.array.cols;
  const lanes = cfg.cores.attnvLanes;
  const wpv = deriveHw(cfg).wordsPerVector;
  const step = Math.floor(lanes / C);
  return {
    ...attnvContext(lanes, cfg.cores.maxTokens),
    // the widest gearbox's count (the output's: L + C bytes in, C out), as gearboxParameters in units.ts
    // sizes it (not imported from there: units.ts imports rtl.ts, which imports this file)
    byteCountBits: indexBits(lanes + 2 * C + 1),
    lanesModCols: lanes % C,
    stepWords: step * wpv,
    stepWordsWrap: (step + 1) * wpv,
    readDepth: ATTNV_READ_DEPTH,
    readCountBits: indexBits(ATTNV_READ_DEPTH + 1),
  };
}
