/**
 * `p2vit regress`: the co-simulation matrix, accelerator configs × models, every entry a full-model
 * co-simulation (src/cli/cosim.ts). Entries run side by side (the simulators are separate processes);
 * the results go to a JUnit XML for CI and a JSON summary. `--quick` is the slice `npm test` runs.
 */
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { AcceleratorConfig, parseAcceleratorConfig } from "../hw/config.js";
import { formatDivergence } from "../sim/cosim-model.js";
import { writeFileAtomic } from "../util/atomic.js";
import { P2vitError } from "../util/errors.js";
import { CosimSummary, SubjectRequest, loadSubject, runCosim } from "./cosim.js";

/** The shared data beside the repository (../shared/data), where the real models and images live. */
export const SHARED_DATA = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "shared", "data");

export interface RegressEntry {
  id: string;
  config: AcceleratorConfig;
  subject: SubjectRequest;
}

/** Buffers big enough for vit4mnist and vit-cifar10, small enough to build quickly. */
const SMALL_MODEL_BUFFERS = { xDepth: 64, wDepth: 1024, oDepth: 64, paramDepth: 64 };
const CORES = { maxTokens: 80, maxDim: 128 };

export const REGRESS_CONFIGS: AcceleratorConfig[] = [
  parseAcceleratorConfig({ name: "r16x16", array: { rows: 16, cols: 16 }, buffers: SMALL_MODEL_BUFFERS, cores: CORES }),
  parseAcceleratorConfig({ name: "r8x16", array: { rows: 8, cols: 16 }, busBits: 64, buffers: SMALL_MODEL_BUFFERS, cores: { ...CORES, softmaxLanes: 8 }, dispatch: "inorder" }),
  parseAcceleratorConfig({ name: "r3x5", array: { rows: 3, cols: 5 }, busBits: 32, buffers: SMALL_MODEL_BUFFERS, cores: { ...CORES, layernormLanes: 4, eltwiseLanes: 8, attnvLanes: 8 } }),
  parseAcceleratorConfig({ name: "r8x8w4", array: { rows: 8, cols: 8 }, busBits: 64, weightBits: 4, buffers: SMALL_MODEL_BUFFERS, cores: CORES }),
  // the first one in program order (the ablation of the queued dispatcher)
  parseAcceleratorConfig({ name: "r16x16i", array: { rows: 16, cols: 16 }, buffers: SMALL_MODEL_BUFFERS, cores: CORES, dispatch: "inorder" }),
];

const MODELS = {
  synthetic: (images: number): SubjectRequest => ({ target: "synthetic", images, calib: 32 }),
  vit4mnist: (images: number): SubjectRequest => ({ target: join(SHARED_DATA, "models", "vit4mnist"), data: join(SHARED_DATA, "mnist"), images, calib: 100 }),
  "vit-cifar10": (images: number): SubjectRequest => ({ target: join(SHARED_DATA, "models", "vit-cifar10"), data: join(SHARED_DATA, "cifar10"), images, calib: 100 }),
};

/** The whole matrix, or the quick slice; models whose data is missing are left out (and reported). */
export function regressMatrix(quick: boolean, images?: number): { entries: RegressEntry[]; skipped: string[] } {
  const entries: RegressEntry[] = [];
  const skipped: string[] = [];
  const hasData = (s: SubjectRequest) => s.target === "synthetic" || (existsSync(s.target) && existsSync(s.data!));
  const add = (config: AcceleratorConfig, model: keyof typeof MODELS, n: number) => {
    // dual-mode PEs run the graph with int4 weights
    const subject = { ...MODELS[model](images ?? n), wBits: config.weightBits };
    const id = `${config.name}/${model}`;
    if (hasData(subject)) entries.push({ id, config, subject });
    else skipped.push(`${id}: ${subject.target} or ${subject.data} not found`);
  };
  if (quick) {
    add(REGRESS_CONFIGS[1], "synthetic", 2);
    add(REGRESS_CONFIGS[2], "vit4mnist", 2);
    return { entries, skipped };
  }
  for (const config of REGRESS_CONFIGS) {
    add(config, "synthetic", 4);
    add(config, "vit4mnist", 10);
    add(config, "vit-cifar10", 3);
  }
  return { entries, skipped };
}

