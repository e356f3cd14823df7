/**
 * `p2vit export`: an RTL folder (what `p2vit generate` writes) → a self-contained FPGA project folder:
 * the sources, the AXI wrapper p2vit_axi_top, a file list, the XDC clock, a Vivado non-project Tcl
 * script, a FuseSoC core, a Yosys script and export.json; with --target yosys also the Yosys
 * synthesis log and its resources. Every path inside is relative, and the folder is written
 * atomically: a failed run (bad input, a Yosys error) leaves nothing that looks complete.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { Resources, parseStat } from "../bench/resources.js";
import { FILELIST, MANIFEST, RtlManifest, TOP_MODULE } from "../generator/rtl.js";
import { GENERATOR_VERSION } from "../generator/params.js";
import { AcceleratorConfig, configHash, parseAcceleratorConfig } from "../hw/config.js";
import { writeDirAtomic } from "../util/atomic.js";
import { P2vitError, check } from "../util/errors.js";
import { toolVersion } from "../util/tools.js";
import { DEFAULT_CLOCK_MHZ, DEFAULT_PART, ExportTarget, FpgaPart, clockPeriodNs, findPart, parseClock } from "./parts.js";
import { REGISTERS, WRAPPER_TOP, exportTemplate, renderWrapper } from "./wrapper.js";

export const EXPORT_FORMAT = "p2vit.export";
export const RESOURCES_FORMAT = "p2vit.resources";
export const XDC = `${WRAPPER_TOP}.xdc`;
export const VIVADO_TCL = "vivado.tcl";
export const YOSYS_SCRIPT = "synth.ys";
export const YOSYS_LOG = "yosys.log";
export const YOSYS_STAT = "yosys-stat.txt";
export const RESOURCES_JSON = "resources.json";
export const EXPORT_JSON = "export.json";
/** Where the Vivado script writes its reports, checkpoint and bitstream (inside the folder). */
const VIVADO_OUT = "vivado_out";

export interface ExportRequest {
  rtlDir: string;
  target: ExportTarget;
  /** Default: the ZCU102's part. */
  part?: string;
  /** Default: the config's clockMHz. */
  clockMHz?: number;
  out: string;
}

export interface ExportResult {
  out: string;
  part: FpgaPart;
  clockMHz: number;
  files: string[];
  /** --target yosys only. */
  resources?: Resources;
  yosysSeconds?: number;
}

interface RtlSources {
  manifestText: string;
  manifest: RtlManifest;
  config: AcceleratorConfig;
  files: { name: string; text: string }[];
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new P2vitError(`${file}: not valid JSON (${(err as Error).message})`);
  }
}

/** Reads and checks what `p2vit generate` wrote: the manifest, its config, the file list, the hashes. */
export function readRtlDir(dir: string): RtlSources {
  check(existsSync(dir) && statSync(dir).isDirectory(), `${dir}: no such folder (give the folder \`p2vit generate --out <dir>\` wrote)`);
  const manifestFile = join(dir, MANIFEST);
  check(existsSync(manifestFile), `${manifestFile}: missing: ${dir} is not an RTL folder (write one with \`p2vit generate --out ${dir}\`)`);
  const manifestText = readFileSync(manifestFile, "utf8");
  const manifest = readJson(manifestFile) as RtlManifest;
  check(manifest !== null && typeof manifest === "object" && Array.isArray(manifest.files), `${manifestFile}: files: expected a list of {name, sha256}`);
  check(manifest.top === TOP_MODULE, `${manifestFile}: top: expected ${JSON.stringify(TOP_MODULE)}, got ${JSON.stringify(manifest.top ?? null)}`);
  const config = parseAcceleratorConfig(manifest.config, `${manifestFile}: config`);
  const listFile = join(dir, FILELIST);
  check(existsSync(listFile), `${listFile}: missing (the RTL folder's file list)`);
  const names = readFileSync(listFile, "utf8").split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const files = names.map((name) => {
    // the export copies files by name; a path could point anywhere, and would not be self-contained
    check(/^[A-Za-z0-9_.-]+\.s?v$/.test(name), `${listFile}: expected Verilog file names in the folder, got ${JSON.stringify(name)}`);
    const file = join(dir, name);
    check(existsSync(file), `${file}: listed in ${FILELIST} but missing`);
    const text = readFileSync(file, "utf8");
    const listed = manifest.files.find((f) => f.name === name);
    check(listed, `${manifestFile}: files: ${name} is in ${FILELIST} but not in the manifest`);
    check(listed.sha256 === sha256(text), `${file}: content differs from its sha256 in ${MANIFEST} (edited after generation? run \`p2vit generate\` again)`);
    return { name, text };
  });
  check(names.includes(`${TOP_MODULE}.v`), `${listFile}: does not list ${TOP_MODULE}.v`);
  return { manifestText, manifest, config, files };
}

