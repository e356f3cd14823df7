/** `p2vit export`: the folder it writes, checked as Vivado, Verilator and Yosys would read it. */
import { execa } from "execa";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { exportFpga } from "../../src/export/export.js";
import { WRAPPER_TOP } from "../../src/export/wrapper.js";
import { writeRtl } from "../../src/generator/rtl.js";
import { AcceleratorConfig, DEFAULT_CONFIG, parseAcceleratorConfig } from "../../src/hw/config.js";
import { REPO } from "../paths.js";
import { TINY_CORES } from "../configs.js";

const BIN = join(REPO, "bin", "p2vit.js");
const p2vit = (args: string[], env: Record<string, string> = {}) => execa("node", [BIN, ...args], { cwd: REPO, reject: false, env });

// small enough that yosys synth_xilinx takes seconds: a 4×4 array and small buffers
const SMALL = parseAcceleratorConfig({ name: "small", array: { rows: 4, cols: 4 }, busBits: 32, clockMHz: 150, buffers: { xDepth: 64, wDepth: 512, oDepth: 64, paramDepth: 16 }, cores: TINY_CORES });
const WIDE = parseAcceleratorConfig({ name: "wide-bus", array: { rows: 2, cols: 8 }, busBits: 512, buffers: { xDepth: 8, wDepth: 64, oDepth: 8, paramDepth: 4 }, cores: TINY_CORES });

const root = mkdtempSync(join(tmpdir(), "p2vit-export-"));
async function rtlDir(cfg: AcceleratorConfig): Promise<string> {
  const dir = join(root, `rtl-${cfg.name}`);
  if (!existsSync(dir)) await writeRtl(cfg, dir);
  return dir;
}

beforeAll(() => {
  if (!existsSync(join(REPO, "dist", "cli", "main.js"))) throw new Error("dist/ is missing: run `npm run build` (npm test does it)");
});

// ---- a tokenizer-level reading of Tcl and XDC ----

