/** The p2vit command line. */
import { resolve } from "node:path";
import yargs, { Argv } from "yargs";
import { hideBin } from "yargs/helpers";
import { writeRtl } from "../generator/rtl.js";
import { AcceleratorConfig, DEFAULT_CONFIG, loadAcceleratorConfig } from "../hw/config.js";
import { P2vitError } from "../util/errors.js";
import { CosimRequest, formatOutcome, runLayerCosim, summary } from "./cosim-layer.js";
import { modelCosimCommand } from "./cosim.js";
import { checkTools, formatToolReport } from "./doctor.js";
import { regressCommand } from "./regress.js";
import { compileCommand, perfCommand } from "./compile.js";
import { formatPerf } from "../sim/perf.js";
import { testQuantFloatCommand } from "./evaluate.js";
import { runCommand } from "./run.js";
import { QuantRunArgs, formatQuantResult, quantJson, quantizeCommand, runQuantEvaluation } from "./test-quant.js";
import { OBSERVERS, parseObserver } from "../quant/observers.js";
import { ScaleMode } from "../quant/fakequant.js";
import { exportFpga, formatExport } from "../export/export.js";
import { REPORT_FILE, renderReport } from "../report/html.js";
import { loadRunDir } from "../report/run-dir.js";
import { writeFileAtomic } from "../util/atomic.js";
import { DEFAULT_PART, TARGETS, parseClock, parseTarget } from "../export/parts.js";
import { DEFAULT_BUDGET, checkBudget } from "../quant/mixed.js";

/** The options `test-quant` and `quantize` share: the model, the data and the quantization settings. */
function quantOptions<T>(y: Argv<T>) {
  return y
    .positional("model", { type: "string", demandOption: true, describe: "a preset name (deit_tiny, …) or a model folder" })
    .positional("data", { type: "string", demandOption: true, describe: "an MNIST IDX folder, a class-folder dataset or an ImageNet folder" })
    .option("quant-method", { type: "string", default: "minmax", choices: [...OBSERVERS], describe: "activation observer" })
    .option("w-bits", { type: "number", choices: [4, 8], describe: "weight bits of every Linear (default 8)" })
    .option("mixed", { type: "boolean", default: false, describe: "search 4- or 8-bit weights per layer group under a budget (coarse-to-fine)" })
    .option("budget", { type: "number", describe: `with --mixed: β in Σ FLOPs·bits ≤ β·Σ FLOPs·4, from 1 to 2 (default ${DEFAULT_BUDGET})` })
    .option("a-bits", { type: "number", default: 8, choices: [8], describe: "activation bits" })
    .option("attn-bits", { type: "number", default: 4, choices: [4, 8], describe: "attention probability bits (4: log2 codes)" })
    .option("scale", { type: "string", default: "pot", choices: ["pot", "float"], describe: "power-of-two or float scales" })
    .option("calib", { type: "number", describe: "calibration images (default 100; the train/ split when the dataset has one)" })
    .option("weights", { type: "string", describe: "timm weights for a preset (folder with model.safetensors, or the file)" })
    .option("seed", { type: "number", describe: "seed of a preset's random weights and of the --mixed search (default 1)" });
}

interface QuantCliArgs {
  model: string; data: string; quantMethod: string; wBits?: number; aBits: number; attnBits: number; scale: string;
  calib?: number; limit?: number; weights?: string; seed?: number; mixed: boolean; budget?: number;
}

/** --mixed chooses the weight bits itself, and --budget means nothing without it. */
function mixedArgs(args: QuantCliArgs): QuantRunArgs["mixed"] {
  if (!args.mixed) {
    if (args.budget !== undefined) throw new P2vitError("--budget: only with --mixed (it bounds the mixed-precision search)");
    return undefined;
  }
  if (args.wBits !== undefined) throw new P2vitError("--w-bits: not with --mixed, which chooses 4 or 8 bits per layer group itself");
  const budget = args.budget ?? DEFAULT_BUDGET;
  checkBudget(budget);
  return { budget, seed: args.seed ?? 1 };
}

function quantArgs(args: QuantCliArgs): QuantRunArgs {
  return {
    model: args.model, data: args.data, calib: args.calib, limit: args.limit, weights: args.weights, seed: args.seed,
    method: parseObserver(args.quantMethod), wBits: (args.wBits ?? 8) as 4 | 8, aBits: 8, attnBits: args.attnBits as 4 | 8, scale: args.scale as ScaleMode,
    mixed: mixedArgs(args),
  };
}

