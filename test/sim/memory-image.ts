/**
 * Hand-written programs for the whole RTL top: a memory image with the program in its first slots and
 * data areas after it, run on the RTL (Verilator) and on the ISA simulator from the same bytes.
 */
import { renderRtl } from "../../src/generator/rtl.js";
import { AcceleratorConfig, DerivedHw, deriveHw } from "../../src/hw/config.js";
import { vectorsFor } from "../../src/hw/footprint.js";
import { Instruction, encodeInstruction } from "../../src/hw/isa.js";
import { runIsa } from "../../src/sim/isa-sim.js";
import { buildSimulator } from "../../src/sim/verilator/build.js";
import { MemoryModel, runSimulator } from "../../src/sim/verilator/run.js";
import { StimulusRng } from "../../src/sim/verilator/unit.js";

export interface ImageLayout {
  /** Instruction slots before the first data word; the program, with its HALT, must fit. */
  programSlots: number;
  /** The memory's size in bus words. */
  words: number;
  /** Random bytes everywhere (so a stray write or an unread byte shows); zeros without. */
  rng?: StimulusRng;
  /** Bus words left between data areas (random with `rng`): a write past an area lands in them. */
  gap?: number;
}

export class MemoryImage {
  readonly hw: DerivedHw;
  readonly bytes: Uint8Array;
  private free: number;

  constructor(
    readonly cfg: AcceleratorConfig,
    private readonly layout: ImageLayout,
  ) {
    this.hw = deriveHw(cfg);
    const length = layout.words * this.hw.busBytes;
    this.bytes = layout.rng ? Uint8Array.from({ length }, () => layout.rng!.int(0, 255)) : new Uint8Array(length);
    this.free = layout.programSlots * this.hw.wordsPerInstruction;
  }

  /** Writes the program and a HALT from word 0 (again, over an earlier one, when called again). */
  program(insns: Instruction[]): void {
    const all: Instruction[] = [...insns, { op: "HALT" }];
    if (all.length > this.layout.programSlots) throw new Error(`program of ${all.length} instructions, ${this.layout.programSlots} slots`);
    const slot = this.hw.wordsPerInstruction * this.hw.busBytes;
    all.forEach((insn, i) => {
      this.bytes.fill(0, i * slot, (i + 1) * slot);
      this.bytes.set(encodeInstruction(insn), i * slot);
    });
  }

  /** Reserves `rows` rows of `stride` memory words each; returns the first word. */
  alloc(rows: number, stride: number): number {
    const at = this.free;
    this.free += Math.max(1, rows) * stride + (this.layout.gap ?? 0);
    if (this.free > this.layout.words) throw new Error(`memory image of ${this.layout.words} words is too small`);
    return at;
  }

  /** Memory words of one row of `cols` bytes: whole vector words. */
  rowWords(cols: number): number {
    return vectorsFor(cols, this.cfg.array.cols) * this.hw.wordsPerVector;
  }

  /** Writes one row's bytes from `word`, C to a vector word (bytes past the row keep their values). */
  putRow(word: number, values: number[]): void {
    const C = this.cfg.array.cols;
    values.forEach((v, c) => (this.bytes[(word + Math.floor(c / C) * this.hw.wordsPerVector) * this.hw.busBytes + (c % C)] = v & 0xff));
  }

  /** Writes rows from `word`, `stride` memory words apart. */
  put(word: number, stride: number, rows: number[][]): void {
    rows.forEach((row, r) => this.putRow(word + r * stride, row));
  }
}

const binaries = new Map<AcceleratorConfig, Promise<string>>();

/** The top's Verilator simulator for `cfg`, built once per config object in a test file. */
export function topSimulator(cfg: AcceleratorConfig): Promise<string> {
  if (!binaries.has(cfg)) {
    const { files, manifest } = renderRtl(cfg);
    binaries.set(cfg, buildSimulator(files, manifest));
  }
  return binaries.get(cfg)!;
}

/** Runs the image on the RTL and on the ISA simulator; returns both memories and the RTL's cycles. */
export async function runRtlAndIsa(
  cfg: AcceleratorConfig,
  image: Uint8Array,
  memory?: MemoryModel,
  maxCycles?: number,
): Promise<{ rtl: Uint8Array; isa: Uint8Array; cycles: number }> {
  const isa = image.slice();
  runIsa(cfg, isa);
  const sim = await runSimulator(await topSimulator(cfg), image, memory, { maxCycles });
  return { rtl: sim.memory, isa, cycles: sim.cycles };
}

/** Where the RTL's memory first differs from the ISA simulator's, or null when they are equal. */
export function firstDifference(rtl: Uint8Array, isa: Uint8Array, busBytes: number): string | null {
  if (rtl.length !== isa.length) return `length: RTL ${rtl.length}, ISA ${isa.length}`;
  const i = rtl.findIndex((b, k) => b !== isa[k]);
  return i < 0 ? null : `byte ${i} (word ${Math.floor(i / busBytes)}): RTL ${rtl[i]}, ISA ${isa[i]}`;
}
