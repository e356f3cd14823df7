/**
 * The accelerator config: the one object that drives the RTL generator, the compiler, the simulators
 * and the reports (as Gemmini's config drives both its hardware and its software). Validated on entry:
 * unknown fields, wrong types and impossible sizes are refused before anything is generated.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { MAX_TOKENS } from "../sim/golden/attention.js";
import { MAX_LN_DIM as MAX_DIM } from "../sim/golden/layernorm.js";
import { P2vitError } from "../util/errors.js";

export interface AcceleratorConfig {
  /** Used for the output folder and the top module's comment. Letters, digits, '-' and '_'. */
  name: string;
  array: { rows: number; cols: number };
  /**
   * Weight precision the PEs are built for. 8: int8 weights. 4: dual-mode PEs, which run every MATMUL
   * with int8 weights and a MATMUL with flag W4 with int4 weights at two MACs per PE per cycle.
   */
  weightBits: 8 | 4;
  /** Activation precision: int8. */
  actBits: 8;
  /** Width of each PE's accumulator and of the bias. */
  accBits: number;
  /** Width of one word of the memory port, in bits. */
  busBits: number;
  /** Buffer depths, in vector words (one vector word = `array.cols` bytes). */
  buffers: {
    /** Input rows: entries per array row (holds ceil(K / cols) for the largest K). */
    xDepth: number;
    /** Weights: entries (one per k per column tile). */
    wDepth: number;
    /** Output rows: entries per array row (holds ceil(N / cols) for the largest N). */
    oDepth: number;
    /** Bias and shift records: one per column tile. */
    paramDepth: number;
  };
  /** Parallel lanes of the nonlinear chunks (elements per cycle; for attention·V, head columns per cycle). */
  cores: {
    layernormLanes: number;
    softmaxLanes: number;
    attnvLanes: number;
    eltwiseLanes: number;
    /** Longest row of the softmax and attention·V cores: tokens of a sequence (class token included). */
    maxTokens: number;
    /** Widest row of the LayerNorm core: the embedding dimension. */
    maxDim: number;
  };
  /** Target clock, used by the reports (frames per second, GOPS). */
  clockMHz: number;
  /**
   * How the top runs the program. "queued": a dispatcher appends each instruction to its chunk's queue,
   * the chunks run concurrently as the waits and signals allow, and an arbiter shares the memory port
   * (docs/isa.md, "Chunks" and "Dependencies"). "inorder" (the ablation): one instruction at a time in
   * program order (only a MATMUL drains behind the next fetches); the dependency fields are ignored.
   */
  dispatch: Dispatch;
}

export const DISPATCH_MODES = ["inorder", "queued"] as const;
export type Dispatch = (typeof DISPATCH_MODES)[number];

export const DEFAULT_CONFIG: AcceleratorConfig = {
  name: "default",
  array: { rows: 16, cols: 16 },
  weightBits: 8,
  actBits: 8,
  accBits: 32,
  busBits: 128,
  // large enough for DeiT-Base (K up to 3072, N up to 3072) with double buffering
  buffers: { xDepth: 1024, wDepth: 8192, oDepth: 512, paramDepth: 256 },
  // DeiT: 197 tokens, embedding up to 768 (Base)
  cores: { layernormLanes: 16, softmaxLanes: 16, attnvLanes: 64, eltwiseLanes: 16, maxTokens: 197, maxDim: 768 },
  clockMHz: 200,
  dispatch: "queued",
};

const BUS_WIDTHS = [32, 64, 128, 256, 512];
const ACC_BITS = { min: 20, max: 48 };
const MAX_ARRAY_DIM = 128;
// On-chip addresses and counts are 16-bit instruction fields; a param load moves PARAM_PLANES entries per tile.
const MAX_DEPTH = 32768;
const MAX_PARAM_DEPTH = 4096;
const MAX_LANES = 128;
// the golden kernels' limits bound the cores built for them
const DISPATCH_HINT = "inorder: one instruction at a time; queued: per-chunk queues running concurrently as the dependency fields allow";
const WEIGHT_BITS_HINT = "8: int8 weights; 4: dual-mode PEs that also run MATMULs with int4 weights (flag W4)";

