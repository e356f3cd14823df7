/**
 * The decisions behind the Verilog: every number a template prints is computed here from the
 * accelerator config and the ISA tables, so the templates hold only the shape of the hardware.
 */
import { SHIFT_MIN } from "../arith.js";
import { AcceleratorConfig, INSTRUCTION_BITS, PARAM_PLANES, configHash, deriveHw } from "../hw/config.js";
import { FIELDS, LOAD_TARGETS, OPCODES } from "../hw/isa.js";
import { buildsW4, macPeContext, matmulFlagsContext } from "./mac.js";

export const GENERATOR_VERSION = "0.1.0";

/** Bits needed to index `n` things; at least 1 so no Verilog vector is zero wide. */
export function indexBits(n: number): number {
  return Math.max(1, Math.ceil(Math.log2(n)));
}

export interface TemplateContext extends ReturnType<typeof macPeContext>, ReturnType<typeof matmulFlagsContext> {
  generatorVersion: string;
  configName: string;
  configHash: string;
  rows: number;
  cols: number;
  accBits: number;
  busBits: number;
  sumBits: number;
  shiftMaxLeft: number;
  xDepth: number;
  xAddrBits: number;
  wDepth: number;
  wAddrBits: number;
  oDepth: number;
  oAddrBits: number;
  paramDepth: number;
  paramAddrBits: number;
  rowIndexBits: number;
  colIndexBits: number;
  wordsPerVector: number;
  wordsPerInstruction: number;
  instructionBits: number;
  loadTargetX: number;
  loadTargetW: number;
  loadTargetP: number;
  loadTargetWT: number;
  loadTargetDoc: string;
  lastParamPlane: number;
  opcodes: { name: string; value: number }[];
  fields: { name: string; lsb: number; width: number }[];
}

export function templateContext(cfg: AcceleratorConfig): TemplateContext {
  const hw = deriveHw(cfg);
  const { rows, cols } = cfg.array;
  const b = cfg.buffers;
  return {
    generatorVersion: GENERATOR_VERSION,
    configName: cfg.name,
    configHash: configHash(cfg),
    rows,
    cols,
    accBits: cfg.accBits,
    busBits: cfg.busBits,
    // acc + bias + rounding term, with a guard bit, whichever of the two is wider
    sumBits: Math.max(cfg.accBits, 32) + 2,
    shiftMaxLeft: -SHIFT_MIN,
    xDepth: b.xDepth,
    xAddrBits: indexBits(b.xDepth),
    wDepth: b.wDepth,
    wAddrBits: indexBits(b.wDepth),
    oDepth: b.oDepth,
    oAddrBits: indexBits(b.oDepth),
    paramDepth: b.paramDepth,
    paramAddrBits: indexBits(b.paramDepth),
    rowIndexBits: indexBits(rows),
    colIndexBits: indexBits(cols),
    wordsPerVector: hw.wordsPerVector,
    wordsPerInstruction: hw.wordsPerInstruction,
    instructionBits: INSTRUCTION_BITS,
    loadTargetX: LOAD_TARGETS.X,
    loadTargetW: LOAD_TARGETS.W,
    loadTargetP: LOAD_TARGETS.P,
    loadTargetWT: LOAD_TARGETS.WT,
    loadTargetDoc: Object.entries(LOAD_TARGETS)
      .map(([k, v]) => `${v} = ${k}`)
      .join(", "),
    lastParamPlane: PARAM_PLANES - 1,
    opcodes: Object.entries(OPCODES).map(([name, value]) => ({ name, value })),
    fields: isaFieldParams(),
    ...macPeContext(buildsW4(cfg)),
    ...matmulFlagsContext(cfg),
  };
}

/** The instruction fields as Verilog localparams: OP once, then <OPCODE>_<FIELD> for the rest. */
function isaFieldParams(): { name: string; lsb: number; width: number }[] {
  const out = [{ name: "OP", lsb: FIELDS.HALT.op.lsb, width: FIELDS.HALT.op.width }];
  for (const [op, fields] of Object.entries(FIELDS)) {
    for (const [name, f] of Object.entries(fields)) {
      if (name !== "op") out.push({ name: `${op}_${name.toUpperCase()}`, lsb: f.lsb, width: f.width });
    }
  }
  return out;
}
