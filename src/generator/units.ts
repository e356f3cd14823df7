/**
 * One RTL unit on its own, with its own parameters: what the unit testbenches (src/sim/verilator/unit.ts),
 * the lint and synthesis checks and the resource report (src/bench/resources.ts) work on. The accelerator
 * (rtl.ts) renders the same templates for a whole config; here each unit is rendered alone, with the files
 * it instantiates, the parameter values of its top module and the list of its ports.
 *
 * As in params.ts, every number a template prints is computed here.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Handlebars from "handlebars";
import { SHIFT_MAX, SHIFT_MIN } from "../arith.js";
import { DEFAULT_CONFIG, canonicalJson } from "../hw/config.js";
import { MAX_TOKENS } from "../sim/golden/attention.js";
import { P2vitError } from "../util/errors.js";
import { ATTNV_CODE_BITS, attnvContext } from "./attnv-core.js";
import { layerNormCoreContext, layerNormDelays } from "./layernorm-core.js";
import { MAC_PE_LATENCY, macPeContext } from "./mac.js";
import { ALIGN_MAX, ELEMENTWISE_LATENCY, ELEMENTWISE_MODES, LUT_ENTRIES, REQUANT_LATENCY, elementwiseContext, requantSumBits } from "./elementwise.js";
import { GENERATOR_VERSION, indexBits, templateContext } from "./params.js";
import { RtlFile, TEMPLATE_DIR, registerPartials } from "./rtl.js";
import { softmaxCoreContext, softmaxOutputDelay } from "./softmax.js";

export { ALIGN_MAX, ELEMENTWISE_LATENCY, ELEMENTWISE_MODES, LUT_ENTRIES, REQUANT_LATENCY, elementwiseContext, requantSumBits };

/** Templates that exist only for unit work: the testbench and the synthesis wrappers. */
export const UNIT_TEMPLATE_DIR = join(TEMPLATE_DIR, "..", "unit");

// ---- requant_mult_lane: the float-scale counterpart of the shifter ----------------------------------

/** Bits of requant_mult_lane's unsigned multiplier M. */
export const MULT_BITS = 16;
/** Largest right shift N of requant_mult_lane: every shifter shift s (−8…31) is M = 2^15, N = s + 15. */
export const MULT_SHIFT_MAX = SHIFT_MAX + MULT_BITS;
/** M = 2^MULT_NORM_BIT is a gain of 2^MULT_NORM_BIT: the normalized multiplier of a power-of-two scale. */
export const MULT_NORM_BIT = MULT_BITS - 1;

/** Width of (acc + bias) · M + 2^(N−1) for every N ≤ MULT_SHIFT_MAX, with its sign. */
export function multProductBits(accBits: number): number {
  return Math.max(requantSumBits(accBits) + MULT_BITS + 1, MULT_SHIFT_MAX + 1);
}

/**
 * The arithmetic of requant_mult_lane, exactly: y = sat8(floor(((acc + bias) · M + 2^(N−1)) / 2^N)) for
 * N > 0 (round half up, the shifter's tie rule), y = sat8((acc + bias) · M) for N = 0. BigInt inside:
 * the product exceeds 2^53 for wide accumulators.
 */
export function requantizeMult(acc: number | bigint, bias: number | bigint, mult: number, n: number): number {
  if (!Number.isInteger(mult) || mult < 0 || mult >= 2 ** MULT_BITS) throw new RangeError(`multiplier ${mult} outside 0..${2 ** MULT_BITS - 1}`);
  if (!Number.isInteger(n) || n < 0 || n > MULT_SHIFT_MAX) throw new RangeError(`shift ${n} outside 0..${MULT_SHIFT_MAX}`);
  let p = (BigInt(acc) + BigInt(bias)) * BigInt(mult);
  if (n > 0) p = (p + (1n << BigInt(n - 1))) >> BigInt(n); // BigInt >> floors, as >>> does in hardware
  return p < -128n ? -128 : p > 127n ? 127 : Number(p);
}

/** The template values of requant_mult_lane for an `accBits`-bit accumulator. */
export function requantMultContext(accBits: number) {
  return {
    accBits,
    sumBits: requantSumBits(accBits),
    multBits: MULT_BITS,
    multProductBits: multProductBits(accBits),
    multShiftMax: MULT_SHIFT_MAX,
    multShiftBits: indexBits(MULT_SHIFT_MAX + 1),
    multNormBit: MULT_NORM_BIT,
  };
}

// ---- byte_gearbox ------------------------------------------------------------------------------------

/** Parameters of a byte_gearbox from `inBytes`-byte to `outBytes`-byte words: its count holds up to IN + OUT. */
export function gearboxParameters(inBytes: number, outBytes: number): { IN: number; OUT: number; CW: number } {
  return { IN: inBytes, OUT: outBytes, CW: indexBits(inBytes + outBytes + 1) };
}

