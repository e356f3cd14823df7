/** `p2vit report`: a run folder → one self-contained HTML page, rendered in headless Chromium. */
import { execa } from "execa";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { CHUNK_NAMES } from "../../src/hw/isa.js";
import { DEFAULT_SETTINGS } from "../../src/quant/fakequant.js";
import { quantizeModel } from "../../src/quant/pipeline.js";
import { saveQGraph } from "../../src/quant/qgraph-io.js";
import { syntheticCheckpoint, syntheticImages } from "../../src/quant/synthetic.js";
import { layerKind } from "../../src/report/html.js";
import type { PerfFile } from "../../src/sim/perf.js";
import { REPO } from "../paths.js";

const BIN = join(REPO, "bin", "p2vit.js");
const p2vit = (args: string[]) => execa("node", [BIN, ...args], { cwd: REPO, reject: false });

const dir = mkdtempSync(join(tmpdir(), "p2vit-report-"));
const qgraph = join(dir, "synthetic.qgraph");
const set = syntheticImages(8, 5, 16);
saveQGraph(qgraph, quantizeModel(syntheticCheckpoint(3), Array.from({ length: 8 }, (_, i) => ({ pixels: set.images.slice(i * 256, (i + 1) * 256), label: 0 })), DEFAULT_SETTINGS).qgraph!);

// the shape of `node dist/bench/resources.js --json` and of the export's resources.json
const RESOURCES = {
  yosys: "Yosys 0.23",
  family: "xcup",
  results: [
    { name: "p2vit_axi_top (small)", seconds: 30, resources: { lut: 2883, lutram: 124, ff: 2612, dsp: 16, ramb18: 1, ramb36: 0 } },
    { name: "requant_lane", seconds: 2, resources: { lut: 354, lutram: 0, ff: 134, dsp: 0, ramb18: 0, ramb36: 0 } },
  ],
};
// the shape of `p2vit test-quant --quant --json`
const ACCURACY = [{ model: "vit4mnist", data: "mnist", n: 9900, top1: 97.99, float_top1: 97.94, integer_top1: 97.99, integer_agreement: 100, quant_method: "minmax", w_bits: 8, a_bits: 8, attn_bits: 4, scale: "pot" }];

/** The chromium binary, or a failure that says how to get it: the test never skips silently. */
async function chromium(): Promise<string> {
  const r = await execa("chromium", ["--version"], { reject: false });
  if (r.exitCode !== 0) throw new Error("chromium is missing: run `npm run setup` (as root it installs the Debian package chromium) or `apt-get install -y chromium`");
  return "chromium";
}

// root in a container: Chromium's sandbox needs user namespaces it may not have
const HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"];

beforeAll(() => {
  if (!existsSync(join(REPO, "dist", "cli", "main.js"))) throw new Error("dist/ is missing: run `npm run build` (npm test does it)");
});

async function runDir(name: string, extra: { resources?: boolean; accuracy?: boolean } = {}): Promise<string> {
  const run = join(dir, name);
  const r = await p2vit(["perf", qgraph, "--dsp", "256", "--out", run]);
  expect(r.exitCode, r.stderr).toBe(0);
  if (extra.resources) writeFileSync(join(run, "resources.json"), JSON.stringify(RESOURCES));
  if (extra.accuracy) writeFileSync(join(run, "accuracy.json"), JSON.stringify(ACCURACY));
  return run;
}

describe("p2vit perf --out", () => {
  it("writes perf.json with the report and every chunk's busy intervals, in order and inside the run", async () => {
    const perf = JSON.parse(readFileSync(join(await runDir("perf-only"), "perf.json"), "utf8")) as PerfFile;
    expect(perf).toMatchObject({ format: "p2vit.perf", version: 1, config: { name: "default" }, report: { dsp: 256 } });
    expect(perf.report.layers.length).toBeGreaterThan(10);
    for (const c of CHUNK_NAMES) {
      const iv = perf.chunks[c].intervals;
      let covered = 0;
      iv.forEach(([s, e], i) => {
        expect(s).toBeLessThanOrEqual(e);
        if (i > 0) expect(s).toBeGreaterThan(iv[i - 1][1]); // merged: no overlap, no touching
        covered += e - s;
      });
      if (iv.length > 0) expect(iv[iv.length - 1][1]).toBeLessThanOrEqual(perf.report.cycles);
      // an instruction's issue time lies inside its start..done interval
      expect(covered).toBeGreaterThanOrEqual(perf.chunks[c].busy);
    }
    expect(perf.chunks.MM.busy).toBeGreaterThan(0);
  });
});

