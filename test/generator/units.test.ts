/**
 * Single units rendered with their own parameters: deterministic text, the numbers from TypeScript,
 * `verilator --lint-only -Wall` clean on every parameter set the unit tests use, and Yosys generic
 * `synth` on the smallest one of each unit.
 */
import { execa } from "execa";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ELEMENTWISE_LATENCY, MULT_SHIFT_MAX, RenderedUnit, UnitSpec, multProductBits, renderUnit, requantSumBits,
} from "../../src/generator/units.js";
import { parseStat } from "../../src/bench/resources.js";

/** The parameter sets of the unit tests (test/sim/units), and the synthesis-only banks. */
const SPECS: UnitSpec[] = [
  ...[20, 32, 48].map((accBits) => ({ unit: "requant_lane", accBits }) as const),
  ...[20, 32, 48].map((accBits) => ({ unit: "requant_mult_lane", accBits }) as const),
  ...[20, 32, 40].map((accBits) => ({ unit: "mac_pe", accBits }) as const),
  ...[20, 32, 40].map((accBits) => ({ unit: "mac_pe", accBits, w4: true }) as const),
  { unit: "vector_ram", width: 8, depth: 16 },
  { unit: "vector_ram", width: 40, depth: 5 },
  { unit: "vector_ram", width: 128, depth: 64 },
  ...[4, 8, 16].map((lanes) => ({ unit: "elementwise_core", lanes }) as const),
  ...[[1, 5], [8, 1024], [16, 197]].map(([lanes, maxTokens]) => ({ unit: "attnv_core", lanes, maxTokens }) as const),
  // (and the smallest layernorm_core, for synthesis)
  ...[[16, 1024], [4, 40], [1, 100], [6, 50], [1, 2]].map(([lanes, maxDim]) => ({ unit: "layernorm_core", lanes, maxDim }) as const),
  { unit: "softmax_core", lanes: 1, maxTokens: 20 },
  { unit: "softmax_core", lanes: 5, maxTokens: 197 },
  { unit: "softmax_core", lanes: 16, maxTokens: 1024 },
  { unit: "requant_bank", kind: "shift", accBits: 32, lanes: 3 },
  { unit: "requant_bank", kind: "mult", accBits: 32, lanes: 3 },
  ...[[16, 16], [16, 4], [5, 16], [7, 3]].map(([inBytes, outBytes]) => ({ unit: "byte_gearbox", inBytes, outBytes }) as const),
  { unit: "byte_gearbox", inBytes: 16, outBytes: 16, fullRate: true },
];

/** The smallest parameter set of each unit (the banks only repeat their lanes). */
const SMALLEST: UnitSpec[] = [
  { unit: "requant_lane", accBits: 20 },
  { unit: "requant_mult_lane", accBits: 20 },
  { unit: "mac_pe", accBits: 20 },
  { unit: "mac_pe", accBits: 20, w4: true },
  { unit: "vector_ram", width: 8, depth: 16 },
  { unit: "elementwise_core", lanes: 4 },
  { unit: "attnv_core", lanes: 1, maxTokens: 5 },
  // smaller than its unit tests': generic synth spends some 15 s per lane on the multipliers, more on RAMs
  { unit: "layernorm_core", lanes: 1, maxDim: 2 },
  { unit: "softmax_core", lanes: 1, maxTokens: 20 },
  { unit: "byte_gearbox", inBytes: 7, outBytes: 3 },
];

function writeUnit(u: RenderedUnit): string {
  const dir = mkdtempSync(join(tmpdir(), "p2vit-unit-"));
  for (const f of u.files) writeFileSync(join(dir, f.name), f.text);
  return dir;
}

const file = (u: RenderedUnit, name: string) => u.files.find((f) => f.name === name)!.text;

