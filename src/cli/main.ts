/** The p2vit command line. */
import { resolve } from "node:path";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { writeRtl } from "../generator/rtl.js";
import { AcceleratorConfig, DEFAULT_CONFIG, loadAcceleratorConfig } from "../hw/config.js";
import { P2vitError } from "../util/errors.js";
import { CosimRequest, formatOutcome, runLayerCosim, summary } from "./cosim-layer.js";
import { checkTools, formatToolReport } from "./doctor.js";

function hwConfig(file: string | undefined): AcceleratorConfig {
  return file === undefined ? DEFAULT_CONFIG : loadAcceleratorConfig(file);
}

async function cosimCommand(req: CosimRequest, json: boolean): Promise<number> {
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
      "cosim [model]",
      "co-simulate a model's patch embedding: golden integer kernel vs the RTL in Verilator, bit for bit",
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
        code = await cosimCommand(
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
      "demo",
      "the main job on the built-in default: synthetic model, default accelerator, co-simulation into rtl-out/default",
      () => {},
      async () => {
        code = await cosimCommand(
          { model: "synthetic", images: 16, calib: 32, config: DEFAULT_CONFIG, memory: { latency: 2, stallPercent: 0, seed: 1 }, out: resolve("rtl-out", DEFAULT_CONFIG.name) },
          false,
        );
      },
    )
    .demandCommand(1, "give a command: doctor, generate, cosim or demo")
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