function progress(done: number, total: number): void {
  const width = 30;
  const filled = Math.round((width * done) / total);
  process.stderr.write(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total} images`);
}

function hwConfig(file: string | undefined): AcceleratorConfig {
  return file === undefined ? DEFAULT_CONFIG : loadAcceleratorConfig(file);
}

async function cosimLayerCommand(req: CosimRequest, json: boolean): Promise<number> {
  const outcome = await runLayerCosim(req);
  console.log(json ? JSON.stringify(summary(outcome)) : formatOutcome(outcome));
  if (!json && req.out) console.log(`RTL, program and result written to ${req.out}`);
  return outcome.result.pass ? 0 : 1;
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  await yargs(argv)
    .scriptName("p2vit")
    .usage("$0 <command> [options]")
    .command(
      "doctor",
      "show the toolchain this machine has (node, verilator, yosys) and what is missing",
      () => {},
      async () => {
        const tools = await checkTools();
        console.log(formatToolReport(tools));
        code = tools.every((t) => t.ok) ? 0 : 1;
      },
    )
    .command(
      "generate",
      "generate the accelerator's Verilog, file list and manifest",
      (y) =>
        y
          .option("hw", { type: "string", describe: "accelerator config (JSON); default: the built-in config" })
          .option("out", { type: "string", describe: "output folder; default: rtl-out/<config name>" }),
      async (args) => {
        const cfg = hwConfig(args.hw);
        const out = resolve(args.out ?? `rtl-out/${cfg.name}`);
        const manifest = await writeRtl(cfg, out);
        console.log(`wrote ${manifest.files.length} Verilog files, filelist.f and manifest.json to ${out} (content ${manifest.contentHash})`);
      },
    )
    .command(
      "cosim [target]",
      "co-simulate a whole quantized model on the RTL (Verilator) against the golden model and the ISA simulator, every tensor bit for bit",
      (y) =>
        y
          .positional("target", { type: "string", default: "synthetic", describe: "'synthetic' (the built-in model), a QGraph file, or a model folder or preset (quantized on --data)" })
          .option("data", { type: "string", describe: "the images: an MNIST IDX folder or class folders (the built-in model makes its own)" })
          .option("images", { type: "number", default: 10, describe: "evaluation images (the first N)" })
          .option("calib", { type: "number", default: 100, describe: "calibration images (never evaluated)" })
          .option("hw", { type: "string", describe: "accelerator config (JSON); default: the built-in config" })
          .option("trace", { type: "string", describe: "on a mismatch, write an FST waveform around the instruction that wrote it to this file" })
          .option("layers", { type: "boolean", default: false, describe: "print measured and modelled cycles per layer" })
          .option("keep-going", { type: "boolean", default: false, describe: "run every image even after a mismatch" })
          .option("out", { type: "string", describe: "write the RTL, the program and the results into this folder" })
          .option("latency", { type: "number", default: 2, describe: "memory read latency in cycles" })
          .option("stall", { type: "number", default: 0, describe: "percent of cycles the memory refuses requests" })
          .option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
      async (args) => {
        code = await modelCosimCommand({
          subject: { target: args.target, data: args.data, images: args.images, calib: args.calib },
          config: hwConfig(args.hw),
          options: { memory: { latency: args.latency, stallPercent: args.stall, seed: 1 }, trace: args.trace && resolve(args.trace), keepGoing: args["keep-going"] },
          out: args.out === undefined ? undefined : resolve(args.out),
          layers: args.layers,
          json: args.json,
        });
      },
    )
    .command(
      "regress",
      "the co-simulation matrix: accelerator configs × models, in parallel; JUnit XML and a JSON summary",
      (y) =>
        y
          .option("out", { type: "string", default: "rtl-out/regress", describe: "folder for junit.xml and summary.json" })
          .option("images", { type: "number", describe: "images per model (default: each entry's own)" })
          .option("quick", { type: "boolean", default: false, describe: "the slice that runs in npm test" })
          .option("workers", { type: "number", default: 2, describe: "entries run side by side" }),
      async (args) => {
        code = await regressCommand({ out: resolve(args.out), images: args.images, quick: args.quick, workers: args.workers });
      },
    )
    .command(
      "cosim-layer [model]",
      "co-simulate a model's patch embedding alone: golden integer kernel vs the RTL in Verilator, bit for bit",
      (y) =>
        y
          .positional("model", { type: "string", default: "synthetic", describe: "a model folder (config.json + model.safetensors) or 'synthetic'" })
          .option("data", { type: "string", describe: "MNIST IDX folder with the images (the built-in model makes its own)" })
          .option("images", { type: "number", default: 100, describe: "evaluation images (the first N)" })
          .option("calib", { type: "number", default: 100, describe: "calibration images (the last N, never evaluated)" })
          .option("hw", { type: "string", describe: "accelerator config (JSON); default: the built-in config" })
          .option("out", { type: "string", describe: "keep the RTL, program, memory image and result in this folder" })
          .option("latency", { type: "number", default: 2, describe: "memory read latency in cycles" })
          .option("stall", { type: "number", default: 0, describe: "percent of cycles the memory refuses requests" })
          .option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
      async (args) => {
        code = await cosimLayerCommand(
          {
            model: args.model,
            data: args.data,
            images: args.images,
            calib: args.calib,
            config: hwConfig(args.hw),
            memory: { latency: args.latency, stallPercent: args.stall, seed: 1 },
            out: args.out === undefined ? undefined : resolve(args.out),
          },
          args.json,
        );
      },
    )
    .command(
      "test-quant <model> <data>",
      "evaluate a model on a dataset: float, or quantized (--quant) beside float on the same images",
      (y) =>
        quantOptions(y)
          .option("quant", { type: "boolean", default: false, describe: "quantize (else: the float model alone)" })
          .option("limit", { type: "number", describe: "evaluate only the first N evaluation images" })
          .option("workers", { type: "number", describe: "worker threads (default: one per core when it pays)" })
          .option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
      async (args) => {
        if (!args.quant) {
          if (args.mixed) throw new P2vitError("--mixed: only with --quant (it chooses the quantized model's weight bits)");
          code = await testQuantFloatCommand({ model: args.model, data: args.data, calib: args.calib, limit: args.limit, weights: args.weights, seed: args.seed, workers: args.workers, json: args.json });
          return;
        }
        const q = quantArgs(args);
        const result = await runQuantEvaluation(q, !args.json && process.stderr.isTTY ? progress : undefined, args.workers);
        if (!args.json && process.stderr.isTTY) process.stderr.write("\n");
        if (result.note) console.error(result.note);
        console.log(args.json ? JSON.stringify(quantJson(result, q)) : formatQuantResult(result));
      },
    )
    .command(
      "quantize <model> <data>",
      "calibrate and quantize a model with power-of-two scales, and write its QGraph file",
      (y) => quantOptions(y).option("out", { type: "string", demandOption: true, describe: "the QGraph file to write" }),
      async (args) => {
        console.log(await quantizeCommand(quantArgs(args), resolve(args.out)));
      },
    )
    .command(
      "run <qgraph> <target>",
      "integer inference with the golden model: one image (top-k classes) or a dataset (accuracy)",
      (y) =>
        y
          .positional("qgraph", { type: "string", demandOption: true, describe: "a QGraph file (p2vit quantize)" })
          .positional("target", { type: "string", demandOption: true, describe: "an image file or a dataset folder" })
          .option("top", { type: "number", default: 5, describe: "classes to list for one image" })
          .option("calib", { type: "number", describe: "calibration images held out of a dataset without train/ (default 100)" })
          .option("limit", { type: "number", describe: "evaluate only the first N images" })
          .option("dump", { type: "string", describe: "write every tensor of the (first) image to this folder" })
          .option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
      async (args) => {
        const r = await runCommand({ qgraph: args.qgraph, target: args.target, top: args.top, dump: args.dump, calib: args.calib, limit: args.limit });
        if (args.json) console.log(JSON.stringify(r));
        else if (r.kind === "image") console.log(r.top.map((t, i) => `${i + 1}. class ${t.class}  logit ${t.logit} (× 2^${r.logitExponent})`).join("\n"));
        else console.log(`integer top-1: ${r.top1.toFixed(2)}% (${r.correct}/${r.n})`);
        if (args.dump && !args.json) console.log(`tensors written to ${args.dump}`);
      },
    )
    .command(
      "compile <qgraph>",
      "compile a QGraph for an accelerator: instruction stream, constant data, listing and memory map",
      (y) =>
        y
          .positional("qgraph", { type: "string", demandOption: true, describe: "a QGraph file (p2vit quantize)" })
          .option("hw", { type: "string", describe: "accelerator config (JSON); default: the built-in config" })
          .option("out", { type: "string", demandOption: true, describe: "output folder" })
          .option("overlap", { type: "boolean", default: true, describe: "double buffering and concurrent chunks (--no-overlap: one instruction at a time)" }),
      async (args) => {
        console.log(await compileCommand(resolve(args.qgraph), hwConfig(args.hw), resolve(args.out), args.overlap));
      },
    )
    .command(
      "perf <target>",
      "cycles, PE utilization, frames/s, GOPS and GOPS/DSP from the cycle model, per layer and in total",
      (y) =>
        y
          .positional("target", { type: "string", demandOption: true, describe: "a QGraph file, or a model (preset or folder) with --data" })
          .option("data", { type: "string", describe: "images to calibrate a model on (its structure is what counts)" })
          .option("calib", { type: "number", default: 1, describe: "calibration images for a model" })
          .option("hw", { type: "string", describe: "accelerator config (JSON); default: the built-in config" })
          .option("overlap", { type: "boolean", default: true, describe: "double buffering and concurrent chunks (--no-overlap for the ablation)" })
          .option("dsp", { type: "number", describe: "DSP count for GOPS/DSP (else --synth measures it)" })
          .option("synth", { type: "boolean", default: false, describe: "count the DSPs with yosys synth_xilinx on the generated top (cached per config)" })
          .option("layers", { type: "boolean", default: false, describe: "list every layer" })
          .option("out", { type: "string", describe: "a run folder: write perf.json (figures, layers, chunk timeline) into it for `p2vit report`" })
          .option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
      async (args) => {
        const out = args.out === undefined ? undefined : resolve(args.out);
        const r = await perfCommand({
          target: args.target, data: args.data, calib: args.calib, config: hwConfig(args.hw), overlap: args.overlap, dsp: args.dsp, synth: args.synth, out,
        });
        console.log(args.json ? JSON.stringify(r) : formatPerf(r, { layers: args.layers }));
        if (out && !args.json) console.log(`perf.json written to ${out}`);
      },
    )
    .command(
      "export <rtl-dir>",
      "export generated RTL as a self-contained FPGA folder: AXI wrapper, XDC, Vivado Tcl, FuseSoC core (--target yosys also synthesizes it)",
      (y) =>
        y
          .positional("rtl-dir", { type: "string", demandOption: true, describe: "a folder `p2vit generate` wrote (Verilog, filelist.f, manifest.json)" })
          .option("target", { type: "string", demandOption: true, describe: `the flow: ${TARGETS.join(", ")} (yosys runs synth_xilinx and saves the resources)` })
          .option("part", { type: "string", default: DEFAULT_PART, describe: "Xilinx part (default: the ZCU102's)" })
          // a string, so that a typo is reported as typed, not as NaN
          .option("clock", { type: "string", describe: "clock in MHz (default: the config's clockMHz)" })
          .option("out", { type: "string", demandOption: true, describe: "the folder to write" }),
      async (args) => {
        const target = parseTarget(args.target);
        const clockMHz = args.clock === undefined ? undefined : parseClock(args.clock);
        const r = await exportFpga({ rtlDir: resolve(args.rtlDir), target, part: args.part, clockMHz, out: resolve(args.out) });
        console.log(formatExport(r, target));
      },
    )
    .command(
      "report <run-dir>",
      "write a self-contained HTML report of a run folder (perf.json, and resources.json, accuracy.json when there)",
      (y) =>
        y
          .positional("run-dir", { type: "string", demandOption: true, describe: "a folder `p2vit perf … --out <run-dir>` wrote perf.json into" })
          .option("out", { type: "string", describe: "the HTML file (default: <run-dir>/report.html)" }),
      async (args) => {
        const dir = resolve(args.runDir);
        const run = loadRunDir(dir);
        const out = resolve(args.out ?? `${dir}/${REPORT_FILE}`);
        writeFileAtomic(out, renderReport(run));
        const missing = [run.resources ? "" : "resources", run.accuracy ? "" : "accuracy"].filter(Boolean);
        console.log(`wrote ${out}${missing.length ? ` (not measured: ${missing.join(", ")})` : ""}`);
      },
    )
    .command(
      "demo",
      "the main job on the built-in default: synthetic model, default accelerator, co-simulation into rtl-out/default",
      () => {},
      async () => {
        code = await modelCosimCommand({
          subject: { target: "synthetic", images: 4, calib: 32 },
          config: DEFAULT_CONFIG,
          options: {},
          out: resolve("rtl-out", DEFAULT_CONFIG.name),
          layers: false,
          json: false,
        });
      },
    )
    .demandCommand(1, "give a command: doctor, generate, export, compile, perf, report, cosim, regress, cosim-layer, demo, test-quant, quantize or run")
    .strict()
    .fail((msg, err) => {
      throw err ?? new P2vitError(msg);
    })
    .help()
    .parseAsync();
  return code;
}

export async function runCli(argv = hideBin(process.argv)): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (err) {
    if (err instanceof P2vitError) {
      console.error(`p2vit: error: ${err.message}`);
      process.exitCode = 2;
    } else {
      throw err;
    }
  }
}
