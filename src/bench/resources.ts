/**
 * FPGA resources from `yosys synth_xilinx -flatten` (7-series: LUTs, flip-flops, DSP48E1, block RAM):
 * each unit on its own, the shifter and the multiplier requantization side by side (the PoT claim), and
 * the whole accelerator for a few array sizes.
 *
 *   npm run build && node dist/bench/resources.js [--only units|tops] [--sizes 8,16,32] [--json file]
 *
 * Units are synthesized out of context (-noiopad: no I/O buffers, as a unit is never a chip's top); the
 * tops with their I/O buffers. Each synthesis prints its row as soon as it ends, with its elapsed seconds.
 */
import { execa } from "execa";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { RtlFile, TOP_MODULE, renderRtl } from "../generator/rtl.js";
import { UnitSpec, renderUnit } from "../generator/units.js";
import { DEFAULT_CONFIG, parseAcceleratorConfig } from "../hw/config.js";
import { P2vitError } from "../util/errors.js";
import { toolVersion } from "../util/tools.js";

export interface Resources {
  /** LUT1–LUT6 and INV cells (logic LUTs; LUTs used as memory or shift registers are counted apart). */
  lut: number;
  /** LUTs used as distributed RAM (RAM32M, RAM64X1D, …). */
  lutram: number;
  /** LUTs used as shift registers (SRL16E, SRLC32E). */
  srl: number;
  /** Flip-flops (FDRE, FDSE, FDCE, FDPE). */
  ff: number;
  carry4: number;
  dsp: number;
  ramb18: number;
  ramb36: number;
  /** Every cell type and its count, as Yosys's `stat` prints them. */
  cells: Record<string, number>;
}

export interface Target {
  name: string;
  top: string;
  files: RtlFile[];
  parameters: Record<string, number>;
  /** Out of context: no I/O buffers. */
  noIopad: boolean;
  /** Multipliers in LUTs (-nodsp): what a multiplier costs once the PE array holds every DSP. */
  noDsp?: boolean;
}

/**
 * Parses the cell counts of the last module Yosys's `stat` printed (one module after -flatten). DSPs and
 * block RAMs count the 7-series (E1) and the UltraScale (E2) primitives alike.
 */
export function parseStat(text: string): Resources {
  const blocks = text.split(/^=== /m);
  const block = blocks[blocks.length - 1];
  const cells: Record<string, number> = {};
  const after = block.split(/Number of cells:\s+\d+/)[1] ?? "";
  for (const line of after.split("\n")) {
    const m = /^\s+(\S+)\s+(\d+)\s*$/.exec(line);
    if (m) cells[m[1]] = Number(m[2]);
    else if (line.trim() !== "" && Object.keys(cells).length > 0) break;
  }
  if (Object.keys(cells).length === 0) throw new P2vitError(`no cell counts in Yosys's stat output:\n${text.slice(0, 2000)}`);
  const sum = (re: RegExp) => Object.entries(cells).reduce((s, [k, v]) => (re.test(k) ? s + v : s), 0);
  return {
    lut: sum(/^(LUT[1-6](_2)?|INV)$/),
    lutram: sum(/^RAM(16|32|64|128|256)/),
    srl: sum(/^SRL/),
    ff: sum(/^FD[RSCP]E(_1)?$/),
    carry4: sum(/^CARRY4$/),
    dsp: sum(/^DSP48E[12]$/),
    ramb18: sum(/^RAMB18E[12]$/),
    ramb36: sum(/^RAMB36E[12]$/),
    cells,
  };
}