type Json = Record<string, unknown>;

/** Validates a parsed config (partial: missing fields take the defaults) and returns a complete one. */
export function parseAcceleratorConfig(raw: unknown, source = "accelerator config"): AcceleratorConfig {
  const at = (path: string) => `${source}: ${path}`;
  const obj = expectObject(raw, at("(top level)"));
  rejectUnknown(obj, Object.keys(DEFAULT_CONFIG), at(""));
  const array = expectObject(obj.array ?? DEFAULT_CONFIG.array, at("array"));
  rejectUnknown(array, ["rows", "cols"], at("array."));
  const buffers = expectObject(obj.buffers ?? DEFAULT_CONFIG.buffers, at("buffers"));
  rejectUnknown(buffers, Object.keys(DEFAULT_CONFIG.buffers), at("buffers."));
  const cores = expectObject(obj.cores ?? DEFAULT_CONFIG.cores, at("cores"));
  rejectUnknown(cores, Object.keys(DEFAULT_CONFIG.cores), at("cores."));
  const d = DEFAULT_CONFIG;

  const name = obj.name ?? d.name;
  if (typeof name !== "string" || !/^[A-Za-z][A-Za-z0-9_-]*$/.test(name)) {
    throw new P2vitError(`${at("name")}: expected a name of letters, digits, '-' and '_' starting with a letter, got ${show(name)}`);
  }
  const config: AcceleratorConfig = {
    name,
    array: {
      rows: intIn(array.rows ?? d.array.rows, 1, MAX_ARRAY_DIM, at("array.rows")),
      cols: intIn(array.cols ?? d.array.cols, 1, MAX_ARRAY_DIM, at("array.cols")),
    },
    weightBits: oneOf(obj.weightBits ?? d.weightBits, [8, 4], at("weightBits"), WEIGHT_BITS_HINT) as 8 | 4,
    actBits: oneOf(obj.actBits ?? d.actBits, [8], at("actBits")) as 8,
    accBits: intIn(obj.accBits ?? d.accBits, ACC_BITS.min, ACC_BITS.max, at("accBits")),
    busBits: oneOf(obj.busBits ?? d.busBits, BUS_WIDTHS, at("busBits")),
    buffers: {
      xDepth: intIn(buffers.xDepth ?? d.buffers.xDepth, 1, MAX_DEPTH, at("buffers.xDepth")),
      wDepth: intIn(buffers.wDepth ?? d.buffers.wDepth, 1, MAX_DEPTH, at("buffers.wDepth")),
      oDepth: intIn(buffers.oDepth ?? d.buffers.oDepth, 1, MAX_DEPTH, at("buffers.oDepth")),
      paramDepth: intIn(buffers.paramDepth ?? d.buffers.paramDepth, 1, MAX_PARAM_DEPTH, at("buffers.paramDepth")),
    },
    cores: {
      layernormLanes: intIn(cores.layernormLanes ?? d.cores.layernormLanes, 1, MAX_LANES, at("cores.layernormLanes")),
      softmaxLanes: intIn(cores.softmaxLanes ?? d.cores.softmaxLanes, 1, MAX_LANES, at("cores.softmaxLanes")),
      attnvLanes: intIn(cores.attnvLanes ?? d.cores.attnvLanes, 1, MAX_LANES, at("cores.attnvLanes")),
      eltwiseLanes: intIn(cores.eltwiseLanes ?? d.cores.eltwiseLanes, 1, MAX_LANES, at("cores.eltwiseLanes")),
      maxTokens: intIn(cores.maxTokens ?? d.cores.maxTokens, 1, MAX_TOKENS, at("cores.maxTokens")),
      maxDim: intIn(cores.maxDim ?? d.cores.maxDim, 1, MAX_DIM, at("cores.maxDim")),
    },
    clockMHz: positiveNumber(obj.clockMHz ?? d.clockMHz, at("clockMHz")),
    dispatch: oneOf(obj.dispatch ?? d.dispatch, DISPATCH_MODES, at("dispatch"), DISPATCH_HINT),
  };
  checkAccumulator(config, at("accBits"));
  if (config.weightBits === 4 && config.array.cols < 2) {
    throw new P2vitError(`${at("weightBits")}: 4 needs array.cols of at least 2, got ${config.array.cols} (a W4 step reads one X vector word per array row and takes its pair of activations from that word, or from its first byte and the last byte of the word before)`);
  }
  return config;
}

