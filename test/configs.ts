/**
 * Accelerator config pieces the RTL tests share. Every top build carries all the streaming chunks,
 * and their cores dominate Verilator's build time, so a test that does not exercise a core builds it
 * at its smallest: one lane, short rows.
 */
export const TINY_CORES = { layernormLanes: 1, softmaxLanes: 1, attnvLanes: 1, eltwiseLanes: 1, maxTokens: 8, maxDim: 8 };

/** Buffers big enough for a small Linear layer (K and N up to a few hundred), quick to build. */
export const SMALL_BUFFERS = { xDepth: 32, wDepth: 512, oDepth: 16, paramDepth: 16 };
