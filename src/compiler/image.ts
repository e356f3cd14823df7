/**
 * The program's memory image: instructions from word 0, then named regions of vector words. A
 * vector word (one byte per array column) occupies `wordsPerVector` memory words, padded with zeros.
 */
import { AcceleratorConfig, DerivedHw, deriveHw } from "../hw/config.js";
import { INSTRUCTION_BYTES, Instruction, encodeInstruction, formatInstruction } from "../hw/isa.js";

export interface Region {
  name: string;
  /** First memory word. */
  word: number;
  /** Number of vector words. */
  vectors: number;
}

export interface ListedInstruction {
  insn: Instruction;
  comment: string;
}

export interface Program {
  config: AcceleratorConfig;
  instructions: ListedInstruction[];
  regions: Region[];
  /** Total memory size in words. */
  words: number;
}

/** Lays out regions after the program; call once all instructions are known. */
export function layoutRegions(
  cfg: AcceleratorConfig,
  instructionCount: number,
  sizes: { name: string; vectors: number }[],
): { regions: Region[]; words: number } {
  const hw = deriveHw(cfg);
  let word = instructionCount * hw.wordsPerInstruction;
  const regions = sizes.map(({ name, vectors }) => {
    const r = { name, word, vectors };
    word += vectors * hw.wordsPerVector;
    return r;
  });
  return { regions, words: word };
}

export function region(program: Program, name: string): Region {
  const r = program.regions.find((x) => x.name === name);
  if (!r) throw new Error(`program has no region '${name}'`);
  return r;
}

/** Byte offset of vector word `index` of a region. */
export function vectorOffset(hw: DerivedHw, r: Region, index: number): number {
  return (r.word + index * hw.wordsPerVector) * hw.busBytes;
}

/** Builds the memory image: instructions, then each region's vector words from `fill`. */
export function buildImage(
  program: Program,
  fill: (regionName: string, vectorIndex: number, out: Uint8Array) => void,
): Uint8Array {
  const hw = deriveHw(program.config);
  const image = new Uint8Array(program.words * hw.busBytes);
  const slot = hw.wordsPerInstruction * hw.busBytes;
  program.instructions.forEach(({ insn }, i) => image.set(encodeInstruction(insn).subarray(0, Math.min(INSTRUCTION_BYTES, slot)), i * slot));
  for (const r of program.regions) {
    for (let v = 0; v < r.vectors; v++) {
      const off = vectorOffset(hw, r, v);
      fill(r.name, v, image.subarray(off, off + hw.vectorBytes));
    }
  }
  return image;
}

/** The human-readable listing: index, instruction, and what it is for. */
export function formatListing(program: Program): string {
  const lines = program.instructions.map(
    ({ insn, comment }, i) => `${String(i).padStart(5, "0")}  ${formatInstruction(insn).padEnd(72)} ; ${comment}`,
  );
  const regions = program.regions.map(
    (r) => `;   ${r.name.padEnd(24)} word ${r.word}, ${r.vectors} vector words`,
  );
  return [`; p2vit program for accelerator "${program.config.name}"`, "; memory regions:", ...regions, ...lines].join("\n") + "\n";
}
