/**
 * The memory image of a compiled graph for one image, and reading tensors back from a memory dump:
 * the host's side of the program (docs/isa.md, "Program image").
 */
import { deriveHw } from "../hw/config.js";
import { INSTRUCTION_BYTES, encodeInstruction } from "../hw/isa.js";
import type { QTensor } from "../quant/qgraph.js";
import { imageToInput, patchifyInt } from "../sim/golden/model.js";
import { GraphProgram } from "./graph.js";
import { Placement, physicalColumn } from "./layout.js";

export type TensorValues = Int8Array | Uint8Array | Int32Array;

/** The encoded instruction stream, one instruction per wordsPerInstruction memory words. */
export function encodeProgram(program: GraphProgram): Uint8Array {
  const hw = deriveHw(program.config);
  const slot = hw.wordsPerInstruction * hw.busBytes;
  const out = new Uint8Array(program.instructions.length * slot);
  program.instructions.forEach(({ insn }, i) => out.set(encodeInstruction(insn).subarray(0, Math.min(INSTRUCTION_BYTES, slot)), i * slot));
  return out;
}

/** Instructions, constants, and the input tensor's values (row-major, rows × cols of the input tensor). */
export function buildMemory(program: GraphProgram, input: Int8Array, encoded = encodeProgram(program)): Uint8Array {
  const hw = deriveHw(program.config);
  const mem = new Uint8Array(program.words * hw.busBytes);
  mem.set(encoded, 0);
  mem.set(program.constants, program.dataWord * hw.busBytes);
  writeTensor(program, mem, program.input, input);
  return mem;
}

/** An image (C×H×W pixels) as the input a ViT program takes: the patch rows of pixel − 128. */
export function imageInput(program: GraphProgram, pixels: Uint8Array): Int8Array {
  if (!program.patchify) throw new Error(`program ${program.model} takes a tensor, not an image`);
  const { channels, imgSize, patch } = program.patchify;
  if (pixels.length !== channels * imgSize * imgSize) {
    throw new Error(`image has ${pixels.length} values, program ${program.model} takes ${channels}×${imgSize}×${imgSize}`);
  }
  return patchifyInt(imageToInput(pixels), channels, imgSize, patch);
}

function byteAt(program: GraphProgram, p: Placement, row: number, col: number, plane = 0): number {
  const hw = deriveHw(program.config);
  const C = program.config.array.cols;
  const phys = p.wide ? col : physicalColumn(p, col);
  const vector = p.wide ? 4 * Math.floor(phys / C) + plane : Math.floor(phys / C);
  return (p.word + row * p.rowStride + vector * hw.wordsPerVector) * hw.busBytes + (phys % C);
}

/** The memory word holding element (row, col) of a tensor (for an int32 tensor, its lowest byte plane). */
export function tensorWord(program: GraphProgram, name: string, row: number, col: number): number {
  const p = program.tensors.get(name);
  if (!p) throw new Error(`program ${program.model} has no tensor ${name}`);
  return Math.floor(byteAt(program, p, row, col) / deriveHw(program.config).busBytes);
}

/** Writes a tensor's values (row-major) into its place. */
export function writeTensor(program: GraphProgram, mem: Uint8Array, name: string, values: Int8Array): void {
  const p = program.tensors.get(name);
  if (!p) throw new Error(`program ${program.model} has no tensor ${name}`);
  const rows = p.rows;
  const cols = values.length / rows;
  if (!Number.isInteger(cols) || (!p.columns && cols > p.vectors * program.config.array.cols)) throw new Error(`${name}: ${values.length} values do not fill ${rows} rows`);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) mem[byteAt(program, p, r, c)] = values[r * cols + c] & 0xff;
}

/** A tensor's logical values (rows × cols) read from a memory dump. */
export function readTensor(program: GraphProgram, mem: Uint8Array, t: QTensor): TensorValues {
  const p = program.tensors.get(t.name);
  if (!p) throw new Error(`program ${program.model} has no tensor ${t.name}`);
  const n = t.rows * t.cols;
  if (p.wide) {
    const out = new Int32Array(n);
    for (let r = 0; r < t.rows; r++) {
      for (let c = 0; c < t.cols; c++) {
        let v = 0;
        for (let plane = 3; plane >= 0; plane--) v = v * 256 + mem[byteAt(program, p, r, c, plane)];
        out[r * t.cols + c] = v | 0;
      }
    }
    return out;
  }
  const out = t.signed ? new Int8Array(n) : new Uint8Array(n);
  for (let r = 0; r < t.rows; r++) for (let c = 0; c < t.cols; c++) out[r * t.cols + c] = t.signed ? (mem[byteAt(program, p, r, c)] << 24) >> 24 : mem[byteAt(program, p, r, c)];
  return out;
}
