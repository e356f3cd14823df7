/**
 * Accelerator config → Verilog: renders the templates under templates/rtl with the numbers from
 * params.ts and writes them, with a file list and a manifest, into one output folder atomically.
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Handlebars from "handlebars";
import { AcceleratorConfig, canonicalJson } from "../hw/config.js";
import { writeDirAtomic } from "../util/atomic.js";
import { attnvChunkContext } from "./attnv-chunk.js";
import { attnvContext } from "./attnv-core.js";
import { dispatcherContext } from "./dispatcher.js";
import { elementwiseContext } from "./elementwise.js";
import { layerNormCoreContext } from "./layernorm-core.js";
import { GENERATOR_VERSION, TemplateContext, templateContext } from "./params.js";
import { softmaxCoreContext } from "./softmax.js";
import { eltwiseChunkContext, layerNormChunkContext, softmaxChunkContext } from "./stream-chunks.js";

export const TEMPLATE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "templates", "rtl");

/** Modules in dependency order: each file only instantiates modules listed before it. */
export const RTL_MODULES = [
  "vector_ram",
  "mac_pe",
  "requant_lane",
  "addr_stream",
  "word_gather",
  "byte_gearbox",
  "matmul_engine",
  "loader",
  "storer",
  "layernorm_core",
  "softmax_core",
  "attnv_core",
  "elementwise_core",
  "strided_reader",
  "attnv_chunk",
  "stream_reader",
  "stream_feed",
  "stream_writer",
  "stream_datapath",
  "eltwise_chunk",
  "softmax_chunk",
  "layernorm_chunk",
  "sync_fifo",
  "dispatcher",
  "p2vit_top",
] as const;
export type RtlModule = (typeof RTL_MODULES)[number];

/**
 * The values a module's template needs beyond the config-wide ones: the streaming cores are sized by
 * the config's `cores` section, each with its own generator (their keys, such as `lanes`, would clash
 * if they were merged into one context).
 */
function moduleContext(name: RtlModule, cfg: AcceleratorConfig): object {
  const { layernormLanes, softmaxLanes, attnvLanes, eltwiseLanes, maxTokens, maxDim } = cfg.cores;
  switch (name) {
    case "layernorm_core":
      return layerNormCoreContext(layernormLanes, maxDim);
    case "softmax_core":
      return softmaxCoreContext({ lanes: softmaxLanes, maxTokens });
    case "attnv_core":
      return attnvContext(attnvLanes, maxTokens);
    case "elementwise_core":
      return elementwiseContext(eltwiseLanes);
    case "attnv_chunk":
      return attnvChunkContext(cfg);
    case "eltwise_chunk":
      return eltwiseChunkContext(cfg);
    case "softmax_chunk":
      return softmaxChunkContext(cfg);
    case "layernorm_chunk":
      return layerNormChunkContext(cfg);
    case "dispatcher":
    case "p2vit_top":
      return dispatcherContext(cfg);
    default:
      return {};
  }
}

/** Registers the partials every template may use: the header and the ISA's localparams. */
export function registerPartials(): void {
  for (const partial of ["header", "isa_params"]) Handlebars.registerPartial(partial, readFileSync(join(TEMPLATE_DIR, `${partial}.hbs`), "utf8"));
}
export const TOP_MODULE = "p2vit_top";

export interface RtlFile {
  name: string;
  text: string;
}

export interface RtlManifest {
  generator: string;
  generatorVersion: string;
  top: string;
  config: AcceleratorConfig;
  parameters: TemplateContext;
  files: { name: string; sha256: string }[];
  /** Hash over the file names and contents: equal output, equal hash. */
  contentHash: string;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function compile(name: string): HandlebarsTemplateDelegate {
  const source = readFileSync(join(TEMPLATE_DIR, `${name}.v.hbs`), "utf8");
  // strict: a template naming a value params.ts does not provide is an error, not an empty string
  return Handlebars.compile(source, { strict: true, noEscape: true });
}

/** Renders every module for a config. Pure: same config, same text. */
export function renderRtl(cfg: AcceleratorConfig): { files: RtlFile[]; manifest: RtlManifest } {
  registerPartials();
  const ctx = templateContext(cfg);
  const files = RTL_MODULES.map((m) => ({ name: `${m}.v`, text: compile(m)({ ...ctx, ...moduleContext(m, cfg) }) }));
  const listed = files.map((f) => ({ name: f.name, sha256: sha256(f.text) }));
  const manifest: RtlManifest = {
    generator: "p2vit",
    generatorVersion: GENERATOR_VERSION,
    top: TOP_MODULE,
    config: cfg,
    parameters: ctx,
    files: listed,
    contentHash: sha256(canonicalJson(listed)).slice(0, 16),
  };
  return { files, manifest };
}

export const FILELIST = "filelist.f";
export const MANIFEST = "manifest.json";

/** Writes rendered RTL, its file list and its manifest into an (empty) folder. */
export function writeRtlFiles(dir: string, files: RtlFile[], manifest: RtlManifest): void {
  for (const f of files) writeFileSync(join(dir, f.name), f.text);
  writeFileSync(join(dir, FILELIST), files.map((f) => f.name).join("\n") + "\n");
  writeFileSync(join(dir, MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
}

/** Writes the RTL of `cfg` into `outDir` (replacing it) atomically; returns the manifest. */
export async function writeRtl(cfg: AcceleratorConfig, outDir: string): Promise<RtlManifest> {
  const { files, manifest } = renderRtl(cfg);
  await writeDirAtomic(outDir, (tmp) => writeRtlFiles(tmp, files, manifest));
  return manifest;
}
