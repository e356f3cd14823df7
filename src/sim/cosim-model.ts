/**
 * Full-model co-simulation: one compiled QGraph, run for each image by the golden model, the ISA
 * simulator and the generated RTL (Verilator), with every tensor the program stores compared against
 * the golden model's. A mismatch names the first diverging layer (in graph order), the element, the
 * expected and actual values and the instruction that wrote it; with a trace binary, a waveform of
 * the cycles around that instruction. Per-layer cycles measured on the RTL stand beside the in-order
 * cycle model's prediction.
 */
import { GraphProgram, compileGraph } from "../compiler/graph.js";
import { buildMemory, encodeProgram, imageInput, tensorWord } from "../compiler/memory.js";
import { renderRtl } from "../generator/rtl.js";
import { AcceleratorConfig } from "../hw/config.js";
import { footprint } from "../hw/footprint.js";
import { CHUNK_NAMES, QUEUE_DEPTH, formatInstruction } from "../hw/isa.js";
import type { QGraph } from "../quant/qgraph.js";
import { Mismatch, formatMismatch } from "./compare.js";
import { runCycleModel } from "./cycle-model.js";
import { runGolden } from "./golden/model.js";
import { inOrderEnds } from "./inorder-model.js";
import { compareStored } from "./isa-check.js";
import { runIsa } from "./isa-sim.js";
import { buildSimulator } from "./verilator/build.js";
import { DEFAULT_MEMORY, MemoryModel, runSimulator } from "./verilator/run.js";

export interface Divergence extends Mismatch {
  /** Which run diverged from the golden model. */
  run: "rtl" | "isa";
  layer: string;
  /** The instruction that wrote the first differing element, with its listing text. */
  instruction: number;
  instructionText: string;
  /** With a trace: the waveform file and the cycles it covers. */
  trace?: { file: string; from: number; to: number };
}

export interface LayerCycles {
  layer: string;
  measured: number;
  predicted: number;
}

export interface ImageCosim {
  index: number;
  label: number | null;
  /** RTL and ISA simulator equal to the golden model on every stored tensor. */
  pass: boolean;
  divergence: Divergence | null;
  tensors: number;
  goldenTop1: number;
  rtlTop1: number;
  cycles: number;
  /** Wall time of the RTL simulation alone (the simulator process). */
  rtlSeconds: number;
  predictedCycles: number;
  /** Per layer, measured against the in-order model; empty on a queued top, whose layers overlap. */
  layers: LayerCycles[];
}

/** The cycle model of each dispatch mode: its name, and its prediction per instruction or for the whole run. */
export const CYCLE_MODEL_NAME = { inorder: "in-order", queued: "concurrent" } as const;

export interface ModelCosimOptions {
  memory?: MemoryModel;
  cacheDir?: string;
  /** On a divergence, write an FST waveform around the instruction that wrote it to this file. */
  trace?: string;
  /** Cycles of waveform before and after that instruction. */
  traceMargin?: number;
  /** Changes the RTL's memory image before it runs (fault injection in tests). */
  corrupt?: (image: Uint8Array) => void;
}

/** A compiled graph and its simulator, ready to run images. */
export class ModelCosim {
  private readonly encoded: Uint8Array;
  /** In-order top: the cycle each instruction ends, from the in-order model. */
  private readonly predictedEnds: number[];
  private readonly predictedCycles: number;

  private constructor(
    readonly graph: QGraph,
    readonly program: GraphProgram,
    private readonly binary: string,
    private readonly options: ModelCosimOptions,
  ) {
    this.encoded = encodeProgram(program);
    const insns = program.instructions.map((e) => e.insn);
    if (program.config.dispatch === "queued") {
      // the concurrent model counts memory reads at READ_LATENCY, the harness's default
      this.predictedEnds = [];
      this.predictedCycles = runCycleModel(insns, program.config).cycles;
    } else {
      this.predictedEnds = inOrderEnds(insns, program.config, (options.memory ?? DEFAULT_MEMORY).latency);
      this.predictedCycles = this.predictedEnds[this.predictedEnds.length - 1];
    }
  }

  /** Compiles the graph for the config and builds the simulator. */
  static async create(graph: QGraph, cfg: AcceleratorConfig, options: ModelCosimOptions = {}): Promise<ModelCosim> {
    const program = compileGraph(graph, cfg);
    const { files, manifest } = renderRtl(cfg);
    const binary = await buildSimulator(files, manifest, options.cacheDir);
    return new ModelCosim(graph, program, binary, options);
  }