export interface RegressResult {
  id: string;
  pass: boolean;
  seconds: number;
  summary: CosimSummary | null;
  error: string | null;
}

/** Runs one entry; a thrown error (a trap, a build failure) is a failed entry, not a failed run. */
async function runEntry(e: RegressEntry): Promise<RegressResult> {
  const t0 = performance.now();
  try {
    const subject = await loadSubject(e.subject);
    const { summary, results } = await runCosim(subject, e.config, { keepGoing: false });
    const failed = results.find((r) => !r.pass);
    return {
      id: e.id,
      pass: !failed && summary.top1Agree === summary.images,
      seconds: (performance.now() - t0) / 1000,
      summary,
      error: failed ? `image ${failed.index}: ${formatDivergence(failed.divergence!)}` : null,
    };
  } catch (err) {
    return { id: e.id, pass: false, seconds: (performance.now() - t0) / 1000, summary: null, error: err instanceof Error ? err.message : String(err) };
  }
}

/** Runs entries with at most `workers` in flight, in matrix order. */
export async function runRegress(entries: RegressEntry[], workers: number, onDone?: (r: RegressResult) => void): Promise<RegressResult[]> {
  if (!Number.isInteger(workers) || workers < 1) throw new P2vitError(`--workers: expected a positive integer, got ${workers}`);
  const results: RegressResult[] = new Array(entries.length);
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const i = next++;
      results[i] = await runEntry(entries[i]);
      onDone?.(results[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(workers, entries.length) }, worker));
  return results;
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

export function junitXml(results: RegressResult[]): string {
  const failures = results.filter((r) => !r.pass).length;
  const time = results.reduce((a, r) => a + r.seconds, 0);
  const cases = results.map((r) => {
    const [config, model] = r.id.split("/");
    const head = `  <testcase classname="regress.${xmlEscape(config)}" name="${xmlEscape(model)}" time="${r.seconds.toFixed(1)}"`;
    return r.pass ? `${head}/>` : `${head}>\n    <failure message="${xmlEscape((r.error ?? "top-1 differs").split("\n")[0])}">${xmlEscape(r.error ?? "")}</failure>\n  </testcase>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="p2vit-regress" tests="${results.length}" failures="${failures}" time="${time.toFixed(1)}">\n${cases.join("\n")}\n</testsuite>\n`;
}

export async function regressCommand(a: { out: string; images?: number; quick: boolean; workers: number }): Promise<number> {
  if (a.images !== undefined && (!Number.isInteger(a.images) || a.images < 1)) throw new P2vitError(`--images: expected a positive integer, got ${a.images}`);
  const { entries, skipped } = regressMatrix(a.quick, a.images);
  for (const s of skipped) process.stderr.write(`skipped ${s}\n`);
  const results = await runRegress(entries, a.workers, (r) =>
    process.stderr.write(`${r.pass ? "PASS" : "FAIL"} ${r.id} (${r.seconds.toFixed(0)} s)${r.summary ? `: ${r.summary.bitExact}/${r.summary.images} bit-exact, ${r.summary.cyclesPerImage} cycles/image` : ""}${r.error ? `\n  ${r.error}` : ""}\n`),
  );
  mkdirSync(a.out, { recursive: true });
  writeFileAtomic(join(a.out, "junit.xml"), junitXml(results));
  writeFileAtomic(join(a.out, "summary.json"), JSON.stringify({ results, skipped }, null, 2) + "\n");
  const failed = results.filter((r) => !r.pass).length;
  console.log(`${results.length - failed}/${results.length} entries pass; junit.xml and summary.json in ${a.out}`);
  return failed === 0 ? 0 : 1;
}
