/**
 * Unit testbenches: one RTL unit (src/generator/units.ts) driven cycle by cycle from a stimulus file by
 * the generated C++ testbench (templates/unit/testbench.cpp.hbs), its outputs compared bit for bit with
 * what a golden kernel says they must be.
 *
 * Builds are cached by content (unit RTL, parameters, testbench, Verilator version) in the same cache
 * folder as the accelerator builds (build.ts). The Verilator runtime library, the slow part of a small
 * build, is compiled once per cache and its objects are reused by every later unit build.
 */
import { execa } from "execa";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Handlebars from "handlebars";
import { RenderedUnit, UNIT_TEMPLATE_DIR, UnitPort } from "../../generator/units.js";
import { SHIFT_MAX, SHIFT_MIN, signedRange } from "../../arith.js";
import { writeDirAtomic } from "../../util/atomic.js";
import { P2vitError } from "../../util/errors.js";
import { seededRandom } from "../../util/random.js";
import { toolVersion } from "../../util/tools.js";
import { defaultCacheDir, verilatorVersion } from "./build.js";

export const UNIT_BINARY = "Vunit";
const TESTBENCH_TEMPLATE = join(UNIT_TEMPLATE_DIR, "testbench.cpp.hbs");

// X and power-up values are random (seeded by the testbench), so a unit that relies on them fails.
const VERILATOR_ARGS = ["--cc", "--exe", "--x-assign", "unique", "--x-initial", "unique", "-Wno-fatal", "-Wno-lint", "-Wno-style"];
// Units are small and runs are short: compile time matters more than simulation speed.
const MAKE_ARGS = ["OPT_FAST=-O1", "OPT_SLOW=-O0", "OPT_GLOBAL=-O2"];

/** The C++ testbench of a unit. */
export function renderTestbench(unit: RenderedUnit): string {
  const source = readFileSync(TESTBENCH_TEMPLATE, "utf8");
  const withWords = (p: UnitPort) => ({ ...p, words: Math.ceil(p.width / 32) });
  return Handlebars.compile(source, { strict: true, noEscape: true })({
    top: unit.top,
    inputs: unit.inputs.map(withWords),
    outputs: unit.outputs.map(withWords),
    valid: unit.valid ?? false,
    inputList: unit.inputs.map((p) => p.name).join(", "),
    outputList: unit.outputs.map((p) => p.name).join(", "),
  });
}

function sha(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

async function make(dir: string, top: string): Promise<void> {
  const r = await execa("make", ["-C", dir, "-f", `V${top}.mk`, "-j", "2", ...MAKE_ARGS], { reject: false, all: true });
  if (r.exitCode !== 0) throw new P2vitError(`compiling the ${top} testbench failed (exit ${r.exitCode}):\n${(r.all ?? "").slice(-4000)}`);
}

/** Path of the unit's testbench binary, building it unless the cache has it. */
export async function buildUnit(unit: RenderedUnit, cacheDir = defaultCacheDir()): Promise<string> {
  const version = (await verilatorVersion()).replace(/[^0-9.]/g, "").slice(0, 12);
  const testbench = renderTestbench(unit);
  const flags = [...VERILATOR_ARGS, ...MAKE_ARGS].join(" ");
  const dir = join(cacheDir, `unit-${unit.top}-${sha(`${unit.contentHash}\n${testbench}\n${flags}`)}-${version}`);
  const binary = join(dir, UNIT_BINARY);
  if (existsSync(binary)) return binary;
  // objects of the Verilator runtime, shared by all unit builds with the same version, flags and compiler
  const cxx = process.env.CXX ?? "g++";
  const compiler = (await toolVersion(cxx, ["--version"])) ?? cxx;
  const runtimeDir = join(cacheDir, `unit-runtime-${sha(`${flags}\n${compiler}`)}-${version}`);
  mkdirSync(cacheDir, { recursive: true });

  // the first build compiles the runtime; concurrent first builds wait for it rather than repeat it
  const lock = `${runtimeDir}.lock`;
  let holdsLock = false;
  if (!existsSync(runtimeDir)) {
    holdsLock = tryLock(lock);
    if (!holdsLock) await waitFor(() => existsSync(runtimeDir) || !existsSync(lock), RUNTIME_WAIT_MS);
  }
  try {
    await buildInto(dir, unit, testbench, runtimeDir);
  } finally {
    if (holdsLock) rmSync(lock, { recursive: true, force: true });
  }
  return binary;
}

const RUNTIME_WAIT_MS = 180_000;
const STALE_LOCK_MS = 600_000;

/** Takes a lock folder; a lock older than STALE_LOCK_MS is a crashed holder's and is taken over. */
function tryLock(lock: string): boolean {
  try {
    mkdirSync(lock);
    return true;
  } catch {
    try {
      if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) {
        rmSync(lock, { recursive: true, force: true });
        mkdirSync(lock);
        return true;
      }
    } catch {
      // another process took it over or released it
    }
    return false;
  }
}