/** The largest inner dimension a MATMUL can have: X rows hold xDepth·cols values, W one k per entry, k is 16 bits. */
export function maxInnerDimension(cfg: AcceleratorConfig): number {
  return Math.min(cfg.buffers.xDepth * cfg.array.cols, cfg.buffers.wDepth, 2 ** 16 - 1);
}

/** Refuses an accumulator that cannot hold a sum of int8 × int8 products over the largest inner dimension. */
function checkAccumulator(cfg: AcceleratorConfig, what: string): void {
  const k = maxInnerDimension(cfg);
  const need = Math.ceil(Math.log2(k * 2 ** 14 + 1)) + 1;
  if (cfg.accBits < need) {
    throw new P2vitError(
      `${what}: ${cfg.accBits} bits cannot hold a sum of ${k} int8 products (the largest K the buffers allow: min(buffers.xDepth·array.cols, buffers.wDepth)); it needs ${need} bits, or smaller buffers`,
    );
  }
}

export function loadAcceleratorConfig(file: string): AcceleratorConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new P2vitError(`${file}: cannot read the accelerator config (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new P2vitError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  return parseAcceleratorConfig(raw, file);
}

/** Facts that follow from the config, computed once so every consumer derives them the same way. */
export interface DerivedHw {
  /** Bytes in one vector word (one per array column). */
  vectorBytes: number;
  /** Bytes in one memory word. */
  busBytes: number;
  /** Memory words that hold one vector word (padded up). */
  wordsPerVector: number;
  /** Memory words that hold one INSTRUCTION_BITS-bit instruction (at least one). */
  wordsPerInstruction: number;
}

export const INSTRUCTION_BITS = 256;
/** Bias planes (little-endian bytes of the 32-bit bias) and one shift plane per column tile. */
export const PARAM_PLANES = 5;

export function deriveHw(cfg: AcceleratorConfig): DerivedHw {
  const vectorBytes = cfg.array.cols;
  const busBytes = cfg.busBits / 8;
  return {
    vectorBytes,
    busBytes,
    wordsPerVector: Math.ceil(vectorBytes / busBytes),
    wordsPerInstruction: Math.max(1, INSTRUCTION_BITS / cfg.busBits),
  };
}

/** A stable hash of the config: names the cached Verilator build and goes into the RTL manifest. */
export function configHash(cfg: AcceleratorConfig): string {
  return createHash("sha256").update(canonicalJson(cfg)).digest("hex").slice(0, 16);
}

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.keys(value as Json)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Json)[k])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value);
}

function show(v: unknown): string {
  return v === undefined ? "nothing" : JSON.stringify(v);
}

function expectObject(v: unknown, what: string): Json {
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new P2vitError(`${what}: expected an object, got ${show(v)}`);
  return v as Json;
}

function rejectUnknown(obj: Json, known: string[], prefix: string): void {
  const unknown = Object.keys(obj).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw new P2vitError(`${prefix}${unknown.join(", ")}: unknown field${unknown.length > 1 ? "s" : ""} (expected one of ${known.join(", ")})`);
  }
}

function intIn(v: unknown, lo: number, hi: number, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) {
    throw new P2vitError(`${what}: expected an integer from ${lo} to ${hi}, got ${show(v)}`);
  }
  return v;
}

function positiveNumber(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new P2vitError(`${what}: expected a positive number, got ${show(v)}`);
  return v;
}

function oneOf<T extends number | string>(v: unknown, allowed: readonly T[], what: string, hint?: string): T {
  if (!allowed.includes(v as T)) {
    throw new P2vitError(`${what}: expected one of ${allowed.join(", ")}, got ${show(v)}${hint ? ` (${hint})` : ""}`);
  }
  return v as T;
}