describe("unit renderer", () => {
  it("renders the same text for the same spec and another for another", () => {
    const a = renderUnit({ unit: "elementwise_core", lanes: 8 });
    expect(renderUnit({ unit: "elementwise_core", lanes: 8 })).toEqual(a);
    expect(renderUnit({ unit: "elementwise_core", lanes: 4 }).contentHash).not.toBe(a.contentHash);
    expect(renderUnit({ unit: "mac_pe", accBits: 20 }).contentHash).not.toBe(renderUnit({ unit: "mac_pe", accBits: 40 }).contentHash);
  });

  it("prints the numbers computed in TypeScript, with no template residue", () => {
    const ew = renderUnit({ unit: "elementwise_core", lanes: 8 });
    expect(ew.files.map((f) => f.name)).toEqual(["vector_ram.v", "requant_lane.v", "elementwise_core.v"]);
    const core = file(ew, "elementwise_core.v");
    expect(core).toMatch(/parameter C = 8,/);
    expect(core).toMatch(new RegExp(`localparam LATENCY = ${ELEMENTWISE_LATENCY};`));
    expect(core).toMatch(/parameter AW = 5,/);
    expect(ew.parameters).toEqual({ C: 8, AW: 5, XW: 24, SUMW: requantSumBits(24) });
    const mult = renderUnit({ unit: "requant_mult_lane", accBits: 48 });
    expect(file(mult, "requant_mult_lane.v")).toMatch(new RegExp(`0\\.\\.${MULT_SHIFT_MAX}`));
    expect(mult.parameters).toEqual({ ACC: 48, SUMW: 50, MW: 16, PW: multProductBits(48) });
    expect(multProductBits(32)).toBe(51);
    const bank = renderUnit({ unit: "requant_bank", kind: "shift", accBits: 32, lanes: 16 });
    expect(bank.top).toBe("requant_bank");
    expect(file(bank, "requant_bank.v")).toMatch(/parameter C = 16,/);
    for (const u of [ew, mult, bank]) for (const f of u.files) expect(f.text).not.toMatch(/\{\{/);
  });

  it("refuses parameters outside their range", () => {
    expect(() => renderUnit({ unit: "requant_lane", accBits: 19 })).toThrow(/accBits: expected an integer from 20 to 48, got 19/);
    expect(() => renderUnit({ unit: "elementwise_core", lanes: 0 })).toThrow(/lanes/);
    expect(() => renderUnit({ unit: "vector_ram", width: 8, depth: 0 })).toThrow(/depth/);
  });

  it.each(SPECS.map((s) => [renderUnit(s).label, s] as const))("is verilator --lint-only -Wall clean (%s)", async (_label, spec) => {
    const u = renderUnit(spec);
    const params = Object.entries(u.parameters).map(([k, v]) => `-G${k}=${v}`);
    const r = await execa("verilator", ["--lint-only", "-Wall", "--top-module", u.top, ...params, ...u.files.map((f) => f.name)], {
      cwd: writeUnit(u), reject: false, all: true,
    });
    expect(r.all).toBe("");
    expect(r.exitCode).toBe(0);
  });

  it("passes Yosys generic synth on the smallest parameters of every unit", async () => {
    for (const spec of SMALLEST) {
      const u = renderUnit(spec);
      const dir = writeUnit(u);
      const chparam = Object.entries(u.parameters).map(([k, v]) => `chparam -set ${k} ${v} ${u.top}\n`).join("");
      writeFileSync(join(dir, "synth.ys"), `read_verilog -sv ${u.files.map((f) => f.name).join(" ")}\n${chparam}synth -top ${u.top}\ncheck -assert\n`);
      const r = await execa("yosys", ["-q", "-s", "synth.ys"], { cwd: dir, reject: false, all: true });
      expect(r.exitCode, `${u.label}: ${r.all}`).toBe(0);
    }
  });
});

describe("resource report", () => {
  it("reads the cell counts of Yosys's stat", () => {
    const stat = [
      "6. Printing statistics.", "", "=== requant_mult_lane ===", "",
      "   Number of wires:                190", "   Number of cells:                651",
      "     BUFG                            1", "     CARRY4                         30", "     DSP48E1                         2",
      "     FDRE                          121", "     FDSE                            1", "     INV                            17",
      "     LUT2                          102", "     LUT6                          117", "     MUXF7                          15",
      "     RAM64M                          4", "     RAMB18E1                        1", "     RAMB36E1                        3",
      "     SRLC32E                         5", "",
    ].join("\n");
    expect(parseStat(stat)).toMatchObject({ lut: 236, lutram: 4, srl: 5, ff: 122, carry4: 30, dsp: 2, ramb18: 1, ramb36: 3 });
    expect(() => parseStat("nothing here")).toThrow(/no cell counts/);
  });
});