async function waitFor(done: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) await new Promise((r) => setTimeout(r, 250));
}

async function buildInto(dir: string, unit: RenderedUnit, testbench: string, runtimeDir: string): Promise<void> {
  await writeDirAtomic(dir, async (tmp) => {
    for (const f of unit.files) writeFileSync(join(tmp, f.name), f.text);
    writeFileSync(join(tmp, "testbench.cpp"), testbench);
    const params = Object.entries(unit.parameters).map(([k, v]) => `-G${k}=${v}`);
    const args = [...VERILATOR_ARGS, "--top-module", unit.top, ...params, "-Mdir", "obj", "-o", join("..", UNIT_BINARY), ...unit.files.map((f) => f.name), "testbench.cpp"];
    const r = await execa("verilator", args, { cwd: tmp, reject: false, all: true });
    if (r.exitCode !== 0) throw new P2vitError(`verilator failed on ${unit.label} (exit ${r.exitCode}):\n${(r.all ?? "").slice(-4000)}`);
    const obj = join(tmp, "obj");
    const cached = existsSync(runtimeDir) ? readdirSync(runtimeDir).filter((f) => f.endsWith(".o")) : [];
    const now = new Date();
    for (const f of cached) {
      copyFileSync(join(runtimeDir, f), join(obj, f));
      utimesSync(join(obj, f), now, now); // newer than the runtime sources: make keeps it
    }
    await make(obj, unit.top);
    if (cached.length === 0) {
      const runtime = readdirSync(obj).filter((f) => /^verilated.*\.o$/.test(f));
      await writeDirAtomic(runtimeDir, (rt) => runtime.forEach((f) => copyFileSync(join(obj, f), join(rt, f))), { keepExisting: true });
    }
    rmSync(obj, { recursive: true, force: true });
  }, { keepExisting: true });
}

// ---- stimulus and outputs -----------------------------------------------------------------------------

export type PortValue = number | bigint;
/** The inputs of one cycle, by port name; a port not named is 0. */
export type Cycle = Record<string, PortValue>;

export interface UnitOutput {
  cycle: number;
  /** Raw bit patterns by output port. */
  values: Record<string, bigint>;
}

/** Two's-complement bit pattern of `v` in `width` bits. */
export function toBits(v: PortValue, width: number): bigint {
  return BigInt.asUintN(width, BigInt(v));
}

/** The value a port's bits stand for (signed ports in two's complement). */
export function fromBits(bits: bigint, p: UnitPort): bigint {
  return p.signed ? BigInt.asIntN(p.width, bits) : BigInt.asUintN(p.width, bits);
}

/** Lane c of `values` in bits [c·bits, (c+1)·bits): a vector bus like the engine's vector words. */
export function packLanes(values: ArrayLike<number>, bits: number): bigint {
  let v = 0n;
  for (let c = values.length - 1; c >= 0; c--) v = (v << BigInt(bits)) | toBits(values[c], bits);
  return v;
}

export function unpackLanes(v: bigint, lanes: number, bits: number, signed = true): number[] {
  const out: number[] = [];
  for (let c = 0; c < lanes; c++) {
    const lane = BigInt.asUintN(bits, v >> BigInt(c * bits));
    out.push(Number(signed ? BigInt.asIntN(bits, lane) : lane));
  }
  return out;
}