// ---- units --------------------------------------------------------------------------------------------

export type UnitSpec =
  | { unit: "requant_lane"; accBits: number }
  | { unit: "requant_mult_lane"; accBits: number }
  /** w4: the dual-mode PE of a weightBits 4 config (int8 weights, or int4 weight pairs with `w4` high). */
  | { unit: "mac_pe"; accBits: number; w4?: boolean }
  | { unit: "vector_ram"; width: number; depth: number }
  | { unit: "elementwise_core"; lanes: number }
  /** The attention·V engine: `lanes` output columns, rows of up to `maxTokens` codes (src/generator/attnv-core.ts). */
  | { unit: "attnv_core"; lanes: number; maxTokens: number }
  /** `lanes` channels per beat, rows of up to `maxDim` channels (src/generator/layernorm-core.ts). */
  | { unit: "layernorm_core"; lanes: number; maxDim: number }
  /** Rows of up to `maxTokens` scores, `lanes` per beat (src/generator/softmax.ts). */
  | { unit: "softmax_core"; lanes: number; maxTokens: number }
  /**
   * Regroups rows of `inBytes`-byte words into `outBytes`-byte words (the streaming chunks' lanes);
   * fullRate: also takes a word while exactly outBytes wait (the streaming chunks' feeds).
   */
  | { unit: "byte_gearbox"; inBytes: number; outBytes: number; fullRate?: boolean }
  /** `lanes` requantization lanes side by side (synthesis only): the shifter or the multiplier kind. */
  | { unit: "requant_bank"; kind: "shift" | "mult"; accBits: number; lanes: number };

export type UnitName = UnitSpec["unit"];

export interface UnitPort {
  name: string;
  width: number;
  /** Two's complement: how a test reads the bits back. */
  signed: boolean;
  /** A vector of signed lanes of this many bits each, lane c at bits c·laneBits up: how reports show it. */
  laneBits?: number;
}

export interface RenderedUnit {
  spec: UnitSpec;
  /** e.g. "requant_lane acc=20": names the unit in reports and in the cache. */
  label: string;
  /** The module under test. */
  top: string;
  /** The module and every module it instantiates, each before its user. */
  files: RtlFile[];
  /** Parameter values of the top module, passed to Verilator (-G) and Yosys (chparam). */
  parameters: Record<string, number>;
  /** Input ports other than clk, in the order of the testbench's stimulus columns. */
  inputs: UnitPort[];
  outputs: UnitPort[];
  /** An output that marks the cycles whose outputs count; without it every cycle counts. */
  valid?: string;
  /** Cycles from an input to the output it produces. */
  latency: number;
  /** Hash of top, parameters and file texts. */
  contentHash: string;
}

const port = (name: string, width: number, signed = false): UnitPort => ({ name, width, signed });
const lanesPort = (name: string, lanes: number, bits: number): UnitPort => ({ name, width: lanes * bits, signed: false, laneBits: bits });

function checkInt(v: number, lo: number, hi: number, what: string): void {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new P2vitError(`${what}: expected an integer from ${lo} to ${hi}, got ${v}`);
}

export function unitLabel(spec: UnitSpec): string {
  switch (spec.unit) {
    case "requant_lane":
    case "requant_mult_lane":
      return `${spec.unit} acc=${spec.accBits}`;
    case "mac_pe":
      return `${spec.unit}${spec.w4 ? " w4" : ""} acc=${spec.accBits}`;
    case "vector_ram":
      return `vector_ram ${spec.width}x${spec.depth}`;
    case "elementwise_core":
      return `elementwise_core lanes=${spec.lanes}`;
    case "attnv_core":
      return `attnv_core lanes=${spec.lanes} maxTokens=${spec.maxTokens}`;
    case "layernorm_core":
      return `layernorm_core lanes=${spec.lanes} maxDim=${spec.maxDim}`;
    case "softmax_core":
      return `softmax_core lanes=${spec.lanes} tokens=${spec.maxTokens}`;
    case "byte_gearbox":
      return `byte_gearbox ${spec.inBytes}->${spec.outBytes}${spec.fullRate ? " full-rate" : ""}`;
    case "requant_bank":
      return `${bankModule(spec.kind)} lanes=${spec.lanes} acc=${spec.accBits}`;
  }
}

function bankModule(kind: "shift" | "mult"): string {
  return kind === "shift" ? "requant_bank" : "requant_mult_bank";
}