/** Runs synth_xilinx -flatten on one target; returns its resources and the seconds it took. */
export async function synthesize(t: Target): Promise<{ resources: Resources; seconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), "p2vit-synth-"));
  try {
    for (const f of t.files) writeFileSync(join(dir, f.name), f.text);
    const chparam = Object.entries(t.parameters).map(([k, v]) => `chparam -set ${k} ${v} ${t.top}\n`).join("");
    const script =
      `read_verilog -sv ${t.files.map((f) => f.name).join(" ")}\n${chparam}` +
      `synth_xilinx -flatten ${t.noIopad ? "-noiopad " : ""}${t.noDsp ? "-nodsp " : ""}-top ${t.top}\n` +
      `tee -q -o stat.txt stat\n`;
    writeFileSync(join(dir, "synth.ys"), script);
    const start = Date.now();
    const r = await execa("yosys", ["-q", "-s", "synth.ys"], { cwd: dir, reject: false, all: true });
    const seconds = (Date.now() - start) / 1000;
    if (r.exitCode !== 0) throw new P2vitError(`yosys failed on ${t.name} (exit ${r.exitCode}):\n${(r.all ?? "").slice(-3000)}`);
    return { resources: parseStat(readFileSync(join(dir, "stat.txt"), "utf8")), seconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The units: the two requantizations alone and as a 16-lane bank (the multiplier kind also with its
 * multipliers in LUTs), then the others.
 */
export const UNIT_TARGETS: { spec: UnitSpec; noDsp?: boolean }[] = [
  { spec: { unit: "requant_lane", accBits: 32 } },
  { spec: { unit: "requant_mult_lane", accBits: 32 } },
  { spec: { unit: "requant_mult_lane", accBits: 32 }, noDsp: true },
  { spec: { unit: "requant_bank", kind: "shift", accBits: 32, lanes: 16 } },
  { spec: { unit: "requant_bank", kind: "mult", accBits: 32, lanes: 16 } },
  { spec: { unit: "requant_bank", kind: "mult", accBits: 32, lanes: 16 }, noDsp: true },
  { spec: { unit: "mac_pe", accBits: 32 } },
  { spec: { unit: "mac_pe", accBits: 32, w4: true } },
  { spec: { unit: "elementwise_core", lanes: 16 } },
  { spec: { unit: "layernorm_core", lanes: 16, maxDim: 1024 } },
  { spec: { unit: "attnv_core", lanes: 16, maxTokens: 1024 } },
  { spec: { unit: "softmax_core", lanes: 16, maxTokens: 1024 } },
  // the default config's W buffer: one byte per array column, wDepth entries
  { spec: { unit: "vector_ram", width: DEFAULT_CONFIG.array.cols * 8, depth: DEFAULT_CONFIG.buffers.wDepth } },
];

export function unitTarget(spec: UnitSpec, noDsp = false): Target {
  const u = renderUnit(spec);
  return { name: `${u.label}${noDsp ? " nodsp" : ""}`, top: u.top, files: u.files, parameters: u.parameters, noIopad: true, noDsp };
}

/** One module of the default config's RTL with what it instantiates, out of context: the dispatcher and its arbiter's FIFOs. */
export function moduleTarget(top: string): Target {
  return { name: `${top} (default config)`, top, files: renderRtl(DEFAULT_CONFIG).files, parameters: {}, noIopad: true };
}

/** The whole accelerator with an n×n array, the default config otherwise. */
export function topTarget(n: number): Target {
  const cfg = parseAcceleratorConfig({ name: `a${n}x${n}`, array: { rows: n, cols: n } });
  return { name: `${TOP_MODULE} ${n}x${n}`, top: TOP_MODULE, files: renderRtl(cfg).files, parameters: {}, noIopad: false };
}

// rows print as each synthesis ends, so the columns are wide enough for a 128x128 top in advance
const COLUMNS = ["LUT", "LUTRAM", "SRL", "FF", "CARRY4", "DSP48E1", "RAMB18E1", "RAMB36E1", "seconds"].map((c) => c.padStart(8));

function row(name: string, r: Resources, seconds: number, width: number): string {
  const v = [r.lut, r.lutram, r.srl, r.ff, r.carry4, r.dsp, r.ramb18, r.ramb36, seconds.toFixed(1)];
  return `| ${name.padEnd(width)} | ${v.map((x, i) => String(x).padStart(COLUMNS[i].length)).join(" | ")} |`;
}

function ratio(a: number, b: number): string {
  return `${(a / Math.max(b, 1)).toFixed(2)}x`;
}

interface Options {
  only?: "units" | "tops";
  sizes: number[];
  json?: string;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { sizes: [8, 16, 32] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new P2vitError(`${a}: expected a value`);
      return v;
    };
    if (a === "--only") {
      const v = value();
      if (v !== "units" && v !== "tops") throw new P2vitError(`--only: expected units or tops, got ${v}`);
      opts.only = v;
    } else if (a === "--sizes") {
      opts.sizes = value().split(",").map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 1 || n > 128) throw new P2vitError(`--sizes: expected array sizes from 1 to 128, got ${s}`);
        return n;
      });
    } else if (a === "--json") {
      opts.json = value();
    } else {
      throw new P2vitError(`unknown argument ${a} (expected --only units|tops, --sizes 8,16,32, --json file)`);
    }
  }
  return opts;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const yosys = await toolVersion("yosys", ["-V"]);
  if (!yosys) throw new P2vitError("yosys was not found on PATH (Debian: apt-get install yosys)");
  const targets: Target[] = [];
  if (opts.only !== "tops") targets.push(...UNIT_TARGETS.map((u) => unitTarget(u.spec, u.noDsp)), moduleTarget("dispatcher"));
  if (opts.only !== "units") targets.push(...opts.sizes.map(topTarget));
  const width = Math.max(...targets.map((t) => t.name.length), 4);
  console.log(`${yosys}: synth_xilinx -flatten (xc7); units out of context (-noiopad), "nodsp": -nodsp`);
  console.log(`| ${"unit".padEnd(width)} | ${COLUMNS.join(" | ")} |`);
  console.log(`|${"-".repeat(width + 2)}|${COLUMNS.map((c) => `${"-".repeat(c.length + 1)}:`).join("|")}|`);
  const results: { name: string; seconds: number; resources: Resources }[] = [];
  for (const t of targets) {
    const { resources, seconds } = await synthesize(t);
    results.push({ name: t.name, seconds, resources });
    console.log(row(t.name, resources, seconds, width));
  }
  const shift = results.find((r) => r.name.startsWith("requant_bank "));
  const mult = results.find((r) => r.name.startsWith("requant_mult_bank ") && !r.name.endsWith("nodsp"));
  const multLut = results.find((r) => r.name.startsWith("requant_mult_bank ") && r.name.endsWith("nodsp"));
  if (shift && mult) {
    const s = shift.resources;
    const m = mult.resources;
    const lutOnly = multLut ? `; with its multipliers in LUTs ${multLut.resources.lut} LUT (${ratio(multLut.resources.lut, s.lut)} the shifter's)` : "";
    console.log(
      `\nPoT claim, ${shift.name}: shifter ${s.lut} LUT, ${s.ff} FF, ${s.dsp} DSP48E1; ` +
        `multiplier ${m.lut} LUT, ${m.ff} FF, ${m.dsp} DSP48E1${lutOnly}.`,
    );
  }
  if (opts.json) writeFileSync(opts.json, JSON.stringify({ yosys, results }, null, 2) + "\n");
}

// run as a script, not when imported (the tests use parseStat)
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err instanceof P2vitError ? `resources: error: ${err.message}` : err);
    process.exit(err instanceof P2vitError ? 2 : 1);
  });
}