/** Runs a built testbench on `cycles` (one entry per clock cycle) and returns the sampled outputs. */
export async function runUnit(binary: string, unit: RenderedUnit, cycles: Cycle[], seed = 1): Promise<UnitOutput[]> {
  const known = new Set(unit.inputs.map((p) => p.name));
  const dir = mkdtempSync(join(tmpdir(), "p2vit-unit-"));
  try {
    const lines: string[] = [];
    for (const [i, cyc] of cycles.entries()) {
      for (const name of Object.keys(cyc)) {
        if (!known.has(name)) throw new P2vitError(`${unit.label}: cycle ${i} sets '${name}', which is not an input (${[...known].join(", ")})`);
      }
      lines.push(unit.inputs.map((p) => toBits(cyc[p.name] ?? 0, p.width).toString(16)).join(" "));
    }
    const inFile = join(dir, "stimulus.txt");
    const outFile = join(dir, "outputs.txt");
    writeFileSync(inFile, lines.join("\n") + "\n");
    const r = await execa(binary, [`+in=${inFile}`, `+out=${outFile}`, `+seed=${seed}`], { reject: false, all: true });
    if (r.exitCode !== 0) throw new P2vitError(`${unit.label} testbench failed (exit ${r.exitCode}): ${(r.all ?? "").slice(-2000)}`);
    return readFileSync(outFile, "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => {
        const tok = l.trim().split(/\s+/);
        const values: Record<string, bigint> = {};
        unit.outputs.forEach((p, i) => (values[p.name] = BigInt(`0x${tok[i + 1]}`)));
        return { cycle: Number(tok[0]), values };
      });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- comparison -----------------------------------------------------------------------------------------

/** What one output must be in one cycle, and which stimulus vector it answers. */
export interface Expected {
  cycle: number;
  values: Record<string, PortValue>;
  vector: number;
}

export interface UnitMismatch {
  vector: number;
  cycle: number;
  port: string;
  expected?: bigint;
  got?: bigint;
  /** One line for a test failure: the vector, the cycle, the port, both values and the inputs. */
  message: string;
}

function show(bits: bigint | undefined, p: UnitPort | undefined): string {
  if (bits === undefined || p === undefined) return "nothing";
  if (p.laneBits) return `[${unpackLanes(bits, p.width / p.laneBits, p.laneBits).join(",")}]`;
  const v = fromBits(bits, p);
  return p.width > 8 ? `${v} (0x${bits.toString(16)})` : `${v}`;
}

/**
 * The first expected output that differs, bit for bit, from the testbench's, in cycle order; null when all
 * agree. Units with a valid output must also produce no output the expectations do not list.
 * `describe(vector)` names the inputs of the vector in the message.
 */
export function firstUnitMismatch(
  unit: RenderedUnit,
  expected: Expected[],
  got: UnitOutput[],
  describe: (vector: number) => string = () => "",
): UnitMismatch | null {
  const byCycle = new Map(got.map((o) => [o.cycle, o]));
  const wanted = new Map(expected.map((e) => [e.cycle, e]));
  const ports = new Map(unit.outputs.map((p) => [p.name, p]));
  const mismatch = (e: Expected, port: string, exp: bigint | undefined, g: bigint | undefined, what: string): UnitMismatch => {
    const inputs = e.vector >= 0 ? describe(e.vector) : "";
    return {
      vector: e.vector, cycle: e.cycle, port, expected: exp, got: g,
      message: `${unit.label}: ${e.vector >= 0 ? `vector ${e.vector}, ` : ""}cycle ${e.cycle}: ${what}${inputs ? `; inputs ${inputs}` : ""}`,
    };
  };
  // with a valid output, an output nobody expects is an error too
  const cycles = unit.valid ? new Set([...wanted.keys(), ...byCycle.keys()]) : new Set(wanted.keys());
  for (const cycle of [...cycles].sort((a, b) => a - b)) {
    const e = wanted.get(cycle);
    const o = byCycle.get(cycle);
    if (!e) return mismatch({ cycle, values: {}, vector: -1 }, unit.valid!, 0n, 1n, `${unit.valid} is high where no output is expected`);
    for (const [name, value] of Object.entries(e.values)) {
      const p = ports.get(name);
      if (!p) throw new P2vitError(`${unit.label}: '${name}' is not an output`);
      const exp = toBits(value, p.width);
      const g = o?.values[name];
      if (g !== exp) {
        const what = o ? `${name} expected ${show(exp, p)}, got ${show(g, p)}` : `no output (expected ${name} = ${show(exp, p)})`;
        return mismatch(e, name, exp, g, what);
      }
    }
  }
  return null;
}

/** Builds (or finds) the unit's testbench, runs the cycles and compares with the expectations. */
export async function checkUnit(
  unit: RenderedUnit,
  cycles: Cycle[],
  expected: Expected[],
  describe?: (vector: number) => string,
): Promise<{ mismatch: UnitMismatch | null; outputs: UnitOutput[] }> {
  const binary = await buildUnit(unit);
  const outputs = await runUnit(binary, unit, cycles);
  return { mismatch: firstUnitMismatch(unit, expected, outputs, describe), outputs };
}

// ---- seeded stimulus ------------------------------------------------------------------------------------

/** Seeded random values for stimulus, biased toward the extremes where arithmetic breaks. */
export class StimulusRng {
  private readonly rnd: () => number;

  constructor(seed: number) {
    this.rnd = seededRandom(seed);
  }

  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rnd() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.rnd() < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)];
  }

  /** With probability `p` one of `extremes` (default lo, hi, 0, ±1 where in range), else uniform in [lo, hi]. */
  edgy(lo: number, hi: number, p = 0.3, extremes?: number[]): number {
    const ex = extremes ?? [lo, hi, ...[0, 1, -1].filter((v) => v >= lo && v <= hi)];
    return this.chance(p) ? this.pick(ex) : this.int(lo, hi);
  }

  /** Uniform signed `bits`-bit integer as a BigInt (any width). */
  signedBits(bits: number): bigint {
    let v = 0n;
    for (let i = 0; i < bits; i += 16) v = (v << 16n) | BigInt(this.int(0, 0xffff));
    return BigInt.asIntN(bits, v);
  }

  /** int8 with extremes: −128, 127, 0, ±1 often. */
  int8(p = 0.3): number {
    return this.edgy(-128, 127, p);
  }
}

