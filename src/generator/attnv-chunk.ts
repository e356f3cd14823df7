/**
 * The ATTNV chunk controller (attnv_chunk, templates/rtl/attnv_chunk.v.hbs): its template values and its
 * cycle count, for the RTL generator (rtl.ts) and the cycle model (src/hw/timing.ts).
 */
import { AcceleratorConfig, deriveHw } from "../hw/config.js";
import { ATTNV_STAGES, attnvContext } from "./attnv-core.js";
import { indexBits } from "./params.js";

/** The longest memory latency at which the chunk's reads still go out back to back (attnvChunkCycles is exact up to it). */
export const ATTNV_READ_LATENCY_MAX = 3;

/**
 * Memory words the chunk's read FIFO holds, a power of two: a word holds its entry from its request to
 * its vector word's last part leaving, latency + WPV cycles, so this many keep the reads back to back.
 */
export function attnvReadDepth(wordsPerVector: number): number {
  return 2 ** Math.ceil(Math.log2(ATTNV_READ_LATENCY_MAX + wordsPerVector));
}

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
    readDepth: attnvReadDepth(wpv),
    readCountBits: indexBits(attnvReadDepth(wpv) + 1),
  };
}

/**
 * The memory latency the cycle model assumes for the chunk's reads: cycles from an accepted read to
 * its data, as the Verilator harness's default memory (src/sim/verilator/run.ts, DEFAULT_MEMORY).
 */
export const ATTNV_MODEL_LATENCY = 2;

/**
 * Cycles attnv_chunk is busy for one ATTNV of `rows` tokens and head dimension `cols`, from the cycle
 * after start to the last write, when the memory takes every request at once and answers `latency`
 * cycles later (exact for latency ≤ ATTNV_READ_LATENCY_MAX: the reads never wait for FIFO room). Per
 * column group of up to L columns, starting o = g·L mod C bytes into vector word g·L / C:
 * - V: 3 + latency + WPV until the first vector word is in, then its rows every max(nv·WPV, nv + 1)
 *   cycles (nv vector words per row, read back to back; the gearbox takes one row's words, then
 *   flushes its L-byte row into the core), nv words of the last row WPV cycles apart;
 * - each output row: 2 (reader start, first request) + latency + WPV until its first code, `rows`
 *   codes, ATTNV_STAGES through the core, 1 into the output gearbox, WPV cycles per vector word
 *   written (nw of them: the group's words but a partial last one it carries to the next group).
 * So a head of N tokens and cols ≤ L takes about N² + N·(latency + 8 + WPV·(1 + ceil(cols/C))) cycles.
 */
export function attnvChunkCycles(rows: number, cols: number, cfg: AcceleratorConfig, latency = ATTNV_MODEL_LATENCY): number {
  if (rows === 0 || cols === 0) return 0;
  const C = cfg.array.cols;
  const lanes = cfg.cores.attnvLanes;
  const wpv = deriveHw(cfg).wordsPerVector;
  let cycles = 0;
  for (let col0 = 0; col0 < cols; col0 += lanes) {
    const o = col0 % C;
    const last = cols - col0 <= lanes;
    const end = o + Math.min(lanes, cols - col0);
    const nv = Math.ceil(end / C);
    const carried = !last && (o + lanes) % C !== 0;
    const nw = nv - (carried ? 1 : 0);
    const vLoad = 3 + latency + wpv + (rows - 1) * Math.max(nv * wpv, nv + 1) + (nv - 1) * wpv;
    const row = 2 + latency + wpv + rows + ATTNV_STAGES + 1 + nw * wpv;
    cycles += vLoad + rows * row;
  }
  return cycles;
}
