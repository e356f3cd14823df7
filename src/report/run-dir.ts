/**
 * A run folder, as `p2vit report` reads it: perf.json (required, from `p2vit perf --out`),
 * resources.json (optional: `p2vit export --target yosys`, or `node dist/bench/resources.js --json`)
 * and accuracy.json (optional: one `p2vit test-quant --json` object, or a list of them). Each file is
 * checked field by field, so a broken file is named, never silently reported as "not measured".
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Resources } from "../bench/resources.js";
import { CHUNK_NAMES } from "../hw/isa.js";
import { PERF_FILE, PERF_FORMAT, PerfFile } from "../sim/perf.js";
import { P2vitError, check } from "../util/errors.js";

export const RESOURCES_FILE = "resources.json";
export const ACCURACY_FILE = "accuracy.json";

export interface ResourceRow {
  name: string;
  resources: Pick<Resources, "lut" | "ff" | "dsp" | "ramb18" | "ramb36"> & Partial<Resources>;
}

export interface ResourcesFile {
  yosys?: string;
  part?: string;
  family?: string;
  results: ResourceRow[];
}

export interface AccuracyRow {
  model: string;
  data?: string;
  n: number;
  top1: number;
  float_top1?: number | null;
  integer_top1?: number | null;
  integer_agreement?: number | null;
  quant_method?: string;
  w_bits?: number;
  a_bits?: number;
  attn_bits?: number;
  scale?: string;
}

export interface RunDir {
  dir: string;
  perf: PerfFile;
  resources: ResourcesFile | null;
  accuracy: AccuracyRow[] | null;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new P2vitError(`${file}: not valid JSON (${(err as Error).message})`);
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);
const show = (v: unknown) => (v === undefined ? "nothing" : JSON.stringify(v)?.slice(0, 80));

function num(o: Obj, key: string, where: string, optional = false): void {
  const v = o[key];
  if (optional && (v === undefined || v === null)) return;
  check(typeof v === "number" && Number.isFinite(v), `${where}${key}: expected a number, got ${show(v)}`);
}

function obj(v: unknown, where: string): Obj {
  check(isObj(v), `${where}: expected an object, got ${show(v)}`);
  return v;
}

function list(v: unknown, where: string): unknown[] {
  check(Array.isArray(v), `${where}: expected a list, got ${show(v)}`);
  return v;
}

export function parsePerfFile(raw: unknown, file: string): PerfFile {
  const o = obj(raw, file);
  check(o.format === PERF_FORMAT, `${file}: format: expected "${PERF_FORMAT}" (written by \`p2vit perf --out <run-dir>\`), got ${show(o.format)}`);
  check(o.version === 1, `${file}: version: expected 1, got ${show(o.version)}`);
  obj(o.config, `${file}: config`);
  const r = obj(o.report, `${file}: report`);
  for (const k of ["cycles", "macs", "utilization", "fps", "gops", "clockMHz", "portUtilization"]) num(r, k, `${file}: report.`);
  num(r, "dsp", `${file}: report.`, true);
  num(r, "gopsPerDsp", `${file}: report.`, true);
  check(typeof r.model === "string", `${file}: report.model: expected a string, got ${show(r.model)}`);
  list(r.layers, `${file}: report.layers`).forEach((l, i) => {
    const layer = obj(l, `${file}: report.layers[${i}]`);
    check(typeof layer.layer === "string", `${file}: report.layers[${i}].layer: expected a string, got ${show(layer.layer)}`);
    for (const k of ["start", "end", "macs", "utilization"]) num(layer, k, `${file}: report.layers[${i}].`);
    obj(layer.busy, `${file}: report.layers[${i}].busy`);
  });
  const chunks = obj(o.chunks, `${file}: chunks`);
  for (const c of CHUNK_NAMES) {
    const t = obj(chunks[c], `${file}: chunks.${c}`);
    num(t, "busy", `${file}: chunks.${c}.`);
    list(t.intervals, `${file}: chunks.${c}.intervals`).forEach((iv, i) => {
      check(Array.isArray(iv) && iv.length === 2 && iv.every((x) => typeof x === "number" && Number.isFinite(x)) && iv[0] <= iv[1],
        `${file}: chunks.${c}.intervals[${i}]: expected [start, end] cycles, got ${show(iv)}`);
    });
  }
  return raw as PerfFile;
}

export function parseResourcesFile(raw: unknown, file: string): ResourcesFile {
  const o = obj(raw, file);
  list(o.results, `${file}: results`).forEach((row, i) => {
    const r = obj(row, `${file}: results[${i}]`);
    check(typeof r.name === "string", `${file}: results[${i}].name: expected a string, got ${show(r.name)}`);
    const res = obj(r.resources, `${file}: results[${i}].resources`);
    for (const k of ["lut", "ff", "dsp", "ramb18", "ramb36"]) num(res, k, `${file}: results[${i}].resources.`);
  });
  return raw as ResourcesFile;
}

export function parseAccuracyFile(raw: unknown, file: string): AccuracyRow[] {
  const rows = Array.isArray(raw) ? raw : [raw];
  check(rows.length > 0, `${file}: expected a \`p2vit test-quant --json\` object or a list of them, got an empty list`);
  rows.forEach((row, i) => {
    const where = Array.isArray(raw) ? `${file}: [${i}].` : `${file}: `;
    const r = obj(row, where.replace(/\.$|: $/, ""));
    check(typeof r.model === "string", `${where}model: expected a string, got ${show(r.model)}`);
    num(r, "top1", where);
    num(r, "n", where);
    for (const k of ["float_top1", "integer_top1", "integer_agreement"]) num(r, k, where, true);
  });
  return rows as AccuracyRow[];
}

function optional<T>(dir: string, name: string, parse: (raw: unknown, file: string) => T): T | null {
  const file = join(dir, name);
  return existsSync(file) ? parse(readJson(file), file) : null;
}

export function loadRunDir(dir: string): RunDir {
  check(existsSync(dir), `${dir}: no such run folder (write one with \`p2vit perf <qgraph-or-model> --out ${dir}\`)`);
  const perfFile = join(dir, PERF_FILE);
  check(existsSync(perfFile), `${perfFile}: missing: a run folder needs perf.json (write it with \`p2vit perf <qgraph-or-model> --out ${dir}\`)`);
  return {
    dir,
    perf: parsePerfFile(readJson(perfFile), perfFile),
    resources: optional(dir, RESOURCES_FILE, parseResourcesFile),
    accuracy: optional(dir, ACCURACY_FILE, parseAccuracyFile),
  };
}