interface Plan {
  rtl: RtlSources;
  part: FpgaPart;
  clockMHz: number;
  clockSource: string;
  target: ExportTarget;
}

/** Every text file of the export folder, by name. Pure: the same inputs give the same bytes. */
export function renderExport(plan: Plan): Map<string, string> {
  const { rtl, part, clockMHz } = plan;
  const cfg = rtl.config;
  const sources = [...rtl.files.map((f) => f.name), `${WRAPPER_TOP}.v`];
  const coreName = `p2vit_${cfg.name.replace(/-/g, "_")}`;
  const common = {
    generatorVersion: GENERATOR_VERSION,
    configName: cfg.name,
    configHash: configHash(cfg),
    top: WRAPPER_TOP,
    part: part.part,
    board: part.board,
    family: part.family,
    clockMHz,
    clockSource: plan.clockSource,
    periodNs: clockPeriodNs(clockMHz),
    filelist: FILELIST,
    xdcName: XDC,
    tclName: VIVADO_TCL,
    outDir: VIVADO_OUT,
    ysName: YOSYS_SCRIPT,
    logName: YOSYS_LOG,
    statName: YOSYS_STAT,
    sources,
    sourcesLine: sources.join(" "),
    vlnv: `p2vit:accelerator:${coreName}:${GENERATOR_VERSION}`,
    rows: cfg.array.rows,
    cols: cfg.array.cols,
    busBits: cfg.busBits,
  };
  const out = new Map<string, string>();
  for (const f of rtl.files) out.set(f.name, f.text);
  out.set(`${WRAPPER_TOP}.v`, renderWrapper(cfg, part));
  out.set(FILELIST, sources.join("\n") + "\n");
  out.set(MANIFEST, rtl.manifestText);
  out.set(XDC, exportTemplate("constraints.xdc.hbs")(common));
  out.set(VIVADO_TCL, exportTemplate("vivado.tcl.hbs")(common));
  out.set(`${coreName}.core`, exportTemplate("fusesoc.core.hbs")(common));
  out.set(YOSYS_SCRIPT, exportTemplate("synth.ys.hbs")(common));
  return out;
}

function exportJson(plan: Plan, files: Map<string, string>): string {
  return JSON.stringify(
    {
      format: EXPORT_FORMAT,
      generatorVersion: GENERATOR_VERSION,
      target: plan.target,
      top: WRAPPER_TOP,
      part: plan.part,
      clockMHz: plan.clockMHz,
      clockSource: plan.clockSource,
      accelerator: { name: plan.rtl.config.name, configHash: configHash(plan.rtl.config), rtlContentHash: plan.rtl.manifest.contentHash, config: plan.rtl.config },
      registers: REGISTERS,
      files: [...files].map(([name, text]) => ({ name, sha256: sha256(text) })),
    },
    null,
    2,
  ) + "\n";
}

