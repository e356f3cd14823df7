/**
 * `p2vit compile` (QGraph → program folder) and `p2vit perf` (the cycle model's figures for a QGraph
 * or a model on an accelerator config).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { synthesize } from "../bench/resources.js";
import { GraphProgram, compileGraph } from "../compiler/graph.js";
import { encodeProgram } from "../compiler/memory.js";
import { renderRtl, TOP_MODULE } from "../generator/rtl.js";
import { AcceleratorConfig, canonicalJson, configHash } from "../hw/config.js";
import { formatInstruction } from "../hw/isa.js";
import { loadQGraph } from "../quant/qgraph-io.js";
import type { QGraph } from "../quant/qgraph.js";
import { PERF_FILE, PerfReport, perfFile, perfReport } from "../sim/perf.js";
import { runCycleModel } from "../sim/cycle-model.js";
import { writeDirAtomic, writeFileAtomic } from "../util/atomic.js";
import { P2vitError } from "../util/errors.js";
import { quantizeToGraph } from "./test-quant.js";

export const PROGRAM_FORMAT = "p2vit.program";

/** The listing: memory map, then one line per instruction with its layer and purpose. */
export function formatProgramListing(program: GraphProgram): string {
  const head = [
    `; p2vit program for ${program.model} on accelerator "${program.config.name}" (${program.overlap ? "overlapped" : "no overlap"})`,
    `; ${program.instructions.length} instructions from word 0; data from word ${program.dataWord}; ${program.words} words in all`,
    "; memory map (word, vector words, contents):",
    ...program.blocks.map((b) => `;   ${String(b.word).padStart(10)} ${String(b.vectors).padStart(8)}  ${b.name}`),
  ];
  const lines = program.instructions.map(({ insn, comment }, i) => `${String(i).padStart(6, "0")}  ${formatInstruction(insn).padEnd(100)} ; ${comment}`);
  return [...head, ...lines].join("\n") + "\n";
}

function placementsJson(program: GraphProgram) {
  return Object.fromEntries(
    [...program.tensors].map(([name, p]) => [name, { word: p.word, rows: p.rows, rowStride: p.rowStride, vectors: p.vectors, width: p.width, wide: p.wide, padded: p.columns !== undefined }]),
  );
}

export async function compileCommand(qgraphFile: string, cfg: AcceleratorConfig, out: string, overlap: boolean): Promise<string> {
  const graph = loadQGraph(qgraphFile);
  const program = compileGraph(graph, cfg, { overlap });
  await writeDirAtomic(out, (dir) => {
    writeFileSync(join(dir, "program.bin"), encodeProgram(program));
    writeFileSync(join(dir, "data.bin"), program.constants);
    writeFileSync(join(dir, "program.lst"), formatProgramListing(program));
    const manifest = {
      format: PROGRAM_FORMAT,
      model: program.model,
      config: cfg,
      configHash: configHash(cfg),
      overlap,
      instructions: program.instructions.length,
      dataWord: program.dataWord,
      words: program.words,
      input: { tensor: program.input, patchify: program.patchify },
      output: program.output,
      tensors: placementsJson(program),
    };
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  });
  return `wrote ${out}: ${program.instructions.length} instructions, ${program.words} memory words (program.bin, data.bin from word ${program.dataWord}, program.lst, manifest.json)`;
}

export interface PerfArgs {
  target: string;
  data?: string;
  calib?: number;
  config: AcceleratorConfig;
  overlap: boolean;
  dsp?: number;
  synth: boolean;
  /** A run folder: perf.json goes into it (other files there, such as resources.json, stay). */
  out?: string;
}

/** A QGraph file, or a model (preset or folder) quantized on `data` for its structure. */
async function graphFor(a: PerfArgs): Promise<QGraph> {
  if (a.target.endsWith(".qgraph") || (existsSync(a.target) && !existsSync(join(a.target, "config.json")) && !a.data)) return loadQGraph(a.target);
  if (!a.data) throw new P2vitError(`${a.target}: give a QGraph file, or a model with --data <images> to calibrate it on`);
  return quantizeToGraph({ model: a.target, data: a.data, calib: a.calib ?? 1 });
}

/** DSP count of the config's top from `yosys synth_xilinx`, cached by config hash. */
export async function synthesizedDsps(cfg: AcceleratorConfig, cacheDir = join(process.cwd(), ".cache", "synth")): Promise<number> {
  const file = join(cacheDir, `${configHash(cfg)}.json`);
  if (existsSync(file)) return (JSON.parse(readFileSync(file, "utf8")) as { dsp: number }).dsp;
  const { resources } = await synthesize({ name: cfg.name, top: TOP_MODULE, files: renderRtl(cfg).files, parameters: {}, noIopad: false });
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(file, canonicalJson({ config: cfg, dsp: resources.dsp, lut: resources.lut, ff: resources.ff, ramb36: resources.ramb36 }));
  return resources.dsp;
}

export async function perfCommand(a: PerfArgs): Promise<PerfReport> {
  const graph = await graphFor(a);
  const program = compileGraph(graph, a.config, { overlap: a.overlap });
  const dsp = a.dsp ?? (a.synth ? await synthesizedDsps(a.config) : null);
  const run = runCycleModel(program.instructions.map((e) => e.insn), a.config, { serial: !program.overlap });
  const report = perfReport(program, { dsp, run });
  if (a.out) writeFileAtomic(join(a.out, PERF_FILE), JSON.stringify(perfFile(report, run, a.config)) + "\n");
  return report;
}
