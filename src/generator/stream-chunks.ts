/**
 * The streaming chunk controllers (templates/rtl/eltwise_chunk, softmax_chunk, layernorm_chunk) and the
 * datapath they share (stream_datapath): every size their templates print.
 *
 * A chunk works one row (segment) at a time: the row's vector words are read into plane RAMs, fed
 * through byte_gearboxes into the core's lanes, the core's beats are collected in an output RAM, then
 * regrouped into vector words and written out. Parameters (the LUT table, the ADD and LayerNorm planes)
 * are read once per instruction first.
 */
import { AcceleratorConfig, deriveHw } from "../hw/config.js";
import { ADD_PARAM_PLANES, LN_PARAM_PLANES, LUT_ENTRIES } from "../hw/footprint.js";
import { ALIGN_MAX, ELEMENTWISE_MODES } from "./elementwise.js";
import { layerNormCoreContext } from "./layernorm-core.js";
import { indexBits } from "./params.js";

export type StreamChunk = "eltwise" | "softmax" | "layernorm";

/** Plane RAMs per chunk: the row (a; b for ADD), then the parameter planes. */
export const CHUNK_PLANES: Record<StreamChunk, number> = {
  eltwise: 2 + ADD_PARAM_PLANES,
  softmax: 1,
  layernorm: 1 + LN_PARAM_PLANES,
};

/** Bits of an unsigned value v ≥ 0 (at least 1). */
function valueBits(v: number): number {
  return indexBits(v + 1);
}

/** The lanes of a chunk's core and the longest row segment it holds, in bytes. */
function chunkShape(kind: StreamChunk, cfg: AcceleratorConfig): { lanes: number; segBytes: number } {
  const C = cfg.array.cols;
  const { layernormLanes, softmaxLanes, eltwiseLanes, maxTokens, maxDim } = cfg.cores;
  switch (kind) {
    case "eltwise":
      // ADD rows are at most maxDim (the compiler checks); the LUT table is read into the same planes
      return { lanes: eltwiseLanes, segBytes: Math.max(Math.ceil(maxDim / C), Math.ceil(LUT_ENTRIES / C)) * C };
    case "softmax":
      return { lanes: softmaxLanes, segBytes: Math.ceil(maxTokens / C) * C };
    case "layernorm":
      return { lanes: layernormLanes, segBytes: Math.ceil(maxDim / C) * C };
  }
}

/** The values every chunk template prints for its stream_datapath. */
function datapathContext(kind: StreamChunk, cfg: AcceleratorConfig) {
  const C = cfg.array.cols;
  const wpv = deriveHw(cfg).wordsPerVector;
  const { lanes, segBytes } = chunkShape(kind, cfg);
  const planes = CHUNK_PLANES[kind];
  const depth = segBytes / C;
  const outDepth = Math.ceil(segBytes / lanes);
  return {
    lanes,
    planes,
    depth,
    addrBits: indexBits(depth),
    outDepth,
    outAddrBits: indexBits(outDepth),
    // plane indices run one past the last plane when a read ends
    planeBits: valueBits(planes),
    partBits: indexBits(wpv),
    // byte_gearbox counts up to IN + OUT (units.ts gearboxParameters)
    inCountBits: valueBits(C + lanes),
    outCountBits: valueBits(C + lanes),
    segWords: depth,
    segBytes,
    segStride: depth * wpv,
  };
}

export function eltwiseChunkContext(cfg: AcceleratorConfig) {
  return {
    ...datapathContext("eltwise", cfg),
    lutEntries: LUT_ENTRIES,
    addParamPlanes: ADD_PARAM_PLANES,
    byteIndexBits: indexBits(cfg.array.cols),
    lastByte: cfg.array.cols - 1,
    alignBits: indexBits(ALIGN_MAX + 1),
    alignMax: ALIGN_MAX,
    modeLut: ELEMENTWISE_MODES.LUT,
    modeAdd: ELEMENTWISE_MODES.ADD,
  };
}

export function softmaxChunkContext(cfg: AcceleratorConfig) {
  return { ...datapathContext("softmax", cfg), maxTokens: cfg.cores.maxTokens, tokenBits: indexBits(cfg.cores.maxTokens + 1) };
}

export function layerNormChunkContext(cfg: AcceleratorConfig) {
  const core = layerNormCoreContext(cfg.cores.layernormLanes, cfg.cores.maxDim);
  return {
    ...datapathContext("layernorm", cfg),
    maxDim: cfg.cores.maxDim,
    lnPlanes: LN_PARAM_PLANES,
    beatBits: core.beatBits,
    dimBits: core.dimBits,
    epsBits: core.epsBits,
    kBits: core.kBits,
    multBits: core.multBits,
    shiftBits: core.shiftBits,
  };
}