let partialsRegistered = false;
function render(dir: string, name: string, ctx: object): string {
  if (!partialsRegistered) {
    registerPartials();
    partialsRegistered = true;
  }
  const source = readFileSync(join(dir, `${name}.v.hbs`), "utf8");
  return Handlebars.compile(source, { strict: true, noEscape: true })(ctx);
}

/** Renders one unit, the modules it instantiates and its port list. Pure: same spec, same text. */
export function renderUnit(spec: UnitSpec): RenderedUnit {
  const label = unitLabel(spec);
  const accBits = "accBits" in spec ? spec.accBits : DEFAULT_CONFIG.accBits;
  if ("accBits" in spec) checkInt(spec.accBits, 20, 48, `${label}: accBits`);
  const base = {
    ...templateContext({ ...DEFAULT_CONFIG, accBits }),
    configName: `unit ${label}`,
    configHash: createHash("sha256").update(canonicalJson(spec)).digest("hex").slice(0, 16),
    generatorVersion: GENERATOR_VERSION,
  };
  const rtl = (name: string, extra: object = {}): RtlFile => ({ name: `${name}.v`, text: render(TEMPLATE_DIR, name, { ...base, ...extra }) });
  let top: string = spec.unit;
  let files: RtlFile[];
  let parameters: Record<string, number>;
  let inputs: UnitPort[];
  let outputs: UnitPort[];
  let valid: string | undefined;
  let latency: number;

  switch (spec.unit) {
    case "requant_lane":
      files = [rtl("requant_lane")];
      parameters = { ACC: accBits, SUMW: requantSumBits(accBits) };
      inputs = [port("acc", accBits, true), port("bias", 32, true), port("shift", 8, true)];
      outputs = [port("y", 8, true), port("y_wide", 32, true)];
      latency = REQUANT_LATENCY;
      break;
    case "requant_mult_lane": {
      const m = requantMultContext(accBits);
      files = [rtl("requant_mult_lane", m)];
      parameters = { ACC: accBits, SUMW: m.sumBits, MW: MULT_BITS, PW: m.multProductBits };
      inputs = [port("acc", accBits, true), port("bias", 32, true), port("shift", 8, true), port("mult", MULT_BITS)];
      outputs = [port("y", 8, true)];
      latency = REQUANT_LATENCY;
      break;
    }
    case "mac_pe": {
      const w4 = spec.w4 === true;
      files = [rtl("mac_pe", macPeContext(w4))];
      parameters = { ACC: accBits };
      const dual = w4 ? { mode: [port("w4", 1)], xHi: [port("x_hi", 8, true)] } : { mode: [], xHi: [] };
      inputs = [port("en", 1), port("first", 1), ...dual.mode, port("x", 8, true), ...dual.xHi, port("w", 8, true)];
      outputs = [port("acc", accBits, true)];
      latency = MAC_PE_LATENCY;
      break;
    }
    case "vector_ram": {
      checkInt(spec.width, 1, 4096, `${label}: width`);
      checkInt(spec.depth, 1, 65536, `${label}: depth`);
      const aw = indexBits(spec.depth);
      files = [rtl("vector_ram")];
      parameters = { WIDTH: spec.width, DEPTH: spec.depth, AW: aw };
      inputs = [port("we", 1), port("waddr", aw), port("wdata", spec.width), port("raddr", aw)];
      outputs = [port("rdata", spec.width)];
      latency = 1;
      break;
    }
    case "elementwise_core": {
      checkInt(spec.lanes, 1, 128, `${label}: lanes`);
      const e = elementwiseContext(spec.lanes);
      files = [rtl("vector_ram"), rtl("requant_lane"), rtl("elementwise_core", e)];
      parameters = { C: spec.lanes, AW: e.alignBits, XW: e.alignedBits, SUMW: e.alignSumBits };
      const c = spec.lanes;
      inputs = [
        port("rst", 1), port("lut_we", 1), port("lut_waddr", e.lutAddrBits), port("lut_wdata", 8),
        port("in_valid", 1), port("in_mode", 1), lanesPort("in_a", c, 8), lanesPort("in_b", c, 8),
        lanesPort("align_a", c, e.alignBits), lanesPort("align_b", c, e.alignBits), lanesPort("out_shift", c, 8),
      ];
      outputs = [port("out_valid", 1), lanesPort("out_y", c, 8)];
      valid = "out_valid";
      latency = ELEMENTWISE_LATENCY;
      break;
    }
    case "attnv_core": {
      checkInt(spec.lanes, 1, 128, `${label}: lanes`);
      checkInt(spec.maxTokens, 1, MAX_TOKENS, `${label}: maxTokens`);
      const a = attnvContext(spec.lanes, spec.maxTokens);
      files = [rtl("vector_ram"), rtl("attnv_core", a)];
      parameters = { C: spec.lanes, MAXN: spec.maxTokens, AW: a.addrBits };
      inputs = [
        port("rst", 1), port("v_we", 1), port("v_waddr", a.addrBits), lanesPort("v_wdata", spec.lanes, 8),
        port("in_valid", 1), port("in_code", ATTNV_CODE_BITS), port("in_last", 1), port("in_shift", 8, true),
      ];
      outputs = [port("out_valid", 1), lanesPort("out_y", spec.lanes, 8)];
      valid = "out_valid";
      latency = a.latency;
      break;
    }
    case "layernorm_core": {
      const ln = layerNormCoreContext(spec.lanes, spec.maxDim);
      files = [rtl("vector_ram"), rtl("layernorm_core", ln)];
      parameters = { C: ln.lanes, BEATS: ln.beats, BAW: ln.beatBits, BUF_DEPTH: ln.bufDepth, BUF_AW: ln.bufAddrBits, DW: ln.dimBits };
      const c = ln.lanes;
      inputs = [
        port("rst", 1), port("par_we", 1), port("par_addr", ln.beatBits), lanesPort("par_k", c, ln.kBits),
        lanesPort("par_mult", c, ln.multBits), lanesPort("par_bias", c, ln.biasBits), lanesPort("par_shift", c, ln.shiftBits),
        port("dim", ln.dimBits), port("eps_term", ln.epsBits), port("in_valid", 1), lanesPort("in_x", c, 8),
      ];
      outputs = [port("out_valid", 1), lanesPort("out_y", c, 8)];
      valid = "out_valid";
      // from a row's last input beat to its first output beat
      latency = layerNormDelays(c).output;
      break;
    }
    case "softmax_core": {
      const s = softmaxCoreContext(spec);
      const c = spec.lanes;
      files = [rtl("vector_ram"), rtl("softmax_core", s)];
      parameters = { C: c, TW: s.tokenBits };
      inputs = [
        port("rst", 1), port("in_valid", 1), lanesPort("in_s", c, 8), port("cfg_mode", 1), port("cfg_tokens", s.tokenBits),
        port("cfg_shift", s.inputShift, true), port("cfg_ln2", s.ln2), port("cfg_b", s.polyB), port("cfg_c", s.polyC), port("cfg_d", s.polyShift),
      ];
      outputs = [port("out_valid", 1), port("out_last", 1), lanesPort("out_p", c, 8)];
      valid = "out_valid";
      // a row's first output beat after its last input beat, for the longest row
      latency = softmaxOutputDelay(spec.maxTokens, spec);
      break;
    }
    case "byte_gearbox": {
      checkInt(spec.inBytes, 1, 256, `${label}: inBytes`);
      checkInt(spec.outBytes, 1, 256, `${label}: outBytes`);
      const g = gearboxParameters(spec.inBytes, spec.outBytes);
      files = [rtl("byte_gearbox")];
      parameters = { ...g, FULL_RATE: spec.fullRate ? 1 : 0 };
      inputs = [
        port("rst", 1), port("in_valid", 1), port("in_data", spec.inBytes * 8), port("in_bytes", g.CW), port("in_last", 1), port("out_ready", 1),
      ];
      outputs = [port("in_ready", 1), port("out_valid", 1), port("out_data", spec.outBytes * 8), port("out_last", 1)];
      latency = 1;
      break;
    }
    case "requant_bank": {
      checkInt(spec.lanes, 1, 128, `${label}: lanes`);
      const mult = spec.kind === "mult";
      const m = requantMultContext(accBits);
      top = bankModule(spec.kind);
      const lane = mult ? "requant_mult_lane" : "requant_lane";
      const bank: RtlFile = {
        name: `${top}.v`,
        text: render(UNIT_TEMPLATE_DIR, "requant_bank", { ...base, ...m, lanes: spec.lanes, lane, module: top, mult }),
      };
      files = [rtl(lane, m), bank];
      parameters = { C: spec.lanes, ACC: accBits, SUMW: m.sumBits, ...(mult ? { MW: MULT_BITS, PW: m.multProductBits } : {}) };
      const c = spec.lanes;
      inputs = [
        lanesPort("acc", c, accBits), lanesPort("bias", c, 32), lanesPort("shift", c, 8),
        ...(mult ? [port("mult", MULT_BITS * c)] : []), // unsigned lanes
      ];
      outputs = [lanesPort("y", c, 8)];
      latency = REQUANT_LATENCY;
      break;
    }
  }
  const contentHash = createHash("sha256")
    .update(canonicalJson({ top, parameters, files: files.map((f) => [f.name, f.text]) }))
    .digest("hex")
    .slice(0, 16);
  return { spec, label, top, files, parameters, inputs, outputs, valid, latency, contentHash };
}
