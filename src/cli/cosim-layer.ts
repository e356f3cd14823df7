/**
 * `p2vit cosim` for the walking skeleton: quantize a model's patch embedding on calibration images,
 * then run the golden kernel and the RTL on evaluation images and compare them bit for bit.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildMemory, encodeProgram } from "../compiler/memory.js";
import { RtlManifest, renderRtl, writeRtlFiles } from "../generator/rtl.js";
import { AcceleratorConfig } from "../hw/config.js";
import { Checkpoint, loadCheckpoint } from "../quant/checkpoint.js";
import { ImageSet, loadMnist } from "../quant/data/mnist.js";
import { quantizePatchEmbedding, sliceImages } from "../quant/patch-embed.js";
import { SYNTHETIC_MODEL_NAME, syntheticCheckpoint, syntheticImages } from "../quant/synthetic.js";
import { formatMismatch } from "../sim/compare.js";
import { LinearCosimResult, cosimLinear } from "../sim/cosim.js";
import { MemoryModel } from "../sim/verilator/run.js";
import { writeDirAtomic } from "../util/atomic.js";
import { formatProgramListing } from "./compile.js";
import { P2vitError } from "../util/errors.js";

export interface CosimRequest {
  /** A model folder, or "synthetic" for the built-in model. */
  model: string;
  /** An MNIST IDX folder; the built-in model makes its own images. */
  data?: string;
  images: number;
  calib: number;
  config: AcceleratorConfig;
  memory: MemoryModel;
  /** Where to keep the RTL, the program and the result; nothing is written without it. */
  out?: string;
}

export interface ModelAndImages {
  ckpt: Checkpoint;
  calibration: ImageSet;
  evaluation: ImageSet;
}

/** Calibration images are never evaluation images: the last `calib` calibrate, the first `images` are evaluated. */
export function loadModelAndImages(req: Pick<CosimRequest, "model" | "data" | "images" | "calib">): ModelAndImages {
  positive(req.images, "--images");
  positive(req.calib, "--calib");
  const synthetic = req.model === "synthetic" || req.model === SYNTHETIC_MODEL_NAME;
  const ckpt = synthetic ? syntheticCheckpoint() : loadCheckpoint(req.model);
  let all: ImageSet;
  if (req.data !== undefined) {
    all = loadMnist(req.data);
  } else if (synthetic) {
    all = syntheticImages(req.images + req.calib, 1, ckpt.config.architecture.img_size);
  } else {
    throw new P2vitError(`model ${req.model}: give its images with --data <folder> (an MNIST IDX folder)`);
  }
  if (req.images + req.calib > all.count) {
    throw new P2vitError(
      `${req.data ?? "the built-in images"}: ${req.images} evaluation + ${req.calib} calibration images asked for, but it holds only ${all.count}`,
    );
  }
  return {
    ckpt,
    calibration: sliceImages(all, all.count - req.calib, req.calib),
    evaluation: sliceImages(all, 0, req.images),
  };
}

function positive(v: number, flag: string): void {
  if (!Number.isInteger(v) || v < 1) throw new P2vitError(`${flag}: expected a positive integer, got ${v}`);
}

export interface CosimOutcome {
  model: string;
  result: LinearCosimResult;
  images: number;
  patchesPerImage: number;
  manifest: RtlManifest;
}

export async function runLayerCosim(req: CosimRequest): Promise<CosimOutcome> {
  const { ckpt, calibration, evaluation } = loadModelAndImages(req);
  const q = quantizePatchEmbedding(ckpt, calibration, evaluation, { accBits: req.config.accBits });
  const result = await cosimLinear(req.config, q.layer, q.x, q.rows, { memory: req.memory });
  const { files, manifest } = renderRtl(req.config);
  if (req.out !== undefined) {
    await writeDirAtomic(req.out, (dir) => {
      writeRtlFiles(dir, files, manifest);
      writeFileSync(join(dir, "program.lst"), formatProgramListing(result.program));
      writeFileSync(join(dir, "program.bin"), encodeProgram(result.program));
      writeFileSync(join(dir, "memory.bin"), buildMemory(result.program, q.x));
      writeFileSync(join(dir, "cosim.json"), JSON.stringify(summary({ model: ckpt.config.name, result, images: evaluation.count, patchesPerImage: q.patchesPerImage, manifest }), null, 2) + "\n");
    });
  }
  return { model: ckpt.config.name, result, images: evaluation.count, patchesPerImage: q.patchesPerImage, manifest };
}

/** The machine-readable result (`--json`, cosim.json). */
export function summary(o: CosimOutcome): Record<string, unknown> {
  const r = o.result;
  return {
    pass: r.pass,
    model: o.model,
    layer: r.layer,
    shape: { m: r.rows, k: r.k, n: r.n },
    images: o.images,
    accelerator: { name: r.config.name, rows: r.config.array.rows, cols: r.config.array.cols, rtlHash: o.manifest.contentHash },
    outputs: r.expected.length,
    cycles: r.cycles,
    cyclesPerImage: r.cycles / o.images,
    macs: r.macs,
    peUtilization: r.utilization,
    firstMismatch: r.mismatch && { ...r.mismatch, image: Math.floor(r.mismatch.coords[0] / o.patchesPerImage), patch: r.mismatch.coords[0] % o.patchesPerImage },
  };
}

export function formatOutcome(o: CosimOutcome): string {
  const r = o.result;
  const { rows: m, k, n } = r;
  const util = `${(100 * r.utilization).toFixed(1)}%`;
  const head = [
    `model ${o.model}, layer ${r.layer} (${k} → ${n}), ${o.images} images = ${m} rows`,
    `accelerator "${r.config.name}": ${r.config.array.rows}×${r.config.array.cols} PEs, RTL ${o.manifest.contentHash}`,
  ];
  if (r.pass) {
    return [...head, `PASS: ${r.expected.length} outputs bit-exact; ${r.cycles} cycles (${(r.cycles / o.images).toFixed(1)} per image), PE utilization ${util}`].join("\n");
  }
  const mm = r.mismatch!;
  const where = `image ${Math.floor(mm.coords[0] / o.patchesPerImage)}, patch ${mm.coords[0] % o.patchesPerImage}, channel ${mm.coords[1]}`;
  return [...head, `FAIL: first mismatch at ${formatMismatch(mm)} (${where}); ${r.cycles} cycles`].join("\n");
}
