import { execa } from "execa";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FILELIST, MANIFEST, RTL_MODULES, TOP_MODULE, renderRtl, writeRtl } from "../../src/generator/rtl.js";
import { DEFAULT_CONFIG, parseAcceleratorConfig } from "../../src/hw/config.js";

const CONFIGS = [
  DEFAULT_CONFIG,
  parseAcceleratorConfig({ name: "tiny", array: { rows: 1, cols: 1 }, busBits: 32, accBits: 40 }),
  parseAcceleratorConfig({ name: "odd", array: { rows: 3, cols: 5 }, busBits: 64, buffers: { xDepth: 7, wDepth: 100, oDepth: 9, paramDepth: 3 } }),
  parseAcceleratorConfig({ name: "wide", array: { rows: 8, cols: 16 }, busBits: 512 }),
  parseAcceleratorConfig({ name: "odd-w4", weightBits: 4, array: { rows: 3, cols: 5 }, busBits: 64, buffers: { xDepth: 7, wDepth: 100, oDepth: 9, paramDepth: 3 } }),
  parseAcceleratorConfig({ name: "narrow-w4", weightBits: 4, array: { rows: 1, cols: 2 }, busBits: 32, buffers: { xDepth: 1, wDepth: 1, oDepth: 1, paramDepth: 1 } }),
  parseAcceleratorConfig({ name: "queued", array: { rows: 3, cols: 5 }, busBits: 32, dispatch: "queued", buffers: { xDepth: 7, wDepth: 100, oDepth: 9, paramDepth: 3 } }),
];

describe("RTL generator", () => {
  it("renders the same text for the same config, and different text for another", () => {
    const a = renderRtl(DEFAULT_CONFIG);
    const b = renderRtl(parseAcceleratorConfig({}));
    expect(b.files).toEqual(a.files);
    expect(b.manifest.contentHash).toBe(a.manifest.contentHash);
    expect(renderRtl(CONFIGS[2]).manifest.contentHash).not.toBe(a.manifest.contentHash);
  });

  it("prints the config's numbers into the modules", () => {
    const { files } = renderRtl(CONFIGS[2]);
    const engine = files.find((f) => f.name === "matmul_engine.v")!.text;
    expect(engine).toMatch(/parameter R = 3,/);
    expect(engine).toMatch(/parameter C = 5,/);
    expect(engine).toMatch(/parameter XDEPTH = 7,\s+parameter XAW = 3,/);
    const top = files.find((f) => f.name === "p2vit_top.v")!.text;
    expect(top).toMatch(/localparam \[3:0\] OP_MATMUL = 4'd3;/);
    expect(top).toMatch(/localparam LOAD_MADDR_LSB = 56;/);
    expect(top).toMatch(/localparam IB = 256;/);
    // no template residue: a Handlebars tag opens with two braces and a name, a block or a partial
    const residue = /\{\{[#/>@!^a-zA-Z.]/;
    expect(top).not.toMatch(residue);
    // the instruction fetch: the queued dispatcher's, or the in-order controller's in the top
    const dispatcher = files.find((f) => f.name === "dispatcher.v")!.text;
    expect(dispatcher).toMatch(/localparam WPI = 4;/);
    expect(dispatcher).toMatch(/localparam QD = 8;/);
    expect(dispatcher).not.toMatch(residue);
    const inOrder = renderRtl({ ...CONFIGS[2], dispatch: "inorder" }).files.find((f) => f.name === "p2vit_top.v")!.text;
    expect(inOrder).toMatch(/localparam WPI = 4;/);
    expect(inOrder).not.toMatch(/u_dispatcher/);
  });

  it("builds the dual-mode PEs and accepts MATMUL flag W4 only with weightBits 4, WIDE always", () => {
    const text = (cfg: typeof CONFIGS[number], name: string) => renderRtl(cfg).files.find((f) => f.name === name)!.text;
    const [int8, w4] = [CONFIGS[2], CONFIGS[4]];
    expect(text(int8, "dispatcher.v")).toMatch(/MATMUL_FLAGS_BUILT = 2;/);
    expect(text(w4, "dispatcher.v")).toMatch(/MATMUL_FLAGS_BUILT = 3;/);
    expect(text({ ...w4, dispatch: "inorder" }, "p2vit_top.v")).toMatch(/MATMUL_FLAGS_BUILT = 3;/);
    expect(text(w4, "p2vit_top.v")).toMatch(/\.w4\(matmul_flags\[0\]\)/);
    expect(text(int8, "mac_pe.v")).not.toMatch(/x_hi/);
    expect(text(w4, "mac_pe.v")).toMatch(/localparam PACK_S = 13;/);
    expect(text(int8, "matmul_engine.v")).not.toMatch(/\bw4\b/);
    expect(text(w4, "matmul_engine.v")).toMatch(/input\s+wire\s+w4,/);
  });

  it("writes the Verilog, a file list in dependency order and a manifest", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "p2vit-gen-")), "rtl");
    const manifest = await writeRtl(CONFIGS[2], out);
    expect(readFileSync(join(out, FILELIST), "utf8").trim().split("\n")).toEqual(RTL_MODULES.map((m) => `${m}.v`));
    const onDisk = JSON.parse(readFileSync(join(out, MANIFEST), "utf8"));
    expect(onDisk.contentHash).toBe(manifest.contentHash);
    expect(onDisk.config).toEqual(CONFIGS[2]);
    expect(onDisk.top).toBe(TOP_MODULE);
    const first = readdirSync(out).map((f) => readFileSync(join(out, f), "utf8"));
    await writeRtl(CONFIGS[2], out);
    expect(readdirSync(out).map((f) => readFileSync(join(out, f), "utf8"))).toEqual(first);
  });

  it.each(CONFIGS.map((c) => [c.name, c] as const))("is verilator --lint-only -Wall clean (%s)", async (_name, cfg) => {
    const dir = mkdtempSync(join(tmpdir(), "p2vit-lint-"));
    await writeRtl(cfg, join(dir, "rtl"));
    const r = await execa("verilator", ["--lint-only", "-Wall", "--top-module", TOP_MODULE, "-f", FILELIST], { cwd: join(dir, "rtl"), reject: false, all: true });
    expect(r.all).toBe("");
    expect(r.exitCode).toBe(0);
  });

  it.each([CONFIGS[2], CONFIGS[6]].map((c) => [c.name, c] as const))("is read and elaborated by Yosys (%s)", async (_name, cfg) => {
    const dir = mkdtempSync(join(tmpdir(), "p2vit-yosys-"));
    await writeRtl(cfg, join(dir, "rtl"));
    const files = RTL_MODULES.map((m) => `${m}.v`).join(" ");
    writeFileSync(join(dir, "rtl", "check.ys"), `read_verilog -sv ${files}\nhierarchy -check -top ${TOP_MODULE}\nproc\ncheck -assert\n`);
    const r = await execa("yosys", ["-q", "-s", "check.ys"], { cwd: join(dir, "rtl"), reject: false, all: true });
    expect(r.exitCode, r.all).toBe(0);
  });
});