/** Runs the folder's own synth.ys in it; returns the resources and writes the log, stat and resources.json. */
async function runYosys(dir: string, plan: Plan): Promise<{ resources: Resources; seconds: number }> {
  const yosys = await toolVersion("yosys", ["-V"]);
  if (!yosys) throw new P2vitError("--target yosys: yosys was not found on PATH (Debian: apt-get install yosys, or `npm run setup` as root)");
  const start = Date.now();
  const r = await execa("yosys", ["-q", "-l", YOSYS_LOG, "-s", YOSYS_SCRIPT], { cwd: dir, reject: false, all: true });
  const seconds = (Date.now() - start) / 1000;
  if (r.exitCode !== 0) throw new P2vitError(`yosys failed on the exported ${WRAPPER_TOP} (exit ${r.exitCode}):\n${(r.all ?? "").slice(-3000)}`);
  const resources = parseStat(readFileSync(join(dir, YOSYS_STAT), "utf8"));
  const json = {
    format: RESOURCES_FORMAT,
    yosys,
    command: `yosys -l ${YOSYS_LOG} -s ${YOSYS_SCRIPT}`,
    part: plan.part.part,
    family: plan.part.family,
    config: plan.rtl.config.name,
    configHash: configHash(plan.rtl.config),
    // the shape of `node dist/bench/resources.js --json`, so `p2vit report` reads either
    results: [{ name: `${WRAPPER_TOP} (${plan.rtl.config.name})`, seconds, resources }],
  };
  writeFileSync(join(dir, RESOURCES_JSON), JSON.stringify(json, null, 2) + "\n");
  return { resources, seconds };
}

export async function exportFpga(req: ExportRequest): Promise<ExportResult> {
  const part = findPart(req.part ?? DEFAULT_PART);
  const clockMHz = req.clockMHz === undefined ? undefined : parseClock(req.clockMHz);
  const rtl = readRtlDir(req.rtlDir);
  const plan: Plan = {
    rtl,
    part,
    target: req.target,
    clockMHz: clockMHz ?? rtl.config.clockMHz ?? DEFAULT_CLOCK_MHZ,
    clockSource: clockMHz !== undefined ? "--clock" : `the accelerator config's clockMHz`,
  };
  const files = renderExport(plan);
  let synth: { resources: Resources; seconds: number } | undefined;
  await writeDirAtomic(req.out, async (dir) => {
    for (const [name, text] of files) writeFileSync(join(dir, name), text);
    writeFileSync(join(dir, EXPORT_JSON), exportJson(plan, files));
    if (req.target === "yosys") synth = await runYosys(dir, plan);
  });
  return { out: req.out, part, clockMHz: plan.clockMHz, files: readdirSync(req.out).sort(), resources: synth?.resources, yosysSeconds: synth?.seconds };
}

/** What the command prints: the folder, and the next step for the target. */
export function formatExport(r: ExportResult, target: ExportTarget): string {
  const lines = [`wrote ${r.out}: ${r.files.length} files for ${r.part.part} (${r.part.board}) at ${r.clockMHz} MHz`];
  if (target === "vivado") lines.push(`next: cd ${r.out} && vivado -mode batch -source ${VIVADO_TCL}`);
  if (target === "fusesoc") {
    const core = r.files.find((f) => f.endsWith(".core"));
    lines.push(`next: fusesoc --cores-root ${r.out} run --target synth ${core ? core.replace(/\.core$/, "") : ""}`);
  }
  if (r.resources) {
    const x = r.resources;
    lines.push(`yosys synth_xilinx (${r.part.family}, ${r.yosysSeconds!.toFixed(0)} s): ${x.lut} LUT, ${x.lutram} LUTRAM, ${x.ff} FF, ${x.dsp} DSP, ${x.ramb36} RAMB36 + ${x.ramb18} RAMB18 (${RESOURCES_JSON}, ${YOSYS_LOG})`);
  }
  return lines.join("\n");
}