/** One input of a requantization lane. */
export interface RequantVector {
  acc: number;
  bias: number;
  shift: number;
}

/**
 * Seeded inputs of a requantization lane: every shift −8…31 with the extremes of acc and bias, then a mix
 * of uniform values (biases often at ±2^31 edges) and sums at or one off a rounding tie around the int8
 * range. Every acc fits `accBits`, every bias int32.
 */
export function requantVectors(accBits: number, n: number, seed: number): RequantVector[] {
  const rng = new StimulusRng(seed);
  const acc = signedRange(accBits);
  const i32 = signedRange(32);
  const out: RequantVector[] = [];
  for (let s = SHIFT_MIN; s <= SHIFT_MAX; s++) {
    // every shift with the extremes of both operands
    for (const a of [acc.lo, acc.hi, 0, -1]) for (const b of [i32.lo, i32.hi, 0]) out.push({ acc: a, bias: b, shift: s });
  }
  while (out.length < n) {
    const shift = rng.edgy(SHIFT_MIN, SHIFT_MAX, 0.3);
    const kind = rng.int(0, 3);
    let a: number;
    let b: number;
    if (kind === 0) {
      a = Number(rng.signedBits(accBits));
      b = rng.chance(0.3) ? rng.pick([i32.lo, i32.hi]) : Number(rng.signedBits(32));
    } else {
      // a sum at (or one off) a rounding tie, around the int8 range: t·2^s + 2^(s−1) + δ
      const t = rng.pick([-129, -128, -127, -1, 0, 1, 126, 127, 128, rng.int(-300, 300)]);
      const half = shift > 0 ? 2 ** (shift - 1) : 0;
      const sum = t * 2 ** Math.max(shift, 0) + half + rng.int(-1, 1);
      b = kind === 1 ? 0 : rng.int(-(2 ** 20), 2 ** 20);
      a = sum - b;
      if (a < acc.lo || a > acc.hi) {
        a = Math.max(acc.lo, Math.min(acc.hi, sum));
        b = Math.max(i32.lo, Math.min(i32.hi, sum - a));
      }
    }
    out.push({ acc: a, bias: b, shift });
  }
  return out;
}