describe("p2vit report", () => {
  it("renders in headless Chromium with its SVG charts, and fetches nothing", async () => {
    const browser = await chromium();
    const run = await runDir("full", { resources: true, accuracy: true });
    const r = await p2vit(["report", run]);
    expect(r.exitCode, r.stderr).toBe(0);
    const file = join(run, "report.html");
    const html = readFileSync(file, "utf8");
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\bsrc=|url\(/i);
    expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, "")).not.toMatch(/https?:/);

    const dom = await execa(browser, [...HEADLESS, "--dump-dom", `file://${file}`], { reject: false });
    expect(dom.exitCode, dom.stderr).toBe(0);
    const svgs = [...dom.stdout.matchAll(/<svg id="([^"]+)"/g)].map((m) => m[1]);
    expect(svgs).toEqual(expect.arrayContaining([
      "chart-timeline", "chart-chunk-busy", "chart-kind-cycles", "chart-kind-utilization", "chart-layer-cycles", "chart-layer-utilization",
      "chart-resources-lut", "chart-resources-ff", "chart-resources-dsp", "chart-resources-bram",
    ]));
    // the timeline has a lane per chunk, and the MatMul lane has bars
    const lanes = [...dom.stdout.matchAll(/<g class="lane" data-chunk="(\w+)">(.*?)<\/g>/g)];
    expect(lanes.map((m) => m[1])).toEqual(CHUNK_NAMES);
    expect(lanes.find((m) => m[1] === "MM")![2]).toMatch(/<rect /);
    expect(dom.stdout).toMatch(/p2vit_axi_top \(small\)/);
    expect(dom.stdout).toMatch(/97\.99/);
    expect(dom.stdout).toMatch(/0\.890/); // the published P2-ViT figure
    expect(dom.stdout).not.toMatch(/Not measured/);

    const png = join(run, "report.png");
    const shot = await execa(browser, [...HEADLESS, "--window-size=1280,2000", `--screenshot=${png}`, `file://${file}`], { reject: false });
    expect(shot.exitCode, shot.stderr).toBe(0);
    const bytes = readFileSync(png);
    expect(bytes.subarray(1, 4).toString()).toBe("PNG");
    expect(bytes.readUInt32BE(16)).toBe(1280); // IHDR width
  });

  it("says 'not measured' for the resources and the accuracy a run folder does not have", async () => {
    const run = await runDir("bare");
    const r = await p2vit(["report", run, "--out", join(dir, "bare.html")]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/not measured: resources, accuracy/);
    const html = readFileSync(join(dir, "bare.html"), "utf8");
    expect(html).toMatch(/Not measured: no resources\.json/);
    expect(html).toMatch(/Not measured: no accuracy\.json/);
    expect(html).toMatch(/id="chart-timeline"/);
  });

  it.each([
    ["no perf.json", () => {}, /empty\/perf\.json: missing: a run folder needs perf\.json/],
    ["a perf.json of another format", (d: string) => writeFileSync(join(d, "perf.json"), '{"format":"x"}'), /perf\.json: format: expected "p2vit\.perf"/],
    ["a broken field", (d: string) => writeFileSync(join(d, "perf.json"), JSON.stringify({ ...JSON.parse(readFileSync(join(dir, "bare", "perf.json"), "utf8")), report: { cycles: "many" } })), /perf\.json: report\.cycles: expected a number, got "many"/],
    ["a broken resources.json", (d: string) => {
      writeFileSync(join(d, "perf.json"), readFileSync(join(dir, "bare", "perf.json")));
      writeFileSync(join(d, "resources.json"), JSON.stringify({ results: [{ name: "x", resources: { lut: 1, ff: 1, dsp: "two", ramb18: 0, ramb36: 0 } }] }));
    }, /resources\.json: results\[0\]\.resources\.dsp: expected a number, got "two"/],
  ])("refuses a run folder with %s, naming the file and field", async (_what, fill, message) => {
    const d = join(dir, `bad-${_what.replace(/\W+/g, "-")}`, "empty");
    mkdirSync(d, { recursive: true });
    fill(d);
    const r = await p2vit(["report", d]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^p2vit: error: /);
    expect(r.stderr).toMatch(message);
    expect(existsSync(join(d, "report.html"))).toBe(false);
  });

  it("groups layers by kind across blocks and heads", () => {
    expect(layerKind("blocks.3.attn.head1.scores")).toBe("attn.scores");
    expect(layerKind("blocks.11.mlp.fc1")).toBe("mlp.fc1");
    expect(layerKind("patch_embed.proj")).toBe("patch_embed.proj");
  });
});