  async runImage(pixels: Uint8Array, index: number, label: number | null = null): Promise<ImageCosim> {
    const golden = runGolden(this.graph, pixels, true);
    const image = buildMemory(this.program, imageInput(this.program, pixels), this.encoded);
    const isaMemory = image.slice();
    runIsa(this.program.config, isaMemory);
    this.options.corrupt?.(image);
    const memory = this.options.memory ?? DEFAULT_MEMORY;
    const t0 = performance.now();
    const rtl = await runSimulator(this.binary, image, memory, { insnLog: true });
    const rtlSeconds = (performance.now() - t0) / 1000;
    const isa = compareStored(this.graph, this.program, isaMemory, golden);
    const got = compareStored(this.graph, this.program, rtl.memory, golden);
    const insnEnds = rtl.insnEnds!;
    let divergence: Divergence | null = null;
    if (got.mismatch) divergence = await this.describe("rtl", got.mismatch, image, insnEnds);
    else if (isa.mismatch) divergence = await this.describe("isa", isa.mismatch, image, insnEnds);
    return {
      index,
      label,
      pass: divergence === null,
      divergence,
      tensors: got.tensors,
      goldenTop1: argmax(golden.logits),
      rtlTop1: argmax(got.logits),
      cycles: rtl.cycles,
      rtlSeconds,
      predictedCycles: this.predictedCycles,
      layers: this.program.config.dispatch === "queued" ? [] : this.layerCycles(insnEnds),
    };
  }

  /** Cycles per layer: the spans of its instructions, measured (from the RTL's instruction log) and predicted. */
  layerCycles(insnEnds: number[]): LayerCycles[] {
    const out = new Map<string, LayerCycles>();
    this.program.instructions.forEach((e, i) => {
      const span = (ends: number[]) => ends[i] - (i === 0 ? 0 : ends[i - 1]);
      // HALT belongs to no layer
      const layer = e.layer || "(halt)";
      const entry = out.get(layer) ?? { layer, measured: 0, predicted: 0 };
      entry.measured += span(insnEnds);
      entry.predicted += span(this.predictedEnds);
      out.set(layer, entry);
    });
    return [...out.values()];
  }

  private async describe(run: "rtl" | "isa", m: Mismatch & { layer: string }, image: Uint8Array, insnEnds: number[]): Promise<Divergence> {
    const t = this.graph.tensors.find((x) => x.name === m.tensor)!;
    const [row, col] = m.coords.length === 2 ? m.coords : [Math.floor(m.index / t.cols), m.index % t.cols];
    const word = tensorWord(this.program, m.tensor, row, col);
    const instruction = this.writerOf(word);
    const d: Divergence = {
      ...m,
      run,
      instruction,
      instructionText: instruction >= 0 ? formatInstruction(this.program.instructions[instruction].insn) : "(no instruction writes it)",
    };
    if (run === "rtl" && this.options.trace && instruction >= 0) d.trace = await this.traceAround(instruction, image, insnEnds);
    return d;
  }

  /** The instruction whose footprint writes this memory word (every word is written once). */
  private writerOf(word: number): number {
    const cfg = this.program.config;
    return this.program.instructions.findIndex((e) => footprint(e.insn, cfg).writes.some((s) => s.space === "mem" && s.lo <= word && word < s.hi));
  }

  /**
   * Reruns the image on a tracing build; the run is cycle for cycle the one whose log gave `insnEnds`.
   * On an in-order top the log holds each instruction's end; on a queued one the cycle the dispatcher
   * fetched past it, and the instruction runs some time after: the window then reaches the fetch of
   * QUEUE_DEPTH more instructions per chunk.
   */
  private async traceAround(instruction: number, image: Uint8Array, insnEnds: number[]): Promise<{ file: string; from: number; to: number }> {
    const { files, manifest } = renderRtl(this.program.config);
    const binary = await buildSimulator(files, manifest, this.options.cacheDir, true);
    const margin = this.options.traceMargin ?? 2000;
    const from = Math.max(0, (instruction > 0 ? insnEnds[instruction - 1] : 0) - margin);
    const queuedAhead = this.program.config.dispatch === "queued" ? QUEUE_DEPTH * CHUNK_NAMES.length : 0;
    const to = insnEnds[Math.min(instruction + queuedAhead, insnEnds.length - 1)] + margin;
    const file = this.options.trace!;
    await runSimulator(binary, image, this.options.memory ?? DEFAULT_MEMORY, { trace: { file, from, to } });
    return { file, from, to };
  }
}

function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

export function formatDivergence(d: Divergence): string {
  const where = `${d.run === "rtl" ? "RTL" : "ISA simulator"} diverges from the golden model at layer ${d.layer}: ${formatMismatch(d)}`;
  const insn = d.instruction >= 0 ? `\n  written by instruction ${d.instruction}: ${d.instructionText}` : "";
  const trace = d.trace ? `\n  waveform: ${d.trace.file} (cycles ${d.trace.from}–${d.trace.to})` : "";
  return where + insn + trace;
}