/** Text without comment lines (Tcl and XDC comments start a command with #). */
function code(text: string): string[] {
  return text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

/** Throws unless every brace, bracket and quote closes in order (backslash escapes skipped). */
function checkBalanced(text: string): void {
  const stack: string[] = [];
  const pairs: Record<string, string> = { "}": "{", "]": "[" };
  let quoted = false;
  const lines = code(text).join("\n");
  for (let i = 0; i < lines.length; i++) {
    const c = lines[i];
    if (c === "\\") i++;
    else if (c === '"' && stack[stack.length - 1] !== "{") quoted = !quoted;
    else if (c === "{" || c === "[") stack.push(c);
    else if (c === "}" || c === "]") {
      if (stack.pop() !== pairs[c]) throw new Error(`unbalanced ${c} at offset ${i}`);
    }
  }
  if (stack.length > 0 || quoted) throw new Error(`unclosed ${quoted ? '"' : stack.join("")}`);
}

/** The first word of every command: at each line's start (after a closing brace) and after each '['. */
function commands(text: string): string[] {
  const out: string[] = [];
  for (const line of code(text)) {
    const head = line.replace(/^\}\s*(else\s*\{?)?\s*/, "").split(/\s+/)[0];
    if (head) out.push(head);
    for (const m of line.matchAll(/\[\s*([A-Za-z_]+)/g)) out.push(m[1]);
  }
  return out;
}

const TCL_COMMANDS = new Set([
  "set", "if", "file", "open", "foreach", "close", "read", "split", "string", "lindex", "lrange", "info", "puts",
  "read_verilog", "read_xdc", "synth_design", "opt_design", "place_design", "route_design",
  "report_timing_summary", "report_utilization", "write_checkpoint", "write_bitstream",
]);
const XDC_COMMANDS = new Set(["create_clock", "get_ports"]);

describe("p2vit export", () => {
  it("writes a Vivado Tcl script and XDC that parse, name the part and the clock, and read only files in the folder", async () => {
    const out = join(root, "vivado");
    const r = await p2vit(["export", await rtlDir(SMALL), "--target", "vivado", "--out", out]);
    expect(r.exitCode, r.stderr).toBe(0);
    const tcl = readFileSync(join(out, "vivado.tcl"), "utf8");
    const xdc = readFileSync(join(out, `${WRAPPER_TOP}.xdc`), "utf8");
    checkBalanced(tcl);
    checkBalanced(xdc);
    for (const c of commands(tcl)) expect(TCL_COMMANDS, `Tcl command ${c}`).toContain(c);
    for (const c of commands(xdc)) expect(XDC_COMMANDS, `XDC command ${c}`).toContain(c);
    // the flow, in order
    const flow = commands(tcl).filter((c) => /_design$|^report_|^write_|^read_(verilog|xdc)$/.test(c));
    expect([...new Set(flow)]).toEqual(["read_verilog", "read_xdc", "synth_design", "opt_design", "place_design", "route_design", "report_timing_summary", "report_utilization", "write_checkpoint", "write_bitstream"]);
    expect(code(tcl)).toContain("set part xczu9eg-ffvb1156-2-e");
    expect(tcl).toMatch(/synth_design -top \$top -part \$part/);
    expect(code(tcl)).toContain(`set top ${WRAPPER_TOP}`);
    // the config's 150 MHz, as a period
    expect(code(xdc)).toEqual(["create_clock -period 6.667 -name aclk [get_ports aclk]"]);
    // every file the script opens or reads, and every file of the list it reads
    const read = [...tcl.matchAll(/\[file join \$here ([^\]\s$]+)\]/g)].map((m) => m[1]).filter((f) => f.includes("."));
    expect(read.sort()).toEqual(["filelist.f", `${WRAPPER_TOP}.xdc`]);
    const listed = readFileSync(join(out, "filelist.f"), "utf8").trim().split("\n");
    expect(listed[listed.length - 1]).toBe(`${WRAPPER_TOP}.v`);
    for (const f of [...read, ...listed]) expect(existsSync(join(out, f)), f).toBe(true);
  });

  it("takes --part and --clock, and writes a FuseSoC core listing the same sources", async () => {
    const out = join(root, "fusesoc");
    const r = await p2vit(["export", await rtlDir(SMALL), "--target", "fusesoc", "--part", "xc7z020clg400-1", "--clock", "125", "--out", out]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/fusesoc --cores-root .* run --target synth p2vit_small/);
    expect(readFileSync(join(out, "vivado.tcl"), "utf8")).toMatch(/^set part xc7z020clg400-1$/m);
    expect(readFileSync(join(out, `${WRAPPER_TOP}.xdc`), "utf8")).toMatch(/^create_clock -period 8\.000 -name aclk \[get_ports aclk\]$/m);
    // 7-series: a 32-bit AXI address
    expect(readFileSync(join(out, `${WRAPPER_TOP}.v`), "utf8")).toMatch(/localparam AW = 32;/);
    const core = readFileSync(join(out, "p2vit_small.core"), "utf8");
    expect(core.split("\n")[0]).toBe("CAPI=2:");
    expect(core).toMatch(/^name: p2vit:accelerator:p2vit_small:\d+\.\d+\.\d+$/m);
    expect(core).toMatch(/part: xc7z020clg400-1/);
    const files = [...core.matchAll(/^ {6}- (\S+)$/gm)].map((m) => m[1]);
    const listed = readFileSync(join(out, "filelist.f"), "utf8").trim().split("\n");
    expect(files).toEqual([...listed, `${WRAPPER_TOP}.xdc`]);
    expect(core).not.toMatch(/\t/); // YAML refuses tabs
  });

  it("is self-contained: nothing points back, and a copy elsewhere lints clean", async () => {
    const rtl = await rtlDir(SMALL);
    const out = join(root, "self");
    await exportFpga({ rtlDir: rtl, target: "vivado", out });
    for (const f of readdirSync(out)) {
      const text = readFileSync(join(out, f), "utf8");
      expect(text.includes(REPO), `${f} names the repository`).toBe(false);
      expect(text.includes(root), `${f} names the scratch folder`).toBe(false);
    }
    const copy = join(mkdtempSync(join(tmpdir(), "p2vit-copy-")), "moved");
    cpSync(out, copy, { recursive: true });
    const r = await execa("verilator", ["--lint-only", "-Wall", "--top-module", WRAPPER_TOP, "-f", "filelist.f"], { cwd: copy, reject: false, all: true });
    expect(r.all).toBe("");
    expect(r.exitCode).toBe(0);
  });

  it.each([
    ["default", DEFAULT_CONFIG, "xczu9eg-ffvb1156-2-e"],
    ["wide-bus", WIDE, "xc7a100tcsg324-1"],
  ] as const)("is verilator --lint-only -Wall clean, wrapper and accelerator together (%s)", async (_name, cfg, part) => {
    const out = join(root, `lint-${cfg.name}`);
    await exportFpga({ rtlDir: await rtlDir(cfg), target: "vivado", part, out });
    const r = await execa("verilator", ["--lint-only", "-Wall", "--top-module", WRAPPER_TOP, "-f", "filelist.f"], { cwd: out, reject: false, all: true });
    expect(r.all).toBe("");
    expect(r.exitCode).toBe(0);
  });

  it("--target yosys synthesizes the wrapper and saves the log and the resources", async () => {
    const out = join(root, "yosys");
    const r = await p2vit(["export", await rtlDir(SMALL), "--target", "yosys", "--out", out]);
    expect(r.exitCode, r.stderr).toBe(0);
    const json = JSON.parse(readFileSync(join(out, "resources.json"), "utf8"));
    expect(json).toMatchObject({ format: "p2vit.resources", part: "xczu9eg-ffvb1156-2-e", family: "xcup", command: "yosys -l yosys.log -s synth.ys" });
    const res = json.results[0].resources;
    // a DSP per PE at least (the array is mapped, not optimized away behind the wrapper); the
    // LayerNorm and softmax cores take a few more
    expect(res.dsp).toBeGreaterThanOrEqual(16);
    expect(res.dsp).toBeLessThan(64);
    expect(res.cells.DSP48E2).toBe(res.dsp);
    expect(res.lut).toBeGreaterThan(500);
    expect(res.ff).toBeGreaterThan(500);
    expect(typeof res.ramb36).toBe("number");
    expect(typeof res.ramb18).toBe("number");
    const log = readFileSync(join(out, "yosys.log"), "utf8");
    expect(readFileSync(join(out, "synth.ys"), "utf8")).toMatch(/^synth_xilinx -flatten -noiopad -family xcup -top p2vit_axi_top$/m);
    expect(log).toMatch(/Executing SYNTH_XILINX pass/);
    expect(log).toMatch(new RegExp(`DSP48E2\\s+${res.dsp}\\b`));
    expect(r.stdout).toMatch(new RegExp(`${res.dsp} DSP`));
  });

  it.each([
    [["--part", "xc9zz999"], /--part: unknown part "xc9zz999"; known parts: xczu9eg-ffvb1156-2-e \(ZCU102\)/],
    [["--clock", "0"], /--clock: expected a clock in MHz above 0 and at most 1000, got "0"/],
    [["--clock", "-100"], /--clock: expected a clock in MHz above 0 and at most 1000, got "-100"/],
    [["--clock", "fast"], /--clock: expected a clock in MHz above 0 and at most 1000, got "fast"/],
    [["--target", "quartus"], /--target: expected one of vivado, yosys, fusesoc, got "quartus"/],
  ])("refuses %j with a clear error and writes nothing", async (extra, message) => {
    const out = join(root, "refused");
    const args = ["export", await rtlDir(SMALL), "--target", "vivado", "--out", out];
    const i = args.indexOf(extra[0]);
    if (i >= 0) args.splice(i, 2, ...extra);
    else args.push(...extra);
    const r = await p2vit(args);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^p2vit: error: /);
    expect(r.stderr).toMatch(message);
    expect(existsSync(out)).toBe(false);
  });

  it("names the missing manifest.json, and a source edited after generation", async () => {
    const empty = join(root, "not-rtl");
    mkdirSync(empty, { recursive: true });
    writeFileSync(join(empty, "top.v"), "module x; endmodule\n");
    let r = await p2vit(["export", empty, "--target", "vivado", "--out", join(root, "never")]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/not-rtl\/manifest\.json: missing: .* is not an RTL folder/);
    const edited = join(root, "edited");
    cpSync(await rtlDir(SMALL), edited, { recursive: true });
    writeFileSync(join(edited, "mac_pe.v"), readFileSync(join(edited, "mac_pe.v"), "utf8") + "// edit\n");
    r = await p2vit(["export", edited, "--target", "vivado", "--out", join(root, "never")]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/edited\/mac_pe\.v: content differs from its sha256 in manifest\.json/);
    expect(existsSync(join(root, "never"))).toBe(false);
  });

  it("leaves nothing behind when Yosys fails, and keeps the previous export", async () => {
    const fake = join(root, "fake-bin");
    mkdirSync(fake, { recursive: true });
    writeFileSync(join(fake, "yosys"), '#!/bin/sh\nif [ "$1" = "-V" ]; then echo "Yosys 0.0 (fake)"; exit 0; fi\necho "ERROR: fake failure" >&2\nexit 1\n');
    chmodSync(join(fake, "yosys"), 0o755);
    const out = join(root, "kept");
    await exportFpga({ rtlDir: await rtlDir(SMALL), target: "vivado", out });
    const before = readdirSync(out).sort();
    const r = await p2vit(["export", await rtlDir(SMALL), "--target", "yosys", "--out", out], { PATH: `${fake}:${process.env.PATH}` });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/yosys failed on the exported p2vit_axi_top \(exit 1\)/);
    expect(readdirSync(out).sort()).toEqual(before);
    expect(readdirSync(root).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });
});
