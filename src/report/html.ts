/**
 * `p2vit report <run-dir>`: one self-contained HTML page (inline CSS and SVG, no scripts, nothing
 * fetched) with the run's figures, per-layer cycles and utilization, the chunks' pipeline timeline,
 * the resources, the accuracy and the published figures beside ours.
 */
import { GENERATOR_VERSION } from "../generator/params.js";
import { CHUNK_NAMES, Chunk } from "../hw/isa.js";
import type { LayerPerf } from "../sim/perf.js";
import { PUBLISHED_ACCURACY, PUBLISHED_EFFICIENCY } from "./published.js";
import { AccuracyRow, ACCURACY_FILE, RESOURCES_FILE, ResourcesFile, RunDir } from "./run-dir.js";
import { Bar, CHUNK_COLORS, barChart, esc, timelineChart } from "./svg.js";

export const REPORT_FILE = "report.html";

const CHUNK_TITLES: Record<Chunk, string> = {
  LD: "loader", MM: "MatMul", ST: "storer", LN: "LayerNorm", SM: "softmax", AV: "attention·V", EW: "elementwise",
};

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const int = (x: number) => Math.round(x).toLocaleString("en-US");

function table(head: string[], rows: (string | number)[][], cls = ""): string {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join("");
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`).join("\n");
  return `<table${cls ? ` class="${cls}"` : ""}><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

const notMeasured = (file: string, how: string) => `<p class="missing">Not measured: no ${esc(file)} in the run folder. ${how}</p>`;

/** The chunk that spent the most cycles on a layer: what the layer mostly is. */
function mainChunk(l: LayerPerf): Chunk {
  let best: Chunk = "MM";
  let most = -1;
  for (const c of CHUNK_NAMES) {
    const b = l.busy[c] ?? 0;
    if (b > most && c !== "LD" && c !== "ST") [best, most] = [c, b];
  }
  return most > 0 ? best : (l.busy.LD ?? 0) >= (l.busy.ST ?? 0) ? "LD" : "ST";
}

function summary(run: RunDir): string {
  const r = run.perf.report;
  return table(["figure", "value"], [
    ["model", r.model],
    ["accelerator", `${r.config}: ${r.array} PEs, ${r.clockMHz} MHz, ${run.perf.config.busBits}-bit memory port`],
    ["chunks", r.overlap ? "overlapped (pipelined)" : "no overlap (one instruction at a time)"],
    ["instructions", int(r.instructions)],
    ["cycles per image", int(r.cycles)],
    ["frames per second", r.fps.toFixed(1)],
    ["MatMul PE utilization", pct(r.utilization)],
    ["GOPS", r.gops.toFixed(1)],
    ["GOPS per DSP", r.gopsPerDsp === null ? "not measured (run perf with --dsp N or --synth)" : `${r.gopsPerDsp.toFixed(3)} (${r.dsp} DSPs)`],
    ["memory port busy", pct(r.portUtilization)],
  ], "summary");
}

/** A layer's kind: its name without the block and head indices (blocks.3.attn.head1.scores → attn.scores). */
export function layerKind(name: string): string {
  return name.replace(/^blocks\.\d+\./, "").replace(/\.head\d+\./, ".");
}

function kindBars(layers: LayerPerf[], pes: number): { spans: Bar[]; util: Bar[] } {
  const kinds = new Map<string, { span: number; macs: number; mmSpan: number; chunk: Chunk; count: number }>();
  for (const l of layers) {
    const k = kinds.get(layerKind(l.layer)) ?? { span: 0, macs: 0, mmSpan: 0, chunk: mainChunk(l), count: 0 };
    k.span += l.end - l.start;
    k.count++;
    if (l.busy.MM) {
      k.macs += l.macs;
      k.mmSpan += l.end - l.start;
    }
    kinds.set(layerKind(l.layer), k);
  }
  const entries = [...kinds];
  return {
    spans: entries.map(([name, k]) => ({ label: `${name} (×${k.count})`, value: k.span, color: CHUNK_COLORS[k.chunk] })),
    util: entries.filter(([, k]) => k.mmSpan > 0).map(([name, k]) => ({ label: name, value: k.macs / (pes * k.mmSpan), color: CHUNK_COLORS.MM, note: pct(k.macs / (pes * k.mmSpan)) })),
  };
}

function layerSection(run: RunDir): string {
  const layers = run.perf.report.layers;
  const pes = run.perf.config.array.rows * run.perf.config.array.cols;
  const kinds = kindBars(layers, pes);
  const spans: Bar[] = layers.map((l) => ({ label: l.layer, value: l.end - l.start, color: CHUNK_COLORS[mainChunk(l)] }));
  const util: Bar[] = layers.filter((l) => l.busy.MM).map((l) => ({ label: l.layer, value: l.utilization, color: CHUNK_COLORS.MM, note: pct(l.utilization) }));
  const legend = CHUNK_NAMES.map((c) => `<span class="key" style="background:${CHUNK_COLORS[c]}"></span>${esc(`${c} ${CHUNK_TITLES[c]}`)}`).join(" ");
  const rows = layers.map((l) => [l.layer, int(l.start), int(l.end), int(l.end - l.start), int(l.macs), l.busy.MM ? pct(l.utilization) : "-",
    CHUNK_NAMES.filter((c) => l.busy[c]).map((c) => `${c} ${int(l.busy[c]!)}`).join(", ")]);
  return `<h2>Per layer</h2>
<p>Span: first start to last finish of a layer's instructions (layers overlap when the chunks are pipelined). Colour: the chunk that worked longest on the layer. ${legend}</p>
<p>Summed over the blocks and heads, by kind of layer:</p>
${barChart("chart-kind-cycles", "Cycles per kind of layer (sum of spans)", kinds.spans)}
${barChart("chart-kind-utilization", "MatMul PE utilization per kind of layer (MACs / (PEs × span))", kinds.util, { format: pct })}
<details open><summary>Every layer (${layers.length})</summary>
${barChart("chart-layer-cycles", "Cycles per layer (span)", spans)}
${barChart("chart-layer-utilization", "MatMul PE utilization per layer", util, { format: pct })}
${table(["layer", "start", "end", "span", "MACs", "PE util", "busy cycles per chunk"], rows)}
</details>`;
}

function timelineSection(run: RunDir): string {
  const { report, chunks } = run.perf;
  const lanes = CHUNK_NAMES.map((c) => ({ label: c, color: CHUNK_COLORS[c], intervals: chunks[c].intervals, note: `${pct(chunks[c].busy / report.cycles)} busy` }));
  const busy: Bar[] = CHUNK_NAMES.map((c) => ({ label: `${c} ${CHUNK_TITLES[c]}`, value: chunks[c].busy / report.cycles, color: CHUNK_COLORS[c], note: pct(chunks[c].busy / report.cycles) }));
  return `<h2>Pipeline timeline</h2>
<p>When each chunk works, from the cycle model (instruction start to done, one image). Overlapping lanes are the pipelining of the chunks.</p>
${timelineChart("chart-timeline", `Chunk activity over ${int(report.cycles)} cycles`, lanes, report.cycles)}
${barChart("chart-chunk-busy", "Busy share per chunk (issue cycles / total cycles)", busy, { format: pct })}`;
}

function resourcesSection(res: ResourcesFile | null): string {
  if (!res) {
    return `<h2>Resources</h2>${notMeasured(RESOURCES_FILE, "Copy the one from <code>p2vit export --target yosys</code>, or write one with <code>node dist/bench/resources.js --json resources.json</code>.")}`;
  }
  const rows = res.results.map((r) => [r.name, int(r.resources.lut), r.resources.lutram === undefined ? "-" : int(r.resources.lutram), int(r.resources.ff), int(r.resources.dsp), int(r.resources.ramb36), int(r.resources.ramb18)]);
  const chart = (id: string, title: string, pick: (r: ResourcesFile["results"][number]) => number, color: string) =>
    barChart(id, title, res.results.map((r) => ({ label: r.name, value: pick(r), color })));
  const source = [res.yosys, res.family && `family ${res.family}`, res.part && `part ${res.part}`].filter(Boolean).join(", ");
  return `<h2>Resources</h2>
<p>${esc(source || "from resources.json")}. BRAM in RAMB36 equivalents (two RAMB18 make one).</p>
${table(["unit", "LUT", "LUTRAM", "FF", "DSP", "RAMB36", "RAMB18"], rows)}
${chart("chart-resources-lut", "LUT per unit", (r) => r.resources.lut, "#4e79a7")}
${chart("chart-resources-ff", "FF per unit", (r) => r.resources.ff, "#76b7b2")}
${chart("chart-resources-dsp", "DSP per unit", (r) => r.resources.dsp, "#e15759")}
${chart("chart-resources-bram", "BRAM per unit (RAMB36 equivalents)", (r) => r.resources.ramb36 + r.resources.ramb18 / 2, "#59a14f")}`;
}

const fmt = (v: number | null | undefined, digits = 2) => (v === null || v === undefined ? "-" : v.toFixed(digits));

function accuracySection(acc: AccuracyRow[] | null): string {
  if (!acc) return `<h2>Accuracy</h2>${notMeasured(ACCURACY_FILE, "Write one with <code>p2vit test-quant &lt;model&gt; &lt;data&gt; --quant --json &gt; accuracy.json</code> (a list of such objects also works).")}`;
  const rows = acc.map((a) => [a.model, a.data ?? "-", a.n, [a.scale, a.w_bits && `W${a.w_bits}`, a.a_bits && `A${a.a_bits}`, a.attn_bits && `Attn${a.attn_bits}`, a.quant_method].filter(Boolean).join(" "),
    fmt(a.top1), fmt(a.float_top1), fmt(a.integer_top1), a.integer_agreement === null || a.integer_agreement === undefined ? "-" : `${a.integer_agreement.toFixed(1)}%`]);
  return `<h2>Accuracy</h2>
${table(["model", "data", "images", "setting", "quantized top-1", "float top-1 (same images)", "integer top-1", "integer agrees"], rows)}`;
}

function comparisonSection(run: RunDir): string {
  const r = run.perf.report;
  const ours = r.gopsPerDsp === null ? "not measured" : r.gopsPerDsp.toFixed(3);
  const eff = PUBLISHED_EFFICIENCY.map((p) => [p.design, p.model, p.gopsPerDsp.toFixed(3), p.preset === r.model ? ours : "-"]);
  // one MAC per DSP per cycle at the run's clock: the most a DSP-per-PE design can reach
  const ceiling = (2 * r.clockMHz) / 1000;
  const acc = PUBLISHED_ACCURACY.map((p) => {
    const mine = run.accuracy?.find((a) => a.model === p.preset);
    return [p.model, p.floatTop1.toFixed(2), p.fqvitTop1.toFixed(2), mine ? `${mine.top1.toFixed(2)} (${mine.n} images)` : "not measured"];
  });
  return `<h2>Against the published figures</h2>
<p>Computation efficiency, W8A8 (P2-ViT, TVLSI 2024). This run: ${esc(r.model)} at ${r.clockMHz} MHz; one MAC per DSP per cycle allows at most ${ceiling.toFixed(2)} GOPS/DSP at that clock.</p>
${table(["design", "model", "published GOPS/DSP", `this run (${r.model})`], eff)}
<p>ImageNet top-1 (FQ-ViT README, W8/A8/Attn4). Ours only where accuracy.json has the same model; other models' accuracy is in the section above.</p>
${table(["model", "float", "FQ-ViT 8/8/4", "ours (accuracy.json)"], acc)}`;
}

const STYLE = `body{font-family:sans-serif;margin:24px;max-width:1200px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.missing{color:#a00}.key{display:inline-block;width:10px;height:10px;margin:0 3px 0 10px}
svg{display:block;margin:12px 0}code{background:#f4f4f4;padding:1px 3px}`;

export function renderReport(run: RunDir): string {
  const r = run.perf.report;
  const title = `p2vit report: ${r.model} on ${r.config}`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>${STYLE}</style></head>
<body>
<h1>${esc(title)}</h1>
${summary(run)}
${timelineSection(run)}
${layerSection(run)}
${resourcesSection(run.resources)}
${accuracySection(run.accuracy)}
${comparisonSection(run)}
<p><small>Generated by p2vit ${esc(GENERATOR_VERSION)} from perf.json${run.resources ? ", resources.json" : ""}${run.accuracy ? ", accuracy.json" : ""}.</small></p>
</body></html>
`;
}
