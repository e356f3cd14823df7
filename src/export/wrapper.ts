/**
 * The decisions behind the AXI wrapper p2vit_axi_top: address widths, the register map, the in-flight
 * limit. templates/export/p2vit_axi_top.v.hbs holds only the Verilog shape.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Handlebars from "handlebars";
import { TEMPLATE_DIR } from "../generator/rtl.js";
import { AcceleratorConfig, configHash, deriveHw } from "../hw/config.js";
import { GENERATOR_VERSION } from "../generator/params.js";
import { FpgaPart } from "./parts.js";

export const WRAPPER_TOP = "p2vit_axi_top";
export const EXPORT_TEMPLATE_DIR = join(TEMPLATE_DIR, "..", "export");

export interface Register {
  name: string;
  offset: number;
  access: "R" | "W" | "RW";
  doc: string;
}

/** CONTROL bits. */
export const START_BIT = 0;
export const SOFT_RESET_BIT = 1;
/** STATUS bits, low to high (the template packs them in this order). */
export const STATUS_BITS = ["done", "trap", "busy", "bus_error"] as const;

/** The AXI4-Lite register map, one 32-bit register every 4 bytes. */
export const REGISTERS: readonly Register[] = [
  { name: "CONTROL", offset: 0x00, access: "W", doc: `bit ${START_BIT} START (ignored while busy), bit ${SOFT_RESET_BIT} SOFT_RESET (stops the accelerator; reads in flight are dropped)` },
  { name: "STATUS", offset: 0x04, access: "R", doc: STATUS_BITS.map((b, i) => `bit ${i} ${b}`).join(", ") },
  { name: "CYCLES_LO", offset: 0x08, access: "R", doc: "cycles since START while running, low word (frozen at done or trap)" },
  { name: "CYCLES_HI", offset: 0x0c, access: "R", doc: "cycles, high word" },
  { name: "BASE_LO", offset: 0x10, access: "RW", doc: "byte address of memory word 0, low word" },
  { name: "BASE_HI", offset: 0x14, access: "RW", doc: "byte address of memory word 0, high word" },
  { name: "IDENT", offset: 0x18, access: "R", doc: "first 32 bits of the accelerator config hash" },
  { name: "INSN", offset: 0x1c, access: "R", doc: "index of the instruction being fetched or executed (where a trap or a hang stopped)" },
];

// 2^LITE_ADDR_BITS bytes hold the register map
const LITE_ADDR_BITS = 5;
/**
 * Transactions of one kind in flight. A ZynqMP HP port accepts up to 32 reads; 15 covers the
 * latency of a DDR read at a few hundred MHz with one word per cycle, and keeps the counters 4 bits.
 */
const OUTSTANDING_BITS = 4;

export interface WrapperContext {
  generatorVersion: string;
  configName: string;
  configHash: string;
  busBits: number;
  bytesPerWord: number;
  wordShift: number;
  strobeHex: string;
  axiAddrBits: number;
  liteAddrBits: number;
  outstandingBits: number;
  maxOutstanding: number;
  statusBits: number;
  startBit: number;
  softResetBit: number;
  ident: string;
  registers: { name: string; hex: string; index: number; access: string; doc: string }[];
}

export function wrapperContext(cfg: AcceleratorConfig, part: FpgaPart): WrapperContext {
  const bytes = deriveHw(cfg).busBytes;
  const hash = configHash(cfg);
  return {
    generatorVersion: GENERATOR_VERSION,
    configName: cfg.name,
    configHash: hash,
    busBits: cfg.busBits,
    bytesPerWord: bytes,
    wordShift: Math.log2(bytes),
    strobeHex: "f".repeat(Math.ceil(bytes / 4)),
    axiAddrBits: part.axiAddrBits,
    liteAddrBits: LITE_ADDR_BITS,
    outstandingBits: OUTSTANDING_BITS,
    maxOutstanding: 2 ** OUTSTANDING_BITS - 1,
    statusBits: STATUS_BITS.length,
    startBit: START_BIT,
    softResetBit: SOFT_RESET_BIT,
    ident: hash.slice(0, 8),
    registers: REGISTERS.map((r) => ({ name: r.name, hex: r.offset.toString(16).padStart(2, "0"), index: r.offset / 4, access: r.access, doc: r.doc })),
  };
}

/** Compiles one template of templates/export; strict, so a value TypeScript does not give is an error. */
export function exportTemplate(file: string): HandlebarsTemplateDelegate {
  Handlebars.registerPartial("header", readFileSync(join(TEMPLATE_DIR, "header.hbs"), "utf8"));
  return Handlebars.compile(readFileSync(join(EXPORT_TEMPLATE_DIR, file), "utf8"), { strict: true, noEscape: true });
}

export function renderWrapper(cfg: AcceleratorConfig, part: FpgaPart): string {
  return exportTemplate(`${WRAPPER_TOP}.v.hbs`)(wrapperContext(cfg, part));
}
