/**
 * Performance of a compiled graph from the cycle model: per layer and in total, cycles, MatMul PE
 * utilization, frames per second at the configured clock, GOPS and GOPS per DSP.
 */
import { GraphProgram } from "../compiler/graph.js";
import { AcceleratorConfig } from "../hw/config.js";
import { CHUNK_NAMES, Chunk } from "../hw/isa.js";
import { CycleRun, runCycleModel } from "./cycle-model.js";

export interface LayerPerf {
  layer: string;
  /** First start and last finish of the layer's instructions. */
  start: number;
  end: number;
  /** Multiply-accumulates (or shift-accumulates, for attention·V) of the layer. */
  macs: number;
  /** MACs over R·C·(end − start): the PE array's share of the layer's span (0 for other chunks). */
  utilization: number;
  /** Cycles each chunk spent on the layer. */
  busy: Partial<Record<Chunk, number>>;
}

export interface PerfReport {
  model: string;
  config: string;
  array: string;
  overlap: boolean;
  clockMHz: number;
  instructions: number;
  cycles: number;
  macs: number;
  /** MatMul-chunk MACs (Linear and Q·Kᵀ) over R·C·cycles. */
  utilization: number;
  fps: number;
  /** 2 operations per MAC (and per attention·V shift-accumulate), at the frame rate above. */
  gops: number;
  dsp: number | null;
  gopsPerDsp: number | null;
  /** Memory port words moved per frame, and the port's busy share. */
  portWords: number;
  portUtilization: number;
  layers: LayerPerf[];
}

export function perfReport(program: GraphProgram, options: { dsp?: number | null; run?: CycleRun } = {}): PerfReport {
  const cfg = program.config;
  const run = options.run ?? runCycleModel(program.instructions.map((e) => e.insn), cfg, { serial: !program.overlap });
  const pes = cfg.array.rows * cfg.array.cols;
  const layers = new Map<string, LayerPerf>();
  program.instructions.forEach((e, i) => {
    if (!e.layer) return;
    const t = run.timeline[i];
    let l = layers.get(e.layer);
    if (!l) {
      l = { layer: e.layer, start: t.start, end: t.done, macs: program.macs.get(e.layer) ?? 0, utilization: 0, busy: {} };
      layers.set(e.layer, l);
    }
    l.start = Math.min(l.start, t.start);
    l.end = Math.max(l.end, t.done);
    if (t.chunk) l.busy[t.chunk] = (l.busy[t.chunk] ?? 0) + (t.done - t.start);
  });
  let arrayMacs = 0;
  for (const l of layers.values()) {
    if (l.busy.MM) {
      l.utilization = l.macs / (pes * (l.end - l.start));
      arrayMacs += l.macs;
    }
  }
  const macs = [...program.macs.values()].reduce((a, b) => a + b, 0);
  const fps = (cfg.clockMHz * 1e6) / run.cycles;
  const gops = (2 * macs * fps) / 1e9;
  const dsp = options.dsp ?? null;
  return {
    model: program.model,
    config: cfg.name,
    array: `${cfg.array.rows}×${cfg.array.cols}`,
    overlap: program.overlap,
    clockMHz: cfg.clockMHz,
    instructions: program.instructions.length,
    cycles: run.cycles,
    macs,
    utilization: arrayMacs / (pes * run.cycles),
    fps,
    gops,
    dsp,
    gopsPerDsp: dsp ? gops / dsp : null,
    portWords: run.portBusy,
    portUtilization: run.portBusy / run.cycles,
    layers: [...layers.values()],
  };
}

export function formatPerf(r: PerfReport, options: { layers?: boolean } = {}): string {
  const lines = [
    `${r.model} on ${r.config} (${r.array} PEs, ${r.clockMHz} MHz), ${r.overlap ? "chunks overlapped" : "no overlap (one instruction at a time)"}`,
    `  ${r.instructions} instructions, ${r.cycles.toLocaleString("en-US")} cycles per image, PE utilization ${(100 * r.utilization).toFixed(1)}%`,
    `  ${r.fps.toFixed(1)} frames/s, ${r.gops.toFixed(1)} GOPS (${(r.macs / 1e6).toFixed(1)} M MAC per image)` +
      (r.gopsPerDsp !== null ? `, ${r.gopsPerDsp.toFixed(3)} GOPS/DSP with ${r.dsp} DSPs` : ""),
    `  memory port busy ${(100 * r.portUtilization).toFixed(1)}% (${r.portWords.toLocaleString("en-US")} words)`,
  ];
  if (options.layers) {
    lines.push("  layer                                     span cycles   MACs          PE util");
    for (const l of r.layers) {
      lines.push(`  ${l.layer.padEnd(40)} ${String(l.end - l.start).padStart(12)}   ${String(l.macs).padStart(12)}  ${l.busy.MM ? `${(100 * l.utilization).toFixed(1)}%` : "-"}`);
    }
  }
  return lines.join("\n");
}

export const PERF_FORMAT = "p2vit.perf";
export const PERF_FILE = "perf.json";

/** One chunk over the run: its busy cycles and when it worked (instruction start to done, merged). */
export interface ChunkTimeline {
  busy: number;
  intervals: [number, number][];
}

/** perf.json of a run folder: the report, the config and the chunk timeline `p2vit report` draws. */
export interface PerfFile {
  format: typeof PERF_FORMAT;
  version: 1;
  config: AcceleratorConfig;
  report: PerfReport;
  chunks: Record<Chunk, ChunkTimeline>;
}

/**
 * Each chunk's instructions as busy intervals, overlapping and touching ones merged: a chunk's
 * instructions start in order, and a pipelined one starts before the previous is done, so the
 * merged list is what a timeline can draw (tens of thousands of instructions become far fewer bars).
 */
export function chunkTimelines(run: CycleRun): Record<Chunk, ChunkTimeline> {
  const out = Object.fromEntries(CHUNK_NAMES.map((c) => [c, { busy: run.busy[c], intervals: [] as [number, number][] }])) as Record<Chunk, ChunkTimeline>;
  for (const t of run.timeline) {
    if (!t.chunk || t.start < 0) continue;
    const list = out[t.chunk].intervals;
    const last = list[list.length - 1];
    if (last && t.start <= last[1]) last[1] = Math.max(last[1], t.done);
    else list.push([t.start, t.done]);
  }
  return out;
}

export function perfFile(report: PerfReport, run: CycleRun, config: AcceleratorConfig): PerfFile {
  return { format: PERF_FORMAT, version: 1, config, report, chunks: chunkTimelines(run) };
}
